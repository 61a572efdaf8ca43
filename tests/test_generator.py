import numpy as np
import pytest

import minidip as md
from minidip import generator
from reference import dense_conv_matrix, generator_autograd

CASES = [
    # (taps, shape, channels)
    (md.filters.gaussian(1.0), (17,), 4),
    (md.filters.random(5, seed=3), (12,), 6),                 # asymmetric
    (np.array([0.3, -1.0, 2.0, 0.5]), (9,), 2),               # even size, asymmetric
    (md.filters.triangle(3, ndim=2), (7, 9), 4),
    (md.filters.random(3, seed=5, ndim=2), (6, 5), 8),       # asymmetric, not separable
    (np.arange(6.0).reshape(2, 3) - 2.0, (5, 8), 2),          # even axis
]


def _random_case(taps, shape, channels, seed):
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((channels,) + shape)
    y = rng.standard_normal(shape)
    return C, y


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("taps, shape, channels", CASES)
def test_convolution_matches_dense_definition(taps, shape, channels):
    C, _ = _random_case(taps, shape, channels, 0)
    U = dense_conv_matrix(taps, shape)
    centred = md.filters.as_taps(taps, len(shape))
    expected = np.stack([U @ c.ravel() for c in C]).reshape(C.shape)
    adjoint = np.stack([U.T @ c.ravel() for c in C]).reshape(C.shape)
    assert _rel(generator.convolve(C, centred), expected) < 1e-12
    assert _rel(generator.correlate(C, centred), adjoint) < 1e-12


@pytest.mark.parametrize("taps, shape, channels", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_forward_loss_grad_match_autograd(taps, shape, channels, seed):
    C, y = _random_case(taps, shape, channels, seed)
    gen = md.Generator(taps, shape, channels, dtype=np.float64, backend="numpy")
    out_ref, loss_ref, grad_ref = generator_autograd(taps, C, y)
    loss, grad = gen.loss_and_grad(C, y)
    assert _rel(gen.forward(C), out_ref) < 1e-9
    assert abs(loss - loss_ref) <= 1e-9 * loss_ref
    assert _rel(grad, grad_ref) < 1e-9


@pytest.mark.parametrize("taps, shape, channels", CASES)
def test_gradient_matches_finite_differences(taps, shape, channels):
    rng = np.random.default_rng(11)
    C, y = _random_case(taps, shape, channels, 2)
    gen = md.Generator(taps, shape, channels, dtype=np.float64, backend="numpy")
    _, grad = gen.loss_and_grad(C, y)
    h = 1e-6
    for _ in range(3):
        D = rng.standard_normal(C.shape)
        numeric = (gen.loss_and_grad(C + h * D, y)[0] - gen.loss_and_grad(C - h * D, y)[0]) / (2 * h)
        assert numeric == pytest.approx(np.sum(grad * D), rel=1e-6, abs=1e-8)


def test_random_shapes_against_autograd():
    rng = np.random.default_rng(2024)
    for trial in range(6):
        ndim = 1 + trial % 2
        shape = tuple(int(s) for s in rng.integers(3, 11 if ndim == 2 else 30, size=ndim))
        width = int(rng.integers(1, min(shape) + 1))
        taps = rng.standard_normal((width,) * ndim)
        channels = 2 * int(rng.integers(1, 5))
        C, y = _random_case(taps, shape, channels, trial)
        gen = md.Generator(taps, shape, channels, dtype=np.float64, backend="numpy")
        out_ref, loss_ref, grad_ref = generator_autograd(taps, C, y)
        loss, grad = gen.loss_and_grad(C, y)
        assert abs(loss - loss_ref) <= 1e-9 * loss_ref
        assert _rel(grad, grad_ref) < 1e-9


def test_float32_agrees_with_float64():
    taps, shape, channels = CASES[3]
    C, y = _random_case(taps, shape, channels, 4)
    g64 = md.Generator(taps, shape, channels, dtype=np.float64, backend="numpy")
    g32 = md.Generator(taps, shape, channels, dtype=np.float32, backend="numpy")
    loss64, grad64 = g64.loss_and_grad(C, y)
    loss32, grad32 = g32.loss_and_grad(C, y)
    assert grad32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=2e-5)
    assert _rel(grad32, grad64) < 2e-5


def test_output_weights_layout():
    v = generator.output_weights(6)
    np.testing.assert_array_equal(np.sign(v), [-1, -1, -1, 1, 1, 1])
    assert np.sum(v**2) == pytest.approx(1.0)


def test_init_weights_seeded_and_scaled():
    u = md.filters.gaussian(1.5)
    gen = md.Generator(u, (64,), 2000, seed=7, dtype=np.float64, backend="numpy")
    C = gen.init_weights()
    np.testing.assert_array_equal(C, gen.init_weights())
    assert np.std(C) == pytest.approx(gen.init_std, rel=0.01)
    g32 = md.Generator(u, (64,), 2000, seed=7, dtype=np.float32, backend="numpy")
    np.testing.assert_array_equal(g32.init_weights(), C.astype(np.float32))


