import math

import numpy as np
import pytest

import minidip as md
from minidip import stopping
from minidip.stopping import estimate_noise_std


# --------------------------------------------------------------------------------------------
# estimate_noise_std: MAD of finest-scale Haar coefficients on signals of known sigma.

@pytest.mark.parametrize("shape", [(2**16,), (256, 256)])
@pytest.mark.parametrize("sigma", [0.01, 1.0, 3.0])
def test_noise_std_of_white_noise(shape, sigma):
    z = sigma * np.random.default_rng(3).standard_normal(shape)
    assert estimate_noise_std(z) == pytest.approx(sigma, rel=0.03)


def _smooth_1d(n):
    t = np.arange(n) / n
    return np.sin(2 * np.pi * 3 * t) + 0.5 * np.cos(2 * np.pi * 7 * t) + t


def _disc_and_ramp(n):
    i, j = np.mgrid[:n, :n] / n
    return 0.3 * i + 0.2 * j + ((i - 0.5) ** 2 + (j - 0.4) ** 2 < 0.1)   # a sharp edge


@pytest.mark.parametrize("signal", [_smooth_1d(2**15), md.data.bandlimited((256, 256), p=10),
                                    _disc_and_ramp(256)], ids=["smooth-1d", "bandlimited-2d",
                                                               "disc-2d"])
@pytest.mark.parametrize("sigma", [0.05, 0.2])
def test_noise_std_of_noise_on_a_signal(signal, sigma):
    z = sigma * np.random.default_rng(4).standard_normal(signal.shape)
    assert estimate_noise_std(signal + z) == pytest.approx(sigma, rel=0.05)


def test_noise_std_of_a_noiseless_smooth_signal_is_small():
    assert estimate_noise_std(_smooth_1d(4096)) < 1e-2


def test_noise_std_odd_sizes_and_exact_value():
    # Haar coefficients of [0, 2, 5, 5, 9] (last sample dropped) are 2/sqrt2 and 0: median sqrt2/2.
    assert estimate_noise_std([0, 2, 5, 5, 9]) == pytest.approx(
        math.sqrt(2) / 2 / stopping.MAD_GAUSSIAN)


@pytest.mark.parametrize("bad, match, known", [
    (np.zeros((2, 2, 2, 2)), "1-D or 2-D or 3-D", None), (np.zeros(1), "too small", None),
    (np.zeros((1, 5)), "too small", None), (np.zeros((3, 1, 5)), "too small", None),
    (np.zeros((3, 4, 4)), "known is for one channel", np.ones((3, 4, 4), bool)),
    (np.array([0.0, np.nan, 1.0]), "NaN", None), (np.array(["a", "b"]), "real numeric", None)])
def test_noise_std_bad_input(bad, match, known):
    with pytest.raises(ValueError, match=match):
        estimate_noise_std(bad, known=known)


def test_noise_std_of_colour_is_the_rms_of_the_channels():
    rng = np.random.default_rng(7)
    y = np.stack([s * rng.standard_normal((16, 16)) for s in (0.5, 1.0, 2.0)])
    levels = [estimate_noise_std(c) for c in y]
    assert estimate_noise_std(y) == pytest.approx(math.sqrt(sum(v * v for v in levels) / 3))


# --------------------------------------------------------------------------------------------
# Rules inside fit, on a small noisy 1-D problem.

N, K, STEPS, SIGMA = 96, 64, 150, 0.3


@pytest.fixture(scope="module")
def problem():
    x = md.data.bandlimited((N,), p=6, seed=1)
    y = x + SIGMA * np.random.default_rng(2).standard_normal(N)
    u = md.filters.gaussian(std=2.0)
    gen = md.Generator(u, (N,), channels=K, init_std=md.init_std_for(u, y, 0.3), seed=5, init="iid",
                       dtype=np.float64)
    full = md.fit(gen, y, STEPS, clean=x)               # the whole trajectory, no stopping
    return gen, x, y, full


@pytest.mark.parametrize("noise_std", [SIGMA, None])
def test_discrepancy_stops_at_first_iterate_below_threshold(problem, noise_std):
    gen, x, y, full = problem
    res = md.fit(gen, y, STEPS, stop="discrepancy", noise_std=noise_std)
    sigma = noise_std if noise_std is not None else estimate_noise_std(y)
    kappa = stopping.Discrepancy.KAPPA
    below = np.flatnonzero(2 * full.history["loss"] <= kappa**2 * N * sigma**2)
    assert below.size and 0 < below[0] < STEPS                # the test problem is meaningful
    assert res.stopped_at == below[0]
    assert res.info["noise_std"] == pytest.approx(sigma)
    assert res.info["noise_std_estimated"] is (noise_std is None)
    assert res.info["reached"] is True
    np.testing.assert_allclose(res.output, md.fit(gen, y, below[0]).output, rtol=1e-12)


