"""The two-layer convolutional generator G(C) = ReLU(U C) v (E1-E6), NumPy reference.

The functions :func:`convolve`, :func:`correlate`, :func:`forward` and :func:`loss_and_grad`
are the readable truth of the model: every faster backend is tested against them.
"""
from __future__ import annotations

import math

import numpy as np

from . import filters as _filters

__all__ = ["Generator", "output_weights", "default_init_std", "init_std_for",
           "convolve", "correlate", "forward", "loss_and_grad"]

BACKENDS = ("numpy", "numba")
INITS = ("iid", "paired")


# --------------------------------------------------------------------------------------------
# Pure math (E1-E5): taps are centred, C has shape (k, *S), the grid is periodic.

def _offsets(taps: np.ndarray):
    """Yield (offset m, u[m]) for every non-zero tap of a centred filter."""
    centre = np.array(taps.shape) // 2
    for index in zip(*np.nonzero(taps)):
        yield tuple(int(i) for i in np.array(index) - centre), taps[index]


def convolve(c: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """(E1) ``(U c)[i] = sum_m u[m] c[i - m]``, periodic, over the last ``taps.ndim`` axes."""
    axes = tuple(range(c.ndim - taps.ndim, c.ndim))
    out = np.zeros_like(c)
    for m, w in _offsets(taps):
        out += c.dtype.type(w) * np.roll(c, m, axis=axes)      # roll(c, m)[i] = c[i - m]
    return out


def correlate(r: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """(E1) The adjoint ``(U^T r)[i] = sum_m u[m] r[i + m]``: correlation with u."""
    axes = tuple(range(r.ndim - taps.ndim, r.ndim))
    out = np.zeros_like(r)
    for m, w in _offsets(taps):
        out += r.dtype.type(w) * np.roll(r, tuple(-o for o in m), axis=axes)
    return out


def output_weights(channels: int, dtype=np.float64) -> np.ndarray:
    """(E2) v_j = -1/sqrt(k) for j < k/2 and +1/sqrt(k) otherwise."""
    v = np.full(channels, 1.0 / math.sqrt(channels))
    v[: channels // 2] *= -1
    return v.astype(dtype)


def forward(C: np.ndarray, taps: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(E3) G(C) = sum_j v_j ReLU(U c_j)."""
    return np.tensordot(v, np.maximum(convolve(C, taps), 0), axes=1)


def loss_and_grad(C: np.ndarray, y: np.ndarray, taps: np.ndarray, v: np.ndarray):
    """(E4, E5) Loss 1/2 ||G(C) - y||^2 and its gradient v_j U^T(1[U c_j > 0] * r).

    Returns ``(loss, grad, output)``; the loss is accumulated in float64.  ReLU'(0) is taken as 0.
    """
    h = convolve(C, taps)                                   # U c_j, shape (k, *S)
    output = np.tensordot(v, np.maximum(h, 0), axes=1)      # E3
    r = output - y
    loss = 0.5 * float(np.sum(np.square(r, dtype=np.float64)))        # E4
    v_col = v.reshape((-1,) + (1,) * y.ndim)
    grad = v_col * correlate((h > 0) * r, taps)             # E5
    return loss, grad, output


def default_init_std(taps: np.ndarray) -> float:
    """The init_std for which E||G(C_0)||^2 = N (unit RMS output at initialization; E6).

    E||G(C_0)||^2 = omega^2 a(0) N (1/2 - 1/(2 pi)) with a(0) = ||u||^2.
    """
    a0 = float(np.sum(np.square(taps)))
    return 1.0 / math.sqrt(a0 * (0.5 - 0.5 / math.pi))


def init_std_for(u, y, ratio: float = 1.0) -> float:
    """The init_std for which E||G(C_0)|| = ``ratio * ||y||`` (E6).

    ``ratio`` near 1 is the lazy regime, where gradient descent follows the linearized
    prediction (E10) closely; ``ratio`` near 0 is the small-init setting of the theorem (E11).
    """
    y = _check_signal(y, "y")
    if not (np.isfinite(ratio) and ratio > 0):
        raise ValueError(f"ratio must be a positive number, got {ratio!r}")
    taps = _filters.as_taps(u, y.ndim)
    rms = math.sqrt(float(np.mean(np.square(y, dtype=np.float64))))
    if rms == 0:
        raise ValueError("y is all zero; its norm cannot set the init scale")
    return ratio * rms * default_init_std(taps)


def _check_signal(y, name: str, shape=None) -> np.ndarray:
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
        raise ValueError(f"{name} must be a real numeric array")
    if shape is not None and y.shape != tuple(shape):
        raise ValueError(f"{name} has shape {y.shape}, expected {tuple(shape)}")
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got {y.ndim} axes")
    if not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinity; clean or mask those values first")
    return y


class Generator:
    """Two-layer convolutional generator G(C) = sum_j v_j ReLU(U c_j) on a periodic grid.

    Parameters
    ----------
    u : array_like
        Filter taps (1-D or 2-D, centred, see :mod:`minidip.filters`).
    shape : int or tuple of int
        Signal shape ``(n,)`` or ``(h, w)``.
    channels : int
        Number k of channels; positive and even (E2: the signs of v are balanced).
    init_std : float, optional
        Standard deviation omega of the iid Gaussian initialization (E6).  Default:
        :func:`default_init_std`, which gives ``E||G(C_0)||^2 = N``, i.e. an output of unit RMS.
        For a signal of unit RMS this is ||G(C_0)|| ~ ||y||, the lazy regime in which gradient
        descent follows the linearized prediction E10 closely (worst deviation 0.08 -> 0.009 of
        ||y|| for k = 512 -> 32768, against 0.20 -> 0.09 at ||G(C_0)|| ~ 0.1 ||y||, with nearly the
        same best denoising error).  Use :func:`init_std_for` to match another signal's scale.
    seed : int
        Seed of :meth:`init_weights`.
    init : "iid" or "paired"
        "iid" (default, E6): every entry of C_0 iid N(0, init_std^2).  "paired": the first k/2
        channels are drawn so and copied into the last k/2, so the balanced signs of v make
        G(C_0) = 0 exactly while every channel is still N(0, init_std^2) and the expected kernel
        is still Sigma (E8, now averaged over k/2 independent channels).  Since the Jacobian does
        not depend on the scale of C, a large init_std then puts gradient descent in the lazy
        regime of E10 with the theorem's G(C_0) = 0 (E11).
    dtype : np.float32 or np.float64
    backend : "numpy" or "numba", optional
        Default "numba" when numba imports, else "numpy".
    """

    def __init__(self, u, shape, channels, init_std=None, seed=0, dtype=np.float32,
                 backend=None, init="iid"):
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        if len(shape) not in (1, 2) or any(int(n) != n or n < 1 for n in shape):
            raise ValueError(f"shape must be (n,) or (h, w) of positive integers, got {shape!r}")
        self.shape = tuple(int(n) for n in shape)
        if int(channels) != channels or channels <= 0 or channels % 2:
            raise ValueError(f"channels must be a positive even integer (the output weights "
                             f"come in +/- pairs), got {channels!r}")
        self.channels = int(channels)
        self.taps = _filters.as_taps(u, len(self.shape))
        _filters.on_grid(self.taps, self.shape)             # raises if the filter is too large
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        if init_std is None:
            init_std = default_init_std(self.taps)
        if not (np.isfinite(init_std) and init_std > 0):
            raise ValueError(f"init_std must be a positive number, got {init_std!r}")
        self.init_std = float(init_std)
        self.seed = seed
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        self.v = output_weights(self.channels, self.dtype)
        self.backend = _resolve_backend(backend)
        self._taps = self.taps.astype(self.dtype)

    def __repr__(self):
        return (f"Generator(taps={self.taps.shape}, shape={self.shape}, channels={self.channels}, "
                f"init_std={self.init_std:.4g}, seed={self.seed}, dtype={self.dtype.name}, "
                f"backend={self.backend!r}, init={self.init!r})")

    @property
    def size(self) -> int:
        """N, the number of grid points."""
        return math.prod(self.shape)

    @property
    def weights_shape(self) -> tuple[int, ...]:
        return (self.channels,) + self.shape

    def init_weights(self) -> np.ndarray:
        """(E6) C_0 with N(0, init_std^2) entries, drawn in float64 from ``seed``.

        iid, or paired (see ``init``).  float32 and float64 generators with the same seed start
        from the same C_0 (rounded).
        """
        rng = np.random.default_rng(self.seed)
        if self.init == "paired":
            half = rng.standard_normal((self.channels // 2,) + self.shape)
            draw = np.concatenate([half, half])
        else:
            draw = rng.standard_normal(self.weights_shape)
        return (self.init_std * draw).astype(self.dtype)

    def check_weights(self, C) -> np.ndarray:
        C = np.asarray(C)
        if C.shape != self.weights_shape:
            raise ValueError(f"weights have shape {C.shape}, expected {self.weights_shape} "
                             f"(channels, *shape)")
        if not np.all(np.isfinite(C)):
            raise ValueError("weights contain NaN or infinity")
        return np.ascontiguousarray(C, dtype=self.dtype)

    def check_target(self, y) -> np.ndarray:
        return _check_signal(y, "target y", self.shape).astype(self.dtype)

    def forward(self, C) -> np.ndarray:
        """(E3) G(C), an array of ``shape``."""
        C = self.check_weights(C)
        if self.backend == "numba":
            from . import _numba
            return _numba.forward(self._taps, C)
        return forward(C, self._taps, self.v)

    def loss_and_grad(self, C, y):
        """(E4, E5) ``(loss, grad)`` with loss = 1/2 ||G(C) - y||^2 and grad of shape (k, *S)."""
        C, y = self.check_weights(C), self.check_target(y)
        if self.backend == "numba":
            from . import _numba
            from .fitting import Objective
            loss, grad, _ = _numba.loss_and_grad(self._taps, C, Objective(y))
            return loss, grad
        loss, grad, _ = loss_and_grad(C, y, self._taps, self.v)
        return loss, grad

    def stepper(self, C, y, step_size: float):
        """A gradient-descent iterator on its own copy of C (E6); see :class:`ReferenceStepper`."""
        C, y = self.check_weights(C).copy(), self.check_target(y)
        if self.backend == "numba":
            from . import _numba
            from .fitting import Objective
            return _numba.Stepper(self._taps, C, Objective(y), step_size)
        return ReferenceStepper(self, C, y, step_size)


class ReferenceStepper:
    """Plain gradient descent C <- C - eta dL/dC (E6) on its own copy of C.

    ``evaluate()`` returns ``(loss, output)`` at the current ``weights``; ``step()`` takes one
    gradient step from there and returns ``(loss, output)`` at the new weights.  Call
    ``evaluate()`` once before the first ``step()``.
    """

    def __init__(self, gen: Generator, C: np.ndarray, y: np.ndarray, step_size: float):
        self.gen, self.weights, self.y = gen, C, y
        self.step_size = gen.dtype.type(step_size)
        self._grad = None

    def evaluate(self):
        loss, self._grad, output = loss_and_grad(self.weights, self.y, self.gen._taps, self.gen.v)
        return loss, output

    def step(self):
        self.weights -= self.step_size * self._grad
        return self.evaluate()


def _resolve_backend(backend):
    if backend is None:
        return "numba" if _numba_available() else "numpy"
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "numba" and not _numba_available():
        raise ValueError("backend='numba' needs numba (pip install numba); use backend='numpy'")
    return backend


def _numba_available() -> bool:
    try:
        from . import _numba  # noqa: F401
    except ImportError:
        return False
    return True
