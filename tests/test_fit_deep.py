"""md.fit with the deep decoder (E15, E16) under Adam and gradient descent: every stop rule of
minidip.stopping.RULES, the history, divergence and Ctrl-C.

References: the optimizers are replayed step by step on the independent autograd of
tests/deep_reference.py (no library code); each rule's choice is recomputed from its definition
on a separate run without a rule (the same bits: fits are deterministic); Ctrl-C results are
compared with a shorter uninterrupted run.
"""
import numpy as np
import pytest

import minidip as md
from minidip import stopping
from deep_reference import loss_and_grad as reference_loss_and_grad
from test_stopping import _InterruptAt

SHAPE, K, LAYERS, STEPS = (8, 8), 4, 3, 40
ETA = {"adam": 0.05, "gd": 0.02}
OPTIMIZERS = ["adam", "gd"]


def _decoder(**kw):
    config = dict(channels=K, layers=LAYERS, dtype=np.float64, backend="numpy", seed=1) | kw
    return md.DeepDecoder(kw.pop("shape", SHAPE), **config)


@pytest.fixture(scope="module")
def problem():
    x = md.data.bandlimited(SHAPE, p=3, seed=2)
    y = x + 0.3 * np.random.default_rng(3).standard_normal(SHAPE)
    return x, y


def _plain(gen, y, optimizer, steps=STEPS, **kw):
    """The fit without a rule, recording every output (the reference run of a rule)."""
    outputs = []
    res = md.fit(gen, y, steps, optimizer=optimizer, step_size=ETA[optimizer],
                 observers=[lambda it: outputs.append(np.array(it.output))], **kw)
    return res, outputs


# --------------------------------------------------------------------------------------------
# The optimizers against a replay on the independent autograd

def _reference_fit(gen, y, optimizer, steps, eta, betas=(0.9, 0.999), eps=1e-8):
    """Losses of GD or Adam (Kingma and Ba, Algorithm 1) on deep_reference's gradients."""
    P = {name: value.copy() for name, value in gen.init_weights().items()}
    config = dict(upsample_taps=gen.upsample, norm=gen.norm, sigmoid=gen.sigmoid,
                  parametrization=gen.parametrization)
    m = {name: np.zeros_like(v) for name, v in P.items()}
    v = {name: np.zeros_like(w) for name, w in P.items()}
    losses = []
    for t in range(steps + 1):
        _, loss, grads = reference_loss_and_grad(P, np.asarray(gen.input), y, **config)
        losses.append(loss)
        if t == steps:
            break
        for name in P:
            g = grads[name].reshape(P[name].shape)
            if optimizer == "gd":
                P[name] = P[name] - eta * g
                continue
            m[name] = betas[0] * m[name] + (1 - betas[0]) * g
            v[name] = betas[1] * v[name] + (1 - betas[1]) * g * g
            m_hat = m[name] / (1 - betas[0] ** (t + 1))
            v_hat = v[name] / (1 - betas[1] ** (t + 1))
            P[name] = P[name] - eta * m_hat / (np.sqrt(v_hat) + eps)
    return np.array(losses)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("kw", [dict(), dict(norm=False, sigmoid=True,
                                             parametrization="standard")])
def test_history_equals_the_reference_optimizer(problem, optimizer, kw):
    """Float64 on both sides; 15 steps of a well-conditioned fit amplify rounding by far less
    than the 1e-8 relative tolerance (a wrong moment, bias correction or sign is O(1))."""
    _, y = problem
    gen = _decoder(**kw)
    res = md.fit(gen, y, 15, optimizer=optimizer, step_size=ETA[optimizer], record_every=1)
    expected = _reference_fit(gen, y, optimizer, 15, ETA[optimizer])
    np.testing.assert_array_equal(res.history["iteration"], np.arange(16))
    np.testing.assert_allclose(res.history["loss"], expected, rtol=1e-8)
    assert res.info["optimizer"] == optimizer and res.step_size == ETA[optimizer]


def test_record_every_and_weights_belong_to_the_output(problem):
    x, y = problem
    gen = _decoder()
    full, _ = _plain(gen, y, "adam", steps=10, clean=x)
    res = md.fit(gen, y, 10, optimizer="adam", step_size=ETA["adam"], clean=x, record_every=4)
    np.testing.assert_array_equal(res.history["iteration"], [0, 4, 8, 10])
    for name in ("loss", "error", "psnr"):
        np.testing.assert_array_equal(res.history[name], full.history[name][[0, 4, 8, 10]])
    np.testing.assert_array_equal(res.output, gen.forward(res.weights))
    assert res.history["error"][-1] == pytest.approx(np.linalg.norm(res.output - x), rel=1e-12)


def test_gradient_descent_needs_a_step_size(problem):
    with pytest.raises(ValueError, match="no closed-form stable step size"):
        md.fit(_decoder(), problem[1], 3)


