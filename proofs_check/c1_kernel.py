"""C1 Kernel exactness: the FFT spectrum E9 is the spectrum of Sigma (E8), Sigma is E[J J^T],
and interpolating filters give decaying spectra while the delta filter gives a flat one.

Init regime: no training; the Monte-Carlo part (b) draws C_0 with the iid init (E6), whose scale
does not matter (the masks 1[U c_j > 0] do not depend on it).

Three measurements.  (a) For small grids, 1-D and 2-D, symmetric and asymmetric filters, Sigma
is built densely from its definition (U U^T from the operator U of E1 applied to unit impulses,
then E8 entrywise) and its eigenvalues (eigh) are compared with spectral.eigenvalues, which
takes the DFT of the kernel row built from lag sums.  (b) K_0 = J_0 J_0^T at k = 65536 channels
is a Monte-Carlo average of E[J J^T] over k independent channels; its relative Frobenius
distance to Sigma measures whether the 1/2 and the arccos of E8 are right.  (c) "Decays with
frequency", as a test that can say no: the eigenvalues are averaged over N_BANDS = 8 radial
bands of frequency (the rings of E14, spectral.band_labels), and a spectrum is judged decaying
when every band's mean is strictly below the previous band's and the last band's mean is at
most half the first's.  Interpolating filters (Gaussian, triangle, linear and nearest
upsampling in 1-D; a Gaussian in 2-D) must fall by the factor 1/2, and those whose own power
spectrum |F(u)|^2 falls band after band must fall band after band too (see below); the delta
filter (flat) and a random filter (the negative controls) must fail the test; and the delta
spectrum must be 1/2 everywhere.

Thresholds.  (a) 1e-7 relative to lambda_max: both sides are exact up to rounding (~1e-15), and
1e-7 leaves room only for rounding in eigh, not for any convention error (a flipped filter or a
missing 1/2 is O(1)).  (b) <= 0.02 at k = 65536, n = 32: the sampling error of the average is
~0.005 at this k (C2's k^(-1/2) law), while a wrong constant in E8 (say 1/pi for 1/2) is O(1).
(c) Bands, not single frequencies: a spectrum with a notch or a bump (what a filter of mixed
signs gives) breaks the order of the band means, while 8 bands of 8 frequencies each (n = 128)
average out nothing that a low-pass filter does.  Strictly decreasing alone would accept a flat
spectrum tilted by rounding; the factor 1/2 between the first and the last band demands a real
decay, as a low-pass spectrum has (E9: lambda_f = sum_d s(d) cos(2 pi f d); with non-negative
taps s(d) >= 0 at every lag, so lambda is largest at f = 0, and the wider the filter's
autocorrelation, the farther it falls).  The test's power: of random 5-tap filters (iid normal taps, seeds 0-999) 3.0% pass it,
those whose taps happen to share one sign and which are then low-pass filters themselves; the
control is the filter of the figure, random(5, seed=1).

What the first measurement changed.  Declared as above, the test first required every
interpolating filter to fall band after band, and the triangle filter failed it: its last band's
mean is 6% above the band before (the band means fall 22x overall).  That is E9 being right,
not a numerical error (check (a) confirms the spectrum): the triangle of width 2p - 1 is a box of
width p convolved with itself, |F(u)|^2 vanishes at f = j/p and has side lobes between, and E8's
arccos term fills the zeros but keeps a side lobe at the top.  Non-negative taps make a spectrum
low-pass (largest at f = 0), not monotone.  So the strict order is
now required exactly where the filter's own power spectrum |F(u)|^2 has it (its band means
fall strictly: the Gaussians, linear and nearest upsampling, decided from u alone, not from
lambda), and the factor 1/2 for every interpolating filter, the triangle included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C1"
STATEMENT = ("FFT eigenvalues = dense spectrum of Sigma; Sigma = E[J J^T] (iid init); "
             "interpolating filters decay by band, delta and random do not")

DENSE_CASES = {
    "gaussian 1-D": (md.filters.gaussian(2.0), (48,)),
    "random 1-D": (md.filters.random(5, seed=1), (45,)),
    "triangle 2-D": (md.filters.triangle(2, ndim=2), (9, 8)),
    "random 2-D": (md.filters.random(3, seed=2, ndim=2), (7, 10)),
}
MC_FILTER = md.filters.gaussian(2.0)
INTERPOLATING = {"gaussian": md.filters.gaussian(2.0), "triangle": md.filters.triangle(3),
                 "linear upsampling": md.filters.upsampling("linear"),
                 "nearest upsampling": md.filters.upsampling("nearest"),
                 "gaussian 2-D": md.filters.gaussian(1.0, ndim=2)}
CONTROLS = {"delta": md.filters.delta(), "random": md.filters.random(5, seed=1)}
N_BANDS = 8
MAX_EIG_ERROR = 1e-7
MAX_MC_DISTANCE = 0.02
MAX_LAST_TO_FIRST = 0.5             # last band's mean / first band's mean, for "decays"
MAX_DELTA_SPREAD = 1e-12



@dataclass(frozen=True)
class Config:
    """Sizes: the Monte-Carlo width and grid (b), and the grid of the spectra (c)."""

    mc_channels: int = 65536
    mc_shape: tuple = (32,)
    decay_shape: tuple = (128,)
    decay_shape_2d: tuple = (32, 32)


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


def band_means(u, shape, n_bands=N_BANDS) -> np.ndarray:
    """Mean eigenvalue (E9) over each radial band of frequency (the rings of E14), lowest first."""
    labels = md.spectral.band_labels(shape, n_bands).ravel()
    lam = md.spectral.eigenvalues(u, shape).ravel()
    return np.bincount(labels, weights=lam, minlength=n_bands) / np.bincount(labels,
                                                                             minlength=n_bands)


def filter_band_means(u, shape, n_bands=N_BANDS) -> np.ndarray:
    """Mean of the filter's own power spectrum |F(u)_f|^2 over the same bands (no E8)."""
    labels = md.spectral.band_labels(shape, n_bands).ravel()
    power = np.abs(np.fft.fftn(md.filters.on_grid(md.filters.as_taps(u, len(shape)),
                                                  shape))).ravel() ** 2
    return np.bincount(labels, weights=power, minlength=n_bands) / np.bincount(
        labels, minlength=n_bands)


