"""C1 Kernel exactness: the FFT spectrum E9 is the spectrum of Sigma (E8), Sigma is E[J J^T],
and interpolating filters give decaying spectra while the delta filter gives a flat one.

Three measurements.  (a) For small grids, 1-D and 2-D, symmetric and asymmetric filters, Sigma
is built densely from its definition (U U^T from the operator U of E1 applied to unit impulses,
then E8 entrywise) and its eigenvalues (eigh) are compared with spectral.eigenvalues, which
takes the DFT of the kernel row built from lag sums.  (b) K_0 = J_0 J_0^T at k = 65536 channels
is a Monte-Carlo average of E[J J^T] over k independent channels; its relative Frobenius
distance to Sigma measures whether the 1/2 and the arccos of E8 are right.  (c) The eigenvalues
of interpolating filters (Gaussian, triangle, linear and nearest upsampling) fall with
frequency, those of the delta filter are all 1/2.

Thresholds.  (a) 1e-7 relative to lambda_max: both sides are exact up to rounding (~1e-15), and
1e-7 leaves room only for rounding in eigh, not for any convention error (a flipped filter or a
missing 1/2 is O(1)).  (b) <= 0.02 at k = 65536, n = 32: the sampling error of the average is
~0.005 at this k (C2's k^(-1/2) law), while a wrong constant in E8 (say 1/pi for 1/2) is O(1).
(c) The ratio of lambda at the highest frequency to lambda_max must be below 0.5 for every
interpolating filter (they are 0.01-0.1), and the delta spectrum flat to 1e-12.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C1"
STATEMENT = "FFT eigenvalues = dense spectrum of Sigma; Sigma = E[J J^T]; low-pass vs flat"

DENSE_CASES = {
    "gaussian 1-D": (md.filters.gaussian(2.0), (48,)),
    "random 1-D": (md.filters.random(5, seed=1), (45,)),
    "triangle 2-D": (md.filters.triangle(2, ndim=2), (9, 8)),
    "random 2-D": (md.filters.random(3, seed=2, ndim=2), (7, 10)),
}
MC_FILTER = md.filters.gaussian(2.0)
INTERPOLATING = {"gaussian": md.filters.gaussian(2.0), "triangle": md.filters.triangle(3),
                 "linear upsampling": md.filters.upsampling("linear"),
                 "nearest upsampling": md.filters.upsampling("nearest")}
MAX_EIG_ERROR = 1e-7
MAX_MC_DISTANCE = 0.02
MAX_HIGH_TO_PEAK = 0.5
MAX_DELTA_SPREAD = 1e-12



@dataclass(frozen=True)
class Config:
    """Sizes: the Monte-Carlo width and grid (b), and the grid of the spectra (c)."""

    mc_channels: int = 65536
    mc_shape: tuple = (32,)
    decay_shape: tuple = (128,)


DEFAULT = Config()
FULL = Config(mc_channels=262144)


def dense_sigma(u, shape) -> np.ndarray:
    """Sigma of E8 from the definition: U from E1 applied to unit impulses, then entrywise E8."""
    size = int(np.prod(shape))
    impulses = np.eye(size).reshape((size,) + tuple(shape))
    taps = md.filters.as_taps(u, len(shape))
    U = md.generator.convolve(impulses, taps).reshape(size, size).T   # column l = U e_l
    A = U @ U.T                                                       # A_il = a(i - l)
    ratio = np.clip(A / np.sqrt(np.outer(np.diag(A), np.diag(A))), -1, 1)
    np.fill_diagonal(ratio, 1.0)
    return 0.5 * A * (1 - np.arccos(ratio) / np.pi)


def eigenvalue_error(u, shape) -> float:
    """max |sorted eigh(dense Sigma) - sorted FFT eigenvalues| / lambda_max."""
    dense = np.sort(np.linalg.eigvalsh(dense_sigma(u, shape)))
    fft = np.sort(md.spectral.eigenvalues(u, shape).ravel())
    return float(np.max(np.abs(dense - fft)) / fft[-1])


def high_to_peak(u, shape) -> float:
    """lambda at the highest frequency over lambda_max (1-D)."""
    lam = md.spectral.eigenvalues(u, shape)
    return float(lam[shape[0] // 2] / lam.max())


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    errors = {name: eigenvalue_error(u, shape) for name, (u, shape) in DENSE_CASES.items()}
    channels = c.mc_channels
    gen = md.Generator(MC_FILTER, c.mc_shape, channels, seed=seed, dtype=np.float64,
                       backend="numpy", init="iid")
    mc_distance = md.spectral.kernel_concentration(gen, gen.init_weights())
    decay = {name: high_to_peak(u, c.decay_shape) for name, u in INTERPOLATING.items()}
    lam_delta = md.spectral.eigenvalues(md.filters.delta(), c.decay_shape)
    delta_spread = float(np.max(np.abs(lam_delta - 0.5)))

    fig, axes = common.new_figure(2)
    f = np.fft.fftshift(np.fft.fftfreq(c.decay_shape[0]))
    for name, u in list(INTERPOLATING.items()) + [("delta", md.filters.delta()),
                                                   ("random", md.filters.random(5, seed=1))]:
        lam = md.spectral.eigenvalues(u, c.decay_shape)
        axes[0].semilogy(f, np.fft.fftshift(lam / lam.max()), label=name)
    axes[0].set(xlabel="frequency (cycles/sample)", ylabel="lambda_f / lambda_max",
                title=f"dual-kernel spectra (E9), n = {c.decay_shape[0]}")
    axes[0].legend(fontsize=7)
    u, shape = DENSE_CASES["random 2-D"]
    axes[1].plot(np.sort(np.linalg.eigvalsh(dense_sigma(u, shape)))[::-1], "o", ms=4,
                 label="dense eigh of Sigma (E8)")
    axes[1].plot(np.sort(md.spectral.eigenvalues(u, shape).ravel())[::-1], ".", color="C3",
                 label="FFT of kernel row (E9)")
    axes[1].set(xlabel="rank", ylabel="eigenvalue", title=f"random 3x3 filter on {shape}")
    axes[1].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c1_kernel")

    checks = [common.Check("max eigenvalue error / lambda_max", max(errors.values()), "<=",
                           MAX_EIG_ERROR),
              common.Check(f"||K0 - Sigma||_F / ||Sigma||_F at k = {channels}", mc_distance,
                           "<=", MAX_MC_DISTANCE),
              common.Check("max lambda(1/2) / lambda_max, interpolating", max(decay.values()),
                           "<=", MAX_HIGH_TO_PEAK),
              common.Check("delta: max |lambda - 1/2|", delta_spread, "<=", MAX_DELTA_SPREAD)]
    measured = dict(eigenvalue_errors=errors, monte_carlo_distance=mc_distance,
                    high_to_peak=decay, delta_spread=delta_spread)
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
