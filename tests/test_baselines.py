import numpy as np
import pytest
from scipy import ndimage

import minidip as md
from minidip import baselines


def test_gaussian_blur_baseline_picks_least_error():
    x = np.sin(np.linspace(0, 4 * np.pi, 200))
    y = x + 0.2 * np.random.default_rng(1).standard_normal(200)
    out, std = baselines.gaussian_blur_baseline(y, x)
    np.testing.assert_allclose(out, ndimage.gaussian_filter(y, std))
    assert std in baselines.BLUR_STDS
    errors = [md.metrics.mse(ndimage.gaussian_filter(y, s), x) for s in baselines.BLUR_STDS]
    assert md.metrics.mse(out, x) == pytest.approx(min(errors))


def test_oracle_wiener_on_a_single_mode():
    n, f, sigma = 64, 3, 0.5
    x = np.cos(2 * np.pi * f * np.arange(n) / n)
    y = x + sigma * np.random.default_rng(2).standard_normal(n)
    out, params = baselines.wiener_baseline(y, x, sigma)
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
    out, params = baselines.wiener_baseline(y, x, 0.1, model="power")
    assert params["alpha"] in baselines.POWER_EXPONENTS and params["A"] in baselines.POWER_AMPLITUDES
    assert md.metrics.mse(out, x) < md.metrics.mse(y, x)
    # Mean passes unchanged (H_0 = 1).
    assert out.mean() == pytest.approx(y.mean())
    with pytest.raises(ValueError, match="model"):
        baselines.wiener_baseline(y, x, 0.1, model="median")
