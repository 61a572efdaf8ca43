"""Baselines to compare a denoiser with: linear filters whose parameters are chosen with the
clean signal (oracle parameters, so upper bounds for what such filters can do)."""
from __future__ import annotations

import numpy as np

from . import metrics

__all__ = ["gaussian_blur_baseline", "wiener_baseline", "BLUR_STDS", "POWER_EXPONENTS",
           "POWER_AMPLITUDES"]

#: Blur widths searched by :func:`gaussian_blur_baseline` (std in samples).
BLUR_STDS = np.geomspace(0.2, 10.0, 80)
#: Power-law exponents and amplitudes searched by :func:`wiener_baseline` ("power").
POWER_EXPONENTS = np.linspace(0.5, 4.0, 29)
POWER_AMPLITUDES = np.geomspace(1e-6, 1e2, 81)


def gaussian_blur_baseline(y, clean):
    """The Gaussian blur of y (reflecting borders) of least error to ``clean``.

    Returns ``(output, std)``: the blur width in samples is searched over :data:`BLUR_STDS`.
    """
    from scipy import ndimage

    y, clean = np.asarray(y, np.float64), np.asarray(clean, np.float64)
    best = min(BLUR_STDS, key=lambda s: metrics.mse(ndimage.gaussian_filter(y, s), clean))
    return ndimage.gaussian_filter(y, best), float(best)


def wiener_baseline(y, clean, noise_std, model="oracle"):
    """The Wiener-type spectral filter H_f = P_f / (P_f + sigma^2) applied to y (periodic DFT).

    ``model="oracle"``: P_f = |xhat_f|^2 of the clean signal (unitary DFT), the best
    frequency-wise linear shrinkage for white noise, an upper bound for every linear
    shift-invariant denoiser.  ``model="power"``: P_f = A |f|^(-alpha) (f the radial frequency in
    cycles per sample; the mean passes unchanged) with A and alpha searched over
    :data:`POWER_AMPLITUDES` and :data:`POWER_EXPONENTS` for the least error to ``clean``.

    Returns ``(output, params)`` with params a dict ({} for "oracle", A and alpha for "power").
    """
    y, clean = np.asarray(y, np.float64), np.asarray(clean, np.float64)
    yhat = np.fft.fftn(y, norm="ortho")
    sigma2 = float(noise_std) ** 2

    def apply(gain):
        return np.fft.ifftn(yhat * gain, norm="ortho").real

    if model == "oracle":
        power = np.abs(np.fft.fftn(clean, norm="ortho")) ** 2
        return apply(power / (power + sigma2)), {}
    if model != "power":
        raise ValueError(f"model must be 'oracle' or 'power', got {model!r}")
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in y.shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))

    def gain(amplitude, alpha):          # P / (P + sigma^2) with P = A |f|^-alpha; 1 at f = 0
        return 1.0 / (1.0 + sigma2 * radius**alpha / amplitude)

    amplitude, alpha = min(((a, e) for e in POWER_EXPONENTS for a in POWER_AMPLITUDES),
                           key=lambda p: metrics.mse(apply(gain(*p)), clean))
    return apply(gain(amplitude, alpha)), {"A": float(amplitude), "alpha": float(alpha)}
