"""Closed-form spectral predictions for gradient descent on the generator (E7-E14).

Conventions.  Signals live on a periodic grid of ``shape`` ``(n,)`` or ``(h, w)``; N is the number
of grid points.  Arrays indexed by frequency are in ``np.fft`` order.  A periodic "row" ``s`` is
indexed by the lag ``d`` modulo ``shape`` (``s[0]`` is lag zero), so the circulant matrix it
defines is ``M[i, l] = s[(i - l) mod shape]``.  Spectra of signals use the unitary DFT
(``np.fft.fftn(x, norm="ortho")``): Parseval holds, and white noise of variance sigma^2 per grid
point has ``E|zhat_f|^2 = sigma^2`` at every frequency (N sigma^2 in total).

Every ``step_size=None`` means eta = 1 / lambda_max, the default of :func:`minidip.fit`; an
explicit step size must lie in the stable range (0, 2 / lambda_max).
"""
from __future__ import annotations

import math

import numpy as np

from . import filters as _filters
from . import generator as _generator

__all__ = [
    "autocorrelation", "kernel_row", "eigenvalues", "dense_kernel", "default_step_size",
    "residual_factors", "predict_residual_spectra", "predict_residuals", "predict_outputs",
    "apply_empirical_kernel", "dense_empirical_kernel", "kernel_concentration",
    "predict_residuals_finite_width",
    "predicted_risk", "optimal_stop",
    "top_modes", "denoising_bound", "measured_eps",
    "init_covariance_row", "init_power_spectrum",
    "band_labels", "band_measure", "predicted_band_measure",
    "MAX_DENSE_SIZE",
]

#: Largest N for which the dense N x N matrices are built (N = 4096 is 128 MB in float64).
MAX_DENSE_SIZE = 4096


# --------------------------------------------------------------------------------------------
# Input checks

def _check_shape(shape) -> tuple[int, ...]:
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if len(shape) not in (1, 2) or any(
            isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1
            for n in shape):
        raise ValueError(f"shape must be (n,) or (h, w) of positive integers, got {shape!r}")
    return tuple(int(n) for n in shape)


def _check_filter(u, shape) -> np.ndarray:
    taps = _filters.as_taps(u, len(shape))
    if any(t > n for t, n in zip(taps.shape, shape)):
        raise ValueError(f"filter of size {taps.shape} is larger than the signal {shape}; "
                         "use a smaller filter or a larger signal")
    return taps


def _check_signal(x, name: str, shape) -> np.ndarray:
    return _generator._check_signal(x, name, shape).astype(np.float64)


