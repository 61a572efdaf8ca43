"""Smoke tests for claims C6 (Gaussian process at init) and C7 (spectral bias), at tiny sizes."""
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from proofs_check import c6_gaussian_process as c6
from proofs_check import c7_spectral_bias as c7
from proofs_check._common import ClaimResult


def _check_result(result, claim, n_checks):
    assert isinstance(result, ClaimResult)
    assert result.claim == claim
    assert len(result.checks) == n_checks
    assert Path(result.figure).is_file()
    assert result.to_dict()["claim"] == claim


def test_c6_passes_at_a_small_size(tmp_path):
    # 300 seeds of width 16: E13 must hold at every width, and each check fails with chance
    # at most ALPHA under the theory.
    config = c6.Config(seeds=300, channels=16, shape_1d=(16,), shape_2d=(8, 10))
    result = c6.run(out=tmp_path, config=config)
    _check_result(result, "C6", 6)
    assert result.passed, result.summary()
    assert result.measured["2-D"]["shape"] == [8, 10]


def test_c6_detects_a_wrong_covariance(monkeypatch, tmp_path):
    # The same run against E13 without its -1 (the balanced signs of v) must fail.
    right = md.spectral.init_covariance_row

    def without_balance(u, shape, init_std):
        taps = md.filters.as_taps(u, len(shape))
        a0 = float(np.sum(taps**2))
        return right(u, shape, init_std) + init_std**2 * a0 / (2 * np.pi) * (
            md.spectral.autocorrelation(u, shape) != 0)

    monkeypatch.setattr(md.spectral, "init_covariance_row", without_balance)
    monkeypatch.setattr(md.spectral, "init_power_spectrum",
                        lambda u, shape, s: np.fft.fftn(without_balance(u, shape, s)).real)
    config = c6.Config(seeds=300, channels=16, shape_1d=(16,), shape_2d=(8, 10))
    assert not c6.run(out=tmp_path, config=config).passed


@pytest.mark.parametrize("case", ["1-D", "2-D"])
def test_c6_batched_outputs_equal_generator_forward(case):
    u, shape = c6.FILTERS[case], (16,) if case == "1-D" else (8, 10)
    chunk = 2 * 4 * int(np.prod(shape))                     # two seeds per batch
    batches = list(c6.sample_outputs(u, shape, 4, 0.7, range(3, 8), chunk=chunk))
    assert len(batches) > 1
    outputs = np.concatenate(batches)
    for i, s in enumerate(range(3, 8)):
        gen = md.Generator(u, shape, 4, init_std=0.7, seed=s, dtype=np.float64,
                           backend="numpy", init="iid")
        np.testing.assert_allclose(outputs[i], gen.forward(gen.init_weights()), atol=1e-12)


def test_c6_covariance_se_is_bartlett_sum():
    shape = (6, 4)
    power = np.random.default_rng(0).uniform(0.5, 2.0, shape)
    power = 0.5 * (power + np.roll(power[::-1, ::-1], 1, axis=(0, 1)))     # P(f) = P(-f)
    samples, n = 30, power.size
    f = np.indices(shape).reshape(2, -1) / np.array(shape)[:, None]
    for d in [(0, 0), (1, 2), (3, 1), (5, 3)]:
        phase = 2 * np.pi * (f[0] * d[0] + f[1] * d[1])
        var = 2 / ((samples - 1) * n**2) * np.sum(power.ravel() ** 2 * np.cos(phase) ** 2)
        assert c6.covariance_se(power, samples)[d] == pytest.approx(np.sqrt(var), rel=1e-12)


def test_c6_spectrum_se_doubles_the_variance_at_real_frequencies():
    se = c6.spectrum_se(np.ones((4, 6)), 11)
    real = {(0, 0), (0, 3), (2, 0), (2, 3)}
    for index in np.ndindex(4, 6):
        assert se[index] == pytest.approx(np.sqrt((2.0 if index in real else 1.0) / 10))


def test_c7_runs_at_tiny_size(tmp_path):
    result = c7.run(out=tmp_path, config=c7.Config(widths=(4, 8, 16), steps=20, downsample=16))
    _check_result(result, "C7", 3)
    assert result.measured["shape"] == [16, 16]
    assert sorted(result.measured["rise_iterations"]) == [4, 8, 16]
    assert all(len(r) == c7.N_BANDS for r in result.measured["rise_iterations"].values())


def test_c7_rise_iteration_interpolates_in_log_tau():
    taus = np.array([0, 1, 10, 100])
    curve = np.array([0.0, 0.2, 0.6, 1.0])
    assert c7.rise_iteration(taus, curve, 0.8) == pytest.approx(np.sqrt(10) * 10)
    assert c7.rise_iteration(taus, curve, 0.1) == 1.0
    assert c7.rise_iteration(taus, curve[:3], 0.9) == np.inf
