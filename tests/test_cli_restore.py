"""``minidip restore``: the acceptance of issue 13, good runs of each operator, every documented
error (exit 2, one line, nothing written, input untouched), Ctrl-C in a subprocess."""
import re
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from minidip import cli, stopping
from test_cli import NO_JIT, _subprocess, interrupt_during_fit

FAST = ["--channels", "4", "--steps", "3", "--no-progress"]


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def photo(tmp_path):
    """A small colour PNG with a hole pattern, its mask PNG (white = known) and the clean image."""
    clean = md.data.grace_hopper(downsample=16, color=True)          # (3, 37, 32)
    known = np.random.default_rng(0).random(clean.shape[1:]) >= 0.5
    path = md.data.save(tmp_path / "photo.png", np.where(known, clean, 0.0))
    mask = md.data.save(tmp_path / "mask.png", known.astype(float))
    return path, mask, known, clean


# --------------------------------------------------------------------------------------------
# Acceptance of issue 13

@pytest.mark.slow
def test_acceptance_colour_png_with_mask_png_on_the_demo(tmp_path, capsys):
    """The demo's image and mask as files: the known pixels move by less than the noise level
    of the input (estimated from its known pixels, as the command does), and the missing pixels
    beat the harmonic fill of the same input."""
    clean = md.data.grace_hopper(downsample=4, color=True)
    known = np.random.default_rng(0).random(clean.shape[1:]) >= 0.5  # the demo's mask, seed 0
    path = md.data.save(tmp_path / "photo.png", np.where(known, clean, 0.0))
    md.data.save(tmp_path / "mask.png", known.astype(float))
    code, out, err = run(["restore", path, "--mask", tmp_path / "mask.png", "--out",
                          tmp_path / "out.png", "--no-progress"], capsys)
    assert code == 0, err
    y = md.data.load(path, color=True)
    result = md.data.load(tmp_path / "out.png", color=True)
    assert result.shape == clean.shape == y.shape                    # colour in, colour out
    noise = np.sqrt(np.mean([md.stopping.estimate_noise_std(c, known=known) ** 2 for c in y]))
    change = np.sqrt(np.mean((result - y)[:, known] ** 2))
    assert change <= noise, (change, noise)
    missing = ~known
    fill = np.stack([md.baselines.harmonic_fill(c, known) for c in y])
    ours = md.metrics.psnr(result[:, missing], clean[:, missing], data_range=1.0)
    theirs = md.metrics.psnr(fill[:, missing], clean[:, missing], data_range=1.0)
    assert ours > theirs, (ours, theirs)


# --------------------------------------------------------------------------------------------
# Good runs

def test_mask_colour_png_default_output_and_report(photo, capsys):
    path, mask, known, clean = photo
    before = path.read_bytes()
    code, out, err = run(["restore", path, "--mask", mask, *FAST], capsys)
    assert code == 0, err
    written = path.with_name("photo_restored.png")
    assert f"wrote {written}" in out and "inpainting" in out and "colour 37x32" in out
    assert path.read_bytes() == before
    assert md.data.load(written, color=True).shape == (3, 37, 32)
    assert re.search(r"RMS change [\d.e-]+ \(noise level [\d.e-]+, estimated", out)


def test_simulated_inpainting_reports_psnr_on_the_missing_pixels(photo, tmp_path, capsys):
    path, mask, known, clean = photo
    clean_path = md.data.save(tmp_path / "clean.png", clean)
    code, out, err = run(["restore", clean_path, "--mask", mask, "--simulate", "--out",
                          tmp_path / "r.png", *FAST], capsys)
    assert code == 0, err
    match = re.search(r"PSNR on the missing pixels \(dB\)\s+generator ([\d.]+)\s+E23 "
                      r"interpolant ([\d.]+)\s+harmonic fill ([\d.]+)", out)
    assert match, out
    x = md.data.load(clean_path, color=True)
    fill = np.stack([md.baselines.harmonic_fill(np.where(known, c, 0.0), known) for c in x])
    expected = md.metrics.psnr(fill[:, ~known], x[:, ~known], data_range=1.0)
    assert float(match.group(3)) == pytest.approx(expected, abs=0.006)


def test_downsample_writes_the_larger_image(tmp_path, capsys):
    low = md.data.save(tmp_path / "low.png", md.data.shepp_logan(16))
    code, out, err = run(["restore", low, "--downsample", "2", *FAST], capsys)
    assert code == 0, err
    assert md.data.load(tmp_path / "low_restored.png").shape == (32, 32)
    assert "super-resolution x2" in out


