"""The denoising comparison on embedded real data: every stop rule of the two-layer generator
against the oracle stop and linear filters with oracle parameters (``minidip figures``).

An experiment, not part of the library API: it imports the library and the library never
imports it (only the command line does, when asked).
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .. import baselines, data, metrics, plots, stopping
from ..denoise import DEFAULT_CHANNELS, DEFAULT_STEPS, denoise

__all__ = ["Case", "CASES", "METHODS", "Panel", "compare", "comparison_table",
           "plot_comparison"]


def _psnr(estimate, clean):
    return metrics.psnr(estimate, clean, data_range=1.0)       # every case lies in [0, 1]


@dataclass(frozen=True)
class Case:
    """One benchmark of :func:`compare`: a clean signal in [0, 1], a noise level, the generator."""

    name: str
    load: object                  # () -> clean signal scaled to [0, 1]
    noise_std: float
    filter: str
    channels: int = DEFAULT_CHANNELS
    steps: int = DEFAULT_STEPS
    description: str = ""


def _unit_range(x):
    return (x - x.min()) / (x.max() - x.min())


CASES = (
    Case("mri", lambda: data.mri(downsample=2), 0.1, "gaussian:1.2:7",
         description="MRI slice s1045, 2x2-averaged to 128x128, in [0, 1]"),
    Case("grace_hopper", lambda: data.grace_hopper(downsample=4), 0.1, "gaussian:1.2:7",
         description="grace_hopper.jpg, luma, 4x4-averaged to 150x128, in [0, 1]"),
    Case("membrane", lambda: _unit_range(data.membrane(downsample=4)), 0.05, "gaussian:2",
         steps=2500, description="membrane.dat, 4-averaged to 3000 samples, scaled to [0, 1]"),
)

#: Columns of the comparison, in order.
METHODS = ("noisy", "discrepancy (sigma known)", "discrepancy (sigma estimated)",
           "spectral (sigma known)", "spectral (sigma estimated)", "variance", "oracle stop",
           "Gaussian blur (oracle std)", "Wiener, power law (oracle A, alpha)",
           "Wiener, oracle spectrum")


class Panel(stopping.StopRule):
    """Runs several rules on one trajectory and keeps the iterate each chooses.

    A rule's choice depends only on the iterates, which do not depend on when the fit ends, so
    one fit that runs until every rule has stopped answers for all of them.  ``rules`` maps a
    label to ``(rule, known)``: a rule with ``known`` False gets the noise level estimated from
    y, the others the one given to the fit.
    """

    needs_noise_level = True

    def __init__(self, rules):
        super().__init__()
        self.rules = rules
        self.chosen = {}                           # label -> (iteration, output)
        self.done = set()

    def start(self, context):
        estimate = stopping.estimate_noise_std(context.y)
        for label, (rule, known) in self.rules.items():
            rule.start(context if known else replace(context, noise_std=estimate))

    def observe(self, iteration, output, loss):
        self.best_iteration = iteration
        for label, (rule, _) in self.rules.items():
            if label in self.done:
                continue
            if rule.observe(iteration, output, loss):
                self.done.add(label)
            if rule.best_iteration == iteration:
                self.chosen[label] = (iteration, np.array(output, dtype=np.float64))
        return len(self.done) == len(self.rules)


def compare(cases=None, seeds=(0, 1, 2), progress=False):
    """Denoise each case with every stop rule, the oracle stop and the linear baselines.

    For every case and seed: y = x + sigma z with z ~ N(0, I) drawn from ``seed``; one fit of
    :func:`denoise`'s generator (defaults of this module, init seed ``seed``) observed by all
    rules at once; the baselines get the clean x to choose their parameters.

    Returns
    -------
    list of dict, one per (case, seed): "case", "seed", "psnr" (method -> dB, keys
    :data:`METHODS`), "stop" (method -> iteration), "noise_std_estimate", "blur_std",
    "wiener_power" (A, alpha), and for the figure "clean", "noisy", "outputs" (method -> array)
    and "history" (the fit's history).
    """
    rows = []
    for case in CASES if cases is None else cases:
        x = np.asarray(case.load(), np.float64)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            y = x + case.noise_std * rng.standard_normal(x.shape)
            rules = {"discrepancy (sigma known)": (stopping.Discrepancy(), True),
                     "discrepancy (sigma estimated)": (stopping.Discrepancy(), False),
                     "spectral (sigma known)": (stopping.Spectral(), True),
                     "spectral (sigma estimated)": (stopping.Spectral(), False),
                     "variance": (stopping.Variance(), False),
                     "oracle stop": (stopping.Oracle(), False)}
            panel = Panel(rules)
            res = denoise(y, filter=case.filter, stop=panel, noise_std=case.noise_std,
                          channels=case.channels, steps=case.steps, seed=seed, clean=x,
                          progress=progress)
            outputs = {"noisy": y}
            stops = {}
            for label, (iteration, output) in panel.chosen.items():
                outputs[label], stops[label] = output, iteration
            blurred, blur_std = baselines.gaussian_blur_baseline(y, x)
            outputs["Gaussian blur (oracle std)"] = blurred
            outputs["Wiener, power law (oracle A, alpha)"], power = baselines.wiener_baseline(
                y, x, case.noise_std, model="power")
            outputs["Wiener, oracle spectrum"], _ = baselines.wiener_baseline(y, x, case.noise_std)
            rows.append(dict(
                case=case.name, seed=seed, clean=x, noisy=y, outputs=outputs, stops=stops,
                psnr={m: _psnr(outputs[m], x) for m in METHODS}, history=res.history,
                noise_std_estimate=stopping.estimate_noise_std(y), blur_std=blur_std,
                wiener_power=power))
    return rows


def comparison_table(rows) -> str:
    """A Markdown table of the mean PSNR (dB) over seeds for each case and method, with the
    mean stopping iteration of each rule in parentheses."""
    cases = list(dict.fromkeys(r["case"] for r in rows))
    lines = ["| method | " + " | ".join(cases) + " |", "|---|" + "---|" * len(cases)]
    for method in METHODS:
        cells = []
        for case in cases:
            mine = [r for r in rows if r["case"] == case]
            cell = f"{np.mean([r['psnr'][method] for r in mine]):.2f}"
            if method in mine[0]["stops"]:
                cell += f" ({np.mean([r['stops'][method] for r in mine]):.0f})"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


#: Methods shown as images (or curves) in :func:`plot_comparison`.
SHOWN = ("noisy", "discrepancy (sigma estimated)", "oracle stop", "Gaussian blur (oracle std)",
         "Wiener, oracle spectrum")


def plot_comparison(rows, path) -> Path:
    """One row per case: the clean signal, noisy input and chosen outputs (with PSNR), and
    the PSNR of the fit against iteration with the stop of each rule marked.

    ``rows``: :func:`compare`'s rows; the first seed of each case is shown.
    """
    firsts = list({r["case"]: r for r in reversed(list(rows))}.values())[::-1]
    columns = len(SHOWN) + 2
    fig = plots.figure(2.3 * columns, 2.5 * len(firsts))
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
    return plots.write_png(fig, path)
