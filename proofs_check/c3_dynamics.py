"""C3 Dynamics: gradient descent follows the linearized prediction E10, the closer the wider.

E10 replaces the finite-width kernel K_tau = J_tau J_tau^T by its expectation Sigma, so the
predicted outputs are G_tau = y + (I - eta Sigma)^tau (G(C_0) - y), in closed form.  Two things
make the measured trajectory deviate: K_0 differs from Sigma by O(k^(-1/2)) (C2), and K_tau
drifts from K_0 as the weights move, by an amount that shrinks with the init scale (the lazy
regime) and with k.  We measure the worst deviation over tau <= T of the output vector,
dev(k) = max_tau ||G_tau - Ghat_tau|| / ||y||, for increasing k, in the lazy regime of E6
(iid init with ||G(C_0)|| ~ ||y||), and, to show where theory and measurement part ways, at the
small init ||G(C_0)|| ~ 0.1 ||y||.

Thresholds.  dev must shrink with k in the lazy regime: fitted log-log slope <= -0.3 (the
concentration of K_0 gives -0.5; the estimate from three widths of one seed scatters by about
0.1), and be small at the largest default width: <= 0.05 (issue 3's bound at k = 8192; the
measurement gives about 0.02 at k = 4096).

The theorem's regime (iid init, ||G(C_0)|| ~ 0.1 ||y||), thresholded too.  There the weights
travel far relative to their size and the masks change, so the deviation is larger; what can be
required of it, from first-order perturbation theory: (i) it shrinks as k grows, the claim's own
statement: each width's worst deviation below the previous width's (largest ratio of successive
values < 1); (ii) it is at most 1/0.1 = 10 times the lazy deviation at the same width, checked
at the largest width.  The deviation has two parts: the sampling error of the kernel, K_0 -
Sigma, which does not depend on the init scale at all (the masks 1[U c_j > 0] do not), and the
drift of the Jacobian, which to first order is the weights' movement over their scale omega:
the movement is set by the residual to fit, nearly the same in both regimes, while omega is 10x
smaller, so the drift is 10x the lazy drift and the sum at most 10x the lazy sum.  At small k
the first order overestimates (a mask flips only once), which is why (ii) is checked where k is
largest.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C3"
STATEMENT = ("the gradient-descent trajectory follows the linearized prediction (E10) as k grows "
             "(iid init at ||G(C_0)|| ~ ||y|| and ~ 0.1 ||y||)")

FILTER = md.filters.gaussian(2.0)
SIGNAL_MODES = 6
NOISE_STD = 0.5
INIT, LAZY_SCALE, SMALL_SCALE = "iid", 1.0, 0.1
MAX_SLOPE = -0.3
MAX_DEVIATION = 0.05
MAX_SMALL_TO_LAZY = LAZY_SCALE / SMALL_SCALE     # (ii) of the theorem's regime


@dataclass(frozen=True)
class Config:
    """Signal length, widths k and gradient steps."""

    n: int = 128
    widths: tuple = (256, 1024, 4096)
    steps: int = 300


DEFAULT = Config()
FULL = Config(n=1024, widths=(512, 2048, 8192, 32768), steps=1000)


def measure(u, y, widths, init, init_ratio, seed, steps):
    """Deviation curves ||G_tau - Ghat_tau|| / ||y|| (tau = 0..steps) for each width."""
    curves = {}
    for k in widths:
        gen = common.make_generator(u, y, k, init_ratio, seed, init)
        res, outputs = common.fit_with_outputs(gen, y, steps)
        curves[k] = common.prediction_deviation(gen, y, outputs, res.step_size)
    return curves


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    n, widths, steps = c.n, c.widths, c.steps
    rng = np.random.default_rng(seed + 1)
    y = md.data.bandlimited((n,), p=SIGNAL_MODES, seed=seed) + NOISE_STD * rng.standard_normal(n)
    lazy = measure(FILTER, y, widths, INIT, LAZY_SCALE, seed, steps)
    small = measure(FILTER, y, widths, INIT, SMALL_SCALE, seed, steps)
    worst = {k: float(c.max()) for k, c in lazy.items()}
    worst_small = {k: float(c.max()) for k, c in small.items()}
    slope = common.loglog_slope(widths, list(worst.values()))

    fig, axes = common.new_figure(2)
    for i, k in enumerate(widths):
        axes[0].plot(lazy[k], color=f"C{i}", label=f"k = {k}, ||G(C_0)|| ~ ||y||")
        axes[0].plot(small[k], ":", color=f"C{i}", label=f"k = {k}, ||G(C_0)|| ~ 0.1 ||y||")
    axes[0].set(xlabel="iteration", ylabel="||G_tau - prediction|| / ||y||", yscale="log",
                ylim=(1e-3, 1), title="deviation from E10 along the trajectory")
    axes[0].legend(fontsize=7)
    axes[1].loglog(widths, list(worst.values()), "o-", label=f"lazy (slope {slope:.2f})")
    axes[1].loglog(widths, list(worst_small.values()), "s:", label="small init")
    axes[1].loglog(widths, worst[widths[0]] * (np.array(widths) / widths[0]) ** -0.5, "--",
                   color="gray", label="k^(-1/2)")
    axes[1].set(xlabel="channels k", ylabel="worst deviation / ||y||",
                title="C3: worst deviation over the trajectory")
    common.label_widths(axes[1], widths)
    axes[1].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c3_dynamics")

    small_values = np.array([worst_small[k] for k in widths])
    checks = [common.Check("log-log slope of worst deviation", slope, "<=", MAX_SLOPE),
              common.Check(f"worst deviation at k = {widths[-1]}", worst[widths[-1]], "<=",
                           MAX_DEVIATION),
              common.Check(f"init {SMALL_SCALE:g} ||y||: max ratio of successive worst "
                           f"deviations", float(np.max(small_values[1:] / small_values[:-1])),
                           "<", 1.0),
              common.Check(f"init {SMALL_SCALE:g} ||y||: worst deviation / lazy one at "
                           f"k = {widths[-1]}", worst_small[widths[-1]] / worst[widths[-1]],
                           "<=", MAX_SMALL_TO_LAZY)]
    measured = dict(widths=list(widths), worst_deviation=worst,
                    worst_deviation_small_init=worst_small, slope=slope)
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
