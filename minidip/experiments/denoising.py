"""The denoising comparison on embedded real data (``minidip figures``): the two-layer generator
under every stop rule, the deep decoder at its oracle stop and under its default rule, linear
filters with oracle parameters and BM3D, with the time per image of each.

BM3D comes from the optional ``bm3d`` package (``pip install ".[baselines]"``), imported only
when the comparison runs; without it the table says so.

An experiment, not part of the library API: it imports the library and the library never
imports it (only the command line does, when asked).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .. import baselines, data, metrics, plots, stopping
from .._io import atomic_write
from ..denoise import DEFAULT_CHANNELS, DEFAULT_STEPS, denoise

__all__ = ["Case", "CASES", "METHODS", "Panel", "hopper_crop", "compare", "comparison_table",
           "plot_comparison"]

#: The rules run on the two-layer generator's trajectory: label -> (rule class, sigma known).
TWO_LAYER_RULES = {"discrepancy (sigma known)": (stopping.Discrepancy, True),
                   "discrepancy (sigma estimated)": (stopping.Discrepancy, False),
                   "spectral (sigma known)": (stopping.Spectral, True),
                   "spectral (sigma estimated)": (stopping.Spectral, False),
                   "variance": (stopping.Variance, False),
                   "oracle stop": (stopping.Oracle, False)}
TWO_LAYER = tuple(f"two-layer: {label}" for label in TWO_LAYER_RULES)
DEEP_ORACLE = "deep decoder: oracle stop"
DEEP_DEFAULT = "deep decoder: default stop"
LINEAR = ("Gaussian blur (oracle std)", "Wiener, power law (oracle A, alpha)",
          "Wiener, oracle spectrum")
BM3D = "BM3D (sigma known)"
#: Rows of the comparison, in order.
METHODS = ("noisy",) + TWO_LAYER + (DEEP_ORACLE, DEEP_DEFAULT) + LINEAR + (BM3D,)
#: What the table says when the ``bm3d`` package is absent.
BM3D_ABSENT = 'BM3D: not installed (pip install ".[baselines]")'


def _psnr(estimate, clean):
    return metrics.psnr(estimate, clean, data_range=1.0)       # every case lies in [0, 1]


@dataclass(frozen=True)
class Case:
    """One benchmark of :func:`compare`: a clean signal in [0, 1], a noise level, the two-layer
    generator's filter, width and steps, and whether the deep decoder runs on it.

    A clean signal of shape (3, h, w) is a colour image: PSNR over all three channels."""

    name: str
    load: object                  # () -> clean signal scaled to [0, 1]
    noise_std: float
    filter: str
    channels: int = DEFAULT_CHANNELS
    steps: int = DEFAULT_STEPS
    description: str = ""
    deep: bool = True


def _unit_range(x):
    return (x - x.min()) / (x.max() - x.min())


def hopper_crop(color: bool = False) -> np.ndarray:
    """grace_hopper.jpg's centre 512 x 512 crop (rows 44-555, all 512 columns), 2 x 2
    block-averaged: (256, 256) luma or (3, 256, 256) RGB, in [0, 1]."""
    full = data.grace_hopper(color=color)
    top = (full.shape[-2] - 512) // 2
    crop = full[..., top:top + 512, :512]
    return crop.reshape(crop.shape[:-2] + (256, 2, 256, 2)).mean(axis=(-3, -1))


CASES = (
    Case("mri", data.mri, 0.1, "gaussian:1.2:7",
         description="MRI slice s1045, 256x256, in [0, 1]"),
    Case("grace_hopper", hopper_crop, 0.1, "gaussian:1.2:7",
         description="grace_hopper.jpg, luma, centre 512x512 crop 2x2-averaged to 256x256"),
    Case("grace_hopper colour", lambda: hopper_crop(color=True), 0.1, "gaussian:1.2:7",
         description="the same crop in RGB, (3, 256, 256)"),
    Case("membrane", lambda: _unit_range(data.membrane(downsample=4)), 0.05, "gaussian:2",
         steps=2500, deep=False,
         description="membrane.dat, 4-averaged to 3000 samples, scaled to [0, 1]"),
)


class Panel(stopping.StopRule):
    """Runs several rules on one trajectory and keeps the iterate each chooses.

    A rule's choice depends only on the iterates, which do not depend on when the fit ends, so
    one fit that runs until every rule has stopped answers for all of them.  ``rules`` maps a
    label to ``(rule, known)``: a rule with ``known`` False gets the noise level estimated from
    y, the others the one given to the fit.  ``ended`` maps a label to the iteration at which
    its rule would have ended a fit of its own.
    """

    needs_noise_level = True

    def __init__(self, rules):
        super().__init__()
        self.rules = rules
        self.chosen = {}                           # label -> (iteration, output)
        self.ended = {}

    def start(self, context):
        estimate = stopping.estimate_noise_std(context.y)
        for label, (rule, known) in self.rules.items():
            rule.start(context if known else replace(context, noise_std=estimate))

    def observe(self, iteration, output, loss):
        self.best_iteration = iteration
        for label, (rule, _) in self.rules.items():
            if label in self.ended:
                continue
            if rule.observe(iteration, output, loss):
                self.ended[label] = iteration
            if rule.best_iteration == iteration:
                self.chosen[label] = (iteration, np.array(output, dtype=np.float64))
        return len(self.ended) == len(self.rules)


def _steps_run(result):
    return int(result.history["iteration"][-1])


def _curve(result, size):
    """(iterations, squared error / ``size``) of a fit's history: ``size`` values per image."""
    history = result.history
    mse = np.asarray(history["error"], np.float64) ** 2 / size
    return np.asarray(history["iteration"]), mse


