"""Tests for minidip.baselines against independent small cases: linear interpolation,
exact harmonic functions, a dense least-squares Dirichlet-energy solve, polynomial reproduction
and PIL's bicubic resize."""
from __future__ import annotations

import numpy as np
import pytest

from minidip import operators
from minidip.baselines import harmonic_fill, keys_cubic, upsample_bicubic


# --------------------------------------------------------------------------------------------
# Harmonic fill

@pytest.mark.parametrize("seed", range(3))
def test_harmonic_fill_in_1d_is_linear_interpolation(seed):
    rng = np.random.default_rng(seed)
    n = 40
    x = rng.standard_normal(n)
    known = rng.random(n) < 0.3
    known[rng.integers(n)] = True
    where = np.flatnonzero(known)
    # np.interp holds the end values constant beyond the first and last known sample.
    np.testing.assert_allclose(harmonic_fill(x, known), np.interp(np.arange(n), where, x[where]),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(harmonic_fill(x, known, periodic=True),
                               np.interp(np.arange(n), where, x[where], period=n),
                               rtol=0, atol=1e-12)


def test_harmonic_fill_reproduces_a_linear_ramp_with_a_known_border():
    h, w = 15, 11
    i, j = np.indices((h, w))
    ramp = 0.3 + 1.7 * i - 0.6 * j
    known = np.random.default_rng(1).random((h, w)) < 0.2
    known[[0, -1], :] = known[:, [0, -1]] = True
    np.testing.assert_allclose(harmonic_fill(np.where(known, ramp, 0.0), known), ramp,
                               rtol=0, atol=1e-11)


def dense_dirichlet_fill(image, known, periodic):
    """Minimise sum over neighbour pairs (x_p - x_q)^2 with x fixed on known pixels, by dense
    least squares on the difference matrix built from explicit neighbour coordinates."""
    shape = image.shape
    rows = []
    for p in np.ndindex(*shape):
        for axis in range(len(shape)):
            q = list(p)
            q[axis] += 1
            if q[axis] == shape[axis]:
                if not periodic or shape[axis] < 2:
                    continue
                q[axis] = 0
            row = np.zeros(image.size)
            row[np.ravel_multi_index(p, shape)] += 1
            row[np.ravel_multi_index(tuple(q), shape)] -= 1
            rows.append(row)
    D = np.array(rows)
    k = known.ravel()
    solution, *_ = np.linalg.lstsq(D[:, ~k], -D[:, k] @ image.ravel()[k], rcond=None)
    out = image.ravel().astype(float).copy()
    out[~k] = solution
    return out.reshape(shape)


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("shape", [(9, 7), (2, 6), (1, 8), (13,)])
def test_harmonic_fill_equals_dense_dirichlet_energy_minimiser(shape, periodic):
    rng = np.random.default_rng(sum(shape))
    image = rng.standard_normal(shape)
    known = rng.random(shape) < 0.35
    known.flat[0] = True
    got = harmonic_fill(image, known, periodic=periodic)
    np.testing.assert_allclose(got, dense_dirichlet_fill(image, known, periodic), rtol=0,
                               atol=1e-10)
    np.testing.assert_array_equal(got[known], image[known])
    # Maximum principle: a harmonic fill stays within the range of the known values.
    assert image[known].min() - 1e-12 <= got.min() and got.max() <= image[known].max() + 1e-12


def test_harmonic_fill_bad_input():
    with pytest.raises(ValueError, match="keeps no pixel"):
        harmonic_fill(np.zeros((3, 3)), np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match=r"expected the image's \(3, 3\)"):
        harmonic_fill(np.zeros((3, 3)), np.ones((3, 4), bool))
    with pytest.raises(ValueError, match="threshold"):
        harmonic_fill(np.zeros((3, 3)), np.full((3, 3), 0.7))
    with pytest.raises(ValueError, match="NaN"):
        harmonic_fill(np.full((3, 3), np.nan), np.ones((3, 3), bool))


def test_harmonic_fill_uses_the_operators_mask():
    known = np.array([1, 0, 0, 1], np.uint8)
    mask = operators.Mask(known)
    np.testing.assert_allclose(harmonic_fill(np.array([0.0, 9, 9, 3]), mask.mask), [0, 1, 2, 3])


# --------------------------------------------------------------------------------------------
# Bicubic (Keys) upsampling

def test_keys_kernel_values():
    """Keys (1981), a = -0.5: W(0) = 1, W(+-1) = W(+-2) = 0, W(1/2) = 9/16, W(3/2) = -1/16."""
    np.testing.assert_allclose(keys_cubic([0, 1, -1, 2, 2.5, 0.5, -0.5, 1.5]),
                               [1, 0, 0, 0, 0, 9 / 16, 9 / 16, -1 / 16], rtol=0, atol=1e-15)


@pytest.mark.parametrize("factor", [2, 3, 4])
def test_bicubic_reproduces_quadratics_away_from_the_border(factor):
    """Keys' a = -0.5 kernel interpolates polynomials of degree <= 2 exactly."""
    n = 12
    def q(s):
        return 0.5 - 1.3 * s + 0.4 * s**2
    low = q(np.arange(n, dtype=float))
    out = upsample_bicubic(low, factor)
    source = (np.arange(n * factor) + 0.5) / factor - 0.5
    inner = (source >= 1) & (source <= n - 2)               # all four taps inside the image
    np.testing.assert_allclose(out[inner], q(source[inner]), rtol=0, atol=1e-12)
    # 2-D: separable, so q(s) r(t) is reproduced too.
    grid = upsample_bicubic(np.outer(low, low[::-1]), factor)
    np.testing.assert_allclose(grid[np.ix_(inner, inner)],
                               np.outer(q(source[inner]), q(n - 1 - source[inner])),
                               rtol=0, atol=1e-10)


def test_bicubic_keeps_constants_and_inverts_the_block_mean_of_smooth_images():
    np.testing.assert_allclose(upsample_bicubic(np.full((4, 5), 0.3), 3), 0.3, rtol=0,
                               atol=1e-15)
    # Downsample then upsample a smooth separable sinusoid of frequency w per axis.  The block
    # mean of sin(w s) over s = c -+ 1/2 is exactly cos(w/2) sin(w c), so the bicubic result
    # must equal cos(w/2)^2 times the image up to Keys' O(h^3) error, at most (2 w)^3 = 7.6e-3
    # (h = 1 low-resolution pixel, third derivative (2 w)^3).  A misalignment by one
    # high-resolution pixel would leave about w = 0.1.
    n = 64
    w = 2 * np.pi / n
    i, j = np.indices((n, n)) + 0.5
    image = np.sin(w * i) * np.cos(w * j)
    low = operators.Downsample(2, shape=(n, n)).forward(image)
    err = np.abs(upsample_bicubic(low, 2) - np.cos(w / 2) ** 2 * image)[4:-4, 4:-4].max()
    assert err <= (2 * w) ** 3


def test_bicubic_equals_pil_bicubic_away_from_the_border():
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    low = rng.random((10, 13)).astype(np.float32)
    pil = Image.fromarray(low, mode="F").resize((26, 20), Image.Resampling.BICUBIC)
    ours = upsample_bicubic(low, 2)
    # PIL drops and renormalises taps outside the image (we replicate the edge): compare where
    # all taps are inside; PIL stores float32.
    np.testing.assert_allclose(ours[3:-3, 3:-3], np.asarray(pil)[3:-3, 3:-3], rtol=0, atol=1e-5)


def test_bicubic_bad_input():
    with pytest.raises(ValueError, match="positive integer"):
        upsample_bicubic(np.zeros(4), 0)
    with pytest.raises(ValueError, match="positive integer"):
        upsample_bicubic(np.zeros(4), 1.5)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        upsample_bicubic(np.zeros((2, 2, 2)), 2)
