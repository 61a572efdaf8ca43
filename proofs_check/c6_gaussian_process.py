"""C6 Gaussian process at init: the covariance of G(C_0) over independent seeds is E13.

At initialization every channel c_j is iid N(0, omega^2 I), so (U c_j)_i and (U c_j)_l are
jointly Gaussian with correlation a(i - l)/a(0), and G(C_0) = sum_j v_j ReLU(U c_j) has mean
zero (the signs of v are balanced) and the stationary covariance c(i - l) of E13.  That
covariance is exact at every width k (the channels are independent and sum_j v_j^2 = 1); the
width only makes the process Gaussian, by the central limit theorem over channels.

We draw C_0 = Generator(u, shape, k, seed=s, init="iid").init_weights() for S independent seeds
s (iid init, E6), compute G(C_0) for all of them at once by FFT (the batched E3, equal to
Generator.forward to rounding), and estimate from the S outputs
  - the mean at every grid point, G_bar_i,
  - the power spectrum P_hat(f) = 1/(S-1) sum_s |DFT(G_s - G_bar)_f|^2 (unitary DFT), the
    unbiased sample covariance averaged over all pairs of grid points at each lag, written in
    the Fourier basis, and
  - the covariance row c_hat = IDFT(P_hat),
and compare with the row c and the spectrum P = DFT(c) of E13 (spectral.init_covariance_row,
spectral.init_power_spectrum).  Two cases: 1-D with a Gaussian filter, and 2-D on a non-square
grid with signed random 3 x 5 taps (not symmetric, not separable, not square, and with a(d) < 0
at some lags, so theta > pi/2 is exercised and any mix-up of axes or of the sign of the lag
shows).

Error model.  Mean: Var(G_bar_i) = c(0)/S exactly, for any k.  Covariance and spectrum: the
Gaussian-process model (Bartlett's formula in the Fourier basis).  The DFT coefficients at
different frequencies are uncorrelated and 2(S-1) P_hat(f) / P(f) is chi-square with 2(S-1)
degrees of freedom ((S-1) P_hat(f) / P(f) with S-1 at the real frequencies, f = -f), so
  Var P_hat(f) = m_f P(f)^2 / (S-1), m_f = 1 (2 at f = -f), and
  Var c_hat(d) = 2 / ((S-1) N^2) sum_f P(f)^2 cos^2(2 pi f.d) = (q(0) + q(2d)) / ((S-1) N),
with q = IDFT(P^2).  At finite k the marginals have excess kurtosis 2.41/k (the fourth cumulant
of ReLU(N(0, 1)) over its squared variance, divided by k), which adds a fourth-cumulant term of
relative size O(1/k) to these variances.  At the default k = 16 that term is small: over 20
independent batches of 2000 seeds, the batch-to-batch spread of c_hat(d) is 0.92 (1-D) and 0.99
(2-D) times the model's standard error on average over the lags (each ratio known to +/- 16%),
and the spread of P_hat(f) 1.01 and 0.97 times it.

Thresholds.  Each check takes the largest |z| = |estimate - prediction| / standard error over
all M grid points, lags or frequencies, and passes if it is below the Bonferroni bound
z_M = Phi^-1(1 - ALPHA / (2M)): under the theory the check fails with probability <= ALPHA =
1e-3 (z_M = 4.3 for M = 64 and 4.7 for M = 384).  The few-percent error-model slack moves
these probabilities little, and the checks are still sharp: at the default size c_hat(0) is
known to 0.8% (1-D) and 0.2% (2-D), so a covariance without the -1 of E13 (the squared mean
E[ReLU]^2 not subtracted) would miss by 56 and 247 standard errors at lag 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

import minidip as md
from minidip.generator import output_weights
from proofs_check import _common as common

CLAIM = "C6"
STATEMENT = ("over independent seeds of the iid init (default scale, unit-RMS output), G(C_0) "
             "has mean 0 and the covariance of E13")

FILTERS = {
    "1-D": md.filters.gaussian(2.0),
    # 3 x 5 signed taps: not symmetric, not separable, not square
    "2-D": md.filters.random(5, seed=1, ndim=2)[1:4],
}
ALPHA = 1e-3                        # false-alarm probability of each check under the theory
CHUNK = 2**22                       # grid values of C_0 drawn and transformed at a time



@dataclass(frozen=True)
class Config:
    """Number of seeds S, width k (E13 holds at every k; k only sets how Gaussian G is), grids."""

    seeds: int = 2000
    channels: int = 16
    shape_1d: tuple = (64,)
    shape_2d: tuple = (16, 24)

    @property
    def shapes(self) -> dict:
        return {"1-D": self.shape_1d, "2-D": self.shape_2d}


DEFAULT = Config()
FULL = Config(seeds=10000, channels=32, shape_1d=(256,), shape_2d=(32, 48))


def sample_outputs(u, shape, channels, init_std, seeds, chunk=CHUNK):
    """Yield G(C_0) for the seeds, a batch (len(batch), *shape) at a time (E6, E3).

    C_0 is ``Generator(u, shape, channels, init_std, seed=s, init="iid").init_weights()`` for
    each seed s; G(C_0) = sum_j v_j ReLU(U c_j) with U c_j computed by FFT on the periodic grid.
    """
    shape = tuple(shape)
    taps = md.filters.as_taps(u, len(shape))
    axes = tuple(range(-len(shape), 0))
    filt = np.fft.rfftn(md.filters.on_grid(taps, shape))
    v = output_weights(channels)
    seeds = list(seeds)
    per_batch = max(1, chunk // (channels * int(np.prod(shape))))
    for start in range(0, len(seeds), per_batch):
        C = np.stack([md.Generator(u, shape, channels, init_std=init_std, seed=s,
                                   dtype=np.float64, backend="numpy", init="iid").init_weights()
                      for s in seeds[start:start + per_batch]], axis=1)    # (k, batch, *shape)
        h = np.fft.irfftn(np.fft.rfftn(C, axes=axes) * filt, s=shape, axes=axes)
        yield np.tensordot(v, np.maximum(h, 0.0), axes=1)


def covariance_se(power, samples) -> np.ndarray:
    """Standard error of the sample covariance row, Gaussian-process model (Bartlett).

    ``Var c_hat(d) = (q(0) + q(2d)) / ((S-1) N)`` with ``q = IDFT(P^2)``, S = ``samples``.
    """
    shape = power.shape
    q = np.fft.ifftn(power**2).real
    double = tuple((2 * np.indices(shape)[a]) % n for a, n in enumerate(shape))
    return np.sqrt((q.flat[0] + q[double]) / ((samples - 1) * power.size))


def spectrum_se(power, samples) -> np.ndarray:
    """Standard error of the sample power spectrum: P(f) sqrt(m_f / (S-1)), m_f = 2 at f = -f."""
    index = np.indices(power.shape)
    self_conjugate = np.all([(2 * i) % n == 0 for i, n in zip(index, power.shape)], axis=0)
    return power * np.sqrt(np.where(self_conjugate, 2.0, 1.0) / (samples - 1))


def bonferroni(count, alpha=ALPHA) -> float:
    """|z| that the largest of ``count`` standard-normal |z| exceeds with chance <= alpha."""
    return float(norm.isf(alpha / (2 * count)))


def measure(u, shape, channels, seeds, init_std=None, first_seed=0, chunk=CHUNK):
    """Mean, covariance row and power spectrum of G(C_0) over ``seeds`` seeds, against E13.

    Parameters
    ----------
    u : array_like
        Filter taps (1-D or 2-D).
    shape : tuple of int
        Grid shape (n,) or (h, w).
    channels : int
        Width k (even).
    seeds : int
        Number S of independent initializations (seeds first_seed .. first_seed + S - 1).
    init_std : float, optional
        omega; default the Generator's (unit RMS output).

    Returns
    -------
    dict with the estimates (mean, row, power), the predictions (row_pred, power_pred), their
    standard errors and the largest |z| of each (mean_z, row_z, power_z).
    """
    shape = tuple(shape)
    taps = md.filters.as_taps(u, len(shape))
    omega = md.generator.default_init_std(taps) if init_std is None else init_std
    total = np.zeros(shape)
    power_sum = np.zeros(shape)
    for batch in sample_outputs(u, shape, channels, omega, range(first_seed, first_seed + seeds),
                                chunk):
        total += batch.sum(axis=0)
        axes = tuple(range(1, batch.ndim))
        power_sum += np.sum(np.abs(np.fft.fftn(batch, axes=axes, norm="ortho")) ** 2, axis=0)
    mean = total / seeds
    # The per-point mean subtracted in the Fourier basis: |DFT(G_bar)|^2 per seed.
    power = (power_sum - seeds * np.abs(np.fft.fftn(mean, norm="ortho")) ** 2) / (seeds - 1)
    row = np.fft.ifftn(power).real

    row_pred = md.spectral.init_covariance_row(taps, shape, omega)
    power_pred = md.spectral.init_power_spectrum(taps, shape, omega)
    mean_se = np.sqrt(row_pred.flat[0] / seeds)
    row_se = covariance_se(power_pred, seeds)
    power_se = spectrum_se(power_pred, seeds)
    return dict(mean=mean, row=row, power=power, row_pred=row_pred, power_pred=power_pred,
                mean_se=mean_se, row_se=row_se, power_se=power_se,
                mean_z=float(np.max(np.abs(mean)) / mean_se),
                row_z=float(np.max(np.abs(row - row_pred) / row_se)),
                power_z=float(np.max(np.abs(power - power_pred) / power_se)),
                row_rel=float(np.max(np.abs(row - row_pred)) / row_pred.flat[0]),
                bound=bonferroni(int(np.prod(shape))), omega=omega)


def _centred(row):
    """A periodic 1-D row and its lags, lag 0 in the middle."""
    n = row.size
    return np.arange(n) - n // 2, np.fft.fftshift(row)


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    seeds, channels, shapes = c.seeds, c.channels, c.shapes
    results = {name: measure(u, shapes[name], channels, seeds, first_seed=seed * seeds)
               for name, u in FILTERS.items()}

    fig, axes = common.new_figure(3, width=4.3)
    one, two = results["1-D"], results["2-D"]
    lags, row = _centred(one["row"])
    _, pred = _centred(one["row_pred"])
    _, se = _centred(one["row_se"])
    axes[0].fill_between(lags, pred - 2 * se, pred + 2 * se, color="C0", alpha=0.25,
                         label="E13 +/- 2 s.e.")
    axes[0].plot(lags, pred, color="C0")
    axes[0].plot(lags, row, ".", color="k", ms=4, label=f"{seeds} seeds")
    axes[0].set(xlim=(-16, 16), xlabel="lag d", ylabel="Cov[G_i, G_i+d]",
                title=f"1-D, Gaussian filter, n={shapes['1-D'][0]}")
    axes[0].legend(fontsize=8)
    overlap = md.spectral.autocorrelation(FILTERS["2-D"], shapes["2-D"]) != 0
    order = np.argsort(-two["row_pred"][overlap])
    index = np.arange(order.size)
    axes[1].plot(index, two["row_pred"][overlap][order], "o", mfc="none", color="C3",
                 label="E13")
    axes[1].errorbar(index, two["row"][overlap][order], yerr=2 * two["row_se"][overlap][order],
                     fmt=".", color="k", ms=4, elinewidth=0.8, label=f"{seeds} seeds +/- 2 s.e.")
    axes[1].axhline(0, color="gray", lw=0.6)
    axes[1].set(xlabel="lag d (sorted by c(d))", ylabel="Cov[G_i, G_i+d]",
                title=f"2-D, random 3x5 filter, {order.size} overlapping lags")
    axes[1].legend(fontsize=8)
    for name, color in (("1-D", "C0"), ("2-D", "C3")):
        r = results[name]
        axes[2].loglog(r["power_pred"].ravel(), r["power"].ravel(), ".", color=color, ms=3,
                       label=name)
    span = [min(r["power_pred"].min() for r in results.values()),
            max(r["power_pred"].max() for r in results.values())]
    axes[2].plot(span, span, color="gray", lw=0.8)
    axes[2].set(xlabel="E13 power spectrum P(f)", ylabel="sample power spectrum",
                title="power spectra")
    axes[2].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c6_gaussian_process")

    checks, measured = [], dict(seeds=seeds, channels=channels)
    for name, r in results.items():
        for key, what in (("mean_z", "mean"), ("row_z", "covariance"), ("power_z", "spectrum")):
            checks.append(common.Check(f"{name}: max |z| {what}", r[key], "<=", r["bound"]))
        measured[name] = dict(shape=list(shapes[name]), mean_z=r["mean_z"], row_z=r["row_z"],
                              power_z=r["power_z"], bound=r["bound"],
                              max_row_error_over_c0=r["row_rel"],
                              c0=float(r["row_pred"].flat[0]),
                              c0_relative_se=float(r["row_se"].flat[0] / r["row_pred"].flat[0]))
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
