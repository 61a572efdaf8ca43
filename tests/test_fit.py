import numpy as np
import pytest

import minidip as md
import minidip.fitting as fit_module
from reference import dense_conv_matrix, generator_autograd
from reference import dense_dual_kernel as reference_dual_kernel


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


# --------------------------------------------------------------------------------------------
# Adam, observers, forward operators, the protocol for other models.

def _adam_reference(taps, C, y, steps, lr, betas=(0.9, 0.999), eps=1e-8, A=None):
    """Adam as in Kingma and Ba's Algorithm 1, on the dense autograd's gradients."""
    m, v, losses = np.zeros_like(C), np.zeros_like(C), []
    for t in range(steps + 1):
        _, loss, g = generator_autograd(taps, C, y, A)
        losses.append(loss)
        if t == steps:
            break
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g**2
        m_hat, v_hat = m / (1 - betas[0] ** (t + 1)), v / (1 - betas[1] ** (t + 1))
        C = C - lr * m_hat / (np.sqrt(v_hat) + eps)
    return np.array(losses), C


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_adam_equals_the_reference_algorithm(backend):
    taps, shape, _, y = _problem(2, seed=1)
    gen = md.Generator(taps, shape, 6, dtype=np.float64, backend=backend, init="iid")
    res = md.fit(gen, y, steps=30, optimizer="adam", step_size=0.05)
    losses, C = _adam_reference(taps, gen.init_weights(), y, 30, 0.05)
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(res.weights, C, rtol=1e-9, atol=1e-12)
    assert res.step_size == 0.05 and res.info["optimizer"] == "adam"
    default = md.fit(gen, y, steps=1, optimizer="adam")
    assert default.step_size == md.fitting.ADAM_STEP_SIZE


def test_adam_against_torch():
    torch = pytest.importorskip("torch")
    taps, shape, _, y = _problem(1, seed=2)
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy", init="iid")
    res = md.fit(gen, y, steps=20, optimizer="adam", step_size=0.03)
    U = torch.tensor(dense_conv_matrix(taps, shape))
    v = torch.tensor(gen.v)
    C = torch.tensor(gen.init_weights().reshape(8, -1), requires_grad=True)
    opt = torch.optim.Adam([C], lr=0.03)
    target = torch.tensor(y.ravel())
    losses = []
    for t in range(21):
        opt.zero_grad()
        out = v @ torch.relu(C @ U.T)
        loss = 0.5 * torch.sum((out - target) ** 2)
        losses.append(loss.item())
        loss.backward()
        if t < 20:
            opt.step()
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-9)


class _Recorder:
    def __init__(self):
        self.seen = []

    def __call__(self, it):
        self.seen.append((it.iteration, np.array(it.output), it.loss, it.weights.copy()))


