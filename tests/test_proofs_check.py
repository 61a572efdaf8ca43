"""Smoke tests of the claim modules at tiny sizes, the runner, and a held-out case of E11."""
import json

import numpy as np
import pytest

import minidip as md
from proofs_check import _common as common
from proofs_check import (c1_kernel, c2_concentration, c3_dynamics, c4_structure_first,
                          c5_early_stopping, c6_gaussian_process, c7_spectral_bias,
                          c8_filter_is_cause, c9_deep_gp, c10_deep_ntk, c11_deep_spectral_bias,
                          c12_beyond_the_kernel, c13_inpainting, c14_compressive_sensing)
from proofs_check.__main__ import main as run_all


#: A tiny instance of every claim's config: each run() executes end to end in a second or two.
TINY = {
    c1_kernel: c1_kernel.Config(mc_channels=512, mc_shape=(16,), decay_shape=(32,)),
    c2_concentration: c2_concentration.Config(shape=(16,), widths=(8, 32, 128), seeds=2),
    c3_dynamics: c3_dynamics.Config(n=24, widths=(16, 64), steps=10),
    c4_structure_first: c4_structure_first.Config(n=32, channels=512, steps=1000),
    c5_early_stopping: c5_early_stopping.Config(n=64, widths=(32, 64), steps=40),
    c6_gaussian_process: c6_gaussian_process.Config(seeds=40, channels=4, shape_1d=(16,),
                                                    shape_2d=(8, 10)),
    c7_spectral_bias: c7_spectral_bias.Config(downsample=16, widths=(32, 64, 128), steps=300),
    c8_filter_is_cause: c8_filter_is_cause.Config(n=32, channels=32, steps=60),
    c9_deep_gp: c9_deep_gp.Config(draws=200, channels=8, shape_1d=(16,), shape_2d=(8, 8)),
    c10_deep_ntk: c10_deep_ntk.Config(mc_shape=(8,), mc_layers=2, mc_channels=16, mc_draws=5,
                                      widths=(8, 16), width_draws=3,
                                      structured=(((16,), 2, "linear"),)),
    c11_deep_spectral_bias: c11_deep_spectral_bias.Config(n=32, channels=16, steps=20),
    c12_beyond_the_kernel: c12_beyond_the_kernel.Config(size=32, steps=5, two_layer_steps=5,
                                                        bm3d=False),
    c13_inpainting: c13_inpainting.Config(n=32, widths=(16, 64), steps=10, shape_2d=(8, 8),
                                          channels_2d=16),
    c14_compressive_sensing: c14_compressive_sensing.Config(n=16, measurements=(2, 8),
                                                            channels=16, steps=10),
}


@pytest.mark.parametrize("module", list(TINY), ids=lambda m: m.CLAIM)
def test_every_claim_runs_at_a_tiny_config(module, tmp_path):
    result = module.run(out=tmp_path, config=TINY[module])
    assert result.claim == module.CLAIM and result.checks
    assert all(np.isfinite(check.value) for check in result.checks), result.summary()
    assert (tmp_path / f"{module.__name__.split('.')[-1]}.png").is_file()
    json.dumps(result.to_dict())                        # the report can hold it
    assert module.DEFAULT != module.FULL


def test_check_and_result_logic():
    ok = common.Check("a", 1.0, "<=", 2.0)
    bad = common.Check("b", 3.0, "<=", 2.0)
    nan = common.Check("c", float("nan"), ">=", 0.0)
    assert ok.passed and not bad.passed and not nan.passed
    assert not common.ClaimResult("CX", "s", [ok, bad]).passed
    assert common.ClaimResult("CX", "s", [ok]).passed


def test_steps_to_fit_interpolates_in_log():
    assert common.steps_to_fit([1.0, 0.5, 0.05]) == pytest.approx(1 + np.log(5) / np.log(10))
    assert common.steps_to_fit([1.0, 0.5]) == np.inf


def test_c1_dense_sigma_matches_fft_and_run(tmp_path):
    assert c1_kernel.eigenvalue_error(md.filters.random(3, seed=4), (11,)) < 1e-12
    result = c1_kernel.run(out=tmp_path)
    assert result.passed and (tmp_path / "c1_kernel.png").exists()


def test_c2_measure_tiny():
    distance = c2_concentration.measure(md.filters.triangle(2), (16,), (8, 128), seeds=2)
    assert distance[128] < distance[8]


def test_c3_measure_tiny():
    y = md.data.bandlimited((24,), p=3, seed=1)
    curves = c3_dynamics.measure(md.filters.gaussian(1.0), y, (8, 64), "iid", 1.0, 0, 10)
    assert set(curves) == {8, 64} and curves[8].shape == (11,)
    assert curves[8][0] == pytest.approx(0, abs=1e-6)     # same start as the prediction


def test_c4_measure_tiny():
    x = md.data.bandlimited((32,), p=3, seed=0)
    z = md.data.white_noise((32,), seed=1)
    m = c4_structure_first.measure(md.filters.gaussian(1.5), x, z * np.linalg.norm(x) /
                                   np.linalg.norm(z), 64, "paired", 10.0, 0, 200)
    assert m["ratio"] > 1 and np.isfinite(m["predicted_ratio"])


