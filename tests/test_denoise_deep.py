"""denoise(y, model="deep") and ``minidip denoise --model deep``: the fit it documents, any
shape (padded grid, crop), colour, y's units, errors, Ctrl-C.

References: the documented fit rebuilt from md.DeepDecoder and md.fit; the crop checked against
the plain model fitted to a target that equals its own output on the padded pixels; affine
equivariance; norms computed here.
"""
import numpy as np
import pytest

import minidip as md
from minidip import denoise as dn
from minidip import stopping
from minidip.cropped import Cropped
from test_cli import _bad_inputs, _make_bad_files, image, run  # noqa: F401  (image: fixture)

FAST = dict(channels=4, layers=3, backend="numpy")


def _noisy(shape, seed=0):
    x = md.data.bandlimited(shape, p=3, seed=seed) if len(shape) < 3 else np.stack(
        [md.data.bandlimited(shape[1:], p=3, seed=seed + c) for c in range(3)])
    return x, x + 0.1 * np.random.default_rng(seed).standard_normal(shape)


def _decoder(grid, layers, out_channels=1, channels=4):
    return md.DeepDecoder(grid, channels=channels, layers=layers, upsample=dn.DEEP_UPSAMPLE,
                          norm=dn.DEEP_NORM, sigmoid=dn.DEEP_SIGMOID, out_channels=out_channels,
                          parametrization=dn.DEEP_PARAMETRIZATION, seed=0, backend="numpy")


def test_deep_is_the_documented_fit_on_y_mapped_to_the_unit_interval():
    _, y = _noisy((16, 16))
    res = dn.denoise(y, model="deep", steps=6, stop=None, **FAST)
    low, high = y.min(), y.max()
    gen = _decoder((16, 16), 3)
    plain = md.fit(gen, (y - low) / (high - low), 6, optimizer="adam",
                   step_size=dn.DEEP_STEP_SIZE)
    np.testing.assert_allclose(res.output, low + (high - low) * plain.output, rtol=0,
                               atol=1e-12)
    assert res.info["range"] == (low, high) and res.info["grid"] == (16, 16)
    assert res.step_size == dn.DEEP_STEP_SIZE and res.info["optimizer"] == "adam"


def test_affine_change_of_y_changes_the_output_alike():
    """y -> a y + b maps the fitted target (y - min) / (max - min) to itself (up to rounding),
    so the output maps alike; float32 rounding of the target, through 6 Adam steps."""
    _, y = _noisy((12, 20))
    a, b = 2.5, -1.0
    one = dn.denoise(y, model="deep", steps=6, stop=None, **FAST).output
    two = dn.denoise(a * y + b, model="deep", steps=6, stop=None, **FAST).output
    np.testing.assert_allclose(two, a * one + b, rtol=0, atol=1e-4 * a)


@pytest.mark.parametrize("shape, layers, grid", [
    ((256, 256), 5, (256, 256)), ((37, 53), 5, (48, 64)), ((5, 5), 3, (8, 8)),
    ((2, 9), 1, (2, 9)), ((17,), 5, (32,)), ((16,), 4, (16,))])