def test_observers_see_every_iterate():
    taps, shape, x, y = _problem(1, seed=4)
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy")
    a, b = _Recorder(), _Recorder()
    res = md.fit(gen, y, steps=12, clean=x, record_every=5, observers=[a, b])
    assert [t for t, *_ in a.seen] == list(range(13)) == [t for t, *_ in b.seen]
    full = md.fit(gen, y, steps=12)
    np.testing.assert_array_equal([loss for _, _, loss, _ in a.seen], full.history["loss"])
    for t, output, _, weights in a.seen:
        np.testing.assert_allclose(output, gen.forward(weights), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(a.seen[-1][3], res.weights)
    snaps = md.observers.Snapshots([0, 7], weights=True)
    md.fit(gen, y, steps=12, observers=[snaps])
    np.testing.assert_array_equal(snaps.outputs[7], a.seen[7][1])
    np.testing.assert_array_equal(snaps.weights[7], a.seen[7][3])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_operator_fit_equals_reference(backend, optimizer):
    taps, shape, x, _ = _problem(2, seed=5)
    mask = np.random.default_rng(6).random(shape) < 0.6
    A = md.operators.Mask(mask)
    dense = np.diag(mask.ravel().astype(float))            # the mask as a matrix, written apart
    y = A.forward(x + 0.05 * np.random.default_rng(7).standard_normal(shape))
    gen = md.Generator(taps, shape, 6, dtype=np.float64, backend=backend, init="iid")
    eta = 0.3
    res = md.fit(gen, y, steps=15, step_size=eta, operator=A, optimizer=optimizer, clean=x)
    if optimizer == "adam":
        losses, C = _adam_reference(taps, gen.init_weights(), y, 15, eta, A=dense)
    else:
        C, losses = gen.init_weights(), []
        for t in range(16):
            _, loss, grad = generator_autograd(taps, C, y, dense)
            losses.append(loss)
            C = C - eta * grad if t < 15 else C
    np.testing.assert_allclose(res.history["loss"], losses, rtol=1e-9)
    np.testing.assert_allclose(res.weights, C, rtol=1e-9, atol=1e-12)
    # The history's error is in image space, against the clean image.
    assert res.history["error"][-1] == pytest.approx(np.linalg.norm(gen.forward(C) - x))


def test_operator_shapes_are_checked():
    taps, shape, x, _ = _problem(1)
    gen = md.Generator(taps, shape, 4, backend="numpy")
    A = md.operators.Mask(np.ones(len(x) + 1, bool))
    with pytest.raises(ValueError, match="operator takes inputs of shape"):
        md.fit(gen, np.zeros(len(x) + 1), 3, operator=A)
    A = md.operators.Gaussian(5, shape, seed=1)
    with pytest.raises(ValueError, match="measurements y has shape"):
        md.fit(gen, np.zeros(4), 3, operator=A)
    with pytest.raises(ValueError, match="cannot be estimated"):
        md.fit(gen, np.zeros(5), 3, operator=A, stop="discrepancy")


def test_operator_default_step_and_discrepancy_count_measurements():
    taps, shape, x, _ = _problem(2, seed=8)
    mask = np.random.default_rng(9).random(shape) < 0.5
    A = md.operators.Mask(mask)
    y = A.forward(x + 0.3 * np.random.default_rng(10).standard_normal(shape))
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy")
    res = md.fit(gen, y, 200, operator=A, stop="discrepancy", noise_std=0.3)
    sigma_dense = reference_dual_kernel(taps, shape)
    M = np.diag(mask.ravel().astype(float))
    lam_max = np.linalg.eigvalsh(M @ sigma_dense @ M).max()
    assert res.step_size == pytest.approx(1 / lam_max, rel=1e-6)
    # The threshold counts the measured pixels only: kappa^2 * #known * sigma^2.
    assert res.info["threshold"] == pytest.approx(mask.sum() * 0.3**2)
    assert res.info["triggered"] and 2 * res.history["loss"][-1] <= res.info["threshold"]


class _LinearModel:
    """G(W) = M w: the smallest model with fit's protocol and no fused stepper."""

    def __init__(self, M, limit=True):
        self.M, self.limit = M, limit
        self.output_shape = (M.shape[0],)
        self.dtype = np.dtype(np.float64)

    def init_weights(self):
        return {"w": np.zeros(self.M.shape[1])}

    def check_weights(self, W):
        return {"w": np.asarray(W["w"], np.float64)}

    def check_target(self, y):
        return np.asarray(y, np.float64)

    def forward(self, W):
        return self.M @ W["w"]

    def objective_grad(self, W, objective):
        output = self.forward(W)
        loss, r = objective(output)
        return loss, {"w": self.M.T @ r}, output

    def loss_and_grad(self, W, y):
        loss, grads, _ = self.objective_grad(W, md.fitting.Objective(y))
        return loss, grads

    def stable_step_limit(self, operator=None):
        return 2 / np.linalg.norm(self.M, 2) ** 2 if self.limit else None


def test_another_model_uses_the_same_fit():
    rng = np.random.default_rng(8)
    M, y = rng.standard_normal((7, 5)), rng.standard_normal(7)
    res = md.fit(_LinearModel(M), y, steps=40)
    eta, w = 1 / np.linalg.norm(M, 2) ** 2, np.zeros(5)        # default: half the limit
    for _ in range(40):
        w = w - eta * M.T @ (M @ w - y)
    np.testing.assert_allclose(res.weights["w"], w, rtol=1e-12)
    assert res.step_size == pytest.approx(eta)
    with pytest.raises(ValueError, match="no closed-form stable step size"):
        md.fit(_LinearModel(M, limit=False), y, steps=3)
    assert md.fit(_LinearModel(M, limit=False), y, steps=3, step_size=0.01).step_size == 0.01


# --------------------------------------------------------------------------------------------
# triggered: whether the stop rule decided.

def test_triggered_for_each_rule():
    taps, shape, x, y = _problem(1, seed=3)
    gen = md.Generator(md.filters.gaussian(1.5), shape, 64, dtype=np.float64, backend="numpy")
    assert md.fit(gen, y, 5).info["triggered"] is False
    assert md.fit(gen, y, 200, clean=x, stop="oracle").info["triggered"] is True
    assert md.fit(gen, y, 1, clean=x, stop="oracle").info["triggered"] is False
    assert md.fit(gen, y, 200, stop="discrepancy", noise_std=0.3).info["triggered"] is True
    late = md.fit(gen, y, 200, stop="discrepancy", noise_std=1e-3)
    assert late.info["triggered"] is False and late.stopped_at == 200
    spectral = md.fit(gen, y, 200, stop="spectral", noise_std=0.3)
    assert spectral.info["triggered"] is (spectral.info["predicted_stop"] < 200)
    assert md.fit(gen, y, 2, stop="spectral", noise_std=0.3).info["triggered"] is False


def test_noise_level_is_resolved_once(monkeypatch):
    taps, shape, x, y = _problem(1, seed=3)
    gen = md.Generator(md.filters.gaussian(1.5), shape, 8, dtype=np.float64, backend="numpy")
    calls = []
    real = md.stopping.estimate_noise_std
    monkeypatch.setattr(md.stopping, "estimate_noise_std", lambda s: calls.append(1) or real(s))
    res = md.fit(gen, y, 50, stop="discrepancy")
    assert len(calls) == 1 and res.info["noise_std"] == pytest.approx(real(y))
    assert res.info["noise_std_estimated"] is True
    md.fit(gen, y, 5, stop="oracle", clean=x)
    assert len(calls) == 1                      # the oracle needs no noise level


def test_spectral_rule_refuses_what_it_cannot_predict():
    taps, shape, x, y = _problem(1, seed=3)
    gen = md.Generator(taps, shape, 8, dtype=np.float64, backend="numpy")
    with pytest.raises(ValueError, match="gradient descent"):
        md.fit(gen, y, 5, stop="spectral", noise_std=0.3, optimizer="adam")
    with pytest.raises(ValueError, match="kernel eigenvalues"):
        md.fit(_LinearModel(np.eye(len(y))), y, 5, stop="spectral", noise_std=0.3)


# --------------------------------------------------------------------------------------------
# float32 against float64 over a whole fit.

def test_float32_fit_follows_float64():
    """Each float32 step adds rounding of relative size ~eps32 to the weights, and gradient
    descent below the stable step size does not amplify perturbations of the linearized
    dynamics, so after T steps the loss histories differ by at most about T eps32 relative;
    a factor 10 covers the few ReLU masks a perturbation can flip (each near zero, so its
    jump is small).  T = 100: rtol 10 * 100 * eps32 = 1.2e-4."""
    u = md.filters.gaussian(1.5, ndim=2)
    x = md.data.bandlimited((24, 20), p=6, seed=1)
    y = x + 0.2 * np.random.default_rng(2).standard_normal(x.shape)
    steps = 100
    rtol = 10 * steps * np.finfo(np.float32).eps
    runs = {dt: md.fit(md.Generator(u, x.shape, 64, seed=3, dtype=dt, init="iid"), y, steps,
                       clean=x) for dt in (np.float32, np.float64)}
    lo, hi = runs[np.float32].history, runs[np.float64].history
    np.testing.assert_allclose(lo["loss"], hi["loss"], rtol=rtol)
    np.testing.assert_allclose(lo["error"], hi["error"], rtol=rtol)
    out32, out64 = runs[np.float32].output, runs[np.float64].output
    assert np.linalg.norm(out32 - out64) <= rtol * np.linalg.norm(out64)
