"""Linear forward operators A of inverse problems: y = A x + z (E21).

Every operator has ``input_shape`` (the image grid, ``(n,)`` or ``(h, w)``), ``output_shape``
(the measurement array), ``forward(x)`` = A x and ``adjoint(r)`` = A^T r, with
``<A x, r> = <x, A^T r>``.  Operators compose: ``A @ B`` applies B first, then A.

Arrays.  Inputs must be real, finite and of the operator's shape.  A float32 array stays float32
(the operators are cheap next to the generator, and a float32 fit should not be promoted); any
other real dtype is computed and returned in float64.  The FFT-based operators compute in
float64 internally and round once at the end.

Choice of measurement space for :class:`Mask`: the masked image (zeros where nothing is
measured) rather than the vector of kept values.  A = diag(mask) is then symmetric (A^T = A) and
idempotent, measurements stay on the image grid (a noisy image with holes is simply y, and its
plot is an image), and E22/E23 keep one array shape throughout.  The unmeasured entries of
``A x - y`` are zero whenever y is zero there, so only :attr:`Operator.measurements` entries
carry data and noise: count noise with it, not with the size of the array.
"""
from __future__ import annotations

import math

import numpy as np

from . import filters as _filters
from . import validation as _check

__all__ = ["Operator", "Mask", "Blur", "Downsample", "Gaussian", "Crop", "Compose",
           "PerChannel", "MAX_GAUSSIAN_ENTRIES"]

#: Largest number m * N of entries of a dense :class:`Gaussian` matrix (128 MB in float64).
MAX_GAUSSIAN_ENTRIES = 2 ** 24


def _result_dtype(x: np.ndarray) -> np.dtype:
    return np.dtype(np.float32) if x.dtype == np.float32 else np.dtype(np.float64)


