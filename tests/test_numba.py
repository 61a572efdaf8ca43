"""The Numba kernels against the NumPy reference, the dense-matrix autograd and themselves.

All cases share one compiled signature per dtype (the kernels take every filter and shape as
arrays), so the compile cost is paid twice, or not at all with a warm cache.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

numba = pytest.importorskip("numba")

import minidip as md  # noqa: E402
from minidip import _numba, filters  # noqa: E402
from minidip.fitting import stable_step_limit  # noqa: E402
from minidip.generator import Generator, ReferenceStepper  # noqa: E402
from reference import generator_autograd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RTOL = {np.float64: 1e-9, np.float32: 2e-4}
_rng = np.random.default_rng(2024)

# (shape, filter): symmetric and asymmetric taps, separable and general 2-D, even sizes, odd grids.
CASES = [
    ((37,), filters.gaussian(std=1.5)),
    ((int(_rng.integers(20, 60)),), filters.random(5, seed=1)),
    ((16,), np.ones(4)),                                              # even size: offsets -2..1
    ((9, 13), filters.gaussian(std=1.0, ndim=2)),                     # separable, symmetric
    ((11, 8), np.outer(_rng.standard_normal(3), _rng.standard_normal(5))),   # separable, asymmetric
    ((10, 7), filters.random(3, seed=2, ndim=2)),                     # general 2-D
    ((8, 9), _rng.standard_normal((2, 4))),                           # general 2-D, even sizes
    ((1, 12), _rng.standard_normal((1, 3))),                          # a single row
]
IDS = ["1d-gauss", "1d-random", "1d-even", "2d-sep", "2d-sep-asym", "2d-general", "2d-even",
       "2d-row"]
DTYPES = [np.float64, np.float32]


def _pair(u, shape, dtype, channels=6, seed=0):
    kw = dict(channels=channels, seed=seed, dtype=dtype, init="iid")
    return (Generator(u, shape, backend="numba", **kw), Generator(u, shape, backend="numpy", **kw))


def _close(actual, expected, dtype, what):
    """Relative agreement, scaled by the largest reference value."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    scale = max(float(np.max(np.abs(expected))), 1e-300)
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= RTOL[dtype], f"{what}: relative error {err:.3g} > {RTOL[dtype]:g}"


def test_separable_dispatch():
    """The cases exercise both paths: rank-1 filters as two 1-D passes, the rest directly."""
    kinds = [_numba._Plan(Generator(u, s, 2).taps, s, 2, np.float32).separable for s, u in CASES]
    assert kinds == [True, True, True, True, True, False, False, True]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,u", CASES, ids=IDS)
def test_matches_numpy_reference(shape, u, dtype):
    gen, ref = _pair(u, shape, dtype)
    C = gen.init_weights()
    y = _rng.standard_normal(shape)
    _close(gen.forward(C), ref.forward(C), dtype, "forward")
    loss, grad = gen.loss_and_grad(C, y)
    loss_ref, grad_ref = ref.loss_and_grad(C, y)
    _close(loss, loss_ref, dtype, "loss")
    _close(grad, grad_ref, dtype, "grad")
    assert grad.dtype == dtype and grad.shape == C.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,u", CASES, ids=IDS)
def test_stepper_matches_reference_stepper(shape, u, dtype):
    gen, ref = _pair(u, shape, dtype)
    y = _rng.standard_normal(shape)
    eta = 0.5 * stable_step_limit(gen)
    fast, slow = gen.stepper(gen.init_weights(), y, eta), ref.stepper(ref.init_weights(), y, eta)
    assert isinstance(slow, ReferenceStepper) and isinstance(fast, _numba.Stepper)
    for t in range(5):
        (loss, out), (loss_ref, out_ref) = ((fast.evaluate(), slow.evaluate()) if t == 0
                                            else (fast.step(), slow.step()))
        _close(loss, loss_ref, dtype, f"loss at step {t}")
        _close(out, out_ref, dtype, f"output at step {t}")
    _close(fast.weights, slow.weights, dtype, "weights after 4 steps")