# --------------------------------------------------------------------------------------------
# Every rule, under both optimizers

@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_no_rule_returns_the_last_iterate(problem, optimizer):
    gen = _decoder()
    res, outputs = _plain(gen, problem[1], optimizer)
    assert res.stopped_at == STEPS and res.info["triggered"] is False
    np.testing.assert_array_equal(res.output, outputs[-1])


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_oracle_returns_the_least_error_iterate(problem, optimizer):
    x, y = problem
    gen = _decoder()
    _, outputs = _plain(gen, y, optimizer)
    errors = [np.linalg.norm(o - x) for o in outputs]
    assert 0 < np.argmin(errors) < STEPS            # an interior optimum
    res = md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer], clean=x,
                 stop="oracle")
    assert res.stopped_at == int(np.argmin(errors))
    np.testing.assert_array_equal(res.output, outputs[res.stopped_at])
    np.testing.assert_array_equal(gen.forward(res.weights), res.output)
    assert res.info["triggered"] is (res.stopped_at < STEPS)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_discrepancy_stops_at_the_first_iterate_below_the_level(problem, optimizer):
    x, y = problem
    gen = _decoder()
    plain, outputs = _plain(gen, y, optimizer)
    losses = plain.history["loss"]
    # A level the fit crosses in the middle of the run, and one it never reaches.
    sigma = float(np.sqrt(2 * losses[STEPS // 2] / y.size))
    first = int(np.argmax(2 * losses <= y.size * sigma**2))
    res = md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer],
                 stop="discrepancy", noise_std=sigma)
    assert res.stopped_at == first and res.info["triggered"] is True
    assert res.info["reached"] is True and res.info["noise_std_estimated"] is False
    np.testing.assert_array_equal(res.output, outputs[first])
    assert res.history["iteration"][-1] == first             # the fit ended there
    low = float(np.sqrt(2 * losses.min() / y.size)) / 2
    never = md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer],
                   stop="discrepancy", noise_std=low)
    assert never.stopped_at == STEPS and never.info["triggered"] is False
    estimated = md.fit(gen, y, 2, optimizer=optimizer, step_size=ETA[optimizer],
                       stop="discrepancy")
    assert estimated.info["noise_std"] == stopping.estimate_noise_std(y)
    assert estimated.info["noise_std_estimated"] is True


def _windowed_variance_stop(outputs, window, patience):
    """(chosen iterate, stopped?) of ES-WMV from its definition, on recorded outputs."""
    best, best_t = np.inf, None
    for t in range(len(outputs)):
        if t < window - 1:
            best_t = t
            continue
        block = np.stack(outputs[t - window + 1: t + 1])
        variance = np.mean((block - block.mean(axis=0)) ** 2)
        if variance < best:
            best, best_t = variance, t
        if t - best_t >= patience:
            return best_t, True
    return best_t, False


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("window, patience", [(4, 3), (20, 50)])
def test_variance_rule_matches_its_definition(problem, optimizer, window, patience):
    x, y = problem
    gen = _decoder()
    _, outputs = _plain(gen, y, optimizer)
    chosen, stopped = _windowed_variance_stop(outputs, window, patience)
    assert stopped is (window == 4)                 # one setting stops, the other never does
    res = md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer],
                 stop=stopping.Variance(window=window, patience=patience))
    assert res.stopped_at == chosen and res.info["triggered"] is stopped
    np.testing.assert_array_equal(res.output, outputs[chosen])
    np.testing.assert_array_equal(gen.forward(res.weights), res.output)


def test_spectral_rule_refuses_adam_and_what_it_cannot_predict(problem):
    _, y = problem
    plain = _decoder(norm=False)
    with pytest.raises(ValueError, match="optimizer='gd'"):
        md.fit(plain, y, 5, optimizer="adam", stop="spectral", noise_std=0.3)
    with pytest.raises(ValueError, match="colour"):
        colour = _decoder(norm=False, out_channels=3)
        md.fit(colour, np.stack([y] * 3), 5, step_size=0.01, stop="spectral", noise_std=0.3)
    with pytest.raises(ValueError, match="norm"):             # no kernel with normalisation
        md.fit(_decoder(), y, 5, step_size=0.01, stop="spectral", noise_std=0.3)


