"""The regime map: where the linearized theory (E10, E11) holds, over width x init scale.

Heckel & Soltanolkotabi's theorem is about small random init and very wide networks: with C_0
iid N(0, omega^2) at ||G(C_0)|| ~ xi ||y||, once k >= C n / xi^8 (C depends on the filter and is
not given numerically) the bound E11 holds with eps = xi.  How wide is wide enough in practice,
and how small an init is too small?  Each task fits one generator by gradient descent and
measures how far the fit is from the theory; a grid of tasks maps it.

One task, parameters (n, k, init_ratio, filter, seed), all else fixed (the module constants):
x = ``md.data.bandlimited((n,), p=SIGNAL_MODES, seed)`` (unit RMS), white noise z of the same
norm (seed + 1), y = x + z; the generator of width k with the filter (a text spec of the command
line, ``md.filters.parse_filter``), the iid init (E6) at init_std = ``md.init_std_for(u, y,
init_ratio)``, so that E||G(C_0)|| = init_ratio ||y||, seed ``seed``; float64, ``steps`` gradient
steps of ``step_fraction / lambda_max``.  Its row of regime.csv:

- ``deviation`` = max over tau of ||G_tau - Ghat_tau|| / ||y||, Ghat the linearized prediction
  (E10) from the same start G(C_0);
- ``eps`` = the smallest eps for which E11 holds at every tau (the exact linear term, since x is
  band-limited but not in a top-p eigenspace for every filter);
- ``best_error`` = min over tau of ||G_tau - x|| / ||z||;
- ``mask_flipped`` = the fraction of the k x n ReLU mask entries 1[U c_j > 0] that differ between
  C_0 and the final weights (the generator's convolution, E1);
- ``seconds`` = the task's wall time (the only column that depends on the machine).

Each task's result depends only on its parameters: the same CSV, every column but ``seconds``,
bit for bit, in-process or on any Dask cluster (``--scheduler``, see ``proofs_check._engine``).

Reading the map.  In the lazy regime (init ratio ~ 1) the deviation is the kernel's sampling
error K_0 - Sigma (C2) and falls like k^(-1/2).  As the init ratio falls, the weights travel
farther relative to their size, the masks flip, the Jacobian drifts, and the deviation grows.
eps also carries ||G(C_0)||: the theorem's bound is for G(C_0) ~ 0, so large init ratios pay
for their start in eps even where the dynamics are linear.
"""
from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

import minidip as md
from minidip._io import atomic_write
from proofs_check import _common as common
from proofs_check import _engine as engine

WIDTHS = (256, 1024, 4096, 16384)
INIT_RATIOS = (0.03, 0.1, 0.3, 1.0)
SIZES = (128,)
FILTERS = ("gaussian:2",)
SEEDS = (0,)
STEPS = 400
STEP_FRACTION = 0.25                # step size = STEP_FRACTION / lambda_max
SIGNAL_MODES = 6
EPS_LINE = 0.1                      # "the bound holds" means eps <= EPS_LINE
THEOREM_EXPONENT = 8                # k >= C n / xi^8 for eps = xi

COLUMNS = ("n", "k", "init_ratio", "filter", "seed", "deviation", "eps", "best_error",
           "mask_flipped", "seconds")


def run_task(n, k, init_ratio, filter, seed, steps=STEPS, step_fraction=STEP_FRACTION) -> dict:
    """Fit one generator and measure it against E10 and E11: one row of regime.csv.

    Parameters
    ----------
    n : int
        Signal length (1-D).
    k : int
        Channels (even).
    init_ratio : float
        E||G(C_0)|| / ||y|| of the iid init.
    filter : str
        Filter spec, e.g. ``"gaussian:2"`` (:func:`minidip.filters.parse_filter`).
    seed : int
        Seed of x (``seed``), z (``seed + 1``) and C_0 (``seed``).
    steps : int
    step_fraction : float
        Step size as a fraction of 1/lambda_max (in (0, 2)).

    Returns
    -------
    dict with the keys of :data:`COLUMNS`.
    """
    start = time.perf_counter()
    u = md.filters.parse_filter(filter, ndim=1)
    x, z = common.signal_and_noise((n,), SIGNAL_MODES, seed)
    y = x + z
    gen = md.Generator(u, (n,), k, init_std=md.init_std_for(u, y, init_ratio), seed=seed,
                       dtype=np.float64, init="iid")
    eta = step_fraction / float(md.spectral.eigenvalues(gen.taps, gen.shape).max())
    res, outputs = common.fit_with_outputs(gen, y, steps, step_size=eta, clean=x)
    deviation = common.prediction_deviation(gen, y, outputs, res.step_size)
    bound = md.spectral.denoising_bound(gen.taps, gen.shape, x, z, np.arange(steps + 1),
                                        res.step_size)
    error = res.history["error"]
    flipped = (md.generator.convolve(gen.init_weights(), gen.taps) > 0) \
        != (md.generator.convolve(res.weights, gen.taps) > 0)
    return dict(n=int(n), k=int(k), init_ratio=float(init_ratio), filter=str(filter),
                seed=int(seed), deviation=float(deviation.max()),
                eps=md.spectral.measured_eps(error, bound, np.linalg.norm(y)),
                best_error=float(error.min() / np.linalg.norm(z)),
                mask_flipped=float(flipped.mean()), seconds=time.perf_counter() - start)