def test_c5_measure_tiny():
    u = md.filters.gaussian(1.5)
    x = c5_early_stopping.top_mode_signal(u, (32,), 5, seed=0)
    z = 0.5 * np.random.default_rng(1).standard_normal(32)
    rows, curves = c5_early_stopping.measure(u, x, z, (32,), "paired", 10.0, 0, 40, p=5)
    assert set(rows[32]) >= {"eps", "deviation", "best_error_to_noise", "tau_star"}
    # eps is the smallest slack that makes the bound hold along the whole trajectory.
    errors, bound = curves[32]
    slack = rows[32]["eps"] * np.linalg.norm(x + z)
    assert np.all(errors <= bound + slack + 1e-12)
    if slack > 0:
        assert np.any(errors > bound + 0.999 * slack)


def test_c13_measure_starts_at_zero_deviation():
    """measure() of a lazy fit: its deviation from E22 starts at 0 (both start at G_0 = 0, up
    to the rounding of the paired channels' sum) and its E23 distance is the fit's, computed here
    apart."""
    x = md.data.bandlimited((32,), p=3, seed=0)
    A = md.operators.Mask(np.arange(32) % 3 != 0)
    m = c13_inpainting.measure(md.filters.gaussian(1.5), A, x, 256, 0, 30)
    assert m["deviation"].shape == (31,) and m["deviation"][0] <= 1e-12
    limit = md.spectral.interpolant(md.filters.gaussian(1.5), (32,), A, A.forward(x))
    assert m["limit_distance"] == pytest.approx(np.linalg.norm(m["output"] - limit)
                                                / np.linalg.norm(limit))


def test_c14_noise_has_the_stated_norm_and_errors_start_at_one():
    x = md.data.bandlimited((16,), p=3, seed=0)
    A, y = c14_compressive_sensing.problem(x, 6, seed=0)
    noise = y - A.forward(x)
    assert np.linalg.norm(noise) == pytest.approx(
        c14_compressive_sensing.NOISE_RATIO * np.linalg.norm(A.forward(x)))
    p = c14_compressive_sensing.predicted(x, 6, 0, 5)
    assert p["errors"][0] == pytest.approx(1.0)            # G_0 = 0: the error is ||x||


def test_c8_shrinkage_error_closed_form():
    x, y = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    # min_c ||c y - x||: c = 1/2, error sqrt(1/4 + 1/4)
    assert c8_filter_is_cause.shrinkage_error(x, y) == pytest.approx(np.sqrt(0.5))


def test_c8_delta_filter_gains_nothing_and_gaussian_does():
    # With the delta filter E10 fits every mode at one rate, so G_tau stays a multiple of y and
    # no iterate beats the best scalar shrinkage (gain <= 0 in the linear limit; 0.5 dB allows
    # for the finite width); a Gaussian filter on the same data must gain clearly more.
    x, z = common.signal_and_noise((32,), 3, seed=2)
    gain = {name: c8_filter_is_cause.denoising_gain_db(u, x, z, 256, "paired", 10.0, 0, 80)[0]
            for name, u in (("delta", md.filters.delta()), ("gauss", md.filters.gaussian(1.5)))}
    assert gain["delta"] <= 0.5
    assert gain["gauss"] >= gain["delta"] + 2.0


def test_c9_batched_outputs_are_the_model_forward():
    # the Monte-Carlo of C9 draws W1, W2, W3, Wout in this order for each batch of draws
    gen = md.DeepDecoder((16,), channels=(5, 4, 3), layers=3, norm=False, input_channels=2,
                         dtype=np.float64, backend="numpy", seed=3)
    rng = np.random.default_rng(11)
    P = {name: rng.standard_normal((1,) + shape)[0] for name, shape in gen.weight_shapes().items()}
    sampled = c9_deep_gp.sample_outputs(gen, 1, 11)
    assert np.allclose(sampled[0], gen.forward(P), rtol=1e-13, atol=1e-13)


def test_runner_only_writes_report(tmp_path, capsys):
    assert run_all(["--only", "C2", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert [r["claim"] for r in report] == ["C2"] and report[0]["passed"]
    assert "PASS" in capsys.readouterr().out
    assert run_all(["--only", "C99", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_held_out_case_satisfies_bound_e11():
    # A filter, signal, seed and init none of the claims use; k = 8192, ||G(C_0)|| ~ 0.1 ||y||.
    u, n, steps = md.filters.triangle(3), 128, 400
    x = md.data.bandlimited((n,), p=8, seed=7)
    z = md.data.white_noise((n,), std=1.0, seed=107)
    y = x + z
    gen = md.Generator(u, (n,), 8192, init_std=md.init_std_for(u, y, 0.1), seed=7, init="iid")
    res = md.fit(gen, y, steps, clean=x)
    bound = md.spectral.denoising_bound(u, (n,), x, z, np.arange(steps + 1), res.step_size)
    eps = md.spectral.measured_eps(res.history["error"], bound, np.linalg.norm(y))
    assert eps <= 0.1
    assert res.history["error"].min() < 0.5 * np.linalg.norm(z)