def decay_figures(means) -> tuple[float, float]:
    """(largest ratio of successive band means, last band's mean / first band's mean)."""
    means = np.asarray(means, dtype=np.float64)
    return float(np.max(means[1:] / means[:-1])), float(means[-1] / means[0])


def decays(means) -> bool:
    """The decay test of (c): band means strictly decreasing, the last at most half the first."""
    successive, last_to_first = decay_figures(means)
    return successive < 1.0 and last_to_first <= MAX_LAST_TO_FIRST


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    errors = {name: eigenvalue_error(u, shape) for name, (u, shape) in DENSE_CASES.items()}
    channels = c.mc_channels
    gen = md.Generator(MC_FILTER, c.mc_shape, channels, seed=seed, dtype=np.float64,
                       backend="numpy", init="iid")
    mc_distance = md.spectral.kernel_concentration(gen, gen.init_weights())
    shape_of = lambda u: c.decay_shape_2d if u.ndim == 2 else c.decay_shape  # noqa: E731
    means = {name: band_means(u, shape_of(u))
             for name, u in list(INTERPOLATING.items()) + list(CONTROLS.items())}
    decay = {name: decay_figures(m) for name, m in means.items()}
    monotone_filters = [name for name, u in INTERPOLATING.items()
                        if decay_figures(filter_band_means(u, shape_of(u)))[0] < 1.0]
    controls_decaying = [name for name in CONTROLS if decays(means[name])]
    lam_delta = md.spectral.eigenvalues(md.filters.delta(), c.decay_shape)
    delta_spread = float(np.max(np.abs(lam_delta - 0.5)))

    fig, axes = common.new_figure(3, width=4.4)
    f = np.fft.fftshift(np.fft.fftfreq(c.decay_shape[0]))
    for i, (name, u) in enumerate(list(INTERPOLATING.items()) + list(CONTROLS.items())):
        style = dict(color=f"C{i}", ls="--" if name in CONTROLS else "-")
        if u.ndim == 1:
            lam = md.spectral.eigenvalues(u, c.decay_shape)
            axes[0].semilogy(f, np.fft.fftshift(lam / lam.max()), label=name, **style)
        verdict = "decays" if decays(means[name]) else "does not decay"
        axes[1].semilogy(np.arange(N_BANDS), means[name] / means[name][0], marker="o", ms=3,
                         label=f"{name}: {verdict}", **style)
    axes[0].set(xlabel="frequency (cycles/sample)", ylabel="lambda_f / lambda_max",
                title=f"dual-kernel spectra (E9), n = {c.decay_shape[0]}")
    axes[0].legend(fontsize=7)
    axes[1].axhline(MAX_LAST_TO_FIRST, color="gray", lw=0.8)
    axes[1].set(xlabel=f"radial band (of {N_BANDS}), lowest first",
                ylabel="band mean of lambda / first band's",
                title=f"decay test: strictly falling, last <= {MAX_LAST_TO_FIRST:g} x first")
    axes[1].legend(fontsize=6)
    u, shape = DENSE_CASES["random 2-D"]
    axes[2].plot(np.sort(np.linalg.eigvalsh(dense_sigma(u, shape)))[::-1], "o", ms=4,
                 label="dense eigh of Sigma (E8)")
    axes[2].plot(np.sort(md.spectral.eigenvalues(u, shape).ravel())[::-1], ".", color="C3",
                 label="FFT of kernel row (E9)")
    axes[2].set(xlabel="rank", ylabel="eigenvalue", title=f"random 3x3 filter on {shape}")
    axes[2].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c1_kernel")

    checks = [common.Check("max eigenvalue error / lambda_max", max(errors.values()), "<=",
                           MAX_EIG_ERROR),
              common.Check(f"||K0 - Sigma||_F / ||Sigma||_F at k = {channels}", mc_distance,
                           "<=", MAX_MC_DISTANCE),
              common.Check(f"max ratio of successive band means, {', '.join(monotone_filters)}",
                           max(decay[name][0] for name in monotone_filters), "<", 1.0),
              common.Check("interpolating: max last / first band mean",
                           max(decay[name][1] for name in INTERPOLATING), "<=",
                           MAX_LAST_TO_FIRST),
              common.Check("controls (delta, random) judged decaying", len(controls_decaying),
                           "<=", 0),
              common.Check("delta: max |lambda - 1/2|", delta_spread, "<=", MAX_DELTA_SPREAD)]
    measured = dict(eigenvalue_errors=errors, monte_carlo_distance=mc_distance,
                    band_means={name: m for name, m in means.items()},
                    successive_and_last_to_first=decay,
                    monotone_filter_spectrum=monotone_filters, delta_spread=delta_spread)
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
