"""The restoration comparison on embedded images: the two-layer generator of ``minidip restore``
against its closed-form limit E23 and the classical baselines (``minidip figures --restoration``).

Inpainting (a random pixel mask) against the harmonic fill, and x2 super-resolution (block-mean
downsampling) against Keys bicubic upsampling; PSNR in dB with data range 1, on the missing
pixels for inpainting and on the whole image for super-resolution; wall time per image.

An experiment, not part of the library API: it imports the library and the library never
imports it (only the command line does, when asked).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import data, metrics, operators, plots
from ..restore import baseline, interpolant, restore

__all__ = ["Case", "CASES", "TASKS", "METHODS", "compare", "comparison_table",
           "plot_comparison", "MISSING"]

#: The fraction of pixels that the random inpainting mask hides.
MISSING = 0.5


@dataclass(frozen=True)
class Case:
    """One image of :func:`compare`: grayscale (h, w) or colour (3, h, w), values in [0, 1]."""

    name: str
    load: object
    description: str = ""


CASES = (
    Case("grace_hopper", lambda: data.grace_hopper(downsample=4, color=True),
         "grace_hopper.jpg in colour, 4x4-averaged to 3x150x128"),
    Case("mri", lambda: data.mri(downsample=2), "MRI slice s1045, 2x2-averaged to 128x128"),
)
TASKS = ("inpainting", "super-resolution x2")
#: Methods per task: the generator, its closed-form limit, the classical baseline.
METHODS = {"inpainting": ("generator", "E23 interpolant", "harmonic fill"),
           "super-resolution x2": ("generator", "E23 interpolant", "bicubic")}


def _grid(image):
    return image.shape[1:] if image.ndim == 3 else image.shape


def _operator(task, grid, seed):
    if task == "inpainting":
        return operators.Mask(np.random.default_rng(seed).random(grid) >= MISSING)
    return operators.Downsample(2, shape=grid)


def _measure(op, image):
    return np.stack([op.forward(c) for c in image]) if image.ndim == 3 else op.forward(image)


def compare(cases=None, tasks=TASKS, seeds=(0,), progress=False, **options):
    """Restore every case for every task and seed with the generator, E23 and the baseline.

    For inpainting the seed draws the mask (and the generator's weights); super-resolution has
    no randomness but the weights.  ``options`` go to :func:`minidip.restore.restore` (its
    defaults otherwise).  The measurements are noise-free.

    Returns
    -------
    list of dict, one per (case, task, seed): "case", "task", "seed", "psnr" (method -> dB),
    "seconds" (method -> wall time), and for the figure "clean", "measured" (an image to show),
    "outputs" (method -> array).
    """
    rows = []
    for case in CASES if cases is None else cases:
        clean = np.asarray(case.load(), np.float64)
        for task in tasks:
            for seed in seeds:
                op = _operator(task, _grid(clean), seed)
                y = _measure(op, clean)
                outputs, seconds = {}, {}
                for method, run in (("generator", lambda: restore(
                                        y, op, seed=seed, progress=progress, **options).output),
                                    ("E23 interpolant", lambda: interpolant(
                                        y, op, filter=options.get("filter"))),
                                    (METHODS[task][2], lambda: baseline(y, op))):
                    start = time.perf_counter()
                    outputs[method] = run()
                    seconds[method] = time.perf_counter() - start
                if task == "inpainting":
                    region = np.broadcast_to(~op.mask, clean.shape)
                    shown = np.where(np.broadcast_to(op.mask, clean.shape), clean, 0.0)
                else:
                    region = np.ones(clean.shape, bool)
                    shown = np.repeat(np.repeat(y, 2, axis=-1), 2, axis=-2)   # nearest
                rows.append(dict(case=case.name, task=task, seed=seed, clean=clean,
                                 measured=shown, outputs=outputs, seconds=seconds,
                                 psnr={m: metrics.psnr(outputs[m][region], clean[region],
                                                       data_range=1.0) for m in outputs}))
    return rows


def comparison_table(rows) -> str:
    """A Markdown table: mean PSNR (dB) over seeds per case, task and method, and the mean wall
    time per image in seconds."""
    lines = ["| image | task | method | PSNR (dB) | seconds |", "|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["case"], r["task"]) for r in rows))
    for case, task in keys:
        mine = [r for r in rows if r["case"] == case and r["task"] == task]
        for method in METHODS[task]:
            psnr = np.mean([r["psnr"][method] for r in mine])
            seconds = np.mean([r["seconds"][method] for r in mine])
            lines.append(f"| {case} | {task} | {method} | {psnr:.2f} | {seconds:.2f} |")
    return "\n".join(lines)


def plot_comparison(rows, path) -> Path:
    """One row per (case, task), first seed: clean, measured, the three methods (PSNR in the
    titles; inpainting PSNR on the missing pixels)."""
    firsts = list({(r["case"], r["task"]): r for r in reversed(list(rows))}.values())[::-1]
    fig = plots.figure(2.2 * 5, 2.4 * len(firsts))
    grid = fig.subplots(len(firsts), 5, squeeze=False)
    for axes, row in zip(grid, firsts):
        panels = [("clean", row["clean"]), ("measured", row["measured"])]
        panels += [(m, row["outputs"][m]) for m in METHODS[row["task"]]]
        for ax, (label, image) in zip(axes, panels):
            title = label if label not in row["psnr"] else f"{label}\n{row['psnr'][label]:.2f} dB"
            shown = np.clip(np.moveaxis(image, 0, -1) if image.ndim == 3 else image, 0, 1)
            ax.imshow(shown, cmap=None if image.ndim == 3 else "gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(title, fontsize=7)
        axes[0].set_ylabel(f"{row['case']}\n{row['task']}", fontsize=7)
    return plots.write_png(fig, path)
