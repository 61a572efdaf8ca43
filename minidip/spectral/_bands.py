"""Frequency-band measures of spectral bias (E14) and their prediction from E10."""
from __future__ import annotations

import numpy as np

from .. import validation as _check
from ._dynamics import _factor_chunks, _step
from ._kernels import eigenvalues

__all__ = ["band_labels", "band_measure", "predicted_band_measure"]


def band_labels(shape, n_bands) -> np.ndarray:
    """Band index (0 = lowest) of every frequency, ``np.fft`` order (E14).

    The normalized radius is ``rho = |f| / max |f|`` with f in cycles per sample (radial in 2-D),
    so rho runs from 0 (DC) to 1 (the highest frequency on the grid); band b holds
    ``b / n_bands <= rho < (b + 1) / n_bands`` (rho = 1 in the last band).

    Raises
    ------
    ValueError if some band would be empty (too many bands for the grid).
    """
    shape = _check.shape(shape)
    n_bands = _check.positive_int(n_bands, "n_bands")
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
    y = _check.signal(y, "y")
    outputs = np.asarray(outputs)
    single = outputs.ndim == y.ndim
    if single:
        outputs = outputs[None]
    if outputs.ndim != y.ndim + 1:
        raise ValueError(f"outputs must have shape (T, *{y.shape}) or {y.shape}, "
                         f"got {outputs.shape}")
    outputs = np.stack([_check.signal(o, "outputs[t]", y.shape) for o in outputs])
    labels = band_labels(y.shape, n_bands)
    fy = np.abs(np.fft.fftn(y))
    valid = fy > 1e-12 * fy.max()
    if not valid.any():
        raise ValueError("y is all zero; the band measure is undefined")
    fg = np.abs(np.fft.fftn(outputs, axes=tuple(range(1, outputs.ndim))))
    ratio = np.minimum(fg / np.where(valid, fy, 1.0), 1.0) * valid
    measure = _band_means(ratio, labels, n_bands, valid)
    return measure[0] if single else measure


def predicted_band_measure(u, shape, iterations, n_bands, step_size=None) -> np.ndarray:
    """Predicted band measure: mean over band b of |1 - (1 - eta lambda_f)^tau| (E14, E10).

    It is the band measure of the linearized trajectory started at G(C_0) = 0; with
    eta <= 1/lambda_max every ratio is at most 1, so the min(., 1) of E14 does not act.

    Returns
    -------
    array (len(iterations), n_bands), float64.
    """
    shape = _check.shape(shape)
    labels = band_labels(shape, n_bands)
    taus = _check.iterations(iterations)
    lam = eigenvalues(u, shape)
    eta = _step(lam, step_size)
    out = np.empty((taus.size, n_bands))
    for part, f in _factor_chunks(lam, eta, taus):
        out[part] = _band_means(np.abs(1.0 - f), labels, n_bands)
    return out
