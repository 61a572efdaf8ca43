"""The two-layer convolutional generator G(C) = ReLU(U C) v (E1-E6), NumPy reference.

The functions :func:`convolve`, :func:`correlate`, :func:`forward` and :func:`loss_and_grad`
are the readable truth of the model: every faster backend is tested against them.
"""
from __future__ import annotations

import math
import weakref

import numpy as np

from . import filters as _filters
from . import validation as _check

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
    return loss, _masked_backward(h, r, taps, v), output


def _masked_backward(h: np.ndarray, r: np.ndarray, taps: np.ndarray, v: np.ndarray):
    """(E5) dL/dc_j = v_j U^T(1[U c_j > 0] * r) from the pre-activations h = U C and r = dL/dG."""
    v_col = v.reshape((-1,) + (1,) * r.ndim)
    return v_col * correlate((h > 0) * r, taps)


def default_init_std(taps: np.ndarray) -> float:
    """The init_std for which E||G(C_0)||^2 = N (unit RMS output at initialization; E6).

    E||G(C_0)||^2 = omega^2 a(0) N (1/2 - 1/(2 pi)) with a(0) = ||u||^2.
    """
    a0 = float(np.sum(np.square(taps)))
    return 1.0 / math.sqrt(a0 * (0.5 - 0.5 / math.pi))


