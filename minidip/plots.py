"""Figures: the eigenvalue spectrum of a filter's dual kernel and the denoising comparison.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state) and written with
:func:`minidip.data.save`'s convention of a temporary file renamed into place.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

__all__ = ["radial_average", "spectrum_summary", "plot_spectrum", "plot_comparison"]


def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _write(fig, path) -> Path:
    """Save a figure as PNG atomically (temporary file in the same directory, then rename)."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"figures are written as PNG; give a path ending in .png, got {path}")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temp, "xb") as file:
            fig.savefig(file, format="png", dpi=110)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


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
    fig = _figure(9 if two_d else 5.5, 3.8)
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
    return _write(fig, path)


#: Methods shown as images (or curves) in :func:`plot_comparison`.
SHOWN = ("noisy", "discrepancy (sigma estimated)", "oracle stop", "Gaussian blur (oracle std)",
         "Wiener, oracle spectrum")


def plot_comparison(rows, path) -> Path:
    """One row per case: the clean signal, noisy input and chosen outputs (with PSNR), and
    the PSNR of the fit against iteration with the stop of each rule marked.

    ``rows``: the first entry per case of :func:`minidip.denoise.compare`.
    """
    firsts = list({r["case"]: r for r in reversed(list(rows))}.values())[::-1]
    columns = len(SHOWN) + 2
    fig = _figure(2.3 * columns, 2.5 * len(firsts))
    grid = fig.subplots(len(firsts), columns, squeeze=False)
    for axes, row in zip(grid, firsts):
        clean = row["clean"]
        panels = [("clean", clean)] + [(m, row["outputs"][m]) for m in SHOWN]
        for ax, (label, signal) in zip(axes, panels):
            title = label if label == "clean" else f"{label}\n{row['psnr'][label]:.2f} dB"
            if clean.ndim == 2:
                ax.imshow(signal, cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            else:
                part = slice(0, min(clean.size, 600))
                ax.plot(signal[part], lw=0.6, color="C1" if label != "clean" else "k")
                ax.plot(clean[part], lw=0.6, color="k", alpha=0.4)
                ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        axes[0].set_ylabel(row["case"])
        ax = axes[-1]
        history = row["history"]
        ax.plot(history["iteration"], history["psnr"], color="k", lw=1)
        for i, (label, stop) in enumerate(sorted(row["stops"].items())):
            ax.axvline(stop, color=f"C{i}", lw=0.8, ls="--", label=label)
        ax.axhline(row["psnr"]["noisy"], color="0.6", lw=0.8, ls=":")
        # From just below the noisy PSNR: the first iterates (near G(C_0) ~ 0) are far lower.
        ax.set_ylim(row["psnr"]["noisy"] - 2, np.max(history["psnr"]) + 1)
        ax.set_xlabel("iteration")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"fit of {row['case']}, seed {row['seed']}", fontsize=7)
        ax.legend(fontsize=5, loc="lower right")
    return _write(fig, path)