def test_step_without_evaluate_and_fresh_outputs():
    """step() evaluates first if needed; each call returns a new output array."""
    gen, ref = _pair(filters.gaussian(std=1.0), (24,), np.float64)
    y = _rng.standard_normal(24)
    fast, slow = gen.stepper(gen.init_weights(), y, 0.1), ref.stepper(ref.init_weights(), y, 0.1)
    slow.evaluate()
    (_, out1), (_, ref1) = fast.step(), slow.step()
    kept = out1.copy()
    (_, out2), _ = fast.step(), slow.step()
    np.testing.assert_array_equal(out1, kept)           # not overwritten by the next step
    assert not np.array_equal(out2, out1)
    _close(out1, ref1, np.float64, "output after one step")


@pytest.mark.parametrize("channels", [40, 64])
@pytest.mark.parametrize("shape,u", [CASES[1], CASES[4], CASES[5]],
                         ids=["1d", "2d-separable", "2d-general"])
def test_several_channels_per_block_match_reference(shape, u, channels):
    """k = 40 and 64 over at most MAX_BLOCKS blocks: each block sums several channels into its
    partial output, a path that k <= MAX_BLOCKS (one channel per block) never takes."""
    gen, ref = _pair(u, shape, np.float64, channels=channels, seed=3)
    plan = _numba._Plan(gen.taps, gen.shape, gen.channels, gen.dtype)
    assert channels // plan.blocks >= 2
    C = gen.init_weights()
    y = _rng.standard_normal(shape)
    _close(gen.forward(C), ref.forward(C), np.float64, "forward")
    loss, grad = gen.loss_and_grad(C, y)
    loss_ref, grad_ref = ref.loss_and_grad(C, y)
    _close(loss, loss_ref, np.float64, "loss")
    _close(grad, grad_ref, np.float64, "grad")
    eta = 0.5 * stable_step_limit(gen)
    fast, slow = gen.stepper(C, y, eta), ref.stepper(C, y, eta)
    slow.evaluate()
    for _ in range(5):
        (loss, out), (loss_ref, out_ref) = fast.step(), slow.step()
    _close(out, out_ref, np.float64, "output after 5 steps")
    _close(fast.weights, slow.weights, np.float64, "weights after 5 steps")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,u", [CASES[1], CASES[2], CASES[4], CASES[5], CASES[6]],
                         ids=["1d-random", "1d-even", "2d-sep-asym", "2d-general", "2d-even"])
def test_matches_dense_autograd(shape, u, dtype):
    """Against the independent autograd on the dense convolution matrix built from E1."""
    gen = Generator(u, shape, 4, seed=3, dtype=dtype, backend="numba", init="iid")
    C = gen.init_weights()
    y = _rng.standard_normal(shape).astype(dtype)
    out_ref, loss_ref, grad_ref = generator_autograd(filters.as_taps(u, len(shape)), C, y)
    _close(gen.forward(C), out_ref, dtype, "forward")
    loss, grad = gen.loss_and_grad(C, y)
    _close(loss, loss_ref, dtype, "loss")
    _close(grad, grad_ref, dtype, "grad")


def _fit_bits(threads):
    numba.set_num_threads(threads)
    try:
        gen = md.Generator(filters.gaussian(std=1.0, ndim=2), (12, 10), channels=40, seed=7,
                           backend="numba", init="iid")
        y = np.random.default_rng(0).standard_normal((12, 10))
        res = md.fit(gen, y, steps=25)
    finally:
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    return res.output.tobytes(), res.weights.tobytes(), res.history["loss"].tobytes()


def test_fit_bits_do_not_depend_on_thread_count_or_run():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs at least 2 Numba threads")
    one = _fit_bits(1)
    assert _fit_bits(numba.config.NUMBA_NUM_THREADS) == one
    assert _fit_bits(1) == one


def test_block_partition_does_not_depend_on_threads():
    """The reduction blocks are a function of (k, N) only."""
    gen = Generator(filters.gaussian(2.0), (1024,), 4096, backend="numba")
    assert _numba._Plan(gen.taps, gen.shape, gen.channels, gen.dtype).blocks == _numba.MAX_BLOCKS
    gen = Generator(filters.gaussian(1.0, ndim=2), (256, 256), 64, backend="numba")
    plan = _numba._Plan(gen.taps, gen.shape, gen.channels, gen.dtype)
    assert plan.blocks == _numba.PARTIAL_BUDGET // (256 * 256)