def test_discrepancy_not_reached_returns_last(problem):
    gen, x, y, full = problem
    res = md.fit(gen, y, 3, stop=stopping.Discrepancy(kappa=0.5), noise_std=SIGMA)
    assert res.stopped_at == 3 and res.info["reached"] is False


def test_discrepancy_bad_kappa():
    with pytest.raises(ValueError, match="kappa"):
        stopping.Discrepancy(kappa=0)


def test_spectral_stops_at_predicted_optimum(problem):
    gen, x, y, full = problem
    res = md.fit(gen, y, STEPS, stop="spectral", noise_std=SIGMA)
    g0 = gen.forward(gen.init_weights()).astype(np.float64)
    eta = full.step_size
    tau = md.spectral.optimal_stop(gen.taps, gen.shape, STEPS, eta, y=y - g0, sigma=SIGMA)
    assert res.stopped_at == tau == res.info["predicted_stop"]
    assert res.info["noise_std_estimated"] is False
    # In this near-linear regime the predicted stop is a good stop: close to the oracle error.
    errors = full.history["error"]
    assert errors[res.stopped_at] <= 1.15 * errors.min()


def _windowed_variance(outputs, window):
    out = []
    for t in range(window - 1, len(outputs)):
        block = np.stack(outputs[t - window + 1: t + 1])
        out.append(np.mean((block - block.mean(axis=0)) ** 2))
    return np.array(out)


def test_variance_rule_finds_minimum_and_waits_patience():
    rng = np.random.default_rng(0)
    # Iterates that settle, then drift again: the windowed variance has an interior minimum.
    amplitude = np.concatenate([np.linspace(1, 0.01, 40), np.linspace(0.01, 1, 80)])
    outputs = [a * rng.standard_normal(16) for a in amplitude]
    window, patience = 5, 10
    variance = _windowed_variance(outputs, window)
    expected = int(np.argmin(variance)) + window - 1
    rule = stopping.Variance(window=window, patience=patience)
    rule.start(None)
    for t, out in enumerate(outputs):
        if rule.observe(t, out, 0.0):
            break
    assert rule.best_iteration == expected
    assert t == expected + patience
    assert rule.info["min_variance"] == pytest.approx(variance.min())


def test_variance_rule_in_fit_returns_kept_iterate(problem):
    gen, x, y, full = problem
    rule = stopping.Variance(window=4, patience=3)
    res = md.fit(gen, y, STEPS, stop=rule)
    assert rule.keeps_best
    np.testing.assert_allclose(res.output, md.fit(gen, y, res.stopped_at).output, rtol=1e-12)


@pytest.mark.parametrize("kwargs", [dict(window=1), dict(patience=0), dict(window=2.5)])
def test_variance_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="window|patience"):
        stopping.Variance(**kwargs)


def test_rules_registered():
    assert set(stopping.RULES) == {"oracle", "discrepancy", "spectral", "variance"}
    for name, cls in stopping.RULES.items():
        assert cls.name == name and isinstance(stopping.make_rule(name), stopping.StopRule)


# --------------------------------------------------------------------------------------------
# Ctrl-C: fit raises FitInterrupted carrying the result so far.

class _InterruptAt(stopping.Oracle):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def observe(self, iteration, output, loss):
        if iteration == self.at:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_interrupt_keeps_best_so_far(problem):
    gen, x, y, full = problem
    with pytest.raises(md.FitInterrupted) as info:
        md.fit(gen, y, STEPS, clean=x, stop=_InterruptAt(12))
    assert isinstance(info.value, KeyboardInterrupt)
    assert info.value.iteration == 11
    best = int(np.argmin(full.history["error"][:12]))
    assert info.value.result.stopped_at == best
    np.testing.assert_allclose(info.value.result.output, md.fit(gen, y, best).output, rtol=1e-12)


class _LastInterrupted(stopping.StopRule):
    def observe(self, iteration, output, loss):
        if iteration == 9:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_interrupt_without_kept_iterate_returns_last_observed(problem):
    gen, x, y, full = problem
    with pytest.raises(md.FitInterrupted) as info:
        md.fit(gen, y, STEPS, stop=_LastInterrupted())
    assert info.value.result.stopped_at == 8
    np.testing.assert_allclose(info.value.result.output, md.fit(gen, y, 8).output, rtol=1e-12)
