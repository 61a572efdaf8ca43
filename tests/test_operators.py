"""Tests for minidip.operators (E21): forward against dense matrices built here from the
definitions, adjointness <A x, r> = <x, A^T r>, dtypes and input validation."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

import minidip as md
from minidip import operators as O
from reference import dense_conv_matrix

F = md.filters


def random_shape(rng, ndim, factor=1):
    """A random grid whose axes are multiples of ``factor`` (at least 2 factors, 8 samples)."""
    return tuple(int(factor * rng.integers(max(2, -(-8 // factor)), 24 // factor + 3))
                 for _ in range(ndim))


def random_operators(seed, ndim):
    """Every kind of operator (and compositions) on one random grid, as (name, operator)."""
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, ndim, factor=2)
    mask = O.Mask(rng.random(shape) < 0.5 + 0.3 * rng.random())
    blur = O.Blur(F.random(3, seed=seed, ndim=ndim), shape)          # asymmetric taps
    down = O.Downsample(2, shape=shape)
    down_u = O.Downsample(2, F.gaussian(1.0, ndim=ndim), shape)
    gauss = O.Gaussian(int(rng.integers(1, 40)), shape, seed=seed)
    small = down.output_shape
    crop = O.Crop(tuple(n - int(rng.integers(0, n // 2)) for n in shape), shape)
    return [("crop", crop), ("mask@crop", O.Mask(rng.random(crop.output_shape) < 0.6) @ crop),
            ("mask", mask), ("blur", blur), ("downsample", down), ("downsample_u", down_u),
            ("gaussian", gauss), ("mask@blur", mask @ blur), ("blur@mask", blur @ mask),
            ("blur@blur", blur @ O.Blur(F.gaussian(0.8, ndim=ndim), shape)),
            ("gaussian@downsample", O.Gaussian(7, small, seed=1) @ down),
            ("mask@downsample@blur", O.Mask(rng.random(small) < 0.6) @ down @ blur),
            ("compose", O.Compose(mask, O.Compose(blur, mask))),
            ("per_channel", O.PerChannel(mask @ blur, 3))]


def dense(op) -> np.ndarray:
    """The matrix of an operator, column by column from forward(e_i)."""
    size = math.prod(op.input_shape)
    cols = [op.forward(e.reshape(op.input_shape)).ravel() for e in np.eye(size)]
    return np.stack(cols, axis=1)


def selection(shape, factor) -> np.ndarray:
    """S with (S x) = x[::factor, ::factor] flattened, from the index definition."""
    kept = [i for i in itertools.product(*[range(n) for n in shape])
            if all(c % factor == 0 for c in i)]
    S = np.zeros((len(kept), math.prod(shape)))
    for row, i in enumerate(kept):
        S[row, np.ravel_multi_index(i, shape)] = 1.0
    return S


# --------------------------------------------------------------------------------------------
# Adjointness: the two inner products agree to rounding.  The error of each is a few eps times
# ||A x|| ||r|| (FFT error grows like log N): 1e-12 leaves a factor > 100 of margin.

@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_adjointness(ndim, seed):
    rng = np.random.default_rng(100 + seed)
    for name, op in random_operators(seed, ndim):
        x = rng.standard_normal(op.input_shape)
        r = rng.standard_normal(op.output_shape)
        Ax, Atr = op.forward(x), op.adjoint(r)
        assert Ax.shape == op.output_shape and Atr.shape == op.input_shape, name
        assert Ax.dtype == Atr.dtype == np.float64, name
        lhs, rhs = float(np.vdot(Ax, r)), float(np.vdot(x, Atr))
        scale = np.linalg.norm(Ax) * np.linalg.norm(r) + np.linalg.norm(x) * np.linalg.norm(Atr)
        assert abs(lhs - rhs) <= 1e-12 * scale, (name, lhs, rhs)


# --------------------------------------------------------------------------------------------
# Forward against dense matrices built from the definitions (no FFT, no library code)

@pytest.mark.parametrize("ndim", [1, 2])
@pytest.mark.parametrize("seed", range(3))
def test_forward_equals_dense_definitions(ndim, seed):
    rng = np.random.default_rng(seed)
    shape = random_shape(rng, ndim, factor=2)
    keep = rng.random(shape) < 0.6
    u = F.random(int(rng.integers(1, 6)), seed=seed, ndim=ndim)      # odd and even sizes
    u = u[tuple(slice(0, min(t, n)) for t, n in zip(u.shape, shape))]
    U = dense_conv_matrix(u, shape)
    S = selection(shape, 2)
    M = np.diag(keep.ravel().astype(float))
    kept = [np.ravel_multi_index(i, shape) for i in itertools.product(*[range(n - 1)
                                                                        for n in shape])]
    C = np.eye(math.prod(shape))[kept]                   # rows e_i of the pixels i < shape - 1
    cases = [(O.Crop(tuple(n - 1 for n in shape), shape), C),
             (O.Mask(keep), M), (O.Blur(u, shape), U),
             (O.Downsample(2, u, shape), S @ U),
             (O.Mask(keep) @ O.Blur(u, shape), M @ U),
             (O.Blur(u, shape) @ O.Mask(keep) @ O.Blur(u, shape), U @ M @ U)]
    x = rng.standard_normal(shape)
    for op, matrix in cases:
        bound = 1e-13 * np.abs(matrix).sum(axis=1).max() * np.abs(x).max()
        np.testing.assert_allclose(op.forward(x).ravel(), matrix @ x.ravel(), rtol=0, atol=bound,
                                   err_msg=repr(op))
        np.testing.assert_allclose(dense(op), matrix, rtol=0, atol=1e-14 * np.abs(matrix).max())


def test_per_channel_is_block_diagonal_with_noise_level_of_the_channels():
    rng = np.random.default_rng(5)
    for inner in (O.Mask(rng.random((6, 5)) < 0.5) @ O.Blur(F.random(3, seed=1, ndim=2), (6, 5)),
                  O.Downsample(2, shape=(6, 4))):
        op = O.PerChannel(inner, 3)
        assert op.input_shape == (3,) + inner.input_shape
        assert op.output_shape == (3,) + inner.output_shape
        assert op.measurements == 3 * inner.measurements
        np.testing.assert_array_equal(dense(op), np.kron(np.eye(3), dense(inner)))
    keep = rng.random((16, 16)) < 0.7
    op = O.PerChannel(O.Mask(keep), 3)
    y = np.stack([O.Mask(keep).forward(s * rng.standard_normal((16, 16))) for s in (1, 2, 3)])
    levels = [O.Mask(keep).estimate_noise_std(c) for c in y]
    assert op.estimate_noise_std(y) == pytest.approx(np.sqrt(np.mean(np.square(levels))))
    assert not hasattr(O.PerChannel(O.Gaussian(3, (4,)), 2), "estimate_noise_std")
    with pytest.raises(ValueError, match="operator"):
        O.PerChannel(np.eye(3))
    with pytest.raises(ValueError, match="channels"):
        O.PerChannel(O.Mask(keep), 0)


def test_mask_is_the_masked_image():
    keep = np.array([[True, False, True], [False, False, True]])
    x = np.arange(6.0).reshape(2, 3) + 1
    op = O.Mask(keep)
    np.testing.assert_array_equal(op.forward(x), [[1, 0, 3], [0, 0, 6]])
    np.testing.assert_array_equal(op.adjoint(x), op.forward(x))
    assert op.output_shape == (2, 3) and op.measurements == 3
    assert O.Mask(keep.astype(np.uint8)).measurements == 3


@pytest.mark.parametrize("factor,shape", [(2, (12,)), (3, (9, 12)), (4, (8, 16)), (2, (6, 10))])
def test_default_downsample_is_the_block_mean(factor, shape):
    x = np.random.default_rng(factor).standard_normal(shape)
    split = [d for n in shape for d in (n // factor, factor)]
    block_mean = x.reshape(split).mean(axis=tuple(range(1, 2 * len(shape), 2)))
    op = O.Downsample(factor, shape=shape)
    assert op.output_shape == block_mean.shape
    np.testing.assert_allclose(op.forward(x), block_mean, rtol=0, atol=1e-14)
    np.testing.assert_allclose(op.forward(np.full(shape, 0.7)), 0.7, rtol=0, atol=1e-15)


def test_blur_transfer_is_the_dft_of_the_filter_on_the_grid():
    u, shape = F.random(3, seed=5, ndim=2), (6, 7)
    op = O.Blur(u, shape)
    # DFT of the filter from the definition: a_f = sum_m u[m] exp(-2 pi i <f, m / shape>)
    f = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    a = np.zeros(shape, complex)
    for index in np.ndindex(*u.shape):
        m = np.array(index) - 1
        a += u[index] * np.exp(-2j * np.pi * (f * m / np.array(shape)).sum(axis=-1))
    np.testing.assert_allclose(op.transfer, a, rtol=0, atol=1e-14)


def test_gaussian_matrix_statistics():
    """Columns from forward(e_i); entries iid N(0, 1/m): mean, variance within 4 std. errors."""
    m, shape = 60, (9, 8)
    op = O.Gaussian(m, shape, seed=3)
    G = dense(op)
    assert G.shape == (m, 72)
    entries = G.ravel() * math.sqrt(m)                    # should be iid N(0, 1)
    count = entries.size
    assert abs(entries.mean()) <= 4 / math.sqrt(count)
    assert abs(entries.var() - 1) <= 4 * math.sqrt(2 / count)
    np.testing.assert_array_equal(dense(O.Gaussian(m, shape, seed=3)), G)   # same seed, same bits
    assert not np.array_equal(dense(O.Gaussian(m, shape, seed=4)), G)
    x = np.random.default_rng(0).standard_normal(shape)
    np.testing.assert_allclose(op.forward(x), G @ x.ravel(), rtol=1e-13)


# --------------------------------------------------------------------------------------------
# dtypes

@pytest.mark.parametrize("name_op", random_operators(7, 2), ids=lambda p: p[0])
def test_float32_stays_float32_and_integers_become_float64(name_op):
    _, op = name_op
    rng = np.random.default_rng(0)
    x = rng.standard_normal(op.input_shape)
    r = rng.standard_normal(op.output_shape)
    x32 = x.astype(np.float32)
    out32 = op.forward(x32)
    assert out32.dtype == np.float32 and op.adjoint(r.astype(np.float32)).dtype == np.float32
    reference = op.forward(x32.astype(np.float64))
    np.testing.assert_allclose(out32, reference, rtol=0,
                               atol=4 * np.finfo(np.float32).eps * np.abs(reference).max())
    xi = rng.integers(-3, 4, op.input_shape)
    assert op.forward(xi).dtype == np.float64
    np.testing.assert_array_equal(op.forward(xi), op.forward(xi.astype(np.float64)))


# --------------------------------------------------------------------------------------------
# Validation: one ValueError naming the problem

@pytest.mark.parametrize("build,match", [
    (lambda: O.Mask(np.full(5, 0.5)), "threshold"),
    (lambda: O.Mask(np.zeros(5, bool)), "keeps no pixel"),
    (lambda: O.Mask(np.ones((2, 2, 2), bool)), "1-D or 2-D"),
    (lambda: O.Mask(np.array(["a", "b"])), "boolean"),
    (lambda: O.Blur(F.gaussian(3.0), (8,)), "larger than the signal"),
    (lambda: O.Blur(F.gaussian(1.0), (8, 8)), "axes"),
    (lambda: O.Blur(F.gaussian(1.0), (0,)), "positive integers"),
    (lambda: O.Downsample(3, shape=(12, 10)), "does not divide"),
    (lambda: O.Downsample(0, shape=(12,)), "positive integer"),
    (lambda: O.Downsample(2.5, shape=(12,)), "positive integer"),
    (lambda: O.Downsample(2), "shape"),
    (lambda: O.Gaussian(0, (8,)), "m .the number of measurements. must be a positive integer"),
    (lambda: O.Gaussian(2.5, (8,)), "positive integer"),
    (lambda: O.Gaussian(4096, (64, 128)), "smaller grid"),
    (lambda: O.Mask(np.ones(6, bool)) @ O.Blur(F.delta(), (5,)), "cannot compose"),
    (lambda: O.Crop((5, 4), (4, 4)), "inside the grid"),
    (lambda: O.Crop((4, 4), (4,)), "inside the grid"),
    (lambda: O.Compose(O.Mask(np.ones(6, bool)), np.eye(6)), "two operators"),
])
def test_bad_construction_raises(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_input_raises():
    op = O.Downsample(2, shape=(8, 6))
    with pytest.raises(ValueError, match=r"shape \(8, 4\), expected \(8, 6\)"):
        op.forward(np.zeros((8, 4)))
    with pytest.raises(ValueError, match=r"expected \(4, 3\)"):
        op.adjoint(np.zeros((8, 6)))
    with pytest.raises(ValueError, match="NaN"):
        op.forward(np.full((8, 6), np.nan))
    with pytest.raises(ValueError, match="real numeric"):
        op.forward(np.zeros((8, 6), complex))
    with pytest.raises(TypeError):
        op @ np.eye(3)
    with pytest.raises(TypeError):
        np.eye(3) @ op
