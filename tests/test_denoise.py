import numpy as np
import pytest
from scipy import ndimage

import minidip as md
from minidip import denoise as dn
from minidip import filters


@pytest.mark.parametrize("spec, ndim, expected", [
    ("gaussian:1.2:7", 2, filters.gaussian(1.2, ndim=2, size=7)),
    ("gaussian:2", 1, filters.gaussian(2.0)),
    ("triangle:3", 2, filters.triangle(3, ndim=2)),
    ("box:3", 1, filters.box(3)),
    ("upsampling:linear", 2, filters.upsampling("linear", ndim=2)),
    ("delta", 2, filters.delta(ndim=2)),
    ("random:5:7", 1, filters.random(5, seed=7)),
    ("random:5:0", 2, filters.random(5, seed=0, ndim=2)),
])
def test_parse_filter(spec, ndim, expected):
    np.testing.assert_array_equal(dn.parse_filter(spec, ndim), expected)


@pytest.mark.parametrize("spec, match", [
    ("sobel", "unknown filter"), ("gaussian", "parameters"), ("gaussian:1:7:3", "parameters"),
    ("gaussian:-1", "positive"), ("box:0", "positive"), ("box:x", "not a valid int"),
    ("gaussian:1.2:6", "odd"), ("upsampling:weird", "unknown upsampling"), ("delta:3", "parameters"),
])
def test_parse_filter_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        dn.parse_filter(spec, 2)


# --------------------------------------------------------------------------------------------

N, SIGMA = 128, 0.3


@pytest.fixture(scope="module")
def noisy():
    x = md.data.bandlimited((N,), p=6, seed=3)
    return x, x + SIGMA * np.random.default_rng(0).standard_normal(N)


def test_denoise_builds_the_documented_generator(noisy):
    x, y = noisy
    res = dn.denoise(y, steps=0, channels=16, seed=4)
    taps = filters.gaussian(2.0)
    gen = md.Generator(taps, (N,), 16, init_std=md.init_std_for(taps, y, dn.DEFAULT_INIT_RATIO),
                       seed=4)
    np.testing.assert_allclose(res.output, gen.forward(gen.init_weights()), rtol=1e-6)
    lam_max = md.spectral.eigenvalues(taps, (N,)).max()
    assert res.step_size == pytest.approx(dn.DEFAULT_STEP_FRACTION / lam_max)
    # The init is small: ||G(C_0)|| is a few percent of ||y||.
    assert np.linalg.norm(res.output) < 0.1 * np.linalg.norm(y)


def test_denoise_gains_and_reports_noise_level(noisy):
    x, y = noisy
    res = dn.denoise(y, channels=64, clean=x)
    assert res.info["noise_std_estimated"] is True
    assert res.info["noise_std"] == pytest.approx(md.stopping.estimate_noise_std(y))
    assert 0 < res.stopped_at < dn.DEFAULT_STEPS
    assert md.metrics.mse(res.output, x) < 0.5 * md.metrics.mse(y, x)
    known = dn.denoise(y, channels=64, noise_std=SIGMA, stop="oracle", clean=x)
    assert known.info == {**known.info, "noise_std": SIGMA, "noise_std_estimated": False}
    assert known.history["error"].min() == pytest.approx(np.linalg.norm(known.output - x))


@pytest.mark.parametrize("kwargs, match", [
    (dict(y=np.zeros((2, 3, 4))), "1-D or 2-D"), (dict(y=np.zeros(32)), "all zero"),
    (dict(init_ratio=0.0), "init_ratio"), (dict(filter="gaussian:40"), "larger than the signal"),
    (dict(channels=3), "even"), (dict(stop="never"), "unknown stop rule")])
def test_denoise_errors(noisy, kwargs, match):
    kwargs = {"y": noisy[1], **kwargs}
    with pytest.raises(ValueError, match=match):
        dn.denoise(kwargs.pop("y"), **kwargs)


# --------------------------------------------------------------------------------------------
# Baselines: closed forms.

def test_gaussian_blur_baseline_picks_least_error():
    x = np.sin(np.linspace(0, 4 * np.pi, 200))
    y = x + 0.2 * np.random.default_rng(1).standard_normal(200)
    out, std = dn.gaussian_blur_baseline(y, x)
    np.testing.assert_allclose(out, ndimage.gaussian_filter(y, std))
    assert std in dn.BLUR_STDS
    errors = [md.metrics.mse(ndimage.gaussian_filter(y, s), x) for s in dn.BLUR_STDS]
    assert md.metrics.mse(out, x) == pytest.approx(min(errors))