def grid(widths=WIDTHS, init_ratios=INIT_RATIOS, sizes=SIZES, filters=FILTERS, seeds=SEEDS,
         steps=STEPS, step_fraction=STEP_FRACTION) -> list[dict]:
    """The tasks of a grid, in the order of the CSV rows (n, filter, init_ratio, k, seed).

    Raises
    ------
    ValueError naming the first bad value (a filter spec, a width, a size, a ratio).
    """
    steps = md.validation.positive_int(steps, "steps")
    if not 0 < step_fraction < 2:
        raise ValueError(f"step_fraction must lie in (0, 2) (a fraction of 1/lambda_max, "
                         f"stable below 2), got {step_fraction!r}")
    for ratio in init_ratios:
        md.validation.positive(ratio, "init ratio")
    tasks = []
    for n, spec, ratio, k, seed in itertools.product(sizes, filters, init_ratios, widths, seeds):
        if 2 * SIGNAL_MODES + 1 > n:
            raise ValueError(f"n = {n} is too short for a signal of {SIGNAL_MODES} modes; "
                             f"use n >= {2 * SIGNAL_MODES + 1}")
        md.Generator(md.filters.parse_filter(spec, ndim=1), (n,), k, seed=seed)   # validates
        tasks.append(dict(n=int(n), k=int(k), init_ratio=float(ratio), filter=str(spec),
                          seed=int(seed), steps=steps, step_fraction=float(step_fraction)))
    if not tasks:
        raise ValueError("the grid is empty; give at least one value of each parameter")
    return tasks


