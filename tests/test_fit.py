import numpy as np
import pytest

import minidip as md
import minidip.fitting as fit_module
from reference import dense_conv_matrix, generator_autograd


def _problem(ndim=1, seed=0):
    rng = np.random.default_rng(seed)
    if ndim == 1:
        taps, shape = md.filters.random(5, seed=seed), (24,)
    else:
        taps, shape = md.filters.gaussian(0.8, ndim=2, size=5), (6, 7)
    x = md.data.bandlimited(shape, p=3, seed=seed)
    y = x + 0.3 * rng.standard_normal(shape)
    return taps, shape, x, y


def _dense_lambda_max(taps, shape):
    U = dense_conv_matrix(taps, shape)
    A = U @ U.T                                         # A_il = a(i - l)
    ratio = np.clip(A / A[0, 0], -1, 1)
    np.fill_diagonal(ratio, 1.0)                        # exactly a(0)/a(0): arccos is 0 there
    sigma = 0.5 * A * (1 - np.arccos(ratio) / np.pi)   # E8
    return np.linalg.eigvalsh(sigma).max()


@pytest.mark.parametrize("ndim", [1, 2])
def test_loss_history_equals_plain_gradient_descent(ndim):
    taps, shape, _, y = _problem(ndim)
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy")
    eta = 0.7 / _dense_lambda_max(taps, shape)
    res = md.fit(gen, y, steps=25, step_size=eta)
    C = gen.init_weights()
    losses = []
    for t in range(26):
        _, loss, grad = generator_autograd(taps, C, y)
        losses.append(loss)
        if t < 25:
            C = C - eta * grad
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-9)
    np.testing.assert_array_equal(res.history["iteration"], np.arange(26))
    np.testing.assert_allclose(res.weights, C, rtol=1e-9)
    assert res.stopped_at == 25


def test_default_step_size_is_inverse_lambda_max():
    taps, shape, _, y = _problem(1)
    gen = md.Generator(taps, shape, 4, dtype=np.float64, backend="numpy")
    res = md.fit(gen, y, steps=1)
    assert res.step_size == pytest.approx(1 / _dense_lambda_max(taps, shape), rel=1e-9)


def test_oracle_returns_least_error_iterate():
    taps, shape, x, y = _problem(1, seed=3)
    gen = md.Generator(md.filters.gaussian(1.5), shape, 64, dtype=np.float64, backend="numpy")
    res = md.fit(gen, y, steps=200, clean=x, stop="oracle")
    errors = res.history["error"]
    best = int(np.argmin(errors))
    assert 0 < best < 200                       # early stopping helps on this problem
    assert res.stopped_at == best
    assert np.linalg.norm(res.output - x) == pytest.approx(errors[best], rel=1e-12)
    np.testing.assert_allclose(gen.forward(res.weights), res.output, rtol=1e-12)
    assert res.history["psnr"][best] == pytest.approx(
        md.metrics.psnr(res.output, x, data_range=x.max() - x.min()))


def test_record_every_and_start_weights_untouched():
    taps, shape, _, y = _problem(2)
    gen = md.Generator(taps, shape, 4, dtype=np.float64, backend="numpy")
    C0 = gen.init_weights() * 0.5
    C0_copy = C0.copy()
    res = md.fit(gen, y, steps=10, weights=C0, record_every=4)
    np.testing.assert_array_equal(res.history["iteration"], [0, 4, 8, 10])
    np.testing.assert_array_equal(C0, C0_copy)
    full = md.fit(gen, y, steps=10, weights=C0)
    np.testing.assert_array_equal(res.history["loss"], full.history["loss"][[0, 4, 8, 10]])


def test_same_seed_same_bits():
    taps, shape, _, y = _problem(1)
    runs = [md.fit(md.Generator(taps, shape, 8, seed=5, backend="numpy"), y, steps=15)
            for _ in range(2)]
    np.testing.assert_array_equal(runs[0].weights, runs[1].weights)
    np.testing.assert_array_equal(runs[0].history["loss"], runs[1].history["loss"])


def test_divergence_names_iteration_and_keeps_history(monkeypatch):
    taps, shape, _, y = _problem(1)
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy")
    limit = fit_module.stable_step_limit(gen)
    monkeypatch.setattr(gen, "stable_step_limit", lambda operator=None: 1e9)
    with pytest.raises(md.FitDivergedError, match=r"diverged at iteration \d+") as info:
        md.fit(gen, y, steps=500, step_size=20 * limit)
    err = info.value
    hist = err.result.history
    assert hist["iteration"][-1] == err.iteration > 0
    assert len(hist["loss"]) == err.iteration + 1
    assert np.all(np.isfinite(hist["loss"][:-1]))


@pytest.mark.parametrize("kwargs, match", [
    (dict(step_size=0.0), "step_size"), (dict(step_size=-1.0), "step_size"),
    (dict(step_size=1e6), r"2/lambda_max"), (dict(steps=-1), "steps"),
    (dict(record_every=0), "record_every"), (dict(stop="oracle"), "clean"),
    (dict(stop="never"), "unknown stop rule"), (dict(noise_std=-0.1), "noise_std"),
    (dict(clean=np.zeros(5)), "shape"),
])
def test_bad_arguments(kwargs, match):
    taps, shape, _, y = _problem(1)
    gen = md.Generator(taps, shape, 4, backend="numpy")
    args = dict(steps=3) | kwargs
    with pytest.raises(ValueError, match=match):
        md.fit(gen, y, **args)


def test_non_finite_target():
    taps, shape, _, y = _problem(1)
    gen = md.Generator(taps, shape, 4, backend="numpy")
    y[3] = np.inf
    with pytest.raises(ValueError, match="NaN or infinity"):
        md.fit(gen, y, steps=3)
