"""C9 Deep GP at init: over the weights, the deep decoder's output is a Gaussian process with the
covariance E17, and with upsampling it is cyclostationary, not stationary.

Over independent draws of every Omega (E16, iid N(0, 1)) with the input B_0 fixed, the output
x = W_out B_L of the deep decoder without normalisation has mean 0 (W_out is centred) and, as the
hidden widths grow, the covariance K_L of E17 (md.deep.nngp): layer by layer the pre-activations
are Gaussian given the layer below, with covariance sigma_w^2 P_l K_{l-1} P_l^T.  The upsampling
maps P_l are not shift-invariant: an output pixel that is a kept sample and one that is
interpolated between two samples have different variances, and with L - 1 upsamplings the
kernel repeats with period P = 2^(L-1) per axis (E19).  Its phase average (the circulant kernel
with row r(d) = mean_i K[i, i + d], md.deep.phase_average) is the stationary kernel closest to
it; the test must tell the two apart.

Two cases, S draws each, widths k_1..k_L = k:
  (a) 1-D, n = 32, L = 3, the model's own random input (k_0 = 8 channels): E17 exact for that B_0.
  (b) 2-D, 8 x 8, L = 3, an input with orthogonal pixels, B_0 = sqrt(N_0) I (k_0 = N_0 = 4), so
      K_0 = I exactly and E17 is exactly cyclostationary (md.deep.nngp(gen, input=B_0), equal to
      the expected-input kernel).
The outputs come from the model's layers (E15) batched over draws: the 1x1 convolutions as
matrix products and each P_l as the matrix that md.deep.model.spatial_map makes of unit
impulses (tests check this forward pass against DeepDecoder.forward).

Statistics.  Mean: the largest |mean_i| / sqrt(K_ii / S).  Covariance: the unbiased sample
covariance C_ij over the S outputs against K_ij, with the standard error estimated from the
same draws, se_ij = sqrt(Var_s[(x_i - mean_i)(x_j - mean_j)] / S), so the z-scores do not
assume Gaussian outputs (at finite width x is a Gaussian scale mixture, whose fourth moments
exceed the Gaussian ones by O(1/k)).  The largest |z| over the M = N(N+1)/2 entries is compared
with the Bonferroni bound z_M = Phi^-1(1 - ALPHA / (2M)), ALPHA = 1e-3, as in C6.

Finite width.  E17 is the limit k -> infinity; at k = 32 the mean of K_L differs from it by
O(1/k).  Measured while writing the tests (20000 draws at k = 16 and 64): within 0.5% on the
diagonal and consistent with zero, against a standard error of 3% of K_ii at S = 2000, so the
bias moves the z-scores by a fraction of one.

Thresholds.  Exact kernel: max |z| <= z_M for the mean and the covariance (false alarm <= ALPHA
each under the theory).  Phase average: the same statistic must exceed z_M (the test rejects the
stationary kernel).  Its a-priori separation is max |K - K_avg| / se_model, with the Gaussian
model se^2 = (K_ii K_jj + K_ij^2) / (S - 1): reported, and far above z_M in both cases (the
variance of a kept pixel and of an interpolated one differ by tens of percent).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

import minidip as md
from minidip.deep.model import spatial_map
from proofs_check import _common as common

CLAIM = "C9"
STATEMENT = "the deep decoder at init is a Gaussian process with covariance E17 (cyclostationary)"

ALPHA = 1e-3
LAYERS = 3
CHUNK = 2**24                      # activations held at once by the batched forward pass


@dataclass(frozen=True)
class Config:
    """Draws S, width k of every hidden layer, and the two grids."""

    draws: int = 2000
    channels: int = 32
    shape_1d: tuple = (32,)
    shape_2d: tuple = (8, 8)


DEFAULT = Config()
FULL = Config(draws=10000, channels=128, shape_1d=(64,), shape_2d=(16, 16))


def spatial_matrices(gen) -> list:
    """P_l^T of every layer as a dense (N_{l-1}, N_l) matrix (None for the identity), built by
    applying the model's spatial map (E15) to unit impulses: the grids here are small."""
    mats, grid = [], gen.input_shape
    for spatial in gen.spatial:
        if spatial is None:
            mats.append(None)
            continue
        n = math.prod(grid)
        fine = spatial_map(np.eye(n).reshape((n,) + grid), *spatial)
        grid = fine.shape[1:]
        mats.append(fine.reshape(n, -1))
    return mats