def init_std_for(u, y, init_ratio: float = 1.0) -> float:
    """The init_std for which E||G(C_0)|| = ``init_ratio * ||y||`` with the iid init (E6).

    ``init_ratio`` near 1 is the lazy regime, where gradient descent follows the linearized
    prediction (E10) closely; near 0 it is the small-init setting of the theorem (E11).  With the
    paired init G(C_0) = 0 and the same init_std sets only how lazy the dynamics are.
    """
    y = _check.signal(y, "y")
    init_ratio = _check.positive(init_ratio, "init_ratio")
    taps = _filters.as_taps(u, y.ndim)
    rms = math.sqrt(float(np.mean(np.square(y))))
    if rms == 0:
        raise ValueError("y is all zero; its norm cannot set the init scale")
    return init_ratio * rms * default_init_std(taps)


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
        Standard deviation omega of each entry of C_0 (E6).  Default: :func:`default_init_std`,
        the scale at which the iid init gives ``E||G(C_0)||^2 = N`` (an output of unit RMS).
        Use :func:`init_std_for` to match a signal's scale.
    seed : int
        Seed of :meth:`init_weights`.
    init : "paired" or "iid"
        "paired" (default): the first k/2 channels are drawn iid N(0, init_std^2) and copied
        into the last k/2, so the balanced signs of v make G(C_0) = 0 exactly, as E11 assumes,
        while every channel is still N(0, init_std^2) and the expected kernel is still Sigma
        (E8, now averaged over k/2 independent channels).  The Jacobian does not depend on the
        scale of C, so init_std only sets how lazy the dynamics are.
        "iid" (E6): every entry of C_0 iid N(0, init_std^2); G(C_0) is then a Gaussian process
        (E13) of RMS ~ init_std / default_init_std, which gradient descent must fit away.
        Why paired is the default: the iid output at the default scale has unit RMS whatever
        the data, and on data not of unit RMS its high frequencies, fitted last, stay in the
        output.  Measured on the MRI slice (128x128 in [0, 1], noise 0.1, 7x7 Gaussian std 1.2,
        k = 128, 300 steps of 1/lambda_max, discrepancy rule, seeds 0-2): iid -0.4 to -0.75 dB
        against the noisy input, paired +5.8 to +5.9 dB (sigma known) and +5.4 to +5.5 dB
        (sigma estimated).  The iid init at a scale matched to y, ``init_std_for(u, y, 0.03)``,
        gains 5.9-6.1 dB there.
    dtype : np.float32 or np.float64
    backend : "numpy" or "numba", optional
        Default "numba" when numba imports, else "numpy".
    """

    def __init__(self, u, shape, channels, init_std=None, seed=0, dtype=np.float32,
                 backend=None, init="paired"):
        self.shape = _check.shape(shape)
        if _check.real_number(channels) % 2 != 0:
            raise ValueError(f"channels must be a positive even integer (the output weights "
                             f"come in +/- pairs), got {channels!r}")
        self.channels = _check.positive_int(channels, "channels")
        self.taps = _check.filter_on_grid(_filters.as_taps(u, len(self.shape)), self.shape)
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self.dtype = np.dtype(dtype)
        self.init_std = _check.positive(default_init_std(self.taps) if init_std is None
                                        else init_std, "init_std")
        self.seed = seed
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.init = init
        self.v = output_weights(self.channels, self.dtype)
        self.backend = _resolve_backend(backend)
        self._taps = self.taps.astype(self.dtype)
        self._operator_limits = weakref.WeakKeyDictionary()

    def __repr__(self):
        return (f"Generator(taps={self.taps.shape}, shape={self.shape}, channels={self.channels}, "
                f"init_std={self.init_std:.4g}, seed={self.seed}, dtype={self.dtype.name}, "
                f"backend={self.backend!r}, init={self.init!r})")

    @property
    def size(self) -> int:
        """N, the number of grid points."""
        return math.prod(self.shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape of G(C): the grid."""
        return self.shape

    @property
    def weights_shape(self) -> tuple[int, ...]:
        return (self.channels,) + self.shape

    def init_weights(self) -> np.ndarray:
        """(E6) C_0 with N(0, init_std^2) entries, drawn in float64 from ``seed``.

        Paired or iid (see ``init``).  float32 and float64 generators with the same seed start
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
        """C as a contiguous array of ``dtype``; ValueError for a wrong shape or non-finite values."""
        return _check.weights(C, self.weights_shape, self.dtype)

    def check_target(self, y) -> np.ndarray:
        """y as an array of ``dtype``; ValueError for a wrong shape or non-finite values."""
        return _check.signal(y, "target y", self.shape, dtype=self.dtype)

    def stable_step_limit(self, operator=None) -> float:
        """2 / lambda_max of the dual kernel (E10), or of A Sigma A^T with an operator (E22).

        Gradient descent on the linearized dynamics is stable for step sizes below it.  The
        power iteration behind lambda_max(A Sigma A^T) runs once per operator object (operators
        do not change after construction), so fits through the same A, e.g. the channels of a
        colour image, share it.
        """
        from . import spectral
        if operator is None:
            return spectral.stable_step_limit(self.taps, self.shape)
        if operator not in self._operator_limits:
            self._operator_limits[operator] = 2.0 / spectral.normal_lambda_max(
                self.taps, self.shape, operator)
        return self._operator_limits[operator]

    def kernel_eigenvalues(self) -> np.ndarray:
        """The eigenvalues of the dual kernel Sigma (E9), np.fft order: the rates of E10."""
        from . import spectral
        return spectral.eigenvalues(self.taps, self.shape)

    def forward(self, C) -> np.ndarray:
        """(E3) G(C), an array of ``shape``."""
        C = self.check_weights(C)
        if self.backend == "numba":
            from . import _numba
            return _numba.forward(self._taps, C)
        return forward(C, self._taps, self.v)

    def loss_and_grad(self, C, y):
        """(E4, E5) ``(loss, grad)`` with loss = 1/2 ||G(C) - y||^2 and grad of shape (k, *S)."""
        from .fitting import Objective
        loss, grad, _ = self.objective_grad(C, Objective(self.check_target(y)))
        return loss, grad

    def objective_grad(self, C, objective):
        """``(loss, grad, output)`` of ``objective(G(C))`` (E4, E21) and its gradient (E5).

        ``objective(output)`` returns the loss and dL/dG (:class:`minidip.fitting.Objective`);
        E5 holds with r = dL/dG.
        """
        C = self.check_weights(C)
        if self.backend == "numba":
            from . import _numba
            return _numba.loss_and_grad(self._taps, C, objective)
        h = convolve(C, self._taps)
        output = np.tensordot(self.v, np.maximum(h, 0), axes=1)
        loss, r = objective(output)
        return loss, _masked_backward(h, np.asarray(r, self.dtype), self._taps, self.v), output

    def stepper(self, C, objective, step_size: float):
        """A gradient-descent iterator on its own copy of C (E6); see :class:`ReferenceStepper`.

        ``objective`` is a :class:`minidip.fitting.Objective` or a target y (for
        ``Objective(y)``).  The Numba backend fuses the backward pass, the update and the next
        forward pass.
        """
        from .fitting import Objective
        if not isinstance(objective, Objective):
            objective = Objective(self.check_target(objective))
        C = self.check_weights(C).copy()
        if self.backend == "numba":
            from . import _numba
            return _numba.Stepper(self._taps, C, objective, step_size)
        return ReferenceStepper(self, C, objective, step_size)


class ReferenceStepper:
    """Plain gradient descent C <- C - eta dL/dC (E6) on its own copy of C.

    ``evaluate()`` returns ``(loss, output)`` at the current ``weights``; ``step()`` takes one
    gradient step from there and returns ``(loss, output)`` at the new weights.  Call
    ``evaluate()`` once before the first ``step()``.
    """

    def __init__(self, gen: Generator, C: np.ndarray, objective, step_size: float):
        self.gen, self.weights, self.objective = gen, C, objective
        self.step_size = gen.dtype.type(step_size)
        self._grad = None

    def evaluate(self):
        loss, self._grad, output = self.gen.objective_grad(self.weights, self.objective)
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
