"""C13 Inpainting follows A Sigma A^T: a fit through a mask or a blur follows E22, ends at E23.

Fitting the generator to measurements y = A x through a forward operator A (E21), the
linearised residual evolves with A Sigma A^T instead of Sigma, and the output follows
G_tau = Sigma A^T (A Sigma A^T)^+ (I - (I - eta A Sigma A^T)^tau) y from G_0 = 0 (E22), converging
to the minimum Sigma^{-1}-norm interpolant x_inf = Sigma A^T (A Sigma A^T)^+ y (E23).  We fit a
band-limited signal (6 Fourier modes, unit RMS) through a random mask that hides 40% of the
samples (1-D, several widths; and a 2-D image), and through a Gaussian blur (1-D, noise-free),
with the paired init (G_0 = 0, as E23 assumes) at 10x the unit-output scale (lazy), float64,
gradient descent at eta = 1 / lambda_max(A Sigma A^T) (power iteration), and measure
dev = max_tau ||G_tau - E22_tau|| / ||y|| over tau <= T and the distance
||G_T - x_inf|| / ||x_inf|| at the end.

Thresholds.  Both deviations come from the finite-width kernel K_0 = J_0 J_0^T, which differs
from Sigma by about (k/2)^(-1/2) in relative Frobenius norm with the paired init (C2 measures
the constant ~1 for k independent channels; the paired init has k/2), plus the drift of K_tau,
which the lazy init keeps smaller.  At k = 4096 that scale is 0.022: the thresholds of issue
13, dev <= 0.05 and ||G_T - x_inf|| <= 0.05 ||x_inf||, are 2.3 times it.  dev must also shrink
with k: fitted log-log slope <= -0.3 (the scale gives -0.5; three widths of one seed scatter by
about 0.1, as in C3).  "At convergence" is checked, not assumed:
E22 itself at T must lie within 1% of E23 (a property of A, Sigma and T alone; the error of the
CG solution of E23 is below 1e-8).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C13"
STATEMENT = "fitting through a mask or a blur follows E22 and converges to E23"

FILTER_1D = md.filters.gaussian(2.0)
FILTER_2D = md.filters.gaussian(1.0, ndim=2)
BLUR_STD = 2.0                      # the blur operator: a Gaussian of this std, taps summing to 1
SIGNAL_MODES = 6
MISSING = 0.4                       # fraction of samples the random mask hides
INIT, INIT_STD_FACTOR = "paired", 10.0   # G(C_0) = 0, init_std 10x the unit-output scale: lazy
MAX_DEVIATION = 0.05
MAX_LIMIT_DISTANCE = 0.05
MAX_SLOPE = -0.3
MAX_CONVERGENCE_GAP = 0.01


@dataclass(frozen=True)
class Config:
    """1-D length, widths k (the mask; the blur runs at the largest), steps, and the 2-D case."""

    n: int = 128
    widths: tuple = (256, 1024, 4096)
    steps: int = 100
    shape_2d: tuple = (24, 24)
    channels_2d: int = 4096


DEFAULT = Config()
FULL = Config(n=1024, widths=(1024, 4096, 16384), steps=100, shape_2d=(64, 64),
              channels_2d=16384)


def blur_operator(shape):
    """A Gaussian blur of std BLUR_STD whose taps sum to 1 (it keeps the mean brightness)."""
    taps = md.filters.gaussian(BLUR_STD, ndim=len(shape), normalize=False)
    return md.operators.Blur(taps / taps.sum(), shape)


def measure(u, A, x, channels, seed, steps):
    """Fit G through A to y = A x; return the deviation curve from E22, the output at the end,
    E22's last prediction and E23."""
    shape = A.input_shape
    y = A.forward(x)
    eta = 1.0 / md.spectral.normal_lambda_max(u, shape, A)
    omega = INIT_STD_FACTOR * md.generator.default_init_std(md.filters.as_taps(u, len(shape)))
    gen = md.Generator(u, shape, channels, init_std=omega, seed=seed, dtype=np.float64,
                       init=INIT)
    _, outputs = common.fit_with_outputs(gen, y, steps, step_size=eta, operator=A)
    predicted = md.spectral.predict_reconstruction(u, shape, A, y, np.arange(steps + 1), eta)
    axes = tuple(range(1, outputs.ndim))
    deviation = np.sqrt(np.sum((outputs - predicted) ** 2, axis=axes)) / np.linalg.norm(y)
    limit = md.spectral.interpolant(u, shape, A, y)
    return dict(deviation=deviation, output=outputs[-1], predicted=predicted[-1], limit=limit,
                worst=float(deviation.max()),
                limit_distance=float(np.linalg.norm(outputs[-1] - limit) / np.linalg.norm(limit)),
                convergence_gap=float(np.linalg.norm(predicted[-1] - limit)
                                      / np.linalg.norm(limit)))


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    rng = np.random.default_rng(seed + 1)
    x = md.data.bandlimited((c.n,), p=SIGNAL_MODES, seed=seed)
    keep = rng.random(c.n) >= MISSING
    mask = md.operators.Mask(keep)
    widths = c.widths
    masked = {k: measure(FILTER_1D, mask, x, k, seed, c.steps) for k in widths}
    blurred = measure(FILTER_1D, blur_operator((c.n,)), x, widths[-1], seed, c.steps)
    x2 = md.data.bandlimited(c.shape_2d, p=SIGNAL_MODES, seed=seed)
    mask2 = md.operators.Mask(rng.random(c.shape_2d) >= MISSING)
    image = measure(FILTER_2D, mask2, x2, c.channels_2d, seed, c.steps)
    worst = {k: m["worst"] for k, m in masked.items()}
    slope = common.loglog_slope(widths, list(worst.values()))
    cases = {f"1-D mask, k = {widths[-1]}": masked[widths[-1]],
             f"1-D blur, k = {widths[-1]}": blurred,
             f"2-D mask {c.shape_2d[0]}x{c.shape_2d[1]}, k = {c.channels_2d}": image}

    fig, axes = common.new_figure(3)
    for i, k in enumerate(widths):
        axes[0].plot(masked[k]["deviation"], color=f"C{i}", label=f"1-D mask, k = {k}")
    axes[0].plot(blurred["deviation"], "--", color="C3", label=f"1-D blur, k = {widths[-1]}")
    axes[0].plot(image["deviation"], ":", color="C4", label=f"2-D mask, k = {c.channels_2d}")
    axes[0].set(xlabel="iteration", ylabel="||G_tau - E22_tau|| / ||y||", yscale="log",
                ylim=(1e-3, 1), title="deviation from E22 along the trajectory")
    axes[0].legend(fontsize=7)
    last = masked[widths[-1]]
    axes[1].plot(x, color="0.6", lw=2, label="signal x")
    axes[1].plot(np.flatnonzero(keep), x[keep], "k.", ms=3, label=f"measured ({keep.mean():.0%})")
    axes[1].plot(last["limit"], color="C1", label="E23 interpolant")
    axes[1].plot(last["output"], "--", color="C0", label=f"fit after {c.steps} steps")
    axes[1].set(xlabel="sample", title=f"C13: inpainting, k = {widths[-1]}")
    axes[1].legend(fontsize=7)
    axes[2].loglog(widths, list(worst.values()), "o-", label=f"1-D mask (slope {slope:.2f})")
    axes[2].loglog(widths, worst[widths[0]] * (np.array(widths) / widths[0]) ** -0.5, "--",
                   color="gray", label="k^(-1/2)")
    axes[2].set(xlabel="channels k", ylabel="worst deviation / ||y||",
                title="worst deviation from E22")
    common.label_widths(axes[2], widths)
    axes[2].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c13_inpainting")

    checks = [common.Check("log-log slope of the 1-D mask's worst deviation", slope, "<=",
                           MAX_SLOPE)]
    for name, m in cases.items():
        checks += [common.Check(f"{name}: worst deviation from E22", m["worst"], "<=",
                                MAX_DEVIATION),
                   common.Check(f"{name}: ||G_T - E23|| / ||E23||", m["limit_distance"], "<=",
                                MAX_LIMIT_DISTANCE),
                   common.Check(f"{name}: ||E22_T - E23|| / ||E23||", m["convergence_gap"],
                                "<=", MAX_CONVERGENCE_GAP)]
    measured = dict(widths=list(widths), worst_deviation_mask=worst, slope=slope,
                    **{name: {key: m[key] for key in ("worst", "limit_distance",
                                                      "convergence_gap")}
                       for name, m in cases.items()})
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
