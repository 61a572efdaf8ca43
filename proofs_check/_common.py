"""What every claim shares: its result record, checks against thresholds, figures, a CLI."""
from __future__ import annotations

import argparse
import json
import operator
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from minidip._io import atomic_write

DEFAULT_OUT = Path("figures")

_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}


@dataclass
class Check:
    """One measured figure against its threshold: ``value op threshold``."""

    name: str
    value: float
    op: str
    threshold: float

    @property
    def passed(self) -> bool:
        return bool(np.isfinite(self.value)) and _OPS[self.op](self.value, self.threshold)

    def __str__(self):
        return f"{self.name} = {self.value:.3g} {self.op} {self.threshold:.3g}"


@dataclass
class ClaimResult:
    """The outcome of one claim: what was measured, against which thresholds, and where the figure is."""

    claim: str
    statement: str
    checks: list[Check]
    measured: dict = field(default_factory=dict)
    figure: str | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def summary(self) -> str:
        return "; ".join(str(c) for c in self.checks)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"] = self.passed
        d["checks"] = [dict(asdict(c), passed=c.passed) for c in self.checks]
        return _jsonable(d)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else str(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def new_figure(ncols=1, width=5.0, height=3.6):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, axes[0]


def save_figure(fig, out, name: str) -> str:
    """Write ``out/name.png`` atomically and close the figure."""
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.png"
    fig.tight_layout()
    atomic_write(path, lambda file: fig.savefig(file, format="png", dpi=110))
    plt.close(fig)
    return str(path)


def label_widths(ax, widths):
    """Tick a log-scaled x axis at the widths k, labelled plainly."""
    ax.set_xticks(list(widths), [str(k) for k in widths])
    ax.minorticks_off()


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def pick(config, full, default, full_config):
    """The config a claim runs: the one given, else its FULL or DEFAULT instance."""
    if config is not None:
        return config
    return full_config if full else default


def timed(run):
    """Wrap a claim's run() so that its result records the wall time."""
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        result = run(*args, **kwargs)
        result.seconds = time.perf_counter() - start
        return result
    wrapper.__doc__, wrapper.__name__ = run.__doc__, run.__name__
    return wrapper


def parse_args(description: str, argv=None):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="folder for the figure(s)")
    parser.add_argument("--full", action="store_true", help="paper-scale sizes (slower)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def print_result(result: ClaimResult, file=sys.stdout):
    status = "PASS" if result.passed else "FAIL"
    print(f"{result.claim} {status}  {result.statement}", file=file)
    for check in result.checks:
        print(f"    [{'ok' if check.passed else 'FAIL'}] {check}", file=file)
    if result.figure:
        print(f"    figure: {result.figure}", file=file)


def claim_main(module, argv=None) -> int:
    """``python -m proofs_check.<claim>``: run one claim, print it, exit non-zero on failure."""
    args = parse_args(module.__doc__.splitlines()[0], argv)
    result = module.run(out=args.out, full=args.full, seed=args.seed)
    print_result(result)
    return 0 if result.passed else 1


def write_report(results, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps([r.to_dict() for r in results], indent=2) + "\n"
    atomic_write(path, lambda file: file.write(text.encode()))


# --------------------------------------------------------------------------------------------
# Experiments shared by several claims

def make_generator(u, target, channels, init_ratio, seed, init="iid", dtype=np.float64,
                   backend=None):
    """A generator with init_std = init_std_for(u, target, init_ratio).

    With ``init="iid"`` its output at initialization has E||G(C_0)|| = init_ratio ||target||;
    with ``init="paired"`` G(C_0) = 0 and init_ratio only sets how lazy the dynamics are.
    """
    import minidip as md
    omega = md.init_std_for(u, target, init_ratio=init_ratio)
    return md.Generator(u, target.shape, channels, init_std=omega, seed=seed, dtype=dtype,
                        backend=backend, init=init)


def signal_and_noise(shape, modes, seed):
    """A band-limited signal of ``modes`` Fourier modes (unit RMS) and white noise of its norm."""
    import minidip as md
    signal = md.data.bandlimited(shape, p=modes, seed=seed)
    noise = md.data.white_noise(shape, seed=seed + 1)
    return signal, noise * (np.linalg.norm(signal) / np.linalg.norm(noise))


def residual_norms(result) -> np.ndarray:
    """||G(C_tau) - y|| for every recorded tau, from the loss 1/2 ||G - y||^2 (E4)."""
    return np.sqrt(2 * result.history["loss"])


def predicted_residual_norms(u, r0, steps, step_size) -> np.ndarray:
    """||r_tau|| of the linearized dynamics (E10) for tau = 0..steps."""
    import minidip as md
    spectra = md.spectral.predict_residual_spectra(u, r0.shape, r0, np.arange(steps + 1),
                                                   step_size)
    return np.sqrt(np.sum(np.abs(spectra.reshape(steps + 1, -1)) ** 2, axis=1))


def steps_to_fit(norms, fraction=0.9) -> float:
    """First tau at which a fraction of the target is fitted, ||r_tau|| <= (1 - fraction) ||r_0||.

    Linear interpolation between iterations, so ratios of such counts are not quantized; inf if
    it never happens within the trajectory.
    """
    norms = np.asarray(norms, float)
    level = (1 - fraction) * norms[0]
    below = np.flatnonzero(norms <= level)
    if below.size == 0:
        return np.inf
    t = int(below[0])
    if t == 0:
        return 0.0
    a, b = np.log(norms[t - 1]), np.log(norms[t])
    return t - 1 + (a - np.log(level)) / (a - b)


def fit_with_outputs(gen, y, steps, **kwargs):
    """md.fit that also returns the outputs G(C_tau) for tau = 0..steps, shape (steps+1, *y.shape)."""
    import minidip as md
    snaps = md.observers.Snapshots(range(steps + 1))
    res = md.fit(gen, y, steps, observers=[snaps], **kwargs)
    return res, snaps.stack()


def prediction_deviation(gen, y, outputs, step_size) -> np.ndarray:
    """||G_tau - Ghat_tau|| / ||y|| for each tau: measured outputs vs the linearized E10 from the
    same start G(C_0)."""
    import minidip as md
    g0 = gen.forward(gen.init_weights()).astype(np.float64)
    taus = np.arange(outputs.shape[0])
    predicted = md.spectral.predict_outputs(gen.taps, gen.shape, y, g0, taus, step_size)
    axes = tuple(range(1, outputs.ndim))
    return np.sqrt(np.sum((outputs - predicted) ** 2, axis=axes)) / np.linalg.norm(y)
