"""Embedded signals and images, and loading of user files."""
from __future__ import annotations

import numpy as np

__all__ = ["bandlimited"]


def bandlimited(shape, p: int = 6, seed: int = 0, max_freq: int | None = None) -> np.ndarray:
    """A random real signal whose DFT is non-zero on exactly ``p`` Fourier modes, unit RMS.

    The modes are drawn among the non-zero frequencies f with |f| <= ``max_freq`` (radial in
    2-D; default: the smallest radius offering at least 2p modes), in conjugate pairs, plus the
    zero frequency when ``p`` is odd.
    """
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if int(p) != p or p < 1:
        raise ValueError(f"p must be a positive integer, got {p!r}")
    rng = np.random.default_rng(seed)
    freqs = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    # A conjugate pair is represented by its member whose flat index is smaller.
    flat = np.arange(radius.size).reshape(shape)
    partner = np.roll(np.flip(flat, axis=tuple(range(len(shape)))), 1,
                      axis=tuple(range(len(shape))))
    pairs = (flat < partner) & (radius > 0)
    if max_freq is None:
        radii = np.sort(radius[pairs])
        max_freq = radii[min(p, radii.size) - 1] if radii.size else 0
    candidates = np.flatnonzero(pairs & (radius <= max_freq))
    if p // 2 > candidates.size or (p > candidates.size * 2 + 1):
        raise ValueError(f"only {2 * candidates.size + 1} modes have |f| <= {max_freq}; "
                         f"raise max_freq or lower p")
    chosen = rng.choice(candidates, size=p // 2, replace=False)
    spectrum = np.zeros(shape, complex)
    coef = rng.standard_normal(chosen.size) + 1j * rng.standard_normal(chosen.size)
    spectrum.flat[chosen] = coef
    spectrum.flat[partner.flat[chosen]] = np.conj(coef)
    if p % 2:
        spectrum.flat[0] = rng.standard_normal()
    x = np.fft.ifftn(spectrum).real
    return x / np.sqrt(np.mean(x**2))
