"""Linearized dynamics of gradient descent (E10), its denoising risk and bound (E11, E12), and the
one step-size policy that every predictor and :func:`minidip.fit` share."""
from __future__ import annotations

import math

import numpy as np

from .. import validation as _check
from ._kernels import eigenvalues

__all__ = ["resolve_step_size", "stable_step_limit", "default_step_size",
           "residual_factors", "predict_residual_spectra", "predict_residuals", "predict_outputs",
           "predicted_risk", "risk_from_eigenvalues", "optimal_stop", "top_modes",
           "denoising_bound", "measured_eps"]


# --------------------------------------------------------------------------------------------
# The step-size policy (E10)

def resolve_step_size(step_size, limit: float) -> float:
    """eta for gradient descent whose stable range is (0, ``limit``).

    ``None`` gives ``limit / 2`` (for the two-layer generator ``limit = 2 / lambda_max``, so the
    default is 1 / lambda_max, E10); an explicit step size must lie in (0, limit).
    """
    if step_size is None:
        return 0.5 * limit
    return _check.step_size(step_size, limit)


def stable_step_limit(u, shape) -> float:
    """2 / lambda_max of the dual kernel (E9, E10): gradient descent is stable below it."""
    return 2.0 / float(eigenvalues(u, shape).max())


def default_step_size(u, shape) -> float:
    """The default step size eta = 1 / lambda_max of gradient descent (E10)."""
    return resolve_step_size(None, stable_step_limit(u, shape))


def _step(lam: np.ndarray, step_size) -> float:
    return resolve_step_size(step_size, 2.0 / float(lam.max()))


def _noise_std(noise_std, sigma):
    """The noise level from ``noise_std`` or its former name ``sigma`` (exactly one)."""
    if (noise_std is None) == (sigma is None):
        raise ValueError("pass the noise level as noise_std=...")
    return _check.positive(noise_std if sigma is None else sigma, "noise_std")


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
    shape = _check.shape(shape)
    lam = eigenvalues(u, shape)
    return _factors(lam, _step(lam, step_size), _check.iterations(iterations))


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
    shape = _check.shape(shape)
    r0 = _check.signal(r0, "r0", shape)
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
    shape = _check.shape(shape)
    y = _check.signal(y, "y", shape)
    g0 = _check.signal(g0, "g0", shape)
    return y + predict_residuals(u, shape, g0 - y, iterations, step_size)



# --------------------------------------------------------------------------------------------
# Denoising: risk (E12) and bound (E11)

def _signal_power(shape, x, y, noise_std) -> np.ndarray:
    """|xhat_f|^2 (unitary DFT), from x, or estimated as max(|yhat_f|^2 - sigma^2, 0) (E12)."""
    if (x is None) == (y is None):
        raise ValueError("pass exactly one of x (the clean signal) or y (the noisy signal)")
    if x is not None:
        return np.abs(np.fft.fftn(_check.signal(x, "x", shape), norm="ortho")) ** 2
    power = np.abs(np.fft.fftn(_check.signal(y, "y", shape), norm="ortho")) ** 2
    return np.maximum(power - noise_std**2, 0.0)


def predicted_risk(u, shape, iterations, step_size=None, *, x=None, y=None, noise_std=None,
                   sigma=None) -> np.ndarray:
    """Predicted risk R(tau) = E||G_tau - x||^2 of the linearized dynamics (E12).

    ``R(tau) = sum_f (1 - eta lambda_f)^(2 tau) |xhat_f|^2
    + sigma^2 sum_f (1 - (1 - eta lambda_f)^tau)^2`` for y = x + z, z ~ N(0, sigma^2 I),
    G(C_0) = 0, unitary DFT.

    Parameters
    ----------
    u, shape : the filter and grid.
    iterations : sequence of int
        Iterations tau >= 0.
    step_size : float, optional
    x : array of ``shape``, optional
        The clean signal.
    y : array of ``shape``, optional
        The noisy signal, when x is unknown: |xhat_f|^2 is estimated as max(|yhat_f|^2 - sigma^2, 0).
        Pass exactly one of x and y.
    noise_std : float
        Noise standard deviation sigma per grid point (> 0).  ``sigma`` is accepted as its
        former name.

    Returns
    -------
    array (len(iterations),), float64.
    """
    shape = _check.shape(shape)
    noise_std = _noise_std(noise_std, sigma)
    iterations = _check.iterations(iterations)
    lam = eigenvalues(u, shape)
    eta = _step(lam, step_size)
    return risk_from_eigenvalues(lam, iterations, eta, _signal_power(shape, x, y, noise_std),
                                 noise_std)