def sample_outputs(gen, draws, seed, input=None, chunk=CHUNK):
    """Outputs x = W_out B_L (E15, norm=False) for ``draws`` independent draws of every Omega.

    The input B_0 (``gen.input`` or ``input``) is fixed; W = s Omega with s from
    ``gen.weight_scales()`` (E16).  Returns (draws, N), float64.
    """
    B0 = np.asarray(gen.input if input is None else input, np.float64)
    scales, shapes = gen.weight_scales(), gen.weight_shapes()
    maps = spatial_matrices(gen)
    rng = np.random.default_rng(seed)
    widest = max(shape[0] for shape in shapes.values()) * gen.size
    per_batch = max(1, chunk // widest)
    out = []
    for start in range(0, draws, per_batch):
        b = min(per_batch, draws - start)
        B = np.broadcast_to(B0.reshape(B0.shape[0], -1), (b,) + (B0.shape[0], B0[0].size))
        for l, Pt in enumerate(maps, start=1):
            Z = scales[f"W{l}"] * rng.standard_normal((b,) + shapes[f"W{l}"]) @ B   # 1x1 conv
            B = np.maximum(Z if Pt is None else Z @ Pt, 0.0)
        W_out = scales["Wout"] * rng.standard_normal((b,) + shapes["Wout"])
        out.append((W_out @ B)[:, 0, :])
    return np.concatenate(out)


def bonferroni(count, alpha=ALPHA) -> float:
    return float(norm.isf(alpha / (2 * count)))


def covariance_statistics(x, K):
    """Sample mean and covariance of x (S, N) against the kernel K, with data-driven errors."""
    S = x.shape[0]
    mean = x.mean(axis=0)
    centred = x - mean
    cov = centred.T @ centred / (S - 1)
    products2 = (centred**2).T @ (centred**2) / S                 # mean of (x_i x_j)^2
    se = np.sqrt(np.maximum(products2 - (centred.T @ centred / S) ** 2, 0.0) / S)
    upper = np.triu_indices(K.shape[0])
    return dict(mean=mean, cov=cov, se=se, upper=upper,
                mean_z=float(np.max(np.abs(mean) / np.sqrt(np.diag(K) / S))))


def max_z(stats, K) -> float:
    upper = stats["upper"]
    return float(np.max(np.abs(stats["cov"] - K)[upper] / stats["se"][upper]))


def measure(gen, draws, seed, input=None):
    """z-scores of the sampled outputs against E17 and against its phase average."""
    K = md.deep.nngp(gen, input=input)
    average = md.deep.phase_average(K, gen.shape)
    x = sample_outputs(gen, draws, seed, input)
    stats = covariance_statistics(x, K)
    upper = stats["upper"]
    model_se = np.sqrt((np.outer(np.diag(K), np.diag(K)) + K**2) / (draws - 1))
    variance = np.diag(K).reshape(gen.shape)
    return dict(K=K, average=average, stats=stats, mean_z=stats["mean_z"],
                exact_z=max_z(stats, K), average_z=max_z(stats, average),
                predicted_separation=float(np.max(np.abs(K - average)[upper] / model_se[upper])),
                bound=bonferroni(upper[0].size), mean_bound=bonferroni(K.shape[0]),
                variance_spread=float(variance.max() / variance.min()))


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    one = md.DeepDecoder(c.shape_1d, channels=c.channels, layers=LAYERS, norm=False,
                         input_channels=8, seed=seed, dtype=np.float64, backend="numpy")
    two = md.DeepDecoder(c.shape_2d, channels=c.channels, layers=LAYERS, norm=False,
                         input_channels=math.prod(c.shape_2d) // 4 ** (LAYERS - 1), seed=seed,
                         dtype=np.float64, backend="numpy")
    n0 = math.prod(two.input_shape)
    orthogonal = math.sqrt(n0) * np.eye(n0).reshape((n0,) + two.input_shape)    # K_0 = I
    results = {"1-D, given B_0": measure(one, c.draws, seed + 1),
               "2-D, K_0 = I": measure(two, c.draws, seed + 2, orthogonal)}

    fig, axes = common.new_figure(3, width=4.3)
    r = results["1-D, given B_0"]
    n = one.size
    for i, color in ((n // 2, "C0"), (n // 2 + 1, "C3")):
        lags = np.arange(n) - i
        axes[0].plot(lags, r["K"][i], color=color, label=f"E17, pixel {i}")
        axes[0].errorbar(lags, r["stats"]["cov"][i], yerr=2 * r["stats"]["se"][i], fmt=".",
                         color=color, ms=3, elinewidth=0.6)
        axes[0].plot(lags, r["average"][i], ":", color="k", lw=1)
    axes[0].set(xlabel="lag from pixel i", ylabel="Cov[x_i, x_i+d]",
                title=f"1-D, L={LAYERS}, given B_0: two rows of E17\n"
                      f"dots: {c.draws} draws +/- 2 s.e.; dotted: phase average")
    axes[0].legend(fontsize=7)
    r2 = results["2-D, K_0 = I"]
    im = axes[1].imshow(np.diag(r2["stats"]["cov"]).reshape(two.shape), cmap="viridis")
    fig.colorbar(im, ax=axes[1], fraction=0.046)
    axes[1].set(title=f"2-D, K_0 = I: sampled Var[x_i] (period {2 ** (LAYERS - 1)})",
                xticks=[], yticks=[])
    names = list(results)
    x = np.arange(len(names))
    axes[2].bar(x - 0.2, [results[k]["exact_z"] for k in names], 0.4, label="vs E17")
    axes[2].bar(x + 0.2, [results[k]["average_z"] for k in names], 0.4,
                label="vs phase average")
    for i, k in enumerate(names):
        axes[2].plot([i - 0.45, i + 0.45], [results[k]["bound"]] * 2, color="k", lw=1)
    axes[2].set(xticks=x, yscale="log", ylabel="max |z| over the covariance entries",
                title="black: Bonferroni bound")
    axes[2].set_xticklabels(names, fontsize=8)
    axes[2].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c9_deep_gp")

    checks, measured = [], dict(draws=c.draws, channels=c.channels, layers=LAYERS)
    for name, r in results.items():
        checks += [common.Check(f"{name}: max |z| mean", r["mean_z"], "<=", r["mean_bound"]),
                   common.Check(f"{name}: max |z| covariance vs E17", r["exact_z"], "<=",
                                r["bound"]),
                   common.Check(f"{name}: max |z| vs phase average (rejected)",
                                r["average_z"], ">", r["bound"])]
        measured[name] = {key: r[key] for key in ("mean_z", "exact_z", "average_z", "bound",
                                                  "predicted_separation", "variance_spread")}
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