def test_simulated_downsample_compares_with_bicubic(tmp_path, capsys):
    image = md.data.save(tmp_path / "x.png", md.data.shepp_logan(32))
    code, out, err = run(["restore", image, "--downsample", "2", "--simulate", "--out",
                          tmp_path / "y.png", *FAST], capsys)
    assert code == 0, err
    assert re.search(r"PSNR \(dB\)\s+generator [\d.]+\s+E23 interpolant [\d.]+\s+bicubic", out)
    assert md.data.load(tmp_path / "y.png").shape == (32, 32)


def test_blur_npy_with_noise_stops_by_discrepancy(tmp_path, capsys):
    x = 0.5 + 0.2 * md.data.bandlimited((64,), p=4, seed=1)
    np.save(tmp_path / "s.npy", x)
    code, out, err = run(["restore", tmp_path / "s.npy", "--blur", "gaussian:1.5", "--simulate",
                          "--add-noise", "0.02", "--noise-std", "0.02", "--channels", "8",
                          "--steps", "200", "--no-progress"], capsys)
    assert code == 0, err
    assert "stop rule 'discrepancy'" in out and "0.02 (given)" in out
    assert "blurred input" in out
    assert np.load(tmp_path / "s_restored.npy").shape == (64,)


def test_grey_png_with_npy_mask_stays_grey(tmp_path, capsys):
    image = md.data.save(tmp_path / "g.png", md.data.shepp_logan(24))
    np.save(tmp_path / "m.npy", np.random.default_rng(1).random((24, 24)) > 0.3)
    code, out, err = run(["restore", image, "--mask", tmp_path / "m.npy", *FAST], capsys)
    assert code == 0, err
    assert md.data.load(tmp_path / "g_restored.png", color=True).shape == (24, 24)


def test_demo_without_input(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["restore", *FAST], capsys)
    assert code == 0, err
    assert "grace_hopper" in out and "random mask (50% missing, seed 0)" in out
    assert re.search(r"PSNR on the missing pixels \(dB\)\s+generator [\d.]+\s+E23 interpolant "
                     r"[\d.]+\s+harmonic fill [\d.]+", out)
    assert md.data.load(tmp_path / "grace_hopper_restored.png", color=True).shape == \
        (3, 150, 128)


# --------------------------------------------------------------------------------------------
# Errors: exit 2, one line, nothing written, no input changed

def _bad_inputs(tmp_path, path, mask):
    (tmp_path / "small.png").write_bytes(b"")
    md.data.save(tmp_path / "small_mask.png", np.ones((10, 8)))
    md.data.save(tmp_path / "odd.png", np.zeros((15, 16)))
    return {
        "missing mask file": ["restore", path, "--mask", tmp_path / "nope.png"],
        "wrong mask size": ["restore", path, "--mask", tmp_path / "small_mask.png"],
        "mask with no known pixel": ["restore", path, "--mask", tmp_path / "black.png"],
        "downsample factor not dividing": ["restore", tmp_path / "odd.png", "--downsample", "2",
                                           "--simulate"],
        "zero downsample factor": ["restore", path, "--downsample", "0"],
        "bad blur spec": ["restore", path, "--blur", "gaussian:-1"],
        "unknown blur": ["restore", path, "--blur", "sobel:3"],
        "blur with a negative sum": ["restore", tmp_path / "line.npy", "--blur", "random:3:2"],
        "output equals input": ["restore", path, "--mask", mask, "--out", path],
        "output equals input via another spelling": ["restore", path, "--mask", mask, "--out",
                                                     path.parent / "." / path.name],
        "output equals the mask": ["restore", path, "--mask", mask, "--out", mask],
        "missing input": ["restore", tmp_path / "absent.png", "--mask", mask],
        "no operator": ["restore", path],
        "two operators": ["restore", path, "--mask", mask, "--downsample", "2"],
        "added noise without simulate": ["restore", path, "--mask", mask, "--add-noise", "0.1"],
        "oracle without simulate": ["restore", path, "--mask", mask, "--stop", "oracle"],
        "unknown stop rule": ["restore", path, "--mask", mask, "--stop", "never"],
        "spectral rule with an operator": ["restore", path, "--mask", mask, "--stop", "spectral",
                                           *FAST],
        "zero noise std": ["restore", path, "--mask", mask, "--noise-std", "0"],
        "unknown model": ["restore", path, "--mask", mask, "--model", "unet"],
        "filter larger than the image": ["restore", path, "--mask", mask, "--filter",
                                         "gaussian:20"],
        "odd channels": ["restore", path, "--mask", mask, "--channels", "3", "--steps", "1"],
        "missing output directory": ["restore", path, "--mask", mask, "--out",
                                     tmp_path / "no" / "out.png"],
        "1-D signal to PNG": ["restore", tmp_path / "line.npy", "--blur", "gaussian:1", "--out",
                              tmp_path / "line.png"],
    }