def test_spectral_rule_under_gradient_descent_stops_at_the_predicted_risk_minimum(problem):
    """E12 written out here: R(tau) = sum_f f^2 |xhat_f - Ghat_0f|^2 + sigma^2 (1 - f)^2 with
    f = (1 - eta lambda_f)^tau, |xhat_f - Ghat_0f|^2 estimated by max(|yhat_f - Ghat_0f|^2 -
    sigma^2, 0), and lambda the model's kernel eigenvalues (E19, tested in test_deep_kernels)."""
    _, y = problem
    gen = _decoder(norm=False)
    sigma, eta, steps = 0.3, 0.02, 150              # eta below 2 / lambda_max (~0.031)
    lam = gen.kernel_eigenvalues()
    start = gen.forward(gen.init_weights())
    power = np.maximum(np.abs(np.fft.fftn(y - start, norm="ortho")) ** 2 - sigma**2, 0)
    f = (1 - eta * lam) ** np.arange(steps + 1)[:, None, None]
    risk = np.sum(f**2 * power, axis=(1, 2)) + sigma**2 * np.sum((1 - f) ** 2, axis=(1, 2))
    expected = int(np.argmin(risk))
    assert 0 < expected < steps                     # an interior minimum: the test can fail
    res = md.fit(gen, y, steps, step_size=eta, stop="spectral", noise_std=sigma)
    assert res.info["predicted_stop"] == res.stopped_at == expected
    assert res.info["triggered"] is True and res.history["iteration"][-1] == expected


def test_colour_rules_estimate_one_noise_level(problem):
    x, y = problem
    gen = _decoder(out_channels=3)
    rng = np.random.default_rng(4)
    yc = np.stack([y, y + 0.1 * rng.standard_normal(SHAPE), 1 - y])
    res = md.fit(gen, yc, 5, optimizer="adam", stop="discrepancy")
    levels = [stopping.estimate_noise_std(c) for c in yc]
    assert res.info["noise_std"] == pytest.approx(np.sqrt(np.mean(np.square(levels))))
    assert res.info["threshold"] == pytest.approx(yc.size * res.info["noise_std"] ** 2)


# --------------------------------------------------------------------------------------------
# Divergence

def test_gradient_descent_with_a_huge_step_diverges_with_its_history(problem):
    _, y = problem
    with pytest.raises(md.FitDivergedError, match=r"gradient descent diverged at iteration \d+ "
                       r".*stable limit unknown") as info:
        md.fit(_decoder(sigmoid=False), y, 200, step_size=1e3)
    err = info.value
    hist = err.result.history
    assert hist["iteration"][-1] == err.iteration > 0
    assert len(hist["loss"]) == err.iteration + 1 and np.all(np.isfinite(hist["loss"][:-1]))


def test_adam_with_a_huge_rate_diverges_without_sigmoid(problem):
    _, y = problem
    with pytest.raises(md.FitDivergedError, match=r"Adam diverged .*smaller step_size"):
        md.fit(_decoder(), y, 50, optimizer="adam", step_size=1e3)


def test_a_sigmoid_output_cannot_diverge(problem):
    """x in (0, 1), so 1/2 ||x - y||^2 <= 1/2 sum (|y| + 1)^2, below the explosion level
    1e3 * max(L_0, ||y||^2 / 2) whatever the rate."""
    _, y = problem
    res = md.fit(_decoder(sigmoid=True), y, 30, optimizer="adam", step_size=1e3)
    assert np.all(res.history["loss"] <= 0.5 * np.sum((np.abs(y) + 1) ** 2))


def test_non_finite_loss_diverges_at_that_iteration(problem, monkeypatch):
    _, y = problem
    gen = _decoder()
    real = gen.objective_grad
    calls = []

    def poisoned(P, objective):
        calls.append(1)
        loss, grads, output = real(P, objective)
        return (np.nan if len(calls) == 4 else loss), grads, output

    monkeypatch.setattr(gen, "objective_grad", poisoned)
    with pytest.raises(md.FitDivergedError, match="diverged at iteration 3") as info:
        md.fit(gen, y, 10, optimizer="adam")
    assert info.value.iteration == 3


# --------------------------------------------------------------------------------------------
# Ctrl-C: FitInterrupted carries the iterate the rule would return so far


class _LastInterrupted(stopping.StopRule):
    def observe(self, iteration, output, loss):
        if iteration == 9:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_interrupt_keeps_the_best_so_far(problem, optimizer):
    x, y = problem
    gen = _decoder()
    full, outputs = _plain(gen, y, optimizer, clean=x)
    with pytest.raises(md.FitInterrupted) as info:
        md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer], clean=x,
               stop=_InterruptAt(12))
    assert isinstance(info.value, KeyboardInterrupt) and info.value.iteration == 11
    best = int(np.argmin(full.history["error"][:12]))
    result = info.value.result
    assert result.stopped_at == best
    np.testing.assert_array_equal(result.output, outputs[best])
    np.testing.assert_array_equal(gen.forward(result.weights), result.output)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_interrupt_without_a_kept_iterate_returns_the_last_observed(problem, optimizer):
    _, y = problem
    gen = _decoder()
    _, outputs = _plain(gen, y, optimizer)
    with pytest.raises(md.FitInterrupted) as info:
        md.fit(gen, y, STEPS, optimizer=optimizer, step_size=ETA[optimizer],
               stop=_LastInterrupted())
    assert info.value.result.stopped_at == 8
    np.testing.assert_array_equal(info.value.result.output, outputs[8])