def test_deep_grid(shape, layers, grid):
    assert dn.deep_grid(shape, 5) == (layers, grid)
    factor = 2 ** (layers - 1)
    assert all(g % factor == 0 and g // factor >= 2 for g in grid) or layers == 1


@pytest.mark.parametrize("shape", [(13, 21), (3, 13, 21), (37,)])
def test_any_shape_fits_the_real_pixels_only(shape):
    """The loss is 1/2 ||C G - y||^2 (C the crop), and its gradient is the plain model's for a
    target equal to the model's own output on the padded pixels (zero residual there)."""
    _, y = _noisy(shape)
    colour = len(shape) == 3
    res = dn.denoise(y, model="deep", steps=3, stop=None, **FAST)
    assert res.output.shape == y.shape
    layers, grid = res.info["layers"], res.info["grid"]
    assert res.weights["Wout"].shape == (3 if colour else 1, 4)
    gen = _decoder(grid, layers, out_channels=3 if colour else 1)
    P = gen.init_weights()
    full = gen.forward(P)
    crop = (Ellipsis,) + tuple(slice(0, n) for n in y.shape[-len(grid):])
    low, span = y.min(), np.ptp(y)
    target = (y - low) / span
    assert res.history["loss"][0] == pytest.approx(
        0.5 * np.sum((full[crop] - target) ** 2) * span**2, rel=1e-5)
    padded_target = full.astype(np.float64)
    padded_target[crop] = target
    loss, grads = Cropped(gen, y.shape[-len(grid):]).loss_and_grad(P, target)
    loss_full, grads_full = gen.loss_and_grad(P, padded_target)
    assert loss == pytest.approx(loss_full, rel=1e-5)
    for name in grads:
        np.testing.assert_allclose(grads[name], grads_full[name], rtol=1e-4,
                                   atol=1e-6 * np.abs(grads_full[name]).max())


@pytest.mark.parametrize("colour", [False, True])
def test_cropped_model_is_the_fit_through_the_crop_operator(colour):
    """Cropped(gen) fitted to y equals gen fitted through the operator C (E21), whose path
    test_fit checks against dense references."""
    shape, grid = (11, 13), (12, 16)
    _, y = _noisy((3, *shape) if colour else shape)
    gen = _decoder(grid, 3, out_channels=3 if colour else 1)
    crop = md.operators.Crop(shape, grid)
    op = md.operators.PerChannel(crop, 3) if colour else crop
    inside = md.fit(Cropped(gen, shape), y, 6, optimizer="adam")
    through = md.fit(gen, y, 6, optimizer="adam", operator=op)
    np.testing.assert_array_equal(inside.history["loss"], through.history["loss"])
    np.testing.assert_array_equal(inside.output, op.forward(through.output))


def test_results_are_in_the_units_of_y():
    x, y = _noisy((3, 13, 21))
    y = 40 * y + 7                                          # not in [0, 1]
    res = dn.denoise(y, model="deep", steps=4, stop="discrepancy", clean=40 * x + 7, **FAST)
    # fit estimates sigma from its float32 target: relative rounding ~1e-7
    assert res.info["noise_std"] == pytest.approx(stopping.estimate_noise_std(y), rel=1e-6)
    assert res.info["noise_std_estimated"] is True
    assert res.info["threshold"] == pytest.approx(y.size * res.info["noise_std"] ** 2, rel=1e-9)
    assert res.history["loss"][-1] == pytest.approx(0.5 * np.sum((res.output - y) ** 2),
                                                    rel=1e-4)
    assert res.history["error"][-1] == pytest.approx(np.linalg.norm(res.output - 40 * x - 7),
                                                     rel=1e-4)
    given = dn.denoise(y, model="deep", steps=2, noise_std=4.0, **FAST)
    assert given.info["noise_std"] == 4.0 and given.info["noise_std_estimated"] is False


def test_oracle_and_defaults():
    x, y = _noisy((16, 16))
    res = dn.denoise(y, model="deep", steps=8, stop="oracle", clean=x, **FAST)
    assert res.stopped_at == int(np.argmin(res.history["error"]))
    assert np.linalg.norm(res.output - x) == pytest.approx(res.history["error"].min(), rel=1e-5)
    auto = dn.denoise(y, model="deep", steps=3, **FAST)
    assert dn.DEEP_STOP == "discrepancy" and auto.info["kappa"] == dn.DEEP_KAPPA
    assert auto.info["triggered"] is auto.info["reached"]


class _InterruptAt(stopping.Oracle):
    def observe(self, iteration, output, loss):
        if iteration == 5:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_ctrl_c_keeps_the_best_so_far_in_the_units_of_y():
    x, y = _noisy((12, 12))
    full = dn.denoise(y, model="deep", steps=10, stop=None, clean=x, **FAST)
    with pytest.raises(md.FitInterrupted) as info:
        dn.denoise(y, model="deep", steps=10, stop=_InterruptAt(), clean=x, **FAST)
    result = info.value.result
    best = int(np.argmin(full.history["error"][:5]))
    assert result.stopped_at == best and info.value.iteration == 4
    again = dn.denoise(y, model="deep", steps=best, stop=None, **FAST)
    np.testing.assert_array_equal(result.output, again.output)
    assert result.info["noise_std"] == pytest.approx(stopping.estimate_noise_std(y))


@pytest.mark.parametrize("y, kwargs, match", [
    (np.zeros((16, 16)), dict(model="deeper"), "model must be one of"),
    (np.ones((4, 8, 8)), {}, r"colour image \(3, h, w\)"),
    (np.ones((8, 8, 3)), {}, "channels last"),
    (np.ones((3, 2, 8, 8)), {}, "1-D or 2-D or 3-D"),
    (np.full((8, 8), 0.5), {}, "constant"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), {}, "non-finite"),
    (np.eye(8)[:1], {}, "too small"),
    (np.eye(8), dict(filter="gaussian:1"), "no filter option"),
    (np.eye(8), dict(init_ratio=0.1), "init_ratio"),
    (np.eye(8), dict(clean=np.eye(4)), "clean has shape"),
    (np.eye(8), dict(noise_std=-1.0), "noise_std"),
    (np.eye(8), dict(stop="never"), "unknown stop rule"),
    (np.eye(8), dict(steps=-1), "steps"),
    (np.eye(8), dict(layers=0), "layers"),
    (np.eye(8), dict(stop="spectral"), "optimizer='gd'"),
])
def test_bad_input_is_one_clear_value_error(y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        dn.denoise(y, **({"model": "deep", "steps": 1} | kwargs))


def test_layers_is_a_deep_option():
    with pytest.raises(ValueError, match="layers is an option of the deep decoder"):
        dn.denoise(np.eye(8), layers=3)


# --------------------------------------------------------------------------------------------
# The command line

CLI_FAST = ["--model", "deep", "--channels", "4", "--steps", "3", "--no-progress"]


def test_cli_colour_png_stays_colour_and_grey_stays_grey(tmp_path, capsys):
    rgb = md.data.grace_hopper(downsample=16, color=True)[:, :21, :13]
    md.data.save(tmp_path / "photo.png", rgb)
    code, out, err = run(["denoise", tmp_path / "photo.png", *CLI_FAST], capsys)
    assert code == 0, err
    assert "colour shape 21x13" in out and "deep decoder" in out
    assert md.data.load(tmp_path / "photo_denoised.png", color=True).shape == (3, 21, 13)
    md.data.save(tmp_path / "grey.png", rgb[0])
    code, out, err = run(["denoise", tmp_path / "grey.png", *CLI_FAST], capsys)
    assert code == 0, err
    assert md.data.load(tmp_path / "grey_denoised.png", color=True).shape == (21, 13)


def test_cli_deep_1d_with_added_noise_reports_psnr(tmp_path, capsys):
    np.save(tmp_path / "line.npy", np.sin(np.linspace(0, 6, 37)))
    code, out, err = run(["denoise", tmp_path / "line.npy", "--add-noise", "0.1",
                          "--stop", "oracle", *CLI_FAST], capsys)
    assert code == 0, err
    assert np.load(tmp_path / "line_denoised.npy").shape == (37,)
    assert "PSNR" in out and "stop rule 'oracle'" in out


def _deep_bad_inputs(tmp_path, path):
    cases = {f"deep, {name}": argv + ["--model", "deep"]
             for name, argv in _bad_inputs(tmp_path, path).items()
             if argv[0] == "denoise" and name != "odd channels"}     # odd widths are fine here
    cases["deep, four channels"] = ["denoise", tmp_path / "four.npy", "--model", "deep"]
    cases["deep, channels last"] = ["denoise", tmp_path / "last.npy", "--model", "deep"]
    return cases


DEEP_BAD = list(_deep_bad_inputs(__import__("pathlib").Path("/tmp"),
                                 __import__("pathlib").Path("/tmp/x.png")))


@pytest.mark.parametrize("case", DEEP_BAD)
def test_cli_bad_input_one_line_exit_2_input_untouched(case, image, tmp_path, capsys):  # noqa: F811
    path, _ = image
    _make_bad_files(tmp_path, path)
    np.save(tmp_path / "four.npy", np.random.default_rng(0).random((4, 8, 8)))
    np.save(tmp_path / "last.npy", np.random.default_rng(0).random((8, 8, 3)))
    argv = _deep_bad_inputs(tmp_path, path)[case]
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = run(argv, capsys)
    assert code == 2, out
    assert len(err.strip().splitlines()) == 1 and err.startswith("minidip"), err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


class _InterruptedVariance(stopping.Variance):
    def observe(self, iteration, output, loss):
        if iteration == 4:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_cli_ctrl_c_writes_the_best_so_far(image, tmp_path, capsys, monkeypatch):  # noqa: F811
    path, _ = image
    monkeypatch.setitem(stopping.RULES, "variance", _InterruptedVariance)
    code, out, err = run(["denoise", path, "--out", tmp_path / "partial.png", "--stop",
                          "variance", "--model", "deep", "--channels", "4", "--steps", "10",
                          "--no-progress"], capsys)
    assert code == 130
    assert "interrupted: wrote the best output so far (iteration 3" in out
    y = md.data.load(path)
    expected = dn.denoise(y, model="deep", stop=None, channels=4, steps=3).output
    np.testing.assert_allclose(md.data.load(tmp_path / "partial.png"),
                               np.rint(np.clip(expected, 0, 1) * 255) / 255, atol=1e-6)
