"""C8 The filter is the cause: without an interpolating filter there is no structure-first fit.

With the delta filter, Sigma = I/2 (E8, E9): every Fourier mode is fitted at the same rate, so
a smooth signal and white noise are fitted equally fast, and the early-stopped output is a
scalar multiple of y (E11), which cannot beat the best scalar shrinkage c y.  A random filter's
eigenvalues fluctuate with frequency but are not ordered by it, so again signal and noise are
fitted at comparable speeds.  A Gaussian filter, run alongside, shows the contrast.

Measured, for each filter: the ratio of the steps to fit 90% of white noise and of a
low-frequency signal of the same norm (as in C4), and the denoising gain of the oracle-stopped
output over the best scalar shrinkage, 20 log10(min_c ||c y - x|| / min_tau ||G_tau - x||) dB,
for y = x + z with ||z|| = ||x||.

Thresholds.  Same speed: |log ratio| <= log 3.  For the delta filter E10 predicts exactly 1; a
random filter's eigenvalues vary by about a factor 2 across frequencies (lambda_min/lambda_max
~ 0.46 for the default taps), so ratios within a factor 3 mean "no ordering", against ~200 for
the Gaussian filter (C4).  No gain: <= 1 dB; the linear theory gives <= 0 dB for the delta
filter (the iterates are c y with c on a discrete grid), and 1 dB allows the random filter's
mild spectral variation.  The Gaussian contrast must gain >= 3 dB (E12 predicts ~8 dB here).
The step size is half the default so that the delta filter's speed is resolved over several
steps (at 1/lambda_max it fits every mode in one step).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common
from proofs_check.c4_structure_first import measure as measure_speeds

CLAIM = "C8"
STATEMENT = ("with a delta or random filter signal and noise are fitted alike; no denoising gain "
             "(paired init, 10x lazy scale)")

FILTERS = {"delta": md.filters.delta(), "random": md.filters.random(5, seed=0),
           "gaussian": md.filters.gaussian(2.0)}
NON_INTERPOLATING = ("delta", "random")
SIGNAL_MODES = 6
INIT, INIT_RATIO = "paired", 10.0   # G(C_0) = 0, lazy (see C4)
STEP_FRACTION = 0.5                 # step size = STEP_FRACTION / lambda_max
MAX_LOG_RATIO = float(np.log(3.0))
MAX_GAIN_DB = 1.0
MIN_CONTRAST_GAIN_DB = 3.0



@dataclass(frozen=True)
class Config:
    """Signal length, width k and gradient steps."""

    n: int = 128
    channels: int = 1024
    steps: int = 400


DEFAULT = Config()
FULL = Config(n=1024, channels=8192, steps=800)


def shrinkage_error(x, y) -> float:
    """min_c ||c y - x||, the best a scalar multiple of y can do."""
    return float(np.sqrt(max(x @ x - (x @ y) ** 2 / (y @ y), 0.0)))


def denoising_gain_db(u, x, z, channels, init, init_ratio, seed, steps, step_size=None):
    """Gain (dB) of the oracle-stopped fit of y = x + z over the best scalar shrinkage of y."""
    y = x + z
    gen = common.make_generator(u, y, channels, init_ratio, seed, init)
    res = md.fit(gen, y, steps, step_size=step_size, clean=x, stop="oracle")
    best = float(res.history["error"].min())
    return 20 * np.log10(shrinkage_error(x.ravel(), y.ravel()) / best), res


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    n, channels, steps = c.n, c.channels, c.steps
    x, z = common.signal_and_noise((n,), SIGNAL_MODES, seed)
    rows, curves = {}, {}
    for name, u in FILTERS.items():
        eta = STEP_FRACTION / md.spectral.eigenvalues(u, (n,)).max()
        speeds = measure_speeds(u, x, z, channels, INIT, INIT_RATIO, seed, steps, step_size=eta)
        gain, res = denoising_gain_db(u, x, z, channels, INIT, INIT_RATIO, seed, steps, eta)
        rows[name] = dict(ratio=speeds["ratio"], predicted_ratio=speeds["predicted_ratio"],
                          gain_db=gain, stopped_at=res.stopped_at)
        curves[name] = (speeds, res.history["error"] / np.linalg.norm(z))

    fig, axes = common.new_figure(2)
    for (name, (speeds, errors)), color in zip(curves.items(), ("C0", "C1", "C2")):
        for kind, style in (("signal", "-"), ("noise", ":")):
            norms = speeds[kind]["measured"]
            axes[0].plot(norms / norms[0], style, color=color, label=f"{name}: {kind}")
        axes[1].plot(errors, color=color, label=f"{name} ({rows[name]['gain_db']:+.1f} dB)")
    axes[0].set(xscale="symlog", xlim=(0, steps), xlabel="iteration",
                ylabel="||r_tau|| / ||r_0||", title="fitting a signal vs noise")
    axes[1].axhline(shrinkage_error(x, x + z) / np.linalg.norm(z), color="gray", lw=0.8,
                    label="best scalar shrinkage")
    axes[1].set(xscale="symlog", xlim=(0, steps), xlabel="iteration",
                ylabel="||G_tau - x|| / ||z||", title="denoising y = x + z")
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    figure = common.save_figure(fig, out, "c8_filter_is_cause")

    checks = []
    for name in NON_INTERPOLATING:
        checks.append(common.Check(f"{name}: |log speed ratio|", abs(np.log(rows[name]["ratio"])),
                                   "<=", MAX_LOG_RATIO))
        checks.append(common.Check(f"{name}: gain dB", rows[name]["gain_db"], "<=", MAX_GAIN_DB))
    checks.append(common.Check("gaussian: gain dB", rows["gaussian"]["gain_db"], ">=",
                               MIN_CONTRAST_GAIN_DB))
    return common.ClaimResult(CLAIM, STATEMENT, checks, rows, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
