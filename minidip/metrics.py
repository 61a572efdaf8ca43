"""Error measures between an estimate and a reference signal."""
from __future__ import annotations

import math

import numpy as np

__all__ = ["mse", "psnr"]


def _pair(estimate, reference):
    estimate, reference = np.asarray(estimate, np.float64), np.asarray(reference, np.float64)
    if estimate.shape != reference.shape:
        raise ValueError(f"shapes differ: estimate {estimate.shape}, reference {reference.shape}")
    return estimate, reference


def mse(estimate, reference) -> float:
    """Mean squared error, accumulated in float64."""
    estimate, reference = _pair(estimate, reference)
    return float(np.mean(np.square(estimate - reference)))


def psnr(estimate, reference, *, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB: 10 log10(data_range^2 / mse).

    ``data_range`` is explicit (e.g. 1.0 for images scaled to [0, 1], or
    ``reference.max() - reference.min()``); a perfect estimate gives ``inf``.
    """
    if not (np.isfinite(data_range) and data_range > 0):
        raise ValueError(f"data_range must be a positive number, got {data_range!r}")
    err = mse(estimate, reference)
    return math.inf if err == 0 else 10 * math.log10(data_range**2 / err)