def risk_from_eigenvalues(lam, iterations, step_size, power, noise_std) -> np.ndarray:
    """R(tau) of E12 from the kernel eigenvalues ``lam`` and the signal power |xhat_f|^2.

    The core of :func:`predicted_risk` for any model whose linearized dynamics are diagonal in
    the Fourier modes with eigenvalues ``lam`` (np.fft order); ``step_size`` is used as given.
    """
    iterations = _check.iterations(iterations)
    risk = np.empty(iterations.size)
    axes = tuple(range(1, lam.ndim + 1))
    for part, f in _factor_chunks(lam, float(step_size), iterations):
        risk[part] = (np.sum(f**2 * power, axis=axes)
                      + noise_std**2 * np.sum((1 - f) ** 2, axis=axes))
    return risk


def optimal_stop(u, shape, steps, step_size=None, *, x=None, y=None, noise_std=None,
                 sigma=None) -> int:
    """tau* = argmin of the predicted risk R(tau) over tau = 0 .. steps (E12).

    Same arguments as :func:`predicted_risk`; ties go to the earliest iteration.
    """
    steps = _check.non_negative_int(steps, "steps")
    risk = predicted_risk(u, shape, np.arange(steps + 1), step_size, x=x, y=y,
                          noise_std=noise_std, sigma=sigma)
    return int(np.argmin(risk))


def top_modes(u, shape, p) -> np.ndarray:
    """Boolean mask (``np.fft`` order) of the p Fourier modes with the largest eigenvalues (E9, E11).

    Real signals need whole groups of equal eigenvalues (lambda_f = lambda_-f, and the symmetries
    of the filter), so a p that would split such a group is refused with the nearest valid p.
    """
    shape = _check.shape(shape)
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


def denoising_bound(u, shape, x, z, iterations, step_size=None, p=None) -> np.ndarray:
    """The bound of E11 on ||G_tau - x|| without its eps ||y|| term, for y = x + z, G(C_0) = 0.

    ``linear(tau) + sqrt( sum_f (1 - (1 - eta lambda_f)^tau)^2 |zhat_f|^2 )`` (unitary DFT), where
    ``linear(tau)`` is the exact ``||(I - eta Sigma)^tau x||`` when ``p`` is None, and the
    theorem's ``max_{f in top p} |1 - eta lambda_f|^tau ||x||`` when x lies in the span of the p
    modes of largest eigenvalue (:func:`top_modes`); for eta <= 1/lambda_max that is
    ``(1 - eta lambda_(p))^tau ||x||``.

    Returns
    -------
    array (len(iterations),), float64.

    Raises
    ------
    ValueError if ``p`` is given and x has energy outside the top-p modes (beyond 1e-20 relative).
    """
    shape = _check.shape(shape)
    taus = _check.iterations(iterations)
    xhat = np.fft.fftn(_check.signal(x, "x", shape), norm="ortho")
    zpow = np.abs(np.fft.fftn(_check.signal(z, "z", shape), norm="ortho")) ** 2
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
    y_norm = _check.positive(y_norm, "y_norm")
    return max(0.0, float(np.max(errors - bound)) / y_norm)