def _with_seconds(panel, result, seconds):
    """Each rule's time: the fit's time per step times the steps its own fit would have run."""
    steps = _steps_run(result)
    per_step = seconds / max(steps, 1)
    return {label: per_step * panel.ended.get(label, steps)
            for label in panel.rules}


def _two_layer(case, x, y, seed, progress):
    """Every rule of :data:`TWO_LAYER_RULES` on one trajectory; colour images channel by channel
    (each channel its own fit and stops)."""
    planes = [(x, y)] if x.ndim < 3 else list(zip(x, y))
    chosen, stops, seconds, mse = {}, {}, {}, 0.0
    for clean, noisy in planes:
        panel = Panel({f"two-layer: {label}": (rule(), known)
                       for label, (rule, known) in TWO_LAYER_RULES.items()})
        start = time.perf_counter()
        res = denoise(noisy, filter=case.filter, stop=panel, noise_std=case.noise_std,
                      channels=case.channels, steps=case.steps, seed=seed, clean=clean,
                      progress=progress)
        elapsed = time.perf_counter() - start
        for label, spent in _with_seconds(panel, res, elapsed).items():
            iteration, output = panel.chosen[label]
            chosen.setdefault(label, []).append(output)
            stops.setdefault(label, []).append(iteration)
            seconds[label] = seconds.get(label, 0.0) + spent
        iterations, plane_mse = _curve(res, x.size)
        mse = mse + plane_mse
    outputs = {label: np.stack(o) if x.ndim == 3 else o[0] for label, o in chosen.items()}
    return dict(outputs=outputs, stops={k: float(np.mean(v)) for k, v in stops.items()},
                seconds=seconds, curve=(iterations, -10 * np.log10(mse)), info={})


def _deep_settings():
    """The deep decoder's defaults: name -> value of every ``DEEP_*`` of minidip.denoise."""
    from .. import denoise as _denoise

    return {name: getattr(_denoise, name) for name in _denoise.__all__
            if name.startswith("DEEP_")}


def _deep_rule():
    """(a fresh instance, a description) of the rule that ``denoise(model="deep")`` uses by
    default (``stop="auto"``)."""
    settings = _deep_settings()
    rule, kappa = settings["DEEP_STOP"], settings.get("DEEP_KAPPA")
    if rule is None:
        return stopping.make_rule(None), f"none (the last of {settings['DEEP_STEPS']} Adam steps)"
    if rule == "discrepancy" and kappa is not None:
        return (stopping.Discrepancy(kappa=kappa),
                f"discrepancy, kappa = {kappa:g}, sigma estimated from y")
    return stopping.make_rule(rule), f"{rule}, sigma estimated from y"


def _deep(case, x, y, seed, progress):
    """The deep decoder (:func:`minidip.denoise.denoise`, ``model="deep"``, its defaults) on
    one trajectory: the oracle stop and the default rule (sigma estimated from y)."""
    rule, description = _deep_rule()
    panel = Panel({DEEP_ORACLE: (stopping.Oracle(), False), DEEP_DEFAULT: (rule, False)})
    start = time.perf_counter()
    res = denoise(y, model="deep", stop=panel, seed=seed, clean=x, progress=progress)
    elapsed = time.perf_counter() - start
    # The fit runs on y mapped affinely onto [0, 1]; the panel saw its outputs in those units.
    low, high = res.info["range"]
    iterations, mse = _curve(res, x.size)
    return dict(outputs={k: low + (high - low) * v[1] for k, v in panel.chosen.items()},
                stops={k: float(v[0]) for k, v in panel.chosen.items()},
                seconds=_with_seconds(panel, res, elapsed),
                curve=(iterations, -10 * np.log10(mse)),
                info={"deep_rule": description, "deep_steps_run": _steps_run(res)})


