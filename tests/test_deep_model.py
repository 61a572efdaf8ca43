"""The deep decoder (E15, E16) against an independent reference, finite differences and PyTorch.

The reference (tests/deep_reference.py) builds every spatial map as a dense matrix from the index
definition and differentiates by its own reverse-mode autograd; it shares no code with minidip.
Both backends must match it to 1e-9 (float64).  float32 runs are held to a tolerance derived
from float32's unit roundoff and a measured condition number (see ``_float32_tolerance``).
"""
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from minidip.deep import model
from deep_reference import dense_spatial_matrix, loss_and_grad as reference_loss_and_grad

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ["numpy", "numba"]
_rng = np.random.default_rng(20240611)

# (shape, layers, channels, options): 1-D and 2-D, norm on/off, sigmoid on/off, c_out 1 and 3,
# layers 1..4, both parametrisations, every upsampling kind, a last filter, random shapes.
CASES = [
    ((16,), 3, 4, dict()),
    ((32,), 4, (3, 5, 2, 4), dict(norm=False, out_channels=3, upsample="cubic")),
    ((8, 12), 2, 4, dict(sigmoid=True, out_channels=3, parametrization="standard")),
    ((16, 8), 3, 3, dict(norm=False, upsample="nearest", input_channels=5)),
    ((6, 10), 1, 5, dict(sigmoid=True, last_filter=[0.2, -1.0, 0.5])),
    ((8, 8), 2, 4, dict(upsample=[1.0, 1.0], last_filter=[1.0, 2.0], parametrization="standard")),
    ((int(_rng.integers(3, 9)) * 4,), 3, int(_rng.integers(2, 7)),
     dict(upsample=_rng.standard_normal(5), sigmoid=True)),
    (tuple(int(n) * 4 for n in _rng.integers(2, 5, size=2)), 3, int(_rng.integers(2, 6)),
     dict(out_channels=3, norm=False)),
    (tuple(int(n) * 2 for n in _rng.integers(3, 7, size=2)), 2, int(_rng.integers(2, 6)),
     dict(upsample=_rng.standard_normal(4), parametrization="standard")),
]
IDS = ["1d", "1d-4layers-nonorm-rgb-cubic", "2d-sigmoid-rgb-standard", "2d-nonorm-nearest",
       "2d-1layer-lastfilter", "2d-even-taps", "1d-random", "2d-random-rgb", "2d-random-even"]


def _model(shape, layers, channels, options, backend, dtype=np.float64, seed=0):
    return md.DeepDecoder(shape, channels=channels, layers=layers, seed=seed, dtype=dtype,
                          backend=backend, **options)


def _params(gen, seed=1, spread=0.5):
    """Initial parameters moved off their init (gamma != 1, beta != 0), rounded to gen.dtype."""
    rng = np.random.default_rng(seed)
    return {name: (value + spread * rng.standard_normal(value.shape)).astype(gen.dtype)
            for name, value in gen.init_weights().items()}


def _reference(gen, P, y):
    """(output, loss, grads) of the independent reference, in float64, at exactly P, y, B_0."""
    P = {name: np.asarray(value, np.float64) for name, value in P.items()}
    return reference_loss_and_grad(
        P, gen.input.astype(np.float64), np.asarray(y, np.float64),
        upsample_taps=gen.upsample, norm=gen.norm, sigmoid=gen.sigmoid,
        parametrization=gen.parametrization, last_taps=gen.last_filter)


