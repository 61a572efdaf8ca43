import numpy as np
import pytest

import minidip as md
from minidip import filters

CONSTRUCTORS = [
    lambda: filters.gaussian(2.0), lambda: filters.gaussian(1.2, ndim=2, size=7),
    lambda: filters.triangle(4), lambda: filters.upsampling("linear"),
    lambda: filters.upsampling("bilinear"), lambda: filters.upsampling("cubic"),
    lambda: filters.box(5), lambda: filters.random(7, seed=1), lambda: filters.random(3, ndim=2),
]


@pytest.mark.parametrize("make", CONSTRUCTORS)
def test_unit_norm_and_odd_centred(make):
    taps = make()
    assert np.linalg.norm(taps) == pytest.approx(1.0, rel=1e-12)
    assert all(n % 2 == 1 for n in taps.shape)


def test_gaussian_profile_and_size():
    taps = filters.gaussian(1.5, normalize=False)
    m = np.arange(-5, 6)
    np.testing.assert_allclose(taps, np.exp(-m**2 / (2 * 1.5**2)))
    assert filters.gaussian(1.2, ndim=2, size=7).shape == (7, 7)
    assert filters.gaussian(2.0, ndim=2).shape == (13, 13)


def test_triangle_is_hat_of_length_2p_minus_1():
    np.testing.assert_array_equal(filters.triangle(3, normalize=False), [1, 2, 3, 2, 1])
    np.testing.assert_array_equal(filters.triangle(1), [1.0])


def test_linear_upsampling_filter_reproduces_interpolation():
    # Zero-insertion followed by convolution with the induced filter is linear interpolation.
    coarse = np.array([1.0, 3.0, 2.0, 5.0])
    fine = np.zeros(8)
    fine[::2] = coarse
    taps = filters.upsampling("linear", normalize=False)
    out = md.generator.convolve(fine[None], taps)[0]
    np.testing.assert_allclose(out[1::2], (coarse + np.roll(coarse, -1)) / 2)
    np.testing.assert_allclose(out[::2], coarse)


def test_even_taps_centring_rule():
    np.testing.assert_array_equal(filters.as_taps(np.array([1.0, 2.0]), 1), [1.0, 2.0, 0.0])
    grid = filters.on_grid(filters.as_taps(np.array([1.0, 2.0]), 1), (5,))
    np.testing.assert_array_equal(grid, [2.0, 0.0, 0.0, 0.0, 1.0])   # u[-1] = 1, u[0] = 2


def test_on_grid_places_taps_at_offsets():
    grid = filters.on_grid(np.array([1.0, 2.0, 3.0]), (6,))
    np.testing.assert_array_equal(grid, [2.0, 3.0, 0.0, 0.0, 0.0, 1.0])
    impulse = np.zeros((1, 6))
    impulse[0, 0] = 1
    np.testing.assert_array_equal(md.generator.convolve(impulse, np.array([1.0, 2.0, 3.0]))[0], grid)


def test_separable_factors():
    taps = filters.gaussian(1.0, ndim=2)
    rows, cols = filters.separable_factors(taps)
    np.testing.assert_allclose(np.outer(rows, cols), taps, atol=1e-15)
    assert not filters.is_separable(filters.random(3, ndim=2))


@pytest.mark.parametrize("bad, match", [
    (np.zeros(3), "all zero"), (np.array([1.0, np.nan, 1.0]), "NaN"),
    (np.ones((3, 3)), "axes"), (np.array(["a"]), "numeric"), (np.array([1j]), "real"),
    (np.array([]), "no taps"),
])
def test_as_taps_errors(bad, match):
    with pytest.raises(ValueError, match=match):
        filters.as_taps(bad, 1)


@pytest.mark.parametrize("call", [
    lambda: filters.gaussian(0), lambda: filters.gaussian(1.0, size=4), lambda: filters.triangle(0),
    lambda: filters.box(0), lambda: filters.upsampling("sinc"), lambda: filters.random(0),
    lambda: filters.gaussian(1.0, ndim=3),
])
def test_constructor_errors(call):
    with pytest.raises(ValueError):
        call()


# --------------------------------------------------------------------------------------------
# Text specs

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
    np.testing.assert_array_equal(filters.parse_filter(spec, ndim), expected)


@pytest.mark.parametrize("spec, match", [
    ("sobel", "unknown filter"), ("gaussian", "parameters"), ("gaussian:1:7:3", "parameters"),
    ("gaussian:-1", "positive"), ("box:0", "positive"), ("box:x", "not a valid int"),
    ("gaussian:1.2:6", "odd"), ("upsampling:weird", "unknown upsampling"), ("delta:3", "parameters"),
])
def test_parse_filter_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        filters.parse_filter(spec, 2)


def test_default_filter_is_a_valid_spec():
    for ndim in (1, 2):
        assert filters.parse_filter(filters.default_filter(ndim), ndim).ndim == ndim