def _import_bm3d():
    """The ``bm3d`` module, or None when it is not installed."""
    try:
        import bm3d
    except ImportError:
        return None
    return bm3d


def _per_channel(method, y, x):
    """Apply ``method(y, x) -> output`` to each channel of a colour image."""
    if x.ndim < 3:
        return method(y, x)
    return np.stack([method(yc, xc) for yc, xc in zip(y, x)])


def _baselines(case, x, y, seed, progress):
    """The linear filters with oracle parameters (colour: per channel, each its own parameters)
    and BM3D with the true sigma (colour: ``bm3d_rgb`` when the package has it)."""
    outputs, seconds, info = {}, {}, {}
    methods = {
        LINEAR[0]: lambda yc, xc: baselines.gaussian_blur_baseline(yc, xc)[0],
        LINEAR[1]: lambda yc, xc: baselines.wiener_baseline(yc, xc, case.noise_std,
                                                            model="power")[0],
        LINEAR[2]: lambda yc, xc: baselines.wiener_baseline(yc, xc, case.noise_std)[0]}
    for label, method in methods.items():
        start = time.perf_counter()
        outputs[label] = _per_channel(method, y, x)
        seconds[label] = time.perf_counter() - start
    bm3d = _import_bm3d()
    if bm3d is None:
        info["bm3d"] = "absent"
    elif x.ndim >= 2:
        start = time.perf_counter()
        if x.ndim == 3 and hasattr(bm3d, "bm3d_rgb"):
            outputs[BM3D] = np.moveaxis(bm3d.bm3d_rgb(np.moveaxis(y, 0, -1), case.noise_std),
                                        -1, 0)
            info["bm3d"] = "bm3d_rgb"
        else:
            outputs[BM3D] = _per_channel(lambda yc, xc: bm3d.bm3d(yc, case.noise_std), y, x)
            info["bm3d"] = "per channel" if x.ndim == 3 else "bm3d"
        seconds[BM3D] = time.perf_counter() - start
    return dict(outputs=outputs, stops={}, seconds=seconds, curve=None, info=info)


_PARTS = {"baselines": _baselines, "two-layer": _two_layer, "deep": _deep}


def _fingerprint(part, case):
    """What a cached part depends on besides (case, seed): the case's settings, and for the
    deep decoder the library's defaults."""
    settings = [case.name, case.noise_std, case.filter, case.channels, case.steps]
    if part == "deep":
        settings.append(sorted((k, repr(v)) for k, v in _deep_settings().items()))
    if part == "baselines":
        settings.append(_import_bm3d() is not None)
    return json.dumps(settings, default=str)


def _save(path, part, fingerprint):
    arrays = {f"output {label}": out for label, out in part["outputs"].items()}
    if part["curve"] is not None:
        arrays["curve iterations"], arrays["curve psnr"] = part["curve"]
    meta = dict(fingerprint=fingerprint, stops=part["stops"], seconds=part["seconds"],
                info=part["info"])
    atomic_write(path, lambda f: np.savez(f, meta=np.array(json.dumps(meta)), **arrays))


def _load(path, fingerprint):
    if not path.is_file():
        return None
    with np.load(path) as saved:
        meta = json.loads(str(saved["meta"]))
        if meta["fingerprint"] != fingerprint:
            return None
        outputs = {k[len("output "):]: saved[k] for k in saved.files if k.startswith("output ")}
        curve = ((saved["curve iterations"], saved["curve psnr"])
                 if "curve psnr" in saved.files else None)
    return dict(outputs=outputs, stops=meta["stops"], seconds=meta["seconds"], curve=curve,
                info=meta["info"])


