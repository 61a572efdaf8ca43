"""Closed-form kernels of the two-layer generator: the dual kernel (E8, E9) and the covariance at
initialization (E13), both built on the arc-cosine maps of one ReLU layer."""
from __future__ import annotations

import math

import numpy as np

from .. import filters as _filters
from .. import validation as _check

__all__ = ["arccos_maps", "angle_from_gap", "autocorrelation", "kernel_row", "eigenvalues",
           "dense_kernel", "init_covariance_row", "init_power_spectrum", "MAX_DENSE_SIZE"]

#: Largest N for which the dense N x N matrices are built (N = 4096 is 128 MB in float64).
MAX_DENSE_SIZE = 4096


# --------------------------------------------------------------------------------------------
# The arc-cosine maps of a ReLU layer (Cho and Saul 2009), shared by E8, E13 and E17-E18.

def arccos_maps(theta):
    """The two arc-cosine maps of a ReLU at the angle theta between two Gaussian pre-activations.

    For (g, g') centred Gaussian with unit variances and correlation cos(theta):

    - ``k0 = E[1[g > 0] 1[g' > 0]] = (pi - theta) / (2 pi)`` (the derivative's kernel, E8, E18);
    - ``k1 = E[ReLU(g) ReLU(g')] = (sin theta + (pi - theta) cos theta) / (2 pi)`` (E13, E17).

    With variances q and q', k1 scales by sqrt(q q') and k0 does not.

    Parameters
    ----------
    theta : float or array in [0, pi]

    Returns
    -------
    (k0, k1) : arrays of theta's shape, float64.
    """
    theta = np.asarray(theta, dtype=np.float64)
    k0 = (np.pi - theta) / (2 * np.pi)
    k1 = (np.sin(theta) + (np.pi - theta) * np.cos(theta)) / (2 * np.pi)
    return k0, k1


def angle_from_gap(gap):
    """theta = arccos(1 - gap), computed as 2 arcsin(sqrt(gap/2)) to keep precision near gap = 0.

    ``gap = 1 - cos(theta)`` is clipped to [0, 2].
    """
    return 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * np.asarray(gap, np.float64), 0.0, 1.0)))


# --------------------------------------------------------------------------------------------
# The filter's autocorrelation on the grid.

def _taps(u, shape) -> np.ndarray:
    return _check.filter_on_grid(_filters.as_taps(u, len(shape)), shape)


def _lag_sums(taps: np.ndarray, shape: tuple[int, ...]):
    """Exact direct sums at every lag where the filter overlaps itself.

    Returns ``(index, a, gap)``: flat indices of those lags on the grid of ``shape``, the circular
    autocorrelation ``a(d) = sum_m u[m] u[m + d]`` there, and ``gap(d) = 1 - a(d)/a(0)`` computed
    as ``1/2 sum_m (u[m + d] - u[m])^2 / a(0)``, which has no cancellation where a(d) ~ a(0).
    At every other lag a(d) = 0 and gap(d) = 1.

    Along an axis of length n with L taps the lags are -(L-1) .. L-1.  When n >= 2L - 1 they are
    distinct modulo n and never wrap onto the filter, so the sums on a periodic grid of 2L - 1
    points are the sums on n; otherwise the sums are taken on the n-point grid itself.
    """
    small = tuple(min(n, 2 * t - 1) for t, n in zip(taps.shape, shape))
    g = _filters.on_grid(taps, small)
    axes = tuple(range(g.ndim))
    a0 = float(np.sum(g * g))
    lags = list(np.ndindex(*small))
    a = np.empty(len(lags))
    gap = np.empty(len(lags))
    for i, lag in enumerate(lags):
        shifted = np.roll(g, tuple(-d for d in lag), axis=axes)          # shifted[m] = u[m + d]
        a[i] = np.sum(g * shifted)
        gap[i] = 0.5 * np.sum((shifted - g) ** 2) / a0
    coords = []
    for axis, (t, m, n) in enumerate(zip(taps.shape, small, shape)):
        j = np.array([lag[axis] for lag in lags])
        coords.append(j if m == n else np.where(j <= t - 1, j, j - m) % n)
    return np.ravel_multi_index(tuple(coords), shape), a, gap


def _on_lags(index, values, shape) -> np.ndarray:
    row = np.zeros(shape)
    row.flat[index] = values
    return row


def _dual_row_values(a, gap):
    """s(d) = a(d) k0(theta(d)) at the lags of :func:`_lag_sums` (E8)."""
    k0, _ = arccos_maps(angle_from_gap(gap))
    return a * k0


def autocorrelation(u, shape) -> np.ndarray:
    """Circular autocorrelation a(d) = sum_m u[m] u[m + d] of the filter on the grid (E8).

    Parameters
    ----------
    u : array_like
        Filter taps, 1-D or 2-D (see :mod:`minidip.filters`).
    shape : int or tuple of int
        Grid shape ``(n,)`` or ``(h, w)``.

    Returns
    -------
    a : ndarray of ``shape``, float64
        Periodic array indexed by the lag; ``(U U^T)[i, l] = a(i - l)``.  Computed by direct sums
        (no FFT rounding) over the few lags where the filter overlaps itself; exactly zero
        elsewhere.
    """
    shape = _check.shape(shape)
    index, a, _ = _lag_sums(_taps(u, shape), shape)
    return _on_lags(index, a, shape)


