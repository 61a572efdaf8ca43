"""Negative controls of the claims: a deliberately wrong dual kernel must make C1, C4, C5 and C7
fail, at small configs where the right kernel passes.

Two convention mistakes a port could make in E8, injected into the library by monkeypatching
the spectral package (everything that predicts, including the default step size, then uses
them; the generator and its gradient descent do not):

- Sigma scaled by 2 (say the 1/2 of E8 dropped): ``kernel_row`` returns 2 s;
- the arccos term dropped: ``arccos_maps`` returns k0 = 1/2 at every angle, so s(d) = a(d)/2
  and lambda_f = |F(u)_f|^2 / 2.
"""
import numpy as np
import pytest

import minidip as md
from minidip.spectral import _kernels
from proofs_check import _common as common
from proofs_check import (c1_kernel, c4_structure_first, c5_early_stopping,
                          c7_spectral_bias)

#: Small configs at which every check of the claim passes with the right kernel.
SMALL = {
    c1_kernel: c1_kernel.Config(mc_channels=16384),
    c4_structure_first: c4_structure_first.Config(n=128, channels=1024, steps=800),
    c5_early_stopping: c5_early_stopping.Config(n=64, widths=(512, 1024, 2048), steps=150),
    c7_spectral_bias: c7_spectral_bias.Config(downsample=16, widths=(32, 128, 512), steps=300),
}

#: Checks that each mistake must fail (by name prefix); others may fail too.
MUST_FAIL = {
    (c1_kernel, "sigma x2"): ["max eigenvalue error"],
    (c1_kernel, "no arccos"): ["max eigenvalue error", "||K0 - Sigma||_F"],
    (c4_structure_first, "sigma x2"): ["|log(signal steps", "|log(noise steps"],
    (c4_structure_first, "no arccos"): ["|log(ratio", "|log(noise steps"],
    (c5_early_stopping, "sigma x2"): ["deviation from E10", "log-log slope"],
    (c5_early_stopping, "no arccos"): ["deviation from E10", "log-log slope"],
    (c7_spectral_bias, "sigma x2"): ["log-log slope"],
    (c7_spectral_bias, "no arccos"): ["log-log slope"],
}


def _sigma_times_two(monkeypatch):
    right = _kernels.kernel_row

    def kernel_row(u, shape):
        return 2.0 * right(u, shape)

    monkeypatch.setattr(_kernels, "kernel_row", kernel_row)
    monkeypatch.setattr(md.spectral, "kernel_row", kernel_row)


def _without_arccos(monkeypatch):
    right = _kernels.arccos_maps

    def arccos_maps(theta):
        k0, k1 = right(theta)
        return np.full_like(k0, 0.5), k1

    monkeypatch.setattr(_kernels, "arccos_maps", arccos_maps)
    monkeypatch.setattr(md.spectral, "arccos_maps", arccos_maps)


WRONG = {"sigma x2": _sigma_times_two, "no arccos": _without_arccos}


@pytest.fixture(autouse=True)
def _small_runs(monkeypatch):
    # The checks depend neither on the figures (drawing them is most of a small run's time) nor
    # on the thread count (the kernels are bit-identical); one thread avoids the start-up of
    # parallel regions whose work is tiny here.
    import matplotlib.pyplot as plt
    import numba
    monkeypatch.setattr(common, "save_figure", lambda fig, out, name: plt.close(fig) or "")
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(threads)


def test_the_injected_mistakes_change_the_kernel_as_intended(monkeypatch):
    u, shape = md.filters.gaussian(2.0), (64,)
    right = md.spectral.eigenvalues(u, shape)
    with monkeypatch.context() as m:
        _sigma_times_two(m)
        np.testing.assert_allclose(md.spectral.eigenvalues(u, shape), 2 * right, rtol=1e-14)
        assert md.spectral.default_step_size(u, shape) == pytest.approx(0.5 / right.max())
    with monkeypatch.context() as m:
        _without_arccos(m)
        # s(d) = a(d)/2, so lambda_f = |F(u)_f|^2 / 2, computed here from the taps alone.
        power = np.abs(np.fft.fft(md.filters.on_grid(md.filters.as_taps(u, 1), shape))) ** 2
        np.testing.assert_allclose(md.spectral.eigenvalues(u, shape), power / 2, atol=1e-12)
    np.testing.assert_array_equal(md.spectral.eigenvalues(u, shape), right)   # undone


@pytest.mark.parametrize("module", list(SMALL), ids=lambda m: m.CLAIM)
def test_right_kernel_passes_at_the_small_config(module, tmp_path):
    result = module.run(out=tmp_path, config=SMALL[module])
    assert result.passed, result.summary()


@pytest.mark.parametrize("mistake", list(WRONG))
@pytest.mark.parametrize("module", list(SMALL), ids=lambda m: m.CLAIM)
def test_wrong_kernel_fails_the_claim(module, mistake, monkeypatch, tmp_path):
    WRONG[mistake](monkeypatch)
    result = module.run(out=tmp_path, config=SMALL[module])
    assert not result.passed, result.summary()
    failed = [c.name for c in result.checks if not c.passed]
    for prefix in MUST_FAIL[module, mistake]:
        assert any(name.startswith(prefix) for name in failed), (prefix, result.summary())


def test_c4_ratio_alone_cannot_see_a_global_rate_error(monkeypatch):
    # Why C4 checks each count: with Sigma scaled by 2 (gradient descent at the true step size)
    # E10 predicts both counts about halved and their ratio about the same, so the ratio check
    # still passes while both count checks fail.
    c = c4_structure_first
    signal, noise = common.signal_and_noise((128,), c.SIGNAL_MODES, seed=0)
    eta = c.STEP_FRACTION / md.spectral.eigenvalues(c.FILTER, (128,)).max()
    args = (c.FILTER, signal, noise, 1024, c.INIT, c.INIT_RATIO, 0, 800)
    right = c.measure(*args, step_size=eta)
    _sigma_times_two(monkeypatch)
    wrong = c.measure(*args, step_size=eta)
    mismatch = lambda a, b: abs(np.log(a / b))  # noqa: E731
    assert wrong["ratio"] == right["ratio"]                 # the same fits
    assert mismatch(right["ratio"], right["predicted_ratio"]) <= c.MAX_LOG_MISMATCH
    assert mismatch(wrong["ratio"], wrong["predicted_ratio"]) <= c.MAX_LOG_MISMATCH
    for name in ("signal", "noise"):
        assert mismatch(right[name]["steps"], right[name]["predicted_steps"]) \
            <= c.MAX_LOG_MISMATCH
        assert mismatch(wrong[name]["steps"], wrong[name]["predicted_steps"]) \
            > c.MAX_LOG_MISMATCH
