"""C11 Deep spectral bias: in the lazy regime the deep decoder fits the frequency bands of a
signal at the rates of its NTK (E18), and depth makes that spectrum fall more steeply.

Gradient descent on the trained arrays Omega (E16, "ntk" parametrisation, no normalisation, no
sigmoid) is, for wide layers, gradient descent on a linear model with the kernel Theta of E18:
from the output G_0 at initialisation, G_tau = y + (I - eta Theta)^tau (G_0 - y) (E10 with
Theta).  We fit a real 1-D recording (matplotlib's membrane.dat, block-averaged to n = 128,
scaled to [0, 1]) with a deep decoder of L = 3 layers (two x2 linear upsamplings) at width
k = 256, plain gradient descent with eta = 1 / lambda_max(Theta), and compare the band measure
of E14 of the displacement G_tau - G_0 against y - G_0 (E14 assumes a start at 0; the
displacement starts there) with the same measure of the prediction.  Theta is E18 for the
model's own input B_0 (md.deep.ntk, dense: N = 128), diagonalised once.

Checks and thresholds (as C7, whose argument carries over).
(a) Order: the iteration at which each band's measure first reaches RISE_LEVEL = 1/2 increases
    strictly with the band (ratio of successive rises > 1).  The deep NTK spectrum falls by an
    order of magnitude over the bands here (panel 2), so E18 predicts well-separated rises.
(b) Agreement: the worst |H_b - P_b| over the snapshots where P_b >= 1/2 is <= 0.1.  The
    finite-width kernel differs from Theta by O(k^(-1/2)) (C10: ~30% at k = 256 for this depth),
    which leaks the signal's large low frequencies into the weak upper bands; once a band is
    half fitted that leakage enters the ratio of E14 at second order (C7), so 0.1 allows a
    leakage of ~30% of a band's own content.  The first steps, where the upper bands read the
    leakage itself, are reported, not checked.
(c) Depth steepens the spectrum: with K_0 = I, the mean of the phase-averaged NTK eigenvalues
    (E19, DC excluded) in the top band over that in the bottom band decreases strictly with
    L = 1..4 for the linear, cubic and nearest upsampling filters (n = 128).  L = 1 without a
    last filter is flat (ratio 1, Theta is diagonal); each further layer applies one more
    interpolating (low-pass) map.  Shown next to the two-layer generator's E9 spectrum.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common
from proofs_check.c7_spectral_bias import rise_iteration, snapshot_iterations

CLAIM = "C11"
STATEMENT = "the deep decoder fits frequency bands at the rates of its NTK; depth steepens them"

LAYERS = 3
INPUT_CHANNELS = 64
N_BANDS = 4
RISE_LEVEL = 0.5
HALF = 0.5
MAX_DEVIATION = 0.1
DTYPE = np.float32
KINDS = ("linear", "cubic", "nearest")
DEPTHS = (1, 2, 3, 4)
TWO_LAYER_FILTER = md.filters.gaussian(2.0)      # the 1-D default of md.denoise


@dataclass(frozen=True)
class Config:
    """Signal length n (membrane.dat block-averaged), width k, gradient steps."""

    n: int = 128
    channels: int = 256
    steps: int = 300


DEFAULT = Config()
FULL = Config(n=256, channels=1024, steps=1000)


def signal(n) -> np.ndarray:
    """membrane.dat block-averaged to n samples, scaled to [0, 1]."""
    x = md.data.membrane()
    x = x[: n * (x.size // n)].reshape(n, -1).mean(axis=1)
    return (x - x.min()) / (x.max() - x.min())


def band_means(lam, shape, n_bands=N_BANDS) -> np.ndarray:
    """Mean of a spectrum (np.fft order) over each band of E14, the DC term left out."""
    labels = md.spectral.band_labels(shape, n_bands).ravel()
    values = np.asarray(lam, np.float64).ravel().copy()
    values[0] = np.nan
    return np.array([np.nanmean(values[labels == b]) for b in range(n_bands)])


def depth_ratios(n, kinds=KINDS, depths=DEPTHS) -> dict:
    """Top-band over bottom-band mean of the phase-averaged NTK spectrum (E19, K_0 = I)."""
    out = {}
    for kind in kinds:
        ratios, spectra = [], []
        for L in depths:
            gen = md.DeepDecoder((n,), channels=4, layers=L, upsample=kind, norm=False)
            lam, _ = md.deep.ntk_phase_average(gen)
            b = band_means(lam, (n,))
            ratios.append(float(b[-1] / b[0]))
            spectra.append(lam)
        out[kind] = dict(ratios=ratios, spectra=spectra)
    return out


def measure(y, channels, steps, seed):
    """Band measures (E14) of gradient descent on the deep decoder and of the E18 prediction."""
    gen = md.DeepDecoder(y.shape, channels=channels, layers=LAYERS, norm=False,
                         input_channels=INPUT_CHANNELS, seed=seed, dtype=DTYPE)
    lam, V = np.linalg.eigh(md.deep.ntk(gen))
    eta = 1.0 / lam[-1]
    taus = snapshot_iterations(steps)
    snaps = md.observers.Snapshots(taus)
    md.fit(gen, y, steps, step_size=eta, observers=[snaps])
    outputs = np.stack([snaps.outputs[t] for t in taus]).astype(np.float64)
    g0 = outputs[0]
    coeff = V.T @ (g0 - y)
    predicted = np.array([y + V @ ((1 - eta * lam) ** t * coeff) for t in taus])
    measured_H = md.spectral.band_measure(outputs - g0, y - g0, N_BANDS)
    predicted_H = md.spectral.band_measure(predicted - g0, y - g0, N_BANDS)
    deviation = np.abs(measured_H - predicted_H)
    window = predicted_H >= HALF
    return dict(taus=taus, measured=measured_H, predicted=predicted_H, deviation=deviation,
                window=window, eta=eta,
                worst_in_window=float(deviation[window].max()) if window.any() else np.nan,
                worst=float(deviation.max()),
                output_deviation=np.linalg.norm(outputs - predicted, axis=1) / np.linalg.norm(y),
                rise=np.array([rise_iteration(taus, measured_H[:, b], RISE_LEVEL)
                               for b in range(N_BANDS)]),
                predicted_rise=np.array([rise_iteration(taus, predicted_H[:, b], RISE_LEVEL)
                                         for b in range(N_BANDS)]))


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    y = signal(c.n)
    m = measure(y, c.channels, c.steps, seed)
    depth = depth_ratios(c.n)

    fig, axes = common.new_figure(3, width=4.3)
    taus, later = m["taus"], m["taus"] >= 1
    for b in range(N_BANDS):
        axes[0].plot(taus[later], m["measured"][later, b], color=f"C{b}", label=f"band {b}")
        axes[0].plot(taus[later], m["predicted"][later, b], "--", color=f"C{b}")
    axes[0].axhline(RISE_LEVEL, color="gray", lw=0.6)
    axes[0].set(xscale="log", xlabel="iteration", ylabel="band measure of G_tau - G_0 (E14)",
                title=f"membrane n={c.n}, L={LAYERS}, k={c.channels}: GD (solid), E18 (dashed)")
    axes[0].legend(fontsize=7)
    freqs = np.fft.fftfreq(c.n)
    order = np.argsort(freqs)[c.n // 2:]                            # f >= 0
    for L, lam in zip(DEPTHS, depth["linear"]["spectra"]):
        axes[1].semilogy(freqs[order], lam[order] / lam[order][1:].max(), color=f"C{L - 1}",
                         label=f"deep, L={L} (E19)")
    two = md.spectral.eigenvalues(TWO_LAYER_FILTER, (c.n,))
    axes[1].semilogy(freqs[order], two[order] / two[order][1:].max(), "k--",
                     label="two-layer, gaussian 2 (E9)")
    axes[1].set(xlabel="frequency (cycles/sample)", ylabel="eigenvalue / max over f > 0",
                title="NTK spectra, linear upsampling, K_0 = I")
    axes[1].legend(fontsize=7)
    for i, kind in enumerate(KINDS):
        axes[2].semilogy(DEPTHS, depth[kind]["ratios"], "o-", color=f"C{i}", label=kind)
    axes[2].set(xlabel="layers L", ylabel="top band / bottom band (mean eigenvalue)",
                xticks=list(DEPTHS), title="depth steepens the spectrum")
    axes[2].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c11_deep_spectral_bias")

    rise = m["rise"]
    with np.errstate(invalid="ignore"):
        order_ratio = float(np.min(rise[1:] / rise[:-1]))
    steepening = min(float(np.min(np.array(d["ratios"][:-1]) / np.array(d["ratios"][1:])))
                     for d in depth.values())
    checks = [common.Check("(a) min ratio of successive band rise iterations", order_ratio, ">",
                           1.0),
              common.Check("(b) max |H_b - P_b| where P_b >= 1/2", m["worst_in_window"], "<=",
                           MAX_DEVIATION),
              common.Check("(c) min ratio of successive top/bottom spectra over depth",
                           steepening, ">", 1.0)]
    measured = dict(n=c.n, channels=c.channels, steps=c.steps, step_size=m["eta"],
                    rise_iterations=rise, predicted_rise_iterations=m["predicted_rise"],
                    worst_deviation_in_window=m["worst_in_window"],
                    worst_deviation_whole_trajectory=m["worst"],
                    output_deviation_over_y=dict(first_step=m["output_deviation"][1],
                                                 last=m["output_deviation"][-1],
                                                 worst=m["output_deviation"].max()),
                    top_over_bottom_band={k: d["ratios"] for k, d in depth.items()},
                    two_layer_top_over_bottom=float(
                        (lambda b: b[-1] / b[0])(band_means(two, (c.n,)))))
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
