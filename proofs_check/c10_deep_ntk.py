"""C10 Deep NTK exactness and concentration: E18 is E[J J^T] of the deep decoder, the empirical
NTK at init approaches it like k^(-1/2), and the structured spectrum E19 is its exact spectrum.

J is the Jacobian of the output with respect to every trained array Omega (E16; no
normalisation), J J^T the finite-width NTK at initialisation (E20, md.deep.dense_empirical_ntk,
the network's own reverse pass on unit cotangents).  Three measurements.

(a) Exactness: the mean of J J^T over S independent draws of the weights (fixed B_0) against
    E18 (md.deep.ntk), entry by entry, with the standard error estimated from the draws.  The
    largest |t| over the M = N(N+1)/2 entries must stay below the Bonferroni bound of Student's
    t with S - 1 degrees of freedom at ALPHA = 1e-3.  The finite width biases E[J J^T] by
    O(1/k) for L >= 2; the draws' standard error is O(k^(-1/2) S^(-1/2)), so the bias is a
    fraction sqrt(S/k) ~ 0.3 of it at k = 256, S = 30 (tests: the same check on four
    configurations, L = 1..4).
(b) Concentration: D(k) = E||J J^T - Theta||_F^2 / ||Theta||_F^2 over widths k.  J J^T is a sum
    of O(k) weakly dependent terms, D = c1/k + c2/k^2, and with the relative NTK variance
    ~ exp(5 L / k) - 1 of deep ReLU networks (Hanin and Nica 2019) the second term moves the
    slope of log D against log k by less than 0.1 over k >= 32.  Check: |slope + 1| <= 0.1 + 3
    standard errors of the fitted slope (from the spread of the draws at each width); the
    relative distance sqrt(D) then falls like k^(-1/2).
(c) Structure: the eigenvalues of ntk(gen, expected_input=True) (dense eigvalsh) against
    md.deep.ntk_eigenvalues (cyclostationary rows, N / P^d Fourier blocks of P^d): both exact,
    so they agree to rounding; the check is 1e-10 of the largest eigenvalue.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

import minidip as md
from proofs_check import _common as common

CLAIM = "C10"
STATEMENT = "E18 = E[J J^T]; the empirical NTK concentrates like k^(-1/2); E19 = dense spectrum"

ALPHA = 1e-3
SLOPE_ALLOWANCE = 0.1
MAX_EIG_ERROR = 1e-10


@dataclass(frozen=True)
class Config:
    """(a) grid, depth, width and draws; (b) widths and draws per width; (c) structured cases."""

    mc_shape: tuple = (16,)
    mc_layers: int = 3
    mc_channels: int = 256
    mc_draws: int = 30
    widths: tuple = (32, 128, 512)
    width_draws: int = 16
    structured: tuple = (((64,), 4, "cubic"), ((24, 32), 3, "linear"),
                         ((16, 24), 3, "nearest"))


DEFAULT = Config()
FULL = Config(mc_shape=(8, 8), mc_channels=1024, mc_draws=60, widths=(32, 128, 512, 2048),
              width_draws=32,
              structured=DEFAULT.structured + (((32, 32), 4, "cubic"), ((64, 64), 4, "linear"),
                                               ((256,), 5, "cubic")))


def _model(shape, layers, channels, seed, upsample=None):
    return md.DeepDecoder(shape, channels=channels, layers=layers, upsample=upsample, norm=False,
                          input_channels=4, seed=seed, dtype=np.float64, backend="numpy")


def _draw(gen, rng):
    return {name: rng.standard_normal(shape) for name, shape in gen.weight_shapes().items()}


def exactness(shape, layers, channels, draws, seed):
    """Mean of J J^T over draws against E18: the largest |t| and its bound."""
    gen = _model(shape, layers, channels, seed)
    rng = np.random.default_rng(seed)
    samples = np.array([md.deep.dense_empirical_ntk(gen, _draw(gen, rng)) for _ in range(draws)])
    theta = md.deep.ntk(gen)
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(draws)
    upper = np.triu_indices(theta.shape[0])
    live = se[upper] > 1e-12 * np.abs(theta).max()
    t = np.abs(mean - theta)[upper][live] / se[upper][live]
    return dict(theta=theta, mean=mean, se=se, max_t=float(t.max()),
                bound=float(stats.t.isf(ALPHA / (2 * live.sum()), draws - 1)),
                relative=float(np.linalg.norm(mean - theta) / np.linalg.norm(theta)))


def concentration(shape, layers, widths, draws, seed):
    """D(k) = mean ||J J^T - Theta||_F^2 / ||Theta||_F^2, its slope in log-log and the slope's
    standard error (weighted by the spread of the draws)."""
    means, errors = [], []
    for k in widths:
        gen = _model(shape, layers, k, seed)
        theta = md.deep.ntk(gen)
        rng = np.random.default_rng([seed, k])
        d2 = np.array([np.linalg.norm(md.deep.dense_empirical_ntk(gen, _draw(gen, rng)) - theta)
                       ** 2 for _ in range(draws)]) / np.linalg.norm(theta) ** 2
        means.append(d2.mean())
        errors.append(d2.std(ddof=1) / np.sqrt(draws) / d2.mean())
    x = np.log(widths) - np.log(widths).mean()
    slope = float(np.sum(x * np.log(means)) / np.sum(x**2))
    slope_se = float(np.sqrt(np.sum(x**2 * np.array(errors) ** 2)) / np.sum(x**2))
    return dict(widths=list(widths), D=np.array(means), log_se=np.array(errors), slope=slope,
                slope_se=slope_se)


def structure(cases, seed):
    """Largest |structured - dense| eigenvalue error relative to the largest, per case."""
    out = {}
    for shape, layers, upsample in cases:
        gen = _model(shape, layers, 4, seed, upsample)
        dense = np.linalg.eigvalsh(md.deep.ntk(gen, expected_input=True))[::-1]
        fast = md.deep.ntk_eigenvalues(gen)
        out[f"{shape} L={layers} {upsample}"] = dict(
            error=float(np.max(np.abs(fast - dense)) / dense[0]), dense=dense, fast=fast)
    return out


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    a = exactness(c.mc_shape, c.mc_layers, c.mc_channels, c.mc_draws, seed)
    b = concentration(c.mc_shape, c.mc_layers, c.widths, c.width_draws, seed)
    s = structure(c.structured, seed)

    fig, axes = common.new_figure(3, width=4.3)
    upper = np.triu_indices(a["theta"].shape[0])
    axes[0].errorbar(a["theta"][upper], a["mean"][upper], yerr=2 * a["se"][upper], fmt=".",
                     ms=3, elinewidth=0.5, color="k")
    span = [a["theta"].min(), a["theta"].max()]
    axes[0].plot(span, span, color="C0", lw=0.8)
    axes[0].set(xlabel="E18 Theta_ij", ylabel=f"mean of J J^T over {c.mc_draws} draws",
                title=f"(a) {c.mc_shape}, L={c.mc_layers}, k={c.mc_channels}: max |t| "
                      f"{a['max_t']:.2f}")
    distance = np.sqrt(b["D"])
    widths = np.array(b["widths"])
    axes[1].loglog(widths, distance, "o-", label=f"measured (slope {b['slope'] / 2:.2f})")
    axes[1].loglog(widths, distance[0] * (widths / widths[0]) ** -0.5, "--", color="gray",
                   label="k^(-1/2)")
    common.label_widths(axes[1], widths)
    axes[1].set_yticks(distance, [f"{d:.2f}" for d in distance])
    axes[1].set(xlabel="width k", ylabel="sqrt E||J J^T - Theta||^2 / ||Theta||",
                title="(b) concentration")
    axes[1].legend(fontsize=8)
    for i, (name, r) in enumerate(s.items()):
        shown = r["dense"] > 1e-12 * r["dense"][0]           # zero eigenvalues are rounding
        axes[2].loglog(r["dense"][shown], r["fast"][shown], ".", ms=2, color=f"C{i}",
                       label=f"{name}: {r['error']:.1e}")
    axes[2].set(xlabel="dense eigvalsh (K_0 = I)", ylabel="structured (E19)",
                title="(c) E19 vs dense, eigenvalues > 1e-12 max")
    axes[2].legend(fontsize=6)
    figure = common.save_figure(fig, out, "c10_deep_ntk")

    worst = max(r["error"] for r in s.values())
    checks = [common.Check("(a) max |t| of mean J J^T vs E18", a["max_t"], "<=", a["bound"]),
              common.Check("(b) |slope of log D + 1| - 3 s.e.",
                           abs(b["slope"] + 1) - 3 * b["slope_se"], "<=", SLOPE_ALLOWANCE),
              common.Check("(c) structured vs dense eigenvalues / lambda_max", worst, "<=",
                           MAX_EIG_ERROR)]
    measured = dict(exactness=dict(max_t=a["max_t"], bound=a["bound"],
                                   relative_distance_of_mean=a["relative"]),
                    concentration=dict(widths=b["widths"], relative_distance=distance,
                                       slope_of_distance=b["slope"] / 2,
                                       slope_se=b["slope_se"] / 2),
                    structure={name: r["error"] for name, r in s.items()})
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
