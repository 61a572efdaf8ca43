import numpy as np
import pytest

import minidip as md
from minidip import denoise as dn
from minidip import filters


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
                       seed=4, init="iid")
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


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 3])     # 3: the closest to the bounds among seeds 0..4
def test_plain_library_path_denoises(seed):
    """A new user's first call: md.Generator with its defaults, md.fit with the discrepancy rule,
    on the MRI slice (128x128 in [0, 1], noise 0.1, 7x7 Gaussian std 1.2, k = 128, 300 steps):
    >= 5 dB with sigma known, >= 4.5 dB with sigma estimated."""
    x = md.data.mri(downsample=2)
    y = x + 0.1 * np.random.default_rng(seed).standard_normal(x.shape)
    gen = md.Generator(md.filters.gaussian(1.2, ndim=2, size=7), shape=x.shape, channels=128,
                       seed=seed)
    noisy = md.metrics.psnr(y, x, data_range=1.0)
    for noise_std, gain in ((0.1, 5.0), (None, 4.5)):
        res = md.fit(gen, y, steps=300, stop="discrepancy", noise_std=noise_std)
        assert res.info["triggered"]
        assert md.metrics.psnr(res.output, x, data_range=1.0) >= noisy + gain