def _rel(actual, expected) -> float:
    """||actual - expected|| / ||expected|| (l2 over the whole array)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    return float(np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-300))


# --------------------------------------------------------------------------------------------
# The spatial maps

@pytest.mark.parametrize("taps", [[0.5, 1.0, 0.5], [0.0, 1.0, 1.0], [1.0, 1.0],
                                  md.filters.upsampling("cubic", normalize=False),
                                  [0.3, -1.2, 2.0, 0.7], [1.5]])
@pytest.mark.parametrize("grid", [(5,), (3, 4)])
@pytest.mark.parametrize("factor", [1, 2])
def test_spatial_map_matches_index_definition(taps, grid, factor):
    if len(taps) > factor * min(grid):
        pytest.skip("filter larger than the grid")
    centred = md.filters.as_taps(taps, 1)
    P = dense_spatial_matrix(taps, factor, grid)
    rng = np.random.default_rng(len(taps) + factor)
    Z = rng.standard_normal((3,) + grid)
    G = rng.standard_normal((3,) + tuple(factor * n for n in grid))
    expected = (Z.reshape(3, -1) @ P.T).reshape(G.shape)
    adjoint = (G.reshape(3, -1) @ P).reshape(Z.shape)
    assert _rel(model.spatial_map(Z, centred, factor), expected) < 1e-13
    assert _rel(model.spatial_map_adjoint(G, centred, factor), adjoint) < 1e-13


def test_named_upsampling_kinds():
    x = np.random.default_rng(1).standard_normal((1, 6))
    linear = model.spatial_map(x, model.upsampling_taps(None), 2)[0]
    assert np.array_equal(linear[::2], x[0])
    assert np.allclose(linear[1::2], (x[0] + np.roll(x[0], -1)) / 2, rtol=0, atol=1e-15)
    nearest = model.spatial_map(x, model.upsampling_taps("nearest"), 2)[0]
    assert np.array_equal(nearest[::2], x[0]) and np.array_equal(nearest[1::2], x[0])
    cubic = model.spatial_map(x, model.upsampling_taps("cubic"), 2)[0]
    assert np.allclose(cubic[::2], x[0], rtol=0, atol=1e-15)       # keeps the samples
    assert np.array_equal(model.upsampling_taps("linear"), model.upsampling_taps(None))


@pytest.mark.parametrize("backend", BACKENDS)
def test_even_filter_is_exact_nearest_neighbour_upsampling(backend):
    """[1, 1] sits at offsets -1, 0 (the E1 rule): out[2i - 1] = out[2i] = x[i], bit for bit;
    "nearest" ([0, 1, 1]) gives out[2i] = out[2i + 1] = x[i].  Checked through the model: one
    upsampling layer of a single channel with W1 = 1, so that ReLU(P B_0) = P ReLU(B_0)."""
    for upsample, shift in [([1.0, 1.0], -1), ("nearest", 1)]:
        gen = md.DeepDecoder((8, 12), channels=1, layers=2, upsample=upsample, norm=False,
                             input_channels=1, parametrization="standard", backend=backend)
        P = {"W1": np.ones((1, 1)), "W2": np.ones((1, 1)), "Wout": np.ones((1, 1))}
        x = np.maximum(gen.input[0], 0)
        expected = np.repeat(np.repeat(x, 2, axis=0), 2, axis=1)      # out[2i] = out[2i+1]
        if shift == -1:                                              # out[2i - 1] = out[2i]
            expected = np.roll(expected, -1, axis=(0, 1))
        assert np.array_equal(gen.forward(P), expected)


# --------------------------------------------------------------------------------------------
# Values and gradients against the independent reference (float64)

@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape, layers, channels, options", CASES, ids=IDS)
def test_matches_independent_reference(shape, layers, channels, options, backend):
    gen = _model(shape, layers, channels, options, backend)
    P = _params(gen)
    y = np.random.default_rng(2).standard_normal(gen.output_shape)
    out_ref, loss_ref, grads_ref = _reference(gen, P, y)
    loss, grads = gen.loss_and_grad(P, y)
    assert _rel(gen.forward(P), out_ref) <= 1e-9
    assert abs(loss - loss_ref) <= 1e-9 * loss_ref
    assert set(grads) == set(P)
    for name in P:
        assert grads[name].shape == P[name].shape and grads[name].dtype == np.float64
        assert _rel(grads[name], grads_ref[name]) <= 1e-9, name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [0, 2, 3], ids=[IDS[0], IDS[2], IDS[3]])
def test_gradient_matches_central_differences(case, backend):
    """Directional derivatives: (L(P + h D) - L(P - h D)) / 2h = <grad, D> + O(h^2).

    With h = 1e-5 the truncation error is ~h^2 |L'''| and the rounding error ~1e-16 L / h;
    1e-6 relative covers both unless a ReLU kink lies within h of a pre-activation.
    """
    shape, layers, channels, options = CASES[case]
    gen = _model(shape, layers, channels, options, backend)
    P = _params(gen, seed=3)
    y = np.random.default_rng(4).standard_normal(gen.output_shape)
    _, grads = gen.loss_and_grad(P, y)
    h = 1e-5
    rng = np.random.default_rng(7)
    for _ in range(3):
        D = {name: rng.standard_normal(value.shape) for name, value in P.items()}
        plus = gen.loss_and_grad({n: P[n] + h * D[n] for n in P}, y)[0]
        minus = gen.loss_and_grad({n: P[n] - h * D[n] for n in P}, y)[0]
        predicted = sum(float(np.sum(grads[n] * D[n])) for n in P)
        assert (plus - minus) / (2 * h) == pytest.approx(predicted, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("shape, layers, channels, options", CASES[:4], ids=IDS[:4])
def test_numba_matches_numpy_reference(shape, layers, channels, options):
    fast, ref = (_model(shape, layers, channels, options, b) for b in ("numba", "numpy"))
    P = _params(fast, seed=5)

    def objective(out):             # a loss other than E4: the output gradient is passed through
        return float(np.sum(np.sin(out))), np.cos(out)

    la, ga, oa = fast.objective_grad(P, objective)
    lb, gb, ob = ref.objective_grad(P, objective)
    assert abs(la - lb) <= 1e-12 * max(abs(lb), 1.0)
    assert _rel(oa, ob) <= 1e-12
    for name in P:
        assert _rel(ga[name], gb[name]) <= 1e-11, name


# --------------------------------------------------------------------------------------------
# float32

def _float32_tolerance(gen64, P, y, layers, width):
    """A priori bound on the relative error of a float32 gradient (per array).

    Model: every stored intermediate is the exact value times (1 + e) with |e| <= u = 2^-24,
    and every matrix product adds up to k roundings of its k-term sums.  Per layer and direction
    there are at most 20 such roundings (spatial map, ReLU, normalisation, sums, sigmoid) plus two
    k-term products, so at most n = (L + 1)(20 + 2k) relative perturbations of size u, each of
    which moves a gradient by at most kappa times its size, kappa the condition number of
    P -> gradients.  kappa is measured in float64 as the largest relative response to random
    relative perturbations of P of size 1e-6.  Tolerance: n u kappa.
    """
    rng = np.random.default_rng(11)
    _, base = gen64.loss_and_grad(P, y)
    kappa = 1.0
    for _ in range(3):
        moved = {n: v * (1 + 1e-6 * rng.standard_normal(v.shape)) for n, v in P.items()}
        _, grads = gen64.loss_and_grad(moved, y)
        kappa = max([kappa] + [_rel(grads[n], base[n]) / 1e-6 for n in P])
    u = 2.0 ** -24
    return (layers + 1) * (20 + 2 * width) * u * kappa


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [0, 1, 2, 7], ids=[IDS[i] for i in (0, 1, 2, 7)])
def test_float32_within_rounding_of_exact(case, backend):
    shape, layers, channels, options = CASES[case]
    gen32 = _model(shape, layers, channels, options, backend, dtype=np.float32)
    gen64 = _model(shape, layers, channels, options, "numpy")
    P = _params(gen32)                                  # float32 values, used exactly by both
    y = np.random.default_rng(6).standard_normal(gen32.output_shape).astype(np.float32)
    assert np.array_equal(gen32.input, gen64.input.astype(np.float32))
    out_ref, loss_ref, grads_ref = _reference(gen32, P, y)     # exact arithmetic at the data
    tol = _float32_tolerance(gen64, {n: v.astype(np.float64) for n, v in P.items()}, y, layers,
                             max(np.atleast_1d(channels)))
    assert tol < 1e-2                                   # the bound says something
    loss, grads = gen32.loss_and_grad(P, y)
    assert gen32.forward(P).dtype == np.float32
    assert _rel(gen32.forward(P), out_ref) <= tol
    assert abs(loss - loss_ref) <= tol * loss_ref
    for name in P:
        assert grads[name].dtype == np.float32
        assert _rel(grads[name], grads_ref[name]) <= tol, name


def test_float32_and_float64_draw_the_same_numbers():
    a = md.DeepDecoder((16, 16), channels=4, layers=3, dtype=np.float32, seed=4)
    b = md.DeepDecoder((16, 16), channels=4, layers=3, dtype=np.float64, seed=4)
    assert np.array_equal(a.input, b.input.astype(np.float32))
    Pa, Pb = a.init_weights(), b.init_weights()
    assert all(np.array_equal(Pa[n], Pb[n].astype(np.float32)) for n in Pa)
    for parametrization in ("ntk", "standard"):
        c = md.DeepDecoder((16, 16), channels=4, layers=3, seed=4,
                           parametrization=parametrization)
        first, second = c.init_weights(), c.init_weights()
        assert all(np.array_equal(first[n], second[n]) for n in first)


# --------------------------------------------------------------------------------------------
# PyTorch twin: zero insertion, conv with flipped taps and circular padding, batch norm

def _torch_twin(torch, gen, P, y):
    F = torch.nn.functional
    ndim = len(gen.shape)
    conv = F.conv1d if ndim == 1 else F.conv2d
    params = {n: torch.tensor(np.asarray(v, np.float64), requires_grad=True)
              for n, v in P.items()}
    B = torch.tensor(gen.input.astype(np.float64))
    widths = (gen.input_channels,) + gen.channels

    def filt(x, taps):                        # circular convolution (E1) of every channel
        k, T = x.shape[0], len(taps)
        w = torch.tensor(np.flip(taps).copy())
        w = w if ndim == 1 else torch.outer(w, w)
        pad = (T // 2, T // 2) * ndim
        xp = F.pad(x[None], pad, mode="circular")
        return conv(xp, w.expand((k, 1) + tuple(w.shape)).contiguous(), groups=k)[0]

    for l in range(1, gen.layers + 1):
        scale = math.sqrt(2 / widths[l - 1]) if gen.parametrization == "ntk" else 1.0
        W = scale * params[f"W{l}"]
        Z = torch.tensordot(W, B, dims=1)
        if l < gen.layers:
            up = torch.zeros(Z.shape[:1] + tuple(2 * n for n in Z.shape[1:]), dtype=Z.dtype)
            up[(slice(None),) + (slice(None, None, 2),) * ndim] = Z
            Z = filt(up, gen.upsample)
        elif gen.last_filter is not None:
            Z = filt(Z, gen.last_filter)
        A = torch.relu(Z)
        if gen.norm:
            B = F.batch_norm(A[None], None, None, params[f"gamma{l}"], params[f"beta{l}"],
                             training=True, eps=1e-5)[0]
        else:
            B = A
    scale = math.sqrt(1 / widths[-1]) if gen.parametrization == "ntk" else 1.0
    out = torch.tensordot(scale * params["Wout"], B, dims=1)
    if gen.sigmoid:
        out = torch.sigmoid(out)
    out = out.reshape(gen.output_shape)
    loss = 0.5 * torch.sum((out - torch.tensor(np.asarray(y, np.float64))) ** 2)
    loss.backward()
    return out.detach().numpy(), float(loss.detach()), {n: v.grad.numpy() for n, v in params.items()}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", [0, 1, 2, 3, 5, 8], ids=[IDS[i] for i in (0, 1, 2, 3, 5, 8)])
def test_matches_pytorch_twin(case, backend):
    torch = pytest.importorskip("torch")
    shape, layers, channels, options = CASES[case]
    gen = _model(shape, layers, channels, options, backend)
    P = _params(gen, seed=9)
    y = np.random.default_rng(8).standard_normal(gen.output_shape)
    out_t, loss_t, grads_t = _torch_twin(torch, gen, P, y)
    loss, grads = gen.loss_and_grad(P, y)
    assert _rel(gen.forward(P), out_t) <= 1e-9
    assert abs(loss - loss_t) <= 1e-9 * loss_t
    for name in P:
        assert _rel(grads[name], grads_t[name]) <= 1e-9, name


# --------------------------------------------------------------------------------------------
# The model's description and its errors

def test_description():
    gen = md.DeepDecoder((64, 32), channels=(8, 6, 4), layers=3, out_channels=3,
                         input_channels=5)
    assert gen.shape == (64, 32) and gen.output_shape == (3, 64, 32) and gen.size == 2048
    assert gen.layers == 3 and gen.channels == (8, 6, 4) and gen.dtype == np.float32
    assert gen.input.shape == (5, 16, 8) and not gen.input.flags.writeable
    assert gen.stable_step_limit() is None
    shapes = {n: v.shape for n, v in gen.init_weights().items()}
    assert shapes == {"W1": (8, 5), "W2": (6, 8), "W3": (4, 6), "Wout": (3, 4),
                      "gamma1": (8,), "gamma2": (6,), "gamma3": (4,),
                      "beta1": (8,), "beta2": (6,), "beta3": (4,)}
    assert "channels=(8, 6, 4)" in repr(gen) and "out_channels=3" in repr(gen)
    plain = md.DeepDecoder((16,), channels=4, layers=2, norm=False)
    assert set(plain.init_weights()) == {"W1", "W2", "Wout"}
    assert plain.channels == (4, 4) and plain.input_channels == 4
    assert md.DeepDecoder is md.deep.DeepDecoder and "DeepDecoder" in md.__all__


def test_ntk_initialisation_statistics():
    """(E16) Omega ~ N(0, 1); "standard" W ~ U(+-1/sqrt(fan_in)): means and variances within
    5 standard errors of the sampling distribution."""
    gen = md.DeepDecoder((32, 32), channels=64, layers=3, dtype=np.float64, seed=2)
    W = np.concatenate([gen.init_weights()[f"W{l}"].ravel() for l in (1, 2, 3)])
    n = W.size
    assert abs(W.mean()) <= 5 / math.sqrt(n)
    assert abs(W.var() - 1) <= 5 * math.sqrt(2 / n)
    std = md.DeepDecoder((32, 32), channels=64, layers=3, dtype=np.float64, seed=2,
                         parametrization="standard").init_weights()["W2"].ravel()
    bound = 1 / 8
    assert np.all(np.abs(std) <= bound)
    assert abs(std.var() - bound ** 2 / 3) <= 5 * bound ** 2 * math.sqrt(4 / 45 / std.size)
    scales = gen.weight_scales()
    assert scales["W2"] == pytest.approx(math.sqrt(2 / 64))
    assert scales["Wout"] == pytest.approx(math.sqrt(1 / 64))


@pytest.mark.parametrize("kwargs, match", [
    (dict(shape=(30, 32), layers=3), "not divisible by 2\\^\\(layers - 1\\) = 4 along axis 0"),
    (dict(shape=(8, 8, 8)), "shape must be"),
    (dict(shape=(16,), layers=0), "layers must be a positive integer"),
    (dict(shape=(16,), channels=(4, 4)), "one per layer"),
    (dict(shape=(16,), channels=0), "channels must be"),
    (dict(shape=(16,), out_channels=2), "out_channels must be 1"),
    (dict(shape=(16,), parametrization="mup"), "parametrization must be one of"),
    (dict(shape=(16,), upsample="bilinear"), "unknown upsampling kind"),
    (dict(shape=(16,), upsample=[[1.0]]), "filter has 2 axes"),
    (dict(shape=(16,), layers=4, upsample="cubic"), "upsampling filter has 7 taps"),
    (dict(shape=(16,), dtype=np.int32), "dtype must be float32 or float64"),
    (dict(shape=(16,), backend="cuda"), "backend must be one of"),
])
def test_bad_construction(kwargs, match):
    with pytest.raises(ValueError, match=match):
        md.DeepDecoder(**kwargs)


def test_bad_parameters_and_targets():
    gen = md.DeepDecoder((16, 16), channels=4, layers=2, out_channels=3)
    P = gen.init_weights()
    y = np.zeros(gen.output_shape)
    with pytest.raises(ValueError, match="missing \\['gamma1'\\]"):
        gen.forward({n: v for n, v in P.items() if n != "gamma1"})
    with pytest.raises(ValueError, match="unexpected \\['W3'\\]"):
        gen.forward(dict(P, W3=np.ones((4, 4))))
    with pytest.raises(ValueError, match="W2 has shape \\(4, 3\\), expected \\(4, 4\\)"):
        gen.forward(dict(P, W2=np.ones((4, 3))))
    with pytest.raises(ValueError, match="beta1 contains NaN"):
        gen.forward(dict(P, beta1=np.full(4, np.nan)))
    with pytest.raises(ValueError, match="dict of arrays"):
        gen.forward(np.ones(3))
    with pytest.raises(ValueError, match="target y has shape \\(16, 16\\), expected "
                                         "\\(3, 16, 16\\) \\(colour: channels first\\)"):
        gen.loss_and_grad(P, np.zeros((16, 16)))
    with pytest.raises(ValueError, match="target y contains NaN"):
        gen.loss_and_grad(P, np.where(np.arange(768).reshape(3, 16, 16) == 5, np.inf, y))
    with pytest.raises(ValueError, match="real numeric"):
        gen.check_target(y.astype(complex))
    checked = gen.check_weights({n: v.astype(np.float64) for n, v in P.items()})
    assert all(v.dtype == np.float32 and v.flags.c_contiguous for v in checked.values())


# --------------------------------------------------------------------------------------------
# Same bits for any number of threads

_BITS = """
import hashlib, numpy as np, minidip as md
h = hashlib.sha1()
gen = md.DeepDecoder((64, 64), channels=24, layers=4, out_channels=3, sigmoid=True, seed=3)
P = gen.init_weights()
y = np.random.default_rng(0).random(gen.output_shape)
for step in range(3):
    loss, grads, out = gen.objective_grad(P, lambda x: (float(np.sum((x - y) ** 2)) / 2, x - y))
    h.update(np.float64(loss).tobytes()); h.update(out.tobytes())
    for name in sorted(grads):
        h.update(grads[name].tobytes())
        P[name] = P[name] - np.float32(1e-3) * grads[name]
print(h.hexdigest())
"""


def _bits(numba_threads, blas_threads):
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMBA_NUM_THREADS=str(numba_threads),
               OMP_NUM_THREADS=str(blas_threads), OPENBLAS_NUM_THREADS=str(blas_threads),
               MKL_NUM_THREADS=str(blas_threads))
    out = subprocess.run([sys.executable, "-c", _BITS], env=env, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_bits_do_not_depend_on_numba_threads():
    pytest.importorskip("numba")
    assert _bits(1, 2) == _bits(2, 2)


def test_bits_do_not_depend_on_blas_threads_beyond_one():
    """OpenBLAS rounds its products alike for any number of threads >= 2, but its single-thread
    driver rounds differently (measured with OpenBLAS 0.3.31); see minidip.deep._kernels."""
    pytest.importorskip("numba")
    assert _bits(2, 2) == _bits(2, 3)