def csv_text(rows) -> str:
    """The rows as CSV with the :data:`COLUMNS` header; floats written exactly (repr)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([repr(row[c]) if isinstance(row[c], float) else row[c] for c in COLUMNS])
    return buffer.getvalue()


def read_csv(path) -> list[dict]:
    """Rows of a regime.csv, with numbers parsed."""
    types = dict(n=int, k=int, init_ratio=float, filter=str, seed=int)
    with open(path, newline="") as file:
        return [{c: types.get(c, float)(row[c]) for c in COLUMNS} for row in csv.DictReader(file)]


# --------------------------------------------------------------------------------------------
# The figure

def plot(rows, path, steps=STEPS, step_fraction=STEP_FRACTION) -> None:
    """regime.png: for each (n, filter), the worst deviation against k per init ratio with the
    k^(-1/2) law and the theorem's k^(-1/8), and the map of the deviation over width x init
    ratio with the cells where E11 holds with eps <= EPS_LINE marked and the theorem's width
    requirement drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    cases = sorted({(r["n"], r["filter"]) for r in rows})
    fig, axes = plt.subplots(len(cases), 2, figsize=(11.5, 4.2 * len(cases)), squeeze=False)
    for (n, spec), (left, right) in zip(cases, axes):
        mine = [r for r in rows if (r["n"], r["filter"]) == (n, spec)]
        widths = sorted({r["k"] for r in mine})
        ratios = sorted({r["init_ratio"] for r in mine})
        dev, eps = (np.full((len(ratios), len(widths)), np.nan) for _ in range(2))
        for i, ratio in enumerate(ratios):
            for j, k in enumerate(widths):
                cell = [r for r in mine if r["init_ratio"] == ratio and r["k"] == k]
                if cell:
                    dev[i, j] = np.mean([r["deviation"] for r in cell])
                    eps[i, j] = max(r["eps"] for r in cell)          # the worst seed
        k_arr = np.array(widths, float)
        for i, ratio in enumerate(ratios):
            left.loglog(k_arr, dev[i], "o-", color=plt.cm.viridis(i / max(1, len(ratios) - 1)),
                        label=f"||G(C_0)|| ~ {ratio:g} ||y||")
        left.loglog(k_arr, dev[-1, 0] * (k_arr / k_arr[0]) ** -0.5, "--", color="gray",
                    label=f"k^(-1/2) from the init ratio {ratios[-1]:g}")
        left.loglog(k_arr, (n / k_arr) ** (1 / THEOREM_EXPONENT), ":", color="k",
                    label=f"theorem: xi = (C n / k)^(1/{THEOREM_EXPONENT}), C = 1")
        left.set(xlabel="channels k", ylabel="worst ||G_tau - E10|| / ||y||",
                 title=f"deviation from E10, n = {n}, {spec} (mean over seeds)")
        common.label_widths(left, widths)
        left.legend(fontsize=7)

        def edges(values):
            """Cell edges halfway between values on a log axis."""
            logs = np.log(np.asarray(values, float))
            step = np.diff(logs) if logs.size > 1 else np.array([1.0])
            return np.exp(np.concatenate([[logs[0] - step[0] / 2], logs[:-1] + step / 2,
                                          [logs[-1] + step[-1] / 2]]))

        k_edges, r_edges = edges(widths), edges(ratios)
        mesh = right.pcolormesh(k_edges, r_edges, dev, norm=LogNorm(), cmap="Blues")
        fig.colorbar(mesh, ax=right, label="worst deviation / ||y|| (mean over seeds)")
        for i, ratio in enumerate(ratios):
            for j, k in enumerate(widths):
                if not np.isfinite(eps[i, j]):
                    continue
                holds = eps[i, j] <= EPS_LINE
                right.text(k, ratio, f"eps {eps[i, j]:.2g}", ha="center", va="center",
                           fontsize=7, fontweight="bold" if holds else "normal",
                           color="k" if holds else "dimgray",
                           bbox=dict(boxstyle="round", fc="white", ec="C2" if holds else "C3",
                                     lw=1.2))
        fine_k = np.geomspace(k_edges[0], k_edges[-1], 100)
        right.plot(fine_k, (n / fine_k) ** (1 / THEOREM_EXPONENT), ":", color="k",
                   label=f"theorem's width for eps = init ratio xi: k = C n / xi^"
                         f"{THEOREM_EXPONENT}, C = 1 (it promises nothing below)")
        right.set(xscale="log", yscale="log", xlim=(k_edges[0], k_edges[-1]),
                  ylim=(r_edges[0], r_edges[-1]), xlabel="channels k",
                  ylabel="init ratio ||G(C_0)|| / ||y||",
                  title=f"eps of E11 (worst seed): green frame where eps <= {EPS_LINE:g}")
        right.set_xticks(widths, [str(k) for k in widths])
        right.set_yticks(ratios, [f"{r:g}" for r in ratios])
        right.minorticks_off()
        right.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle(f"iid init, {steps} steps of {step_fraction:g}/lambda_max, "
                 f"x: {SIGNAL_MODES} modes, ||z|| = ||x||", fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    atomic_write(path, lambda file: file.write(buffer.getvalue()))


# --------------------------------------------------------------------------------------------
# Command line

def run(tasks, out, scheduler=None, progress=None) -> list[dict]:
    """Run the tasks (in-process, or on Dask), write regime.csv, regime.png and regime.json
    (the grid's fixed parameters) into ``out``; return the rows in task order."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = engine.run_tasks(run_task, tasks, scheduler, on_result=progress)
    text = csv_text(rows)
    atomic_write(out / "regime.csv", lambda file: file.write(text.encode()))
    fixed = dict(steps=tasks[0]["steps"], step_fraction=tasks[0]["step_fraction"],
                 signal_modes=SIGNAL_MODES, init="iid", dtype="float64",
                 noise="white, ||z|| = ||x||, seed + 1", eps_line=EPS_LINE)
    atomic_write(out / "regime.json",
                 lambda file: file.write(json.dumps(fixed, indent=2).encode()))
    plot(rows, out / "regime.png", fixed["steps"], fixed["step_fraction"])
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m proofs_check.regime",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS), metavar="K")
    parser.add_argument("--init-ratios", type=float, nargs="+", default=list(INIT_RATIOS),
                        metavar="R", help="E||G(C_0)|| / ||y|| of the iid init")
    parser.add_argument("--n", type=int, nargs="+", default=list(SIZES), metavar="N",
                        help="signal lengths (1-D)")
    parser.add_argument("--filters", nargs="+", default=list(FILTERS), metavar="SPEC",
                        help='filter specs, e.g. gaussian:2 triangle:3 "random:5:1"')
    parser.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), metavar="S")
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--step-fraction", type=float, default=STEP_FRACTION,
                        help="step size as a fraction of 1/lambda_max")
    parser.add_argument("--out", default=str(common.DEFAULT_OUT),
                        help="folder for regime.csv, regime.png, regime.json")
    parser.add_argument("--scheduler", metavar="ADDRESS|local",
                        help="run the tasks on Dask: a scheduler's address, or 'local' for a "
                             "LocalCluster (needs the cluster extra); default: in-process")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    prog = "python -m proofs_check.regime"
    try:
        tasks = grid(args.widths, args.init_ratios, args.n, args.filters, args.seeds,
                     args.steps, args.step_fraction)
    except ValueError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    engine_name = args.scheduler or "in-process"
    print(f"{len(tasks)} fits on {engine_name}; writing {args.out}/regime.csv and regime.png")
    start = time.perf_counter()

    def progress(index, row):
        print(f"  n={row['n']} k={row['k']} init_ratio={row['init_ratio']:g} "
              f"{row['filter']} seed={row['seed']}: deviation {row['deviation']:.3g}, "
              f"eps {row['eps']:.3g}, best error {row['best_error']:.3g}, masks flipped "
              f"{row['mask_flipped']:.3g} ({row['seconds']:.1f} s)", flush=True)

    try:
        run(tasks, args.out, args.scheduler, progress)
    except engine.SchedulerError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:                     # a fit failed (e.g. diverged): say which
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
