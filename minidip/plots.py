"""Figures: the eigenvalue spectrum of a filter's dual kernel, and the helpers every figure uses.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state) and written
atomically (:func:`minidip._io.atomic_write`).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from . import _io

__all__ = ["radial_average", "spectrum_summary", "plot_spectrum", "figure", "write_png"]


def figure(width, height):
    """A matplotlib Figure of that size (inches) on an Agg canvas, constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def write_png(fig, path) -> Path:
    """Save a figure as PNG atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are written as PNG; give a path ending in .png, got {path}")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    return _io.atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=110))


def radial_average(values: np.ndarray, bins: int | None = None):
    """Average an array in np.fft order over rings of radial frequency |f| (cycles/sample).

    Returns ``(radius, mean)``: the centres of ``bins`` equal-width rings from 0 to the largest
    |f| (default: half the smallest side) and the mean of ``values`` in each non-empty ring.
    1-D arrays are averaged over +f and -f.
    """
    values = np.asarray(values, np.float64)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in values.shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    bins = bins or max(2, min(values.shape) // 2)
    edges = np.linspace(0, radius.max() + 1e-12, bins + 1)
    ring = np.digitize(radius.ravel(), edges) - 1
    counts = np.bincount(ring, minlength=bins)
    sums = np.bincount(ring, weights=values.ravel(), minlength=bins)
    keep = counts > 0
    centres = 0.5 * (edges[1:] + edges[:-1])
    return centres[keep], sums[keep] / counts[keep]


def spectrum_summary(lam: np.ndarray, fraction: float = 0.9) -> dict:
    """Numbers that describe an eigenvalue spectrum (E9).

    Returns a dict: "lambda_max", "lambda_min", "condition" (lambda_max / lambda_min; inf when
    lambda_min <= 0), "modes_for_fraction" (fewest eigenvalues whose sum reaches ``fraction``
    of the trace), "fraction", "size" (number of modes).
    """
    lam = np.asarray(lam, np.float64).ravel()
    ordered = np.sort(lam)[::-1]
    cumulative = np.cumsum(ordered)
    lam_min = float(ordered[-1])
    return {"lambda_max": float(ordered[0]), "lambda_min": lam_min,
            "condition": float(ordered[0] / lam_min) if lam_min > 0 else np.inf,
            "modes_for_fraction": int(np.searchsorted(cumulative, fraction * cumulative[-1]) + 1),
            "fraction": fraction, "size": lam.size}


def plot_spectrum(lam: np.ndarray, path, title: str = "") -> Path:
    """Plot eigenvalues lambda_f (np.fft order, 1-D or 2-D) against |f|; 2-D adds a map."""
    lam = np.asarray(lam, np.float64)
    two_d = lam.ndim == 2
    fig = figure(9 if two_d else 5.5, 3.8)
    axes = fig.subplots(1, 2 if two_d else 1, squeeze=False)[0]
    radius, mean = radial_average(lam)
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in lam.shape], indexing="ij")
    every = np.sqrt(sum(f**2 for f in freqs)).ravel()
    ax = axes[0]
    ax.semilogy(every, np.clip(lam.ravel(), 1e-300, None), ".", ms=2, alpha=0.3, color="0.5",
                label="all modes")
    ax.semilogy(radius, np.clip(mean, 1e-300, None), "-", color="C0", label="radial mean")
    ax.set_xlabel("|f| (cycles per sample)")
    ax.set_ylabel("eigenvalue lambda_f")
    ax.legend(loc="best")
    ax.set_title(title or "dual-kernel spectrum (E9)")
    if two_d:
        shown = np.fft.fftshift(lam)
        image = axes[1].imshow(np.log10(np.clip(shown, 1e-300, None)), cmap="viridis",
                               extent=(-0.5, 0.5, 0.5, -0.5))
        axes[1].set_title("log10 lambda_f")
        axes[1].set_xlabel("f_x")
        axes[1].set_ylabel("f_y")
        fig.colorbar(image, ax=axes[1])
    return write_png(fig, path)