BAD = list(_bad_inputs(Path("/tmp"), Path("/tmp/x.png"), Path("/tmp/m.png")))


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_2_input_untouched(case, photo, tmp_path, capsys):
    path, mask, _, _ = photo
    md.data.save(tmp_path / "black.png", np.zeros((37, 32)))
    np.save(tmp_path / "line.npy", np.linspace(0, 1, 40))
    argv = _bad_inputs(tmp_path, path, mask)[case]
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = run(argv, capsys)
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and err.startswith("minidip"), err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


def test_wrong_mask_size_names_both_sizes(photo, tmp_path, capsys):
    path, _, _, _ = photo
    md.data.save(tmp_path / "m.png", np.ones((10, 8)))
    code, out, err = run(["restore", path, "--mask", tmp_path / "m.png"], capsys)
    assert code == 2 and "10x8" in err and "37x32" in err


def test_deep_model_fits_colour_at_once(photo, tmp_path, capsys, monkeypatch):
    from test_restore import StandIn
    monkeypatch.setattr(md, "DeepDecoder", StandIn, raising=False)
    StandIn.built.clear()
    path, mask, _, _ = photo
    code, out, err = run(["restore", path, "--mask", mask, "--model", "deep", "--out",
                          tmp_path / "deep.png", "--steps", "3", "--no-progress"], capsys)
    assert code == 0, err
    assert len(StandIn.built) == 1 and StandIn.built[0].out_channels == 3
    assert "stopped at         iteration 3 of at most 3" in out
    assert md.data.load(tmp_path / "deep.png", color=True).shape == (3, 37, 32)


def test_deep_model_without_the_deep_decoder_is_one_line(photo, capsys, monkeypatch):
    monkeypatch.delattr(md, "DeepDecoder", raising=False)
    path, mask, _, _ = photo
    code, out, err = run(["restore", path, "--mask", mask, "--model", "deep"], capsys)
    assert code == 2 and "needs minidip.DeepDecoder" in err
    assert len(err.strip().splitlines()) == 1
    assert not path.with_name("photo_restored.png").exists()


# --------------------------------------------------------------------------------------------
# Ctrl-C

def test_subprocess_ctrl_c_writes_best_so_far(tmp_path):
    """A real SIGINT during the fit: exit 130, the best iterate so far written, path named."""
    np.save(tmp_path / "signal.npy", 0.5 + 0.4 * np.sin(np.linspace(0, 6, 24)))
    np.save(tmp_path / "mask.npy", np.arange(24) % 3 != 0)
    proc = _subprocess(["restore", "signal.npy", "--mask", "mask.npy", "--simulate",
                        "--out", "partial.npy", "--channels", "2", "--steps", "1000000",
                        "--stop", "oracle"], tmp_path, **NO_JIT)
    interrupt_during_fit(proc, tmp_path / "partial.npy", (24,))


class _SecondFitInterrupted(stopping.StopRule):
    """A rule whose second instance (the G channel's fit) is interrupted at iteration 2."""

    made = 0

    def __init__(self):
        super().__init__()
        type(self).made += 1
        self.number = type(self).made

    def observe(self, iteration, output, loss):
        if self.number == 2 and iteration == 2:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_ctrl_c_in_a_colour_channel_says_where(photo, tmp_path, capsys, monkeypatch):
    path, mask, known, _ = photo
    monkeypatch.setitem(stopping.RULES, "variance", _SecondFitInterrupted)
    _SecondFitInterrupted.made = 0
    code, out, err = run(["restore", path, "--mask", mask, "--stop", "variance", "--out",
                          tmp_path / "partial.png", *FAST], capsys)
    assert code == 130, err
    assert "interrupted: wrote the best output so far (colour channel G; iterations 3 (R), " \
           "1 (G), 0 (B)" in out and str(tmp_path / "partial.png") in out
    result = md.data.load(tmp_path / "partial.png", color=True)
    y = md.data.load(path, color=True)
    # The blue channel was not started: it holds the mean of its known pixels.
    np.testing.assert_allclose(result[2], np.rint(y[2][known].mean() * 255) / 255, atol=1e-6)
