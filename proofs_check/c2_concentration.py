"""C2 Concentration: the finite-width kernel J_0 J_0^T approaches Sigma like k^(-1/2).

K_0 = J_0 J_0^T = sum_j v_j^2 D_j U U^T D_j (E7) is an average of k independent random
matrices with mean Sigma (E8), since v_j^2 = 1/k.  Its relative Frobenius distance
||K_0 - Sigma||_F / ||Sigma||_F therefore falls like k^(-1/2), with a constant set by the
variance of one channel's 1[h_i > 0] 1[h_l > 0] a(i - l).  We measure it exactly (no N x N
matrix, spectral.kernel_concentration) at widths from 64 to 16384, averaged over a few seeds.

Thresholds.  The fitted log-log slope must lie within 0.1 of -1/2: the mean of SEEDS draws at
each width has a relative spread of about (2 SEEDS N)^(-1/2) here, which moves the slope over
a 256-fold range of k by far less than 0.1, so a slope outside [-0.6, -0.4] would mean the
kernel is not an average of independent channels.  And the distance at k = 16384 must be below
0.02, the figure issue 3 sets at k = 65536 with a 2x margin for the smaller k; k^(-1/2) from
the k = 64 value predicts about 0.01.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C2"
STATEMENT = ("||J_0 J_0^T - Sigma||_F / ||Sigma||_F falls like k^(-1/2) (iid init; K_0 does not "
             "depend on its scale)")

FILTER = md.filters.gaussian(2.0)
SLOPE, SLOPE_TOLERANCE = -0.5, 0.1
MAX_DISTANCE = 0.02


@dataclass(frozen=True)
class Config:
    """Grid, widths k and seeds averaged at each width."""

    shape: tuple = (64,)
    widths: tuple = (64, 256, 1024, 4096, 16384)
    seeds: int = 3


DEFAULT = Config()
FULL = Config(shape=(256,), widths=DEFAULT.widths + (65536,), seeds=5)


def measure(u, shape, widths, seeds, seed=0, init="iid"):
    """Mean over seeds of ||K_0 - Sigma||_F / ||Sigma||_F at each width (E7, E8)."""
    out = {}
    for k in widths:
        values = []
        for s in range(seeds):
            gen = md.Generator(u, shape, k, seed=seed * 1000 + s, dtype=np.float64,
                               backend="numpy", init=init)
            values.append(md.spectral.kernel_concentration(gen, gen.init_weights()))
        out[k] = float(np.mean(values))
    return out


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    u, shape, widths, seeds = FILTER, c.shape, c.widths, c.seeds
    distance = measure(u, shape, widths, seeds, seed)
    values = np.array([distance[k] for k in widths])
    slope = common.loglog_slope(widths, values)

    fig, (ax,) = common.new_figure()
    ax.loglog(widths, values, "o-", label=f"measured (slope {slope:.3f})")
    ax.loglog(widths, values[0] * (np.array(widths) / widths[0]) ** -0.5, "--", color="gray",
              label="k^(-1/2)")
    ax.set(xlabel="channels k", ylabel="||J0 J0^T - Sigma||_F / ||Sigma||_F",
           title=f"C2: concentration of the kernel, N = {int(np.prod(shape))}")
    common.label_widths(ax, widths)
    ax.legend()
    figure = common.save_figure(fig, out, "c2_concentration")

    checks = [common.Check("|slope + 1/2|", abs(slope - SLOPE), "<=", SLOPE_TOLERANCE),
              common.Check(f"distance at k = {widths[-1]}", distance[widths[-1]], "<=",
                           MAX_DISTANCE)]
    return common.ClaimResult(CLAIM, STATEMENT, checks, dict(distance=distance, slope=slope),
                              figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
