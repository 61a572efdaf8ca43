"""mse and psnr against closed forms."""
import math

import numpy as np
import pytest

from minidip import metrics


@pytest.mark.parametrize("shape", [(7,), (4, 5)])
@pytest.mark.parametrize("offset", [0.1, -0.25, 3.0])
def test_constant_offset_closed_form(shape, offset):
    reference = np.random.default_rng(0).uniform(size=shape)
    estimate = reference + offset
    assert metrics.mse(estimate, reference) == pytest.approx(offset**2, rel=1e-12)
    # psnr = 10 log10(R^2 / c^2) = 20 log10(R / |c|)
    for data_range in (1.0, 255.0):
        expected = 20 * math.log10(data_range / abs(offset))
        got = metrics.psnr(estimate, reference, data_range=data_range)
        assert got == pytest.approx(expected, rel=1e-12)


def test_known_values():
    assert metrics.psnr(np.full(4, 0.1), np.zeros(4), data_range=1.0) == pytest.approx(20.0)
    # errors 1, -1, 2, 0 -> mse = 6 / 4
    assert metrics.mse([1.0, 1.0, 4.0, 3.0], [0.0, 2.0, 2.0, 3.0]) == 1.5


def test_mse_equals_explicit_sum_and_is_symmetric():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    explicit = sum((x - y) ** 2 for x, y in zip(a.ravel().tolist(), b.ravel().tolist())) / a.size
    assert metrics.mse(a, b) == pytest.approx(explicit, rel=1e-12)
    assert metrics.mse(a, b) == metrics.mse(b, a)


def test_float32_inputs_are_accumulated_in_float64():
    # (0.5 + 2^-23)^2 = 0.25 + 2^-23 + 2^-46 needs 45 significant bits: exact in float64 only.
    a = np.full(8, 1.0 + 2.0**-23, np.float32)
    b = np.full(8, 0.5, np.float32)
    assert metrics.mse(a, b) == 0.25 + 2.0**-23 + 2.0**-46
    assert float(np.mean(np.square(a - b))) != 0.25 + 2.0**-23 + 2.0**-46


def test_identical_gives_inf_psnr_and_zero_mse():
    x = np.random.default_rng(2).uniform(size=(3, 3))
    assert metrics.mse(x, x.copy()) == 0.0
    assert metrics.psnr(x, x.copy(), data_range=1.0) == math.inf


@pytest.mark.parametrize("a_shape, b_shape", [((3,), (4,)), ((3,), (1, 3)), ((2, 3), (3, 2))])
def test_mismatched_shapes(a_shape, b_shape):
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.mse(np.zeros(a_shape), np.zeros(b_shape))
    with pytest.raises(ValueError, match="shapes differ"):
        metrics.psnr(np.zeros(a_shape), np.zeros(b_shape), data_range=1.0)


@pytest.mark.parametrize("data_range", [0.0, -1.0, math.nan, math.inf])
def test_bad_data_range(data_range):
    with pytest.raises(ValueError, match="data_range"):
        metrics.psnr(np.zeros(3), np.ones(3), data_range=data_range)


def test_data_range_is_required():
    with pytest.raises(TypeError):
        metrics.psnr(np.zeros(3), np.ones(3))
