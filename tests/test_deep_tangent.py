"""The finite-width NTK operators (E20) against finite differences and the dense Jacobian of the
independent reference (tests/deep_reference.py: dense spatial matrices and its own autograd)."""
import numpy as np
import pytest

import minidip as md
from minidip.deep import tangent
from deep_reference import loss_and_grad as reference_loss_and_grad

# with and without channel normalisation, sigmoid, colour, both parametrisations, L = 1..4
CASES = [
    ((16,), 3, 4, dict()),
    ((32,), 4, 3, dict(norm=False, upsample="cubic")),
    ((4, 6), 2, 4, dict(sigmoid=True, out_channels=3, parametrization="standard")),
    ((8, 8), 3, 3, dict(norm=False, upsample="nearest", input_channels=5)),
    ((6, 10), 1, 5, dict(sigmoid=True, last_filter=[0.2, -1.0, 0.5])),
]
IDS = ["1d-norm", "1d-L4-nonorm", "2d-sigmoid-rgb-standard", "2d-nonorm-nearest",
       "2d-L1-last"]


def _setup(shape, layers, channels, options, seed=1):
    gen = md.DeepDecoder(shape, channels=channels, layers=layers, seed=0, dtype=np.float64,
                         backend="numpy", **options)
    rng = np.random.default_rng(seed)
    # off the initialisation (gamma != 1, beta != 0), as a fit would leave them
    P = {n: v + 0.5 * rng.standard_normal(v.shape) for n, v in gen.init_weights().items()}
    return gen, P, rng


def _reference_jacobian(gen, P):
    """J (c_out N x number of parameters, keys in sorted order) row by row from the reference:
    with y = x - e_i the gradient of 1/2 ||x - y||^2 is J^T e_i."""
    x = gen.forward(P)
    rows = []
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1
        _, _, grads = reference_loss_and_grad(
            P, gen.input.astype(np.float64), x - e.reshape(x.shape),
            upsample_taps=gen.upsample, norm=gen.norm, sigmoid=gen.sigmoid,
            parametrization=gen.parametrization, last_taps=gen.last_filter)
        rows.append(np.concatenate([grads[n].ravel() for n in sorted(grads)]))
    return np.array(rows)


def _flat(d):
    return np.concatenate([np.asarray(d[n], np.float64).ravel() for n in sorted(d)])


def _rel(a, b):
    return float(np.linalg.norm(np.asarray(a) - b) / np.linalg.norm(b))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jvp_matches_central_differences(case):
    """(x(P + h D) - x(P - h D)) / 2h = J D + O(h^2): h = 1e-6 gives truncation ~1e-12 and
    rounding ~1e-16 / 1e-6 = 1e-10 relative, so 1e-7 unless a ReLU kink lies within h."""
    gen, P, rng = _setup(*case)
    h = 1e-6
    for _ in range(2):
        D = {n: rng.standard_normal(v.shape) for n, v in P.items()}
        fd = (gen.forward({n: P[n] + h * D[n] for n in P})
              - gen.forward({n: P[n] - h * D[n] for n in P})) / (2 * h)
        assert _rel(tangent.jvp(gen, P, D), fd) < 1e-7


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_jvp_vjp_and_jjt_match_the_dense_reference_jacobian(case):
    gen, P, rng = _setup(*case)
    J = _reference_jacobian(gen, P)
    lin = tangent.linearise(gen, P)
    D = {n: rng.standard_normal(v.shape) for n, v in P.items()}
    r = rng.standard_normal(gen.output_shape)
    assert _rel(tangent.jvp(lin, None, D).ravel(), J @ _flat(D)) < 1e-12
    assert _rel(_flat(tangent.vjp(lin, None, r)), J.T @ r.ravel()) < 1e-12
    K = J @ J.T
    assert _rel(tangent.dense_empirical_ntk(lin, None), K) < 1e-12
    assert _rel(tangent.apply_empirical_ntk(lin, None, r).ravel(), K @ r.ravel()) < 1e-12
    # W_out fixed: the columns of Wout left out of J
    sizes = {n: P[n].size for n in sorted(P)}
    keep = np.concatenate([np.full(s, n != "Wout") for n, s in sizes.items()])
    fixed = tangent.dense_empirical_ntk(lin, None, train_output=False)
    assert _rel(fixed, J[:, keep] @ J[:, keep].T) < 1e-12


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[3]], ids=[IDS[0], IDS[2], IDS[3]])
def test_rayleigh_quotients_on_fourier_modes(case):
    gen, P, _ = _setup(*case)
    K = tangent.dense_empirical_ntk(gen, P)
    n, c_out = gen.size, gen.out_channels
    grid = np.indices(gen.shape).reshape(len(gen.shape), -1)
    every = tangent.fourier_rayleigh_quotients(gen, P)
    assert every.shape == gen.output_shape
    for c in range(c_out):
        block = K.reshape(c_out, n, c_out, n)[c, :, c, :]
        for f in [0, 1, n // 2, n - 3]:
            freq = np.unravel_index(f, gen.shape)
            phi = np.exp(2j * np.pi * sum(fa * g / s for fa, g, s in zip(freq, grid, gen.shape)))
            phi /= np.sqrt(n)
            expected = np.real(np.conj(phi) @ block @ phi)
            assert every.reshape(c_out, n)[c, f] == pytest.approx(expected, rel=1e-12)
    chosen = np.array([3, 0, 5])
    part = tangent.fourier_rayleigh_quotients(gen, P, chosen)
    expected = every.reshape(c_out, n)[:, chosen]
    assert np.allclose(part, expected[0] if c_out == 1 else expected, rtol=1e-13, atol=0)


def test_operator_on_a_float32_model_computes_in_float64():
    """A float32 model's arrays (B_0 and P rounded to float32) are used exactly, in float64: the
    result differs from the float64 model's by the rounding of its inputs (~1e-7), not by
    float32 arithmetic along the way."""
    gen64, P, _ = _setup(*CASES[0])
    gen32 = md.DeepDecoder((16,), channels=4, layers=3, seed=0, dtype=np.float32)
    r = np.random.default_rng(3).standard_normal(16)
    out = tangent.apply_empirical_ntk(gen32, {n: v.astype(np.float32) for n, v in P.items()}, r)
    assert out.dtype == np.float64
    assert _rel(out, tangent.apply_empirical_ntk(gen64, P, r)) < 1e-5


def test_errors_name_the_problem():
    gen, P, _ = _setup(*CASES[0])
    with pytest.raises(ValueError, match="keys"):
        tangent.jvp(gen, P, {"W1": P["W1"]})
    with pytest.raises(ValueError, match="tangent W1 has shape"):
        tangent.jvp(gen, P, {n: (np.ones(3) if n == "W1" else v) for n, v in P.items()})
    with pytest.raises(ValueError, match="cotangent has shape"):
        tangent.vjp(gen, P, np.ones(5))
    with pytest.raises(ValueError, match="frequencies"):
        tangent.fourier_rayleigh_quotients(gen, P, [16])
    with pytest.raises(ValueError, match="DeepDecoder"):
        tangent.linearise(md.Generator(md.filters.gaussian(1.0), (16,), 4), P)
    big = md.DeepDecoder((64, 64), channels=64, layers=2, norm=False)
    with pytest.raises(ValueError, match="operator"):
        tangent.dense_empirical_ntk(big, big.init_weights())