def compare(cases=None, seeds=(0,), progress=False, cache=None, parts=None):
    """Denoise each case with every method of :data:`METHODS` that applies to it.

    For every case and seed: y = x + sigma z with z ~ N(0, I) drawn from ``seed``.  The
    two-layer generator (this module's settings, init seed ``seed``) runs once and every rule
    picks its iterate from that trajectory (colour: each channel its own fit); the deep decoder
    (:func:`minidip.denoise.denoise` with ``model="deep"`` and its defaults, seed ``seed``) runs
    once for its oracle stop and its default rule; the linear baselines get the clean x to
    choose their parameters; BM3D gets the true sigma.  Times are wall-clock seconds per image;
    a rule's time is the fit's time per step times the steps its own fit would run.

    Parameters
    ----------
    cases : sequence of Case, optional
        Default :data:`CASES`.
    seeds : sequence of int
    progress : bool
        Progress bars of the fits.
    cache : path, optional
        A directory: each (case, seed, part) is saved there as it finishes and reused when its
        settings match, so an interrupted run resumes.
    parts : sequence of str, optional
        Which of "baselines", "two-layer", "deep" to run (default all).

    Returns
    -------
    list of dict, one per (case, seed): "case", "seed", "clean", "noisy", "outputs" (method ->
    array), "psnr" (method -> dB), "stops" (method -> iteration; colour: mean over channels),
    "seconds" (method -> s), "curves" ("two-layer" / "deep" -> (iterations, PSNR)), "info"
    (notes such as how BM3D ran, or "absent").
    """
    folder = None if cache is None else Path(cache)
    if folder is not None and not folder.is_dir():
        raise ValueError(f"cache directory {folder} does not exist; create it first")
    rows = []
    for case in CASES if cases is None else cases:
        x = np.asarray(case.load(), np.float64)
        wanted = [p for p in (parts or _PARTS) if p != "deep" or case.deep]
        for seed in seeds:
            rng = np.random.default_rng(seed)
            y = x + case.noise_std * rng.standard_normal(x.shape)
            row = dict(case=case.name, seed=seed, clean=x, noisy=y, outputs={"noisy": y},
                       stops={}, seconds={}, curves={}, info={})
            for name in wanted:
                fingerprint = _fingerprint(name, case)
                path = None if folder is None else folder / f"{case.name} seed {seed} {name}.npz"
                part = None if path is None else _load(path, fingerprint)
                if part is None:
                    part = _PARTS[name](case, x, y, seed, progress)
                    if path is not None:
                        _save(path, part, fingerprint)
                for key in ("outputs", "stops", "seconds", "info"):
                    row[key].update(part[key])
                if part["curve"] is not None:
                    row["curves"][name] = part["curve"]
            row["psnr"] = {m: _psnr(out, x) for m, out in row["outputs"].items()}
            rows.append(row)
    return rows


def _cell(values, digits=2):
    if len(values) < 2:
        return f"{np.mean(values):.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def _seeds(seeds) -> str:
    seeds = sorted(set(seeds))
    if len(seeds) == 1:
        return f"seed {seeds[0]}"
    if seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"seeds {seeds[0]}-{seeds[-1]}"
    return "seeds " + ", ".join(map(str, seeds))


def comparison_table(rows) -> str:
    """Markdown: the PSNR (dB) of each method per case, mean ± sample std over seeds, with the
    mean stopping iteration of each rule in parentheses; then the mean time per image (s);
    then notes (BM3D absent or how it ran on colour, the deep decoder's rule)."""
    cases = list(dict.fromkeys(r["case"] for r in rows))
    by_case = {c: [r for r in rows if r["case"] == c] for c in cases}
    titles = [f"{c} ({_seeds(r['seed'] for r in by_case[c])})" for c in cases]
    header = ["| method | " + " | ".join(titles) + " |", "|---|" + "---|" * len(cases)]
    psnr, seconds = list(header), list(header)
    for method in METHODS:
        cells, times = [], []
        for case in cases:
            mine = [r for r in by_case[case] if method in r["psnr"]]
            if not mine:
                cells.append("n/a")
                times.append("n/a")
                continue
            cell = _cell([r["psnr"][method] for r in mine])
            if method in mine[0]["stops"]:
                cell += f" ({np.mean([r['stops'][method] for r in mine]):.0f})"
            if len(mine) < len(by_case[case]):
                cell += f" [{_seeds(r['seed'] for r in mine)}]"
            cells.append(cell)
            spent = [r["seconds"][method] for r in mine if method in r["seconds"]]
            times.append(f"{np.mean(spent):.3g}" if spent else "-")
        if set(cells) != {"n/a"}:
            psnr.append(f"| {method} | " + " | ".join(cells) + " |")
        if set(times) - {"n/a", "-"}:
            seconds.append(f"| {method} | " + " | ".join(times) + " |")
    notes = ["PSNR in dB (data range 1), mean ± sample std over the noise seeds of the column "
             "(or of the cell, in brackets); (n) = mean stopping iteration."]
    infos = [r["info"] for r in rows]
    if any(i.get("bm3d") == "absent" for i in infos):
        notes.append(BM3D_ABSENT)
    elif any("bm3d" in i for i in infos):
        notes.append("BM3D gets the true sigma" + ("; colour: bm3d.bm3d_rgb (opponent colour "
                     "space)" if any(i.get("bm3d") == "bm3d_rgb" for i in infos) else "") +
                     ("; colour: per channel" if any(i.get("bm3d") == "per channel"
                                                    for i in infos) else "") + ".")
    rules = sorted({i["deep_rule"] for i in infos if "deep_rule" in i})
    if rules:
        notes.append(f"Deep decoder default stop: {', '.join(rules)}.")
    return "\n".join(psnr + ["", "Time per image (s, mean over seeds):", ""] + seconds +
                     [""] + notes)