def _check_iterations(iterations, name: str = "iterations") -> np.ndarray:
    t = np.atleast_1d(np.asarray(iterations))
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of iteration numbers")
    if t.dtype == bool or not np.issubdtype(t.dtype, np.number) or np.iscomplexobj(t):
        raise ValueError(f"{name} must hold non-negative integers, got {iterations!r}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError(f"{name} must hold non-negative integers, got {iterations!r}")
    return t.astype(np.int64)


def _real_number(value) -> float:
    """``value`` as a float, or NaN if it is not a real number (bools are not numbers here)."""
    if isinstance(value, (bool, np.bool_)) or not np.isscalar(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _check_positive(value, name: str) -> float:
    number = _real_number(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def _step(lam: np.ndarray, step_size) -> float:
    """eta: 1 / lambda_max by default; otherwise checked against the stable limit (E10)."""
    lam_max = float(lam.max())
    if step_size is None:
        return 1.0 / lam_max
    limit = 2.0 / lam_max
    eta = _real_number(step_size)
    if not 0 < eta < limit:                                     # False for NaN
        raise ValueError(f"step_size must lie in (0, 2/lambda_max) = (0, {limit:.6g}) for stable "
                         f"gradient descent, got {step_size!r}")
    return eta


# --------------------------------------------------------------------------------------------
# The dual kernel (E8, E9)

def _lag_sums(taps: np.ndarray, shape: tuple[int, ...]):
    """Exact direct sums at every lag where the filter overlaps itself.

    Returns ``(index, a, e)``: flat indices of those lags on the grid of ``shape``, the circular
    autocorrelation ``a(d) = sum_m u[m] u[m + d]`` there, and ``e(d) = 1 - a(d)/a(0)`` computed
    as ``1/2 sum_m (u[m + d] - u[m])^2 / a(0)``, which has no cancellation where a(d) ~ a(0).
    At every other lag a(d) = 0 and e(d) = 1.

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
    e = np.empty(len(lags))
    for i, lag in enumerate(lags):
        shifted = np.roll(g, tuple(-d for d in lag), axis=axes)          # shifted[m] = u[m + d]
        a[i] = np.sum(g * shifted)
        e[i] = 0.5 * np.sum((shifted - g) ** 2) / a0
    coords = []
    for axis, (t, m, n) in enumerate(zip(taps.shape, small, shape)):
        j = np.array([lag[axis] for lag in lags])
        coords.append(j if m == n else np.where(j <= t - 1, j, j - m) % n)
    return np.ravel_multi_index(tuple(coords), shape), a, e


def _angle(e: np.ndarray) -> np.ndarray:
    """theta = arccos(1 - e), computed as 2 arcsin(sqrt(e/2)) to keep precision near e = 0."""
    return 2.0 * np.arcsin(np.sqrt(np.clip(0.5 * e, 0.0, 1.0)))


def _on_lags(index, values, shape) -> np.ndarray:
    row = np.zeros(shape)
    row.flat[index] = values
    return row


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
        Periodic array indexed by the lag; ``(U U^T)[i, l] = a(i - l)``.  Computed by direct sums (no FFT
        rounding) over the few lags where the filter overlaps itself; exactly zero elsewhere.
    """
    shape = _check_shape(shape)
    index, a, _ = _lag_sums(_check_filter(u, shape), shape)
    return _on_lags(index, a, shape)


def kernel_row(u, shape) -> np.ndarray:
    """The row s of the dual kernel Sigma = E[J J^T] (E8).

    ``s(d) = 1/2 a(d) (1 - theta(d) / pi)`` with ``theta(d) = arccos(a(d) / a(0))``, so that
    ``Sigma[i, l] = s(i - l)``.  theta is computed as ``2 arcsin(sqrt(e/2))`` from
    ``e = 1 - a(d)/a(0) = 1/2 sum_m (u[m + d] - u[m])^2 / a(0)``, exact where a(d) ~ a(0).

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
    shape = _check_shape(shape)
    index, a, e = _lag_sums(_check_filter(u, shape), shape)
    return _on_lags(index, 0.5 * a * (1.0 - _angle(e) / np.pi), shape)


def eigenvalues(u, shape) -> np.ndarray:
    """Eigenvalues lambda_f = DFT(s)_f of the circulant dual kernel Sigma (E9).

    The eigenvectors are the Fourier modes.  Cost O(N log N); no N x N matrix is formed.

    Returns
    -------
    lam : ndarray of ``shape``, float64, in ``np.fft`` order.  Real because s is symmetric;
        non-negative up to rounding because Sigma is a covariance.
    """
    return np.fft.fftn(kernel_row(u, shape)).real


def default_step_size(u, shape) -> float:
    """The default step size eta = 1 / lambda_max of gradient descent (E10)."""
    return 1.0 / float(eigenvalues(u, shape).max())


def _check_dense_size(shape) -> None:
    size = math.prod(shape)
    if size > MAX_DENSE_SIZE:
        raise ValueError(f"a dense kernel for shape {shape} has N = {size} > {MAX_DENSE_SIZE} "
                         "rows; use the FFT path (kernel_row, eigenvalues) or the operator "
                         "apply_empirical_kernel instead")


def _circulant(row: np.ndarray) -> np.ndarray:
    """The dense N x N matrix M[i, l] = row[(i - l) mod shape] (row-major flattening)."""
    shape = row.shape
    _check_dense_size(shape)
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
    shape = _check_shape(shape)
    _check_dense_size(shape)
    return _circulant(kernel_row(u, shape))


# --------------------------------------------------------------------------------------------
# Linearized dynamics (E10)

def _factors(lam: np.ndarray, eta: float, taus: np.ndarray) -> np.ndarray:
    """(1 - eta lambda_f)^tau for each tau: array (len(taus), *shape)."""
    base = 1.0 - eta * lam
    return np.power(base[None], taus.reshape((-1,) + (1,) * lam.ndim))


def _factor_chunks(lam: np.ndarray, eta: float, taus: np.ndarray):
    """Yield ``(part, factors)``: the slice of ``taus`` and their (1 - eta lambda_f)^tau.

    Chunks hold at most 2^17 numbers, so that the sums over them run in cache.  A run of
    consecutive iterations is built by one product per iteration rather than a power.
    """
    base = 1.0 - eta * lam
    rows = max(1, 2**17 // lam.size)
    for start in range(0, taus.size, rows):
        part = slice(start, start + rows)
        t = taus[part]
        f = np.empty((t.size,) + lam.shape)
        for i, ti in enumerate(t):
            f[i] = f[i - 1] * base if i and ti == t[i - 1] + 1 else np.power(base, ti)
        yield part, f


def residual_factors(u, shape, iterations, step_size=None) -> np.ndarray:
    """The per-frequency factors (1 - eta lambda_f)^tau of the linearized dynamics (E10).

    Returns
    -------
    array (len(iterations), *shape), float64, in ``np.fft`` order.
    """
    shape = _check_shape(shape)
    lam = eigenvalues(u, shape)
    return _factors(lam, _step(lam, step_size), _check_iterations(iterations))


def predict_residual_spectra(u, shape, r0, iterations, step_size=None) -> np.ndarray:
    """Predicted residual spectra rhat_tau(f) = (1 - eta lambda_f)^tau rhat_0(f) (E10).

    Closed form at each requested iteration (no stepping).

    Parameters
    ----------
    u : array_like
        Filter taps.
    shape : int or tuple of int
    r0 : array of ``shape``
        Starting residual r_0 = G(C_0) - y.
    iterations : sequence of int
        Iteration numbers tau >= 0, any order.
    step_size : float, optional

    Returns
    -------
    array (len(iterations), *shape), complex128: the unitary DFT of r_tau.
    """
    shape = _check_shape(shape)
    r0 = _check_signal(r0, "r0", shape)
    return residual_factors(u, shape, iterations, step_size) * np.fft.fftn(r0, norm="ortho")


def predict_residuals(u, shape, r0, iterations, step_size=None) -> np.ndarray:
    """Predicted residuals r_tau = (I - eta Sigma)^tau r_0 in signal space (E10).

    Closed form per frequency at each requested iteration (no stepping).

    Returns
    -------
    array (len(iterations), *shape), float64.
    """
    spectra = predict_residual_spectra(u, shape, r0, iterations, step_size)
    axes = tuple(range(1, spectra.ndim))
    return np.fft.ifftn(spectra, axes=axes, norm="ortho").real


def predict_outputs(u, shape, y, g0, iterations, step_size=None) -> np.ndarray:
    """Predicted outputs G_tau = y + (I - eta Sigma)^tau (g0 - y) (E10).

    Parameters
    ----------
    y : array of ``shape``
        The target.
    g0 : array of ``shape``
        The output G(C_0) at initialization (zeros for the small-init setting of E11).

    Returns
    -------
    array (len(iterations), *shape), float64.
    """
    shape = _check_shape(shape)
    y = _check_signal(y, "y", shape)
    g0 = _check_signal(g0, "g0", shape)
    return y + predict_residuals(u, shape, g0 - y, iterations, step_size)


# --------------------------------------------------------------------------------------------
# The finite-width kernel K_0 = J_0 J_0^T (E7)

def _active(gen, C) -> np.ndarray:
    """The ReLU masks 1[U c_j > 0] of E7, from the weights in float64."""
    C = np.asarray(C)
    if C.shape != gen.weights_shape:
        raise ValueError(f"weights have shape {C.shape}, expected {gen.weights_shape} "
                         "(channels, *shape)")
    if C.dtype == object or not np.issubdtype(C.dtype, np.number) or np.iscomplexobj(C) \
            or not np.all(np.isfinite(C)):
        raise ValueError("weights must be a finite real array")
    return _generator.convolve(C.astype(np.float64), gen.taps) > 0


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
    r = _check_signal(r, "r", gen.shape)
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
    _check_dense_size(gen.shape)
    masks = _active(gen, C).reshape(gen.channels, -1).astype(np.float64)
    v2 = np.asarray(gen.v, dtype=np.float64) ** 2
    both = masks.T @ (v2[:, None] * masks)
    return _circulant(autocorrelation(gen.taps, gen.shape)) * both


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
    index, a, e = _lag_sums(gen.taps, shape)
    s = 0.5 * a * (1.0 - _angle(e) / np.pi)
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
    taus = _check_iterations(iterations)
    r = _check_signal(r0, "r0", gen.shape)
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


# --------------------------------------------------------------------------------------------
# Denoising: risk (E12) and bound (E11)

def _signal_power(shape, x, y, sigma) -> np.ndarray:
    """|xhat_f|^2 (unitary DFT), from x, or estimated as max(|yhat_f|^2 - sigma^2, 0) (E12)."""
    if (x is None) == (y is None):
        raise ValueError("pass exactly one of x (the clean signal) or y (the noisy signal)")
    if x is not None:
        return np.abs(np.fft.fftn(_check_signal(x, "x", shape), norm="ortho")) ** 2
    power = np.abs(np.fft.fftn(_check_signal(y, "y", shape), norm="ortho")) ** 2
    return np.maximum(power - sigma**2, 0.0)


def predicted_risk(u, shape, taus, step_size=None, *, x=None, y=None, sigma) -> np.ndarray:
    """Predicted risk R(tau) = E||G_tau - x||^2 of the linearized dynamics (E12).

    ``R(tau) = sum_f (1 - eta lambda_f)^(2 tau) |xhat_f|^2
    + sigma^2 sum_f (1 - (1 - eta lambda_f)^tau)^2`` for y = x + z, z ~ N(0, sigma^2 I),
    G(C_0) = 0, unitary DFT.

    Parameters
    ----------
    u, shape : the filter and grid.
    taus : sequence of int
        Iterations tau >= 0.
    step_size : float, optional
    x : array of ``shape``, optional
        The clean signal.
    y : array of ``shape``, optional
        The noisy signal, when x is unknown: |xhat_f|^2 is estimated as max(|yhat_f|^2 - sigma^2, 0).
        Pass exactly one of x and y.
    sigma : float
        Noise standard deviation per grid point (> 0).

    Returns
    -------
    array (len(taus),), float64.
    """
    shape = _check_shape(shape)
    sigma = _check_positive(sigma, "sigma")
    taus = _check_iterations(taus, "taus")
    lam = eigenvalues(u, shape)
    eta = _step(lam, step_size)
    power = _signal_power(shape, x, y, sigma)
    risk = np.empty(taus.size)
    axes = tuple(range(1, len(shape) + 1))
    for part, f in _factor_chunks(lam, eta, taus):
        risk[part] = np.sum(f**2 * power, axis=axes) + sigma**2 * np.sum((1 - f) ** 2, axis=axes)
    return risk


def optimal_stop(u, shape, max_steps, step_size=None, *, x=None, y=None, sigma) -> int:
    """tau* = argmin of the predicted risk R(tau) over tau = 0 .. max_steps (E12).

    Same arguments as :func:`predicted_risk`; ties go to the earliest iteration.
    """
    if isinstance(max_steps, (bool, np.bool_)) or not isinstance(max_steps, (int, np.integer)) \
            or max_steps < 0:
        raise ValueError(f"max_steps must be a non-negative integer, got {max_steps!r}")
    risk = predicted_risk(u, shape, np.arange(int(max_steps) + 1), step_size,
                          x=x, y=y, sigma=sigma)
    return int(np.argmin(risk))


def top_modes(u, shape, p) -> np.ndarray:
    """Boolean mask (``np.fft`` order) of the p Fourier modes with the largest eigenvalues (E9, E11).

    Real signals need whole groups of equal eigenvalues (lambda_f = lambda_-f, and the symmetries
    of the filter), so a p that would split such a group is refused with the nearest valid p.
    """
    shape = _check_shape(shape)
    lam = eigenvalues(u, shape).ravel()
    n = lam.size
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, np.integer)) or not 1 <= p <= n:
        raise ValueError(f"p must be an integer in [1, N] = [1, {n}], got {p!r}")
    order = np.argsort(-lam, kind="stable")
    ranked = lam[order]
    tol = 1e-10 * float(np.abs(ranked).max())
    # Group boundaries: positions where the next eigenvalue is strictly smaller.
    cuts = np.flatnonzero(ranked[:-1] - ranked[1:] > tol) + 1
    valid = np.concatenate([cuts, [n]])
    if p not in valid:
        below = valid[valid < p]
        above = valid[valid > p]
        near = ([int(below[-1])] if below.size else []) + ([int(above[0])] if above.size else [])
        raise ValueError(f"p = {p} splits a group of equal eigenvalues; use p in {near}")
    mask = np.zeros(n, dtype=bool)
    mask[order[:p]] = True
    return mask.reshape(shape)


def denoising_bound(u, shape, x, z, taus, step_size=None, p=None) -> np.ndarray:
    """The bound of E11 on ||G_tau - x|| without its eps ||y|| term, for y = x + z, G(C_0) = 0.

    ``linear(tau) + sqrt( sum_f (1 - (1 - eta lambda_f)^tau)^2 |zhat_f|^2 )`` (unitary DFT), where
    ``linear(tau)`` is the exact ``||(I - eta Sigma)^tau x||`` when ``p`` is None, and the
    theorem's ``max_{f in top p} |1 - eta lambda_f|^tau ||x||`` when x lies in the span of the p
    modes of largest eigenvalue (:func:`top_modes`); for eta <= 1/lambda_max that is
    ``(1 - eta lambda_(p))^tau ||x||``.

    Returns
    -------
    array (len(taus),), float64.

    Raises
    ------
    ValueError if ``p`` is given and x has energy outside the top-p modes (beyond 1e-20 relative).
    """
    shape = _check_shape(shape)
    taus = _check_iterations(taus, "taus")
    xhat = np.fft.fftn(_check_signal(x, "x", shape), norm="ortho")
    zpow = np.abs(np.fft.fftn(_check_signal(z, "z", shape), norm="ortho")) ** 2
    lam = eigenvalues(u, shape)
    eta = _step(lam, step_size)
    xpow = np.abs(xhat) ** 2
    axes = tuple(range(1, len(shape) + 1))
    noise = np.empty(taus.size)
    linear = np.empty(taus.size)
    if p is not None:
        mask = top_modes(u, shape, p)
        if xpow[~mask].sum() > 1e-20 * max(xpow.sum(), np.finfo(float).tiny):
            raise ValueError(f"x is not in the span of the top p = {p} modes; use p=None for "
                             "the exact linear term")
        rate = float(np.abs(1.0 - eta * lam[mask]).max())
    for part, f in _factor_chunks(lam, eta, taus):
        noise[part] = np.sqrt(np.sum((1 - f) ** 2 * zpow, axis=axes))
        if p is None:
            linear[part] = np.sqrt(np.sum(f**2 * xpow, axis=axes))
        else:
            linear[part] = rate ** taus[part].astype(np.float64) * math.sqrt(xpow.sum())
    return linear + noise


def measured_eps(errors, bound_without_eps, y_norm) -> float:
    """The smallest eps >= 0 with errors <= bound_without_eps + eps * y_norm everywhere (E11).

    Parameters
    ----------
    errors : sequence of float
        Recorded ||G_tau - x|| along a trajectory.
    bound_without_eps : sequence of float
        :func:`denoising_bound` at the same iterations.
    y_norm : float
        ||y|| (> 0).
    """
    errors = np.asarray(errors, dtype=np.float64)
    bound = np.asarray(bound_without_eps, dtype=np.float64)
    if errors.ndim != 1 or errors.shape != bound.shape or errors.size == 0:
        raise ValueError(f"errors and bound_without_eps must be 1-D of the same non-zero length, "
                         f"got shapes {errors.shape} and {bound.shape}")
    if not (np.all(np.isfinite(errors)) and np.all(np.isfinite(bound))):
        raise ValueError("errors and bound_without_eps must be finite")
    y_norm = _check_positive(y_norm, "y_norm")
    return max(0.0, float(np.max(errors - bound)) / y_norm)


# --------------------------------------------------------------------------------------------
# The Gaussian process at initialization (E13)

def init_covariance_row(u, shape, init_std) -> np.ndarray:
    """Row of the covariance of G(C_0) over the initialization (E13).

    ``Cov[G(C_0)]_{il} = c(i - l)`` with
    ``c(d) = omega^2 a(0) / (2 pi) (sin theta + (pi - theta) cos theta - 1)``,
    ``theta = arccos(a(d)/a(0))``, omega = ``init_std``.  E[G(C_0)] = 0 exactly (balanced v), and
    this covariance holds at every width k, since the channels are independent and
    sum_j v_j^2 = 1.

    Returns
    -------
    c : ndarray of ``shape``, float64, periodic in the lag (zero where a(d) = 0).
    """
    shape = _check_shape(shape)
    omega = _check_positive(init_std, "init_std")
    index, a, e = _lag_sums(_check_filter(u, shape), shape)
    a0 = float(a[0])
    theta = _angle(e)
    values = omega**2 * a0 / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * (a / a0) - 1.0)
    return _on_lags(index, values, shape)


def init_power_spectrum(u, shape, init_std) -> np.ndarray:
    """Power spectrum of the Gaussian process G(C_0): the DFT of its covariance row (E13).

    Equals ``E|fftn(G(C_0), norm="ortho")_f|^2``, in ``np.fft`` order, real.
    """
    return np.fft.fftn(init_covariance_row(u, shape, init_std)).real


# --------------------------------------------------------------------------------------------
# Frequency bands (E14)

def band_labels(shape, n_bands) -> np.ndarray:
    """Band index (0 = lowest) of every frequency, ``np.fft`` order (E14).

    The normalized radius is ``rho = |f| / max |f|`` with f in cycles per sample (radial in 2-D),
    so rho runs from 0 (DC) to 1 (the highest frequency on the grid); band b holds
    ``b / n_bands <= rho < (b + 1) / n_bands`` (rho = 1 in the last band).

    Raises
    ------
    ValueError if some band would be empty (too many bands for the grid).
    """
    shape = _check_shape(shape)
    if isinstance(n_bands, (bool, np.bool_)) or not isinstance(n_bands, (int, np.integer)) \
            or n_bands < 1:
        raise ValueError(f"n_bands must be a positive integer, got {n_bands!r}")
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    rho = radius / radius.max() if radius.max() > 0 else radius
    labels = np.minimum((rho * n_bands).astype(np.int64), n_bands - 1)
    counts = np.bincount(labels.ravel(), minlength=n_bands)
    if np.any(counts == 0):
        raise ValueError(f"{n_bands} bands leave some band empty on a grid of shape {shape}; "
                         "use fewer bands")
    return labels


def _band_means(values: np.ndarray, labels: np.ndarray, n_bands: int, valid=None) -> np.ndarray:
    """Mean of values (T, *shape) over each band -> (T, n_bands); NaN for a band with no valid f."""
    flat_labels = labels.ravel()
    weights = np.ones(flat_labels.size) if valid is None else valid.ravel().astype(np.float64)
    counts = np.bincount(flat_labels, weights=weights, minlength=n_bands)
    one_hot = np.zeros((flat_labels.size, n_bands))
    one_hot[np.arange(flat_labels.size), flat_labels] = weights
    sums = values.reshape(values.shape[0], -1) @ one_hot
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.where(counts > 0, counts, 1), np.nan)


def band_measure(outputs, y, n_bands) -> np.ndarray:
    """Frequency-band measure H_b(tau) = mean over band b of min(|F(G_tau)_f| / |F(y)_f|, 1) (E14).

    Parameters
    ----------
    outputs : array (T, *y.shape), or one output of y.shape
        Outputs G_tau along a trajectory.
    y : array, 1-D or 2-D
        The target.
    n_bands : int
        Number of bands (:func:`band_labels`).

    Returns
    -------
    array (T, n_bands), or (n_bands,) for one output.  Frequencies where F(y) vanishes (below
    1e-12 of its largest magnitude) have no defined ratio and are left out of the means; a band
    with no such frequency left gives NaN.
    """
    y = np.asarray(y)
    if y.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D or 2-D, got {y.ndim} axes")
    y = _check_signal(y, "y", y.shape)
    outputs = np.asarray(outputs)
    single = outputs.ndim == y.ndim
    if single:
        outputs = outputs[None]
    if outputs.ndim != y.ndim + 1:
        raise ValueError(f"outputs must have shape (T, *{y.shape}) or {y.shape}, "
                         f"got {outputs.shape}")
    outputs = np.stack([_check_signal(o, "outputs[t]", y.shape) for o in outputs])
    labels = band_labels(y.shape, n_bands)
    fy = np.abs(np.fft.fftn(y))
    valid = fy > 1e-12 * fy.max()
    if not valid.any():
        raise ValueError("y is all zero; the band measure is undefined")
    fg = np.abs(np.fft.fftn(outputs, axes=tuple(range(1, outputs.ndim))))
    ratio = np.minimum(fg / np.where(valid, fy, 1.0), 1.0) * valid
    measure = _band_means(ratio, labels, n_bands, valid)
    return measure[0] if single else measure


def predicted_band_measure(u, shape, taus, n_bands, step_size=None) -> np.ndarray:
    """Predicted band measure: mean over band b of |1 - (1 - eta lambda_f)^tau| (E14, E10).

    It is the band measure of the linearized trajectory started at G(C_0) = 0; with
    eta <= 1/lambda_max every ratio is at most 1, so the min(., 1) of E14 does not act.

    Returns
    -------
    array (len(taus), n_bands), float64.
    """
    shape = _check_shape(shape)
    labels = band_labels(shape, n_bands)
    taus = _check_iterations(taus, "taus")
    lam = eigenvalues(u, shape)
    eta = _step(lam, step_size)
    out = np.empty((taus.size, n_bands))
    for part, f in _factor_chunks(lam, eta, taus):
        out[part] = _band_means(np.abs(1.0 - f), labels, n_bands)
    return out