def test_oracle_wiener_on_a_single_mode():
    n, f, sigma = 64, 3, 0.5
    x = np.cos(2 * np.pi * f * np.arange(n) / n)
    y = x + sigma * np.random.default_rng(2).standard_normal(n)
    out, params = dn.wiener_baseline(y, x, sigma)
    # |xhat_{+-f}|^2 = n/4 in the unitary DFT, zero elsewhere: H = (n/4) / (n/4 + sigma^2) on +-f.
    gain = (n / 4) / (n / 4 + sigma**2)
    basis = np.exp(2j * np.pi * f * np.arange(n) / n) / np.sqrt(n)
    coef = np.vdot(basis, y)
    expected = gain * 2 * (coef * basis).real
    np.testing.assert_allclose(out, expected, atol=1e-12)
    assert params == {}


def test_power_law_wiener_is_best_on_its_grid():
    x = md.data.mri(downsample=8)
    y = x + 0.1 * np.random.default_rng(3).standard_normal(x.shape)
    out, params = dn.wiener_baseline(y, x, 0.1, model="power")
    assert params["alpha"] in dn.POWER_EXPONENTS and params["A"] in dn.POWER_AMPLITUDES
    assert md.metrics.mse(out, x) < md.metrics.mse(y, x)
    # Mean passes unchanged (H_0 = 1).
    assert out.mean() == pytest.approx(y.mean())
    with pytest.raises(ValueError, match="model"):
        dn.wiener_baseline(y, x, 0.1, model="median")


# --------------------------------------------------------------------------------------------
# The comparison on a tiny case.

TINY = dn.Case("tiny", lambda: (md.data.bandlimited((96,), p=6, seed=1) + 3) / 6, 0.05,
               "gaussian:2", channels=16, steps=60)


@pytest.fixture(scope="module")
def rows():
    return dn.compare(cases=(TINY,), seeds=(0, 1))


def test_compare_rows(rows):
    assert len(rows) == 2
    for row in rows:
        assert set(row["psnr"]) == set(dn.METHODS)
        assert all(np.isfinite(v) for v in row["psnr"].values())
        # The oracle stop is the best iterate of the trajectory every rule chose from.
        for label, stop in row["stops"].items():
            assert row["psnr"][label] <= row["psnr"]["oracle stop"] + 1e-9
            assert 0 <= stop <= TINY.steps


def test_compare_matches_separate_fits(rows):
    # Each rule's choice in the shared fit equals a fit stopped by that rule alone.
    row = rows[0]
    x, y = row["clean"], row["noisy"]
    for label, stop, noise_std in [("discrepancy (sigma known)", "discrepancy", TINY.noise_std),
                                   ("spectral (sigma estimated)", "spectral", None),
                                   ("oracle stop", "oracle", None)]:
        alone = dn.denoise(y, filter=TINY.filter, stop=stop, noise_std=noise_std,
                           channels=TINY.channels, steps=TINY.steps, seed=0, clean=x)
        assert alone.stopped_at == row["stops"][label]
        np.testing.assert_allclose(row["outputs"][label], alone.output, rtol=1e-12)


def test_comparison_table(rows):
    table = dn.comparison_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| method | tiny |" and len(lines) == 2 + len(dn.METHODS)
    mean_noisy = np.mean([r["psnr"]["noisy"] for r in rows])
    assert f"| noisy | {mean_noisy:.2f} |" in lines


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])     # 3: the closest to the bounds among seeds 0..4
def test_acceptance_mri(seed):
    """MRI 128x128 in [0, 1], noise 0.1, 7x7 Gaussian filter, 128 channels, <= 300 steps, with
    the defaults a user gets: discrepancy gains >= 4 dB (sigma known), >= 3.5 dB (estimated),
    and is within 1 dB of the oracle stop."""
    x = md.data.mri(downsample=2)
    y = x + 0.1 * np.random.default_rng(seed).standard_normal(x.shape)
    assert x.shape == (128, 128) and x.min() == 0 and x.max() <= 1
    psnr = {"noisy": md.metrics.psnr(y, x, data_range=1.0)}
    for label, stop, noise_std in [("known", "discrepancy", 0.1), ("estimated", "discrepancy", None),
                                   ("oracle", "oracle", None)]:
        res = dn.denoise(y, filter=md.filters.gaussian(1.2, ndim=2, size=7), stop=stop,
                         noise_std=noise_std, channels=128, steps=300, seed=seed, clean=x)
        psnr[label] = md.metrics.psnr(res.output, x, data_range=1.0)
    assert psnr["known"] >= psnr["noisy"] + 4
    assert psnr["estimated"] >= psnr["noisy"] + 3.5
    assert psnr["known"] >= psnr["oracle"] - 1
    assert psnr["estimated"] >= psnr["oracle"] - 1