#: Methods shown as images (or curves) in :func:`plot_comparison`.
SHOWN = ("noisy", "two-layer: discrepancy (sigma estimated)", DEEP_DEFAULT,
         "Gaussian blur (oracle std)", BM3D)


_FIT_COLOURS = {"two-layer": "C1", "deep": "C0"}


def _show(ax, signal, clean):
    if clean.ndim == 3:
        ax.imshow(np.clip(np.moveaxis(signal, 0, -1), 0, 1))
    elif clean.ndim == 2:
        ax.imshow(signal, cmap="gray", vmin=0, vmax=1)
    else:
        part = slice(0, min(clean.size, 600))
        ax.plot(signal[part], lw=0.6, color="C1")
        ax.plot(clean[part], lw=0.6, color="k", alpha=0.4)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_comparison(rows, path) -> Path:
    """One row per case: the clean signal, noisy input and chosen outputs (with PSNR), and
    the PSNR of each fit (two-layer, deep decoder) against iteration with its stops marked.

    ``rows``: :func:`compare`'s rows; the first seed of each case is shown.
    """
    firsts = list({r["case"]: r for r in reversed(list(rows))}.values())[::-1]
    columns = len(SHOWN) + 2
    fig = plots.figure(2.3 * columns, 2.5 * len(firsts))
    grid = fig.subplots(len(firsts), columns, squeeze=False)
    for axes, row in zip(grid, firsts):
        clean = row["clean"]
        _show(axes[0], clean, clean)
        axes[0].set_title("clean", fontsize=7)
        for ax, label in zip(axes[1:-1], SHOWN):
            if label not in row["outputs"]:
                ax.axis("off")
                ax.set_title(f"{label}\nn/a", fontsize=7)
                continue
            _show(ax, row["outputs"][label], clean)
            ax.set_title(f"{label}\n{row['psnr'][label]:.2f} dB", fontsize=7)
        axes[0].set_ylabel(row["case"])
        ax = axes[-1]
        for name, (iterations, curve) in sorted(row["curves"].items()):
            colour = _FIT_COLOURS[name]
            ax.plot(np.maximum(iterations, 1), curve, color=colour, lw=1, label=f"{name} fit")
            for label, stop in row["stops"].items():
                if label.startswith("two-layer" if name == "two-layer" else "deep"):
                    ax.axvline(max(stop, 1), color=colour, lw=0.6, ls="--")
        ax.axhline(row["psnr"]["noisy"], color="0.6", lw=0.8, ls=":")
        for label in ("Gaussian blur (oracle std)", BM3D):
            if label in row["psnr"]:
                ax.axhline(row["psnr"][label], color="k", lw=0.6,
                           ls="-." if label == BM3D else "--")
        # From just below the noisy PSNR: the first iterates (near G(C_0) ~ 0) are far lower.
        top = max([np.max(c) for _, c in row["curves"].values()] + [row["psnr"].get(BM3D, 0)])
        ax.set_ylim(row["psnr"]["noisy"] - 2, top + 1)
        ax.set_xscale("log")
        ax.set_xlabel("iteration (dashed: stops)")
        ax.set_ylabel("PSNR (dB)")
        ax.set_title(f"fits of {row['case']}, seed {row['seed']}\n"
                     "black: oracle blur --, BM3D -.", fontsize=7)
        ax.legend(fontsize=5, loc="lower right")
    return plots.write_png(fig, path)