def test_default_init_gives_unit_rms_output():
    # E6: E||G(C_0)||^2 = omega^2 a(0) N (1/2 - 1/(2 pi)); the default omega makes it N.
    # Mean over seeds of ||G||^2 / N; each G entry has unit variance, 64 x 256 samples in all.
    u = md.filters.gaussian(1.0)
    energies = []
    for seed in range(64):
        gen = md.Generator(u, (256,), 64, seed=seed, dtype=np.float64, backend="numpy",
                           init="iid")
        energies.append(np.mean(gen.forward(gen.init_weights()) ** 2))
    # Neighbouring outputs are correlated, so allow several standard errors of an iid mean.
    assert np.mean(energies) == pytest.approx(1.0, abs=0.1)


def test_init_std_for_matches_target_norm():
    u = md.filters.gaussian(1.0)
    y = 3.0 * np.ones(128)
    omega = md.init_std_for(u, y, init_ratio=0.5)
    norms = []
    for s in range(32):
        gen = md.Generator(u, (128,), 64, init_std=omega, seed=s, dtype=np.float64, backend="numpy",
                           init="iid")
        norms.append(np.sum(gen.forward(gen.init_weights()) ** 2))
    assert np.sqrt(np.mean(norms)) == pytest.approx(0.5 * np.linalg.norm(y), rel=0.1)


@pytest.mark.parametrize("channels", [0, -2, 3, 2.5])
def test_bad_channels(channels):
    with pytest.raises(ValueError, match="channels"):
        md.Generator(md.filters.gaussian(1.0), (32,), channels)


def test_bad_inputs():
    u = md.filters.gaussian(1.0)
    with pytest.raises(ValueError, match="larger than the signal"):
        md.Generator(md.filters.gaussian(3.0), (8,), 2)
    with pytest.raises(ValueError, match="axes"):
        md.Generator(md.filters.gaussian(1.0, ndim=2), (32,), 2)
    with pytest.raises(ValueError, match="shape"):
        md.Generator(u, (0,), 2)
    with pytest.raises(ValueError, match="init_std"):
        md.Generator(u, (32,), 2, init_std=-1.0)
    with pytest.raises(ValueError, match="dtype"):
        md.Generator(u, (32,), 2, dtype=np.int32)
    with pytest.raises(ValueError, match="backend"):
        md.Generator(u, (32,), 2, backend="cuda")
    gen = md.Generator(u, (32,), 2, backend="numpy")
    C = gen.init_weights()
    with pytest.raises(ValueError, match="NaN or infinity"):
        gen.loss_and_grad(C, np.full(32, np.nan))
    with pytest.raises(ValueError, match="shape"):
        gen.loss_and_grad(C, np.zeros(31))
    with pytest.raises(ValueError, match="weights have shape"):
        gen.forward(C[:1])


def test_matches_torch_autograd():
    torch = pytest.importorskip("torch")
    taps, shape, channels = CASES[4]
    C, y = _random_case(taps, shape, channels, 9)
    gen = md.Generator(taps, shape, channels, dtype=np.float64, backend="numpy")
    loss, grad = gen.loss_and_grad(C, y)
    Ct = torch.tensor(C, requires_grad=True)
    # E1 is a convolution: PyTorch's conv2d correlates, so flip the taps; pad circularly.
    kernel = torch.tensor(np.flip(md.filters.as_taps(taps, 2)).copy())[None, None]
    ph, pw = kernel.shape[-2] // 2, kernel.shape[-1] // 2
    padded = torch.nn.functional.pad(Ct[:, None], (pw, pw, ph, ph), mode="circular")
    h = torch.nn.functional.conv2d(padded, kernel)[:, 0]
    v = torch.tensor(generator.output_weights(channels))
    out = torch.tensordot(v, torch.relu(h), dims=1)
    loss_t = 0.5 * torch.sum((out - torch.tensor(y)) ** 2)
    loss_t.backward()
    assert loss == pytest.approx(loss_t.item(), rel=1e-9)
    assert _rel(grad, Ct.grad.numpy()) < 1e-9


def test_paired_init_cancels_output():
    u = md.filters.random(5, seed=2)
    gen = md.Generator(u, (40,), 8, init_std=3.0, dtype=np.float64, backend="numpy", init="paired")
    C = gen.init_weights()
    np.testing.assert_array_equal(C[:4], C[4:])
    assert np.max(np.abs(gen.forward(C))) < 1e-12 * np.max(np.abs(C))
    with pytest.raises(ValueError, match="init"):
        md.Generator(u, (40,), 8, init="orthogonal")
