"""The finite-width kernel K_0 = J_0 J_0^T of the two-layer generator (E7), as an operator."""
from __future__ import annotations

import math

import numpy as np

from .. import generator as _generator
from .. import validation as _check
from ._dynamics import _step
from ._kernels import (_dual_row_values, _lag_sums, autocorrelation, check_dense_size, circulant,
                       eigenvalues)

__all__ = ["apply_empirical_kernel", "dense_empirical_kernel", "kernel_concentration",
           "predict_residuals_finite_width"]


def _active(gen, C) -> np.ndarray:
    """The ReLU masks 1[U c_j > 0] of E7, from the weights in float64."""
    C = _check.weights(C, gen.weights_shape, np.float64)
    return _generator.convolve(C, gen.taps) > 0


def apply_empirical_kernel(gen, C, r) -> np.ndarray:
    """K_0 r with the finite-width kernel K_0 = J J^T = sum_j v_j^2 D_j U U^T D_j (E7).

    Applied as an operator (two convolutions of the k channels); no N x N matrix.  The masks
    ``D_j = diag(1[U c_j > 0])`` are computed from ``C`` in float64.

    Parameters
    ----------
    gen : Generator
    C : array (k, *shape)
        Weights at which J is taken (C_0 for the kernel at initialization).
    r : array of ``gen.shape``

    Returns
    -------
    array of ``gen.shape``, float64.
    """
    r = _check.signal(r, "r", gen.shape)
    return _apply_masks_kernel(gen, _active(gen, C), r)


def _apply_masks_kernel(gen, masks: np.ndarray, r: np.ndarray) -> np.ndarray:
    v2 = np.asarray(gen.v, dtype=np.float64) ** 2
    back = _generator.correlate(masks * r, gen.taps)                    # U^T D_j r
    return np.tensordot(v2, masks * _generator.convolve(back, gen.taps), axes=1)


def dense_empirical_kernel(gen, C) -> np.ndarray:
    """The dense finite-width kernel K_0 = J J^T (E7), N x N, for small grids only.

    Uses ``K_0[i, l] = a(i - l) sum_j v_j^2 1[(U c_j)_i > 0] 1[(U c_j)_l > 0]``.
    Raises ValueError if N > MAX_DENSE_SIZE.
    """
    check_dense_size(gen.shape)
    masks = _active(gen, C).reshape(gen.channels, -1).astype(np.float64)
    v2 = np.asarray(gen.v, dtype=np.float64) ** 2
    both = masks.T @ (v2[:, None] * masks)
    return circulant(autocorrelation(gen.taps, gen.shape)) * both


def kernel_concentration(gen, C) -> float:
    """||K_0 - Sigma||_F / ||Sigma||_F, the distance of the finite-width kernel from E8 (E7).

    Exact for any N without forming N x N matrices: both kernels vanish off the few lags d where
    a(d) != 0, and along lag d, ``K_0[i, i - d] = a(d) q_d(i)`` with
    ``q_d(i) = sum_j v_j^2 1[(U c_j)_i > 0] 1[(U c_j)_{i-d} > 0]``.  Cost O(k N |lags|).
    """
    masks = _active(gen, C)
    shape = gen.shape
    axes = tuple(range(1, masks.ndim))
    weighted = np.asarray(gen.v, dtype=np.float64).reshape((-1,) + (1,) * len(shape)) ** 2 \
        * masks
    index, a, gap = _lag_sums(gen.taps, shape)
    s = _dual_row_values(a, gap)
    diff2 = 0.0
    for flat, a_d, s_d in zip(index, a, s):
        lag = np.unravel_index(flat, shape)
        q = np.sum(weighted * np.roll(masks, lag, axis=axes), axis=0)   # roll: [i] <- [i - d]
        diff2 += float(np.sum((a_d * q - s_d) ** 2))
    return math.sqrt(diff2 / (gen.size * float(np.sum(s * s))))


def predict_residuals_finite_width(gen, C, r0, iterations, step_size=None) -> np.ndarray:
    """Residuals of the finite-width linearization r_{tau+1} = (I - eta K_0) r_tau (E10, E7).

    K_0 = J J^T at the weights ``C`` is applied as an operator, one iteration at a time up to
    ``max(iterations)``.

    Returns
    -------
    array (len(iterations), *gen.shape), float64.
    """
    taus = _check.iterations(iterations)
    r = _check.signal(r0, "r0", gen.shape)
    eta = _step(eigenvalues(gen.taps, gen.shape), step_size)
    masks = _active(gen, C)
    out = np.empty((taus.size,) + gen.shape)
    order = np.argsort(taus, kind="stable")
    t = 0
    for i in order:
        while t < taus[i]:
            r = r - eta * _apply_masks_kernel(gen, masks, r)
            t += 1
        out[i] = r
    return out