class Operator:
    """A linear map from arrays of ``input_shape`` to arrays of ``output_shape`` (E21).

    Subclasses implement ``_forward`` and ``_adjoint`` on checked float64 arrays; the public
    :meth:`forward` and :meth:`adjoint` validate, and keep float32 as float32.
    """

    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    # NumPy defers to the operator, so ``A @ array`` raises TypeError instead of broadcasting.
    __array_ufunc__ = None

    @property
    def measurements(self) -> int:
        """The number of measured entries of an output array (those that carry data and noise)."""
        return math.prod(self.output_shape)

    def forward(self, x) -> np.ndarray:
        """A x: array of ``input_shape`` -> array of ``output_shape``."""
        x = _check.signal(x, "operator input x", self.input_shape,
                          ndims=(len(self.input_shape),), dtype=None)
        return self._forward(x.astype(np.float64, copy=False)).astype(_result_dtype(x),
                                                                      copy=False)

    def adjoint(self, r) -> np.ndarray:
        """A^T r: array of ``output_shape`` -> array of ``input_shape``."""
        r = _check.signal(r, "operator adjoint input r", self.output_shape,
                          ndims=(len(self.output_shape),), dtype=None)
        return self._adjoint(r.astype(np.float64, copy=False)).astype(_result_dtype(r),
                                                                      copy=False)

    def __matmul__(self, other):
        if not isinstance(other, Operator):
            return NotImplemented
        return Compose(self, other)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _adjoint(self, r: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Mask(Operator):
    """Inpainting: keep the pixels where ``mask`` is true, zero the others (E21).

    A = diag(mask), so A^T = A and the output is the masked image, of the input's shape (see the
    module docstring for why).

    Parameters
    ----------
    mask : array_like of bool, shape (n,) or (h, w)
        True (or 1) where the pixel is measured.  Numeric masks must hold only 0 and 1.

    Attributes
    ----------
    mask : ndarray of bool
    measurements : int, the number of kept pixels.
    """

    def __init__(self, mask):
        mask = np.asarray(mask)
        if mask.dtype != bool:
            if mask.dtype == object or not np.issubdtype(mask.dtype, np.number) \
                    or np.iscomplexobj(mask) or not np.all((mask == 0) | (mask == 1)):
                raise ValueError("mask must be boolean or hold only 0 and 1; threshold a grey "
                                 "mask first, e.g. mask > 0.5")
            mask = mask == 1
        if mask.ndim not in (1, 2) or mask.size == 0:
            raise ValueError(f"mask must be a non-empty 1-D or 2-D array, got shape {mask.shape}")
        if not mask.any():
            raise ValueError("mask keeps no pixel; at least one pixel must be measured")
        self.mask = mask.copy()
        self.mask.flags.writeable = False
        self.input_shape = self.output_shape = mask.shape

    @property
    def measurements(self) -> int:
        return int(self.mask.sum())

    def _forward(self, x):
        return np.where(self.mask, x, 0.0)

    _adjoint = _forward

    def estimate_noise_std(self, y) -> float:
        """The noise level of measurements y from the known pixels only (Haar MAD)."""
        from .stopping import estimate_noise_std
        return estimate_noise_std(y, known=self.mask)

    def __repr__(self):
        return f"Mask(shape={self.input_shape}, kept={self.measurements})"


class Blur(Operator):
    """Deblurring: circular convolution with the filter u, A x = u * x (E1's convention, E21).

    ``(A x)[i] = sum_m u[m] x[i - m]`` with indices modulo ``shape``; A^T is the circular
    correlation with u.  Both are applied by FFT: A = F^* diag(transfer) F.

    Parameters
    ----------
    u : array_like
        Centred filter taps with as many axes as ``shape`` (see :mod:`minidip.filters`); used as
        given, not normalised (a blur that keeps the mean brightness has taps summing to 1).
    shape : tuple of int
        Grid shape ``(n,)`` or ``(h, w)``, at least as large as the filter.

    Attributes
    ----------
    taps : ndarray, the validated centred taps (float64).
    transfer : ndarray of ``shape``, complex128
        a_f = DFT of the filter placed on the grid (``np.fft.fftn(on_grid(taps, shape))``, in
        ``np.fft`` order): A multiplies the DFT of x by a_f.  E23 uses it.
    """

    def __init__(self, u, shape):
        shape = _check.shape(shape)
        self.taps = _filters.as_taps(u, len(shape))
        self.transfer = np.fft.fftn(_filters.on_grid(self.taps, shape))
        self.transfer.flags.writeable = False
        self.input_shape = self.output_shape = shape

    def _forward(self, x):
        return np.fft.ifftn(self.transfer * np.fft.fftn(x)).real

    def estimate_noise_std(self, y) -> float:
        """The noise level of a blurred image y (Haar MAD: the blur leaves little at the finest
        scale, the noise added after it is white)."""
        from .stopping import estimate_noise_std
        return estimate_noise_std(y)

    def _adjoint(self, r):
        return np.fft.ifftn(np.conj(self.transfer) * np.fft.fftn(r)).real

    def __repr__(self):
        return f"Blur(taps={self.taps.shape}, shape={self.input_shape})"


class Downsample(Operator):
    """Super-resolution: blur with u, then keep every ``factor``-th sample per axis (E21).

    A = S B with B = :class:`Blur` (u, shape) and S the subsampling ``x[::factor, ::factor]``
    (sample 0 kept); A^T = B^T S^T, with S^T placing the samples back among zeros.

    Parameters
    ----------
    factor : int
        Subsampling factor >= 1; must divide every axis of ``shape``.
    u : array_like, optional
        Anti-alias filter taps, used as given.  Default: the block mean, taps 1/factor^d at the
        offsets ``-(factor - 1) .. 0`` per axis, so that the low-resolution pixel j is the mean
        of ``x[factor j .. factor j + factor - 1]`` (per axis): how a camera pixel ``factor``
        times as large integrates light, and the same blocks as ``minidip.data``'s
        ``downsample=``.  A box rather than a Gaussian: its transfer function vanishes at the
        non-zero multiples of the low-resolution sampling frequency, the frequencies that alias
        onto zero, so a constant image maps to the same constant and the mean is kept exactly;
        and it matches the usual acquisition model of super-resolution benchmarks.
    shape : tuple of int
        High-resolution grid ``(n,)`` or ``(h, w)``.

    Attributes
    ----------
    factor : int
    blur : Blur, the anti-alias blur B.
    """

    def __init__(self, factor, u=None, shape=None):
        factor = _check.positive_int(factor, "factor")
        if shape is None:
            raise ValueError("Downsample needs the high-resolution shape: "
                             "Downsample(factor, u, shape)")
        shape = _check.shape(shape)
        if any(n % factor for n in shape):
            raise ValueError(f"factor {factor} does not divide every axis of the shape {shape}; "
                             "crop or pad the image to a multiple of the factor")
        if u is None:
            u = _block_mean_taps(factor, len(shape))
        self.factor = factor
        self.blur = Blur(u, shape)
        self.input_shape = shape
        self.output_shape = tuple(n // factor for n in shape)
        self._keep = (slice(None, None, factor),) * len(shape)

    def _forward(self, x):
        return self.blur._forward(x)[self._keep]

    def estimate_noise_std(self, y) -> float:
        """The noise level of the low-resolution image y (Haar MAD)."""
        from .stopping import estimate_noise_std
        return estimate_noise_std(y)

    def _adjoint(self, r):
        full = np.zeros(self.input_shape)
        full[self._keep] = r
        return self.blur._adjoint(full)

    def __repr__(self):
        return (f"Downsample(factor={self.factor}, taps={self.blur.taps.shape}, "
                f"shape={self.input_shape})")


def _block_mean_taps(factor: int, ndim: int) -> np.ndarray:
    """Centred taps of length 2 factor - 1 with 1/factor at offsets -(factor - 1) .. 0."""
    row = np.zeros(2 * factor - 1)
    row[:factor] = 1.0 / factor
    return row if ndim == 1 else np.outer(row, row)


class Gaussian(Operator):
    """Compressive sensing: A x = M vec(x) with M an m x N matrix of iid N(0, 1/m) entries (E21).

    E||A x||^2 = ||x||^2 for every x.  The matrix is dense, so N (the grid size) and m are
    limited: m * N <= :data:`MAX_GAUSSIAN_ENTRIES`.  ``vec`` flattens in row-major (C) order.

    Parameters
    ----------
    m : int
        Number of measurements, >= 1 (m > N is allowed: an overdetermined system).
    shape : tuple of int
        Grid shape ``(n,)`` or ``(h, w)``.
    seed : int
        The matrix is ``default_rng(seed).standard_normal((m, N)) / sqrt(m)``.

    Attributes
    ----------
    matrix : ndarray (m, N), float64.
    """

    def __init__(self, m, shape, seed=0):
        m = _check.positive_int(m, "m (the number of measurements)")
        shape = _check.shape(shape)
        size = math.prod(shape)
        if m * size > MAX_GAUSSIAN_ENTRIES:
            raise ValueError(f"a dense {m} x {size} Gaussian matrix has more than "
                             f"{MAX_GAUSSIAN_ENTRIES} entries; use fewer measurements or a "
                             "smaller grid")
        rng = np.random.default_rng(seed)
        self.matrix = rng.standard_normal((m, size)) / math.sqrt(m)
        self.matrix.flags.writeable = False
        self.seed = seed
        self.input_shape = shape
        self.output_shape = (m,)

    def _forward(self, x):
        return self.matrix @ x.ravel()

    def _adjoint(self, r):
        return (self.matrix.T @ r).reshape(self.input_shape)

    def __repr__(self):
        return f"Gaussian(m={self.output_shape[0]}, shape={self.input_shape}, seed={self.seed})"


class Crop(Operator):
    """Keep the leading ``shape`` block of a larger grid: A x = x[:h, :w] (1-D: x[:n]) (E21).

    A model whose grid is constrained (the deep decoder needs multiples of 2^(L-1)) is fitted on
    a grid padded at the end and measured through this operator: the padded pixels are not
    measured, so the fit leaves them free.  A^T pads with zeros.

    Parameters
    ----------
    shape : tuple of int
        The measured block, ``(n,)`` or ``(h, w)``; the output shape.
    grid : tuple of int
        The model's grid, at least ``shape`` along every axis; the input shape.
    """

    def __init__(self, shape, grid):
        shape, grid = tuple(int(n) for n in shape), tuple(int(n) for n in grid)
        if len(shape) not in (1, 2) or len(grid) != len(shape) or min(shape) < 1 \
                or any(g < n for g, n in zip(grid, shape)):
            raise ValueError(f"Crop needs a shape (n,) or (h, w) of positive integers inside the "
                             f"grid, got shape {shape} and grid {grid}")
        self.input_shape, self.output_shape = grid, shape
        self._index = tuple(slice(0, n) for n in shape)

    def _forward(self, x):
        return x[self._index].copy()

    def _adjoint(self, r):
        x = np.zeros(self.input_shape)
        x[self._index] = r
        return x

    def estimate_noise_std(self, y) -> float:
        """The noise level of measurements y (Haar MAD): every measured pixel is one of y."""
        from .stopping import estimate_noise_std
        return estimate_noise_std(y)

    def __repr__(self):
        return f"Crop(shape={self.output_shape}, grid={self.input_shape})"


class Compose(Operator):
    """The composition ``outer @ inner``: x -> outer(inner(x)); adjoint inner^T(outer^T(r)) (E21).

    ``inner.output_shape`` must equal ``outer.input_shape``.  ``A @ B`` builds ``Compose(A, B)``.
    :attr:`measurements` are the outer operator's (noise enters after the last operator).
    """

    def __init__(self, outer, inner):
        if not isinstance(outer, Operator) or not isinstance(inner, Operator):
            raise ValueError("Compose takes two operators from minidip.operators")
        if inner.output_shape != outer.input_shape:
            raise ValueError(f"cannot compose: the inner operator outputs {inner.output_shape} "
                             f"but the outer one takes {outer.input_shape}")
        self.outer, self.inner = outer, inner
        self.input_shape, self.output_shape = inner.input_shape, outer.output_shape

    @property
    def measurements(self) -> int:
        return self.outer.measurements

    def __getattr__(self, name):
        # The noise of y is the outer operator's business: it made the measurements.
        if name == "estimate_noise_std" and hasattr(self.outer, name):
            return self.outer.estimate_noise_std
        raise AttributeError(name)

    @property
    def factors(self) -> tuple[Operator, ...]:
        """The composed operators, outermost first, nested compositions flattened."""
        return tuple(f for op in (self.outer, self.inner)
                     for f in (op.factors if isinstance(op, Compose) else (op,)))

    def _forward(self, x):
        return self.outer._forward(self.inner._forward(x))

    def _adjoint(self, r):
        return self.inner._adjoint(self.outer._adjoint(r))

    def __repr__(self):
        return f"{self.outer!r} @ {self.inner!r}"


class PerChannel(Operator):
    """The same operator on every channel of a multi-channel image: (c, *S) -> (c, *T) (E21).

    For a colour image (c = 3) fitted as one output, e.g. by a deep decoder with three output
    channels.  A is block-diagonal with c copies of ``op``; so is A^T.

    Parameters
    ----------
    op : Operator
        Acts on one channel, ``op.input_shape`` = S.
    channels : int
        c >= 1.

    Attributes
    ----------
    op : Operator
    measurements : int, c times ``op.measurements``.
    """

    def __init__(self, op, channels=3):
        if not isinstance(op, Operator):
            raise ValueError("PerChannel takes an operator from minidip.operators")
        self.op = op
        self.channels = _check.positive_int(channels, "channels")
        self.input_shape = (self.channels,) + tuple(op.input_shape)
        self.output_shape = (self.channels,) + tuple(op.output_shape)

    @property
    def measurements(self) -> int:
        return self.channels * self.op.measurements

    def __getattr__(self, name):
        # One noise level for all channels: the root mean square of the channels' estimates.
        if name == "estimate_noise_std" and hasattr(self.op, name):
            return self._estimate_noise_std
        raise AttributeError(name)

    def _estimate_noise_std(self, y) -> float:
        y = _check.signal(y, "measurements y", self.output_shape, ndims=(len(self.output_shape),))
        return math.sqrt(sum(self.op.estimate_noise_std(channel) ** 2 for channel in y)
                         / self.channels)

    def _forward(self, x):
        return np.stack([self.op._forward(channel) for channel in x])

    def _adjoint(self, r):
        return np.stack([self.op._adjoint(channel) for channel in r])

    def __repr__(self):
        return f"PerChannel({self.op!r}, channels={self.channels})"