def test_cache_fallback_without_writable_folder(monkeypatch):
    """With no writable cache folder, numba.njit(cache=True) fails; _jit compiles uncached."""
    from numba.core import caching

    monkeypatch.setattr(caching.CacheImpl, "_locator_classes", [])

    def twice(x):
        return 2 * x

    with pytest.raises(RuntimeError, match="no locator available"):
        numba.njit(cache=True)(twice)
    jitted = _numba._jit()(twice)
    assert jitted(21) == 42
    assert type(jitted._cache).__name__ == "NullCache"


def _run(code, **env):
    full_env = dict(os.environ, PYTHONPATH=str(ROOT), **env)
    return subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=300)


def test_missing_numba_raises_import_error_and_falls_back_to_numpy():
    code = ("import sys; sys.modules['numba'] = None\n"
            "try:\n    import minidip._numba\nexcept ImportError as e:\n    print('ImportError')\n"
            "import minidip as md\n"
            "print(md.Generator(md.filters.delta(), (8,), 2).backend)")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ImportError", "numpy"]


def test_python_bodies_without_jit():
    """NUMBA_DISABLE_JIT=1 runs the kernels as Python: both paths, a few steps, vs NumPy."""
    code = """
import numpy as np, minidip as md
from minidip import filters
for shape, u in [((9,), filters.random(3, seed=1)), ((6, 7), filters.gaussian(1.0, ndim=2, size=3)),
                 ((5, 6), filters.random(3, seed=2, ndim=2))]:
    kw = dict(channels=4, seed=1, dtype=np.float64, init="iid")
    gen = md.Generator(u, shape, backend="numba", **kw)
    ref = md.Generator(u, shape, backend="numpy", **kw)
    y = np.random.default_rng(0).standard_normal(shape)
    a, b = gen.stepper(gen.init_weights(), y, 0.2), ref.stepper(ref.init_weights(), y, 0.2)
    a.evaluate(); b.evaluate()
    for _ in range(3):
        (la, oa), (lb, ob) = a.step(), b.step()
    assert abs(la - lb) <= 1e-12 * lb and np.allclose(oa, ob, rtol=0, atol=1e-12)
    ga, gb = gen.loss_and_grad(a.weights, y)[1], ref.loss_and_grad(b.weights, y)[1]
    assert np.allclose(ga, gb, rtol=0, atol=1e-12)
print("ok")
"""
    out = _run(code, NUMBA_DISABLE_JIT="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_bench_cases_and_errors():
    from minidip import bench
    case = bench.SHAPES["1d-small"]
    assert case.flops == 4 * 1024 * 4096 * 9
    assert bench.SHAPES["2d-large"].taps.shape == (7, 7)
    assert filters.is_separable(bench.SHAPES["2d-small"].taps)
    with pytest.raises(ValueError, match="unknown shape"):
        bench.run(["3d"])


@pytest.mark.parametrize("shape,u", [((20,), filters.random(5, seed=4)),
                                     ((9, 10), np.outer([1.0, 2.0, -1.0], [0.5, 1.0, 0.2]))],
                         ids=["1d", "2d-sep"])
def test_bench_pytorch_twin_matches(shape, u):
    """The benchmark's PyTorch formulations compute the same loss and gradient."""
    pytest.importorskip("torch")
    from minidip import bench
    case = bench.Case("tiny", shape, 4, filters.as_taps(u, len(shape)))
    steppers, gen, y = bench._torch_steppers(case, np.float64)
    assert set(steppers) >= {"conv", "fft"}
    loss_ref, grad_ref = Generator(u, shape, 4, dtype=np.float64, backend="numpy").loss_and_grad(
        gen.init_weights(), y)
    for name, (_, loss_and_grad) in steppers.items():
        loss, grad = loss_and_grad(gen.init_weights())
        _close(loss, loss_ref, np.float64, f"{name} loss")
        _close(grad, grad_ref, np.float64, f"{name} grad")
