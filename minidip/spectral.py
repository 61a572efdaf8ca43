"""Closed-form spectral predictions for gradient descent on the generator (E8-E14)."""
from __future__ import annotations

import numpy as np

from . import filters as _filters

__all__ = ["autocorrelation", "kernel_row", "eigenvalues"]


def autocorrelation(u, shape) -> np.ndarray:
    """a(d) = sum_m u[m] u[m + d], the circular autocorrelation of u on the grid (E8)."""
    shape = tuple(shape)
    grid = _filters.on_grid(_filters.as_taps(u, len(shape)), shape)
    return np.fft.ifftn(np.abs(np.fft.fftn(grid)) ** 2).real


def kernel_row(u, shape) -> np.ndarray:
    """(E8) s(d) = 1/2 a(d) (1 - arccos(a(d)/a(0)) / pi), a periodic array of ``shape``."""
    a = autocorrelation(u, shape)
    a0 = a.flat[0]
    return 0.5 * a * (1 - np.arccos(np.clip(a / a0, -1, 1)) / np.pi)


def eigenvalues(u, shape) -> np.ndarray:
    """(E9) Eigenvalues lambda_f = DFT(s)_f of the dual kernel Sigma, in np.fft order."""
    return np.fft.fftn(kernel_row(u, shape)).real