def kernel_row(u, shape) -> np.ndarray:
    """The row s of the dual kernel Sigma = E[J J^T] (E8).

    ``s(d) = a(d) k0(theta(d)) = 1/2 a(d) (1 - theta(d) / pi)`` with
    ``theta(d) = arccos(a(d) / a(0))`` (:func:`arccos_maps`), so that ``Sigma[i, l] = s(i - l)``.
    theta is computed as ``2 arcsin(sqrt(gap/2))`` from
    ``gap = 1 - a(d)/a(0) = 1/2 sum_m (u[m + d] - u[m])^2 / a(0)``, exact where a(d) ~ a(0).

    Parameters
    ----------
    u : array_like
        Filter taps, 1-D or 2-D.
    shape : int or tuple of int
        Grid shape ``(n,)`` or ``(h, w)``.

    Returns
    -------
    s : ndarray of ``shape``, float64, periodic in the lag, symmetric (s(d) = s(-d)).
    """
    shape = _check.shape(shape)
    index, a, gap = _lag_sums(_taps(u, shape), shape)
    return _on_lags(index, _dual_row_values(a, gap), shape)


def eigenvalues(u, shape) -> np.ndarray:
    """Eigenvalues lambda_f = DFT(s)_f of the circulant dual kernel Sigma (E9).

    The eigenvectors are the Fourier modes.  Cost O(N log N); no N x N matrix is formed.

    Returns
    -------
    lam : ndarray of ``shape``, float64, in ``np.fft`` order.  Real because s is symmetric;
        non-negative up to rounding because Sigma is a covariance.
    """
    return np.fft.fftn(kernel_row(u, shape)).real


def check_dense_size(shape) -> None:
    size = math.prod(shape)
    if size > MAX_DENSE_SIZE:
        raise ValueError(f"a dense kernel for shape {shape} has N = {size} > {MAX_DENSE_SIZE} "
                         "rows; use the FFT path (kernel_row, eigenvalues) or the operator "
                         "apply_empirical_kernel instead")


def circulant(row: np.ndarray) -> np.ndarray:
    """The dense N x N matrix M[i, l] = row[(i - l) mod shape] (row-major flattening)."""
    shape = row.shape
    check_dense_size(shape)
    coords = np.indices(shape).reshape(len(shape), -1)
    diff = (coords[:, :, None] - coords[:, None, :]) % np.array(shape)[:, None, None]
    return row[tuple(diff)]


def dense_kernel(u, shape) -> np.ndarray:
    """The dense dual kernel Sigma (E8), N x N, for small grids only (N <= MAX_DENSE_SIZE).

    Grid points are flattened in row-major (C) order.  Meant for checks with ``np.linalg.eigh``.

    Raises
    ------
    ValueError if N > MAX_DENSE_SIZE.
    """
    shape = _check.shape(shape)
    check_dense_size(shape)
    return circulant(kernel_row(u, shape))


# --------------------------------------------------------------------------------------------
# The Gaussian process at initialization (E13)

def init_covariance_row(u, shape, init_std) -> np.ndarray:
    """Row of the covariance of G(C_0) over the iid initialization (E13).

    ``Cov[G(C_0)]_{il} = c(i - l)`` with ``c(d) = omega^2 a(0) (k1(theta(d)) - 1/(2 pi))``
    ``= omega^2 a(0) / (2 pi) (sin theta + (pi - theta) cos theta - 1)``,
    ``theta = arccos(a(d)/a(0))`` (:func:`arccos_maps`), omega = ``init_std``.  The -1/(2 pi) is
    E[ReLU(g)]^2 / a(0) omega^2, removed by the balanced signs of v.  E[G(C_0)] = 0 exactly, and
    this covariance holds at every width k, since the channels are independent and
    sum_j v_j^2 = 1.

    Returns
    -------
    c : ndarray of ``shape``, float64, periodic in the lag (zero where a(d) = 0).
    """
    shape = _check.shape(shape)
    omega = _check.positive(init_std, "init_std")
    index, a, gap = _lag_sums(_taps(u, shape), shape)
    _, k1 = arccos_maps(angle_from_gap(gap))
    return _on_lags(index, omega**2 * float(a[0]) * (k1 - 0.5 / np.pi), shape)


def init_power_spectrum(u, shape, init_std) -> np.ndarray:
    """Power spectrum of the Gaussian process G(C_0): the DFT of its covariance row (E13).

    Equals ``E|fftn(G(C_0), norm="ortho")_f|^2``, in ``np.fft`` order, real.
    """
    return np.fft.fftn(init_covariance_row(u, shape, init_std)).real
