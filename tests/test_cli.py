import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from minidip import cli, stopping
from minidip import denoise as dn

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--channels", "8", "--steps", "30", "--no-progress"]


@pytest.fixture
def image(tmp_path):
    """A small noisy grayscale PNG and its clean version."""
    clean = md.data.shepp_logan(32)
    noisy = np.clip(clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape), 0, 1)
    path = md.data.save(tmp_path / "noisy.png", noisy)
    return path, clean


def run(argv, capsys):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_denoise_png_default_output(image, capsys):
    path, clean = image
    before = path.read_bytes()
    code, out, err = run(["denoise", path, *FAST], capsys)
    assert code == 0, err
    written = path.with_name("noisy_denoised.png")
    assert written.is_file() and f"wrote {written}" in out
    assert path.read_bytes() == before
    assert "stopped at" in out and "(estimated)" in out
    result = md.data.load(written)
    assert result.shape == clean.shape


def test_denoise_npy_1d_with_known_noise_and_psnr(tmp_path, capsys):
    x = (md.data.bandlimited((200,), p=6, seed=2) + 3) / 6
    path = tmp_path / "signal.npy"
    np.save(path, x)
    code, out, err = run(["denoise", path, "--add-noise", "0.05", "--noise-std", "0.05",
                          "--stop", "spectral", *FAST], capsys)
    assert code == 0, err
    assert "0.05 (given)" in out and "PSNR" in out
    result = np.load(tmp_path / "signal_denoised.npy")
    assert result.shape == x.shape
    # The PSNR printed is the one of the written file against the input.
    y = x + 0.05 * np.random.default_rng(0).standard_normal(x.shape)
    gain = (md.metrics.psnr(result, x, data_range=np.ptp(x))
            - md.metrics.psnr(y, x, data_range=np.ptp(x)))
    assert f"(gain {gain:+.2f} dB)" in out


def test_denoise_colour_jpeg_to_jpeg(tmp_path, capsys):
    from PIL import Image
    rgb = (np.random.default_rng(1).random((24, 20, 3)) * 255).astype(np.uint8)
    path = tmp_path / "photo.JPG"
    Image.fromarray(rgb).save(path, format="JPEG")
    code, out, err = run(["denoise", path, "--out", tmp_path / "clean.jpeg", *FAST], capsys)
    assert code == 0, err
    assert md.data.load(tmp_path / "clean.jpeg").shape == (24, 20)


def test_denoise_default_input_is_the_noisy_mri(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(["denoise", *FAST], capsys)
    assert code == 0, err
    assert "MRI" in out and "noise of std 0.1" in out and "PSNR" in out
    assert md.data.load(tmp_path / "mri_denoised.png").shape == (128, 128)


def _make_bad_files(tmp_path, path):
    (tmp_path / "notes.png").write_text("not an image")
    np.save(tmp_path / "cube.npy", np.zeros((3, 3, 3)))
    np.save(tmp_path / "line.npy", np.linspace(0, 1, 50))
    md.data.save(tmp_path / "tiny.png", np.zeros((6, 6)) + 0.5)
    (tmp_path / "truncated.png").write_bytes(path.read_bytes()[:60])
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "link.png").symlink_to(path)


def _bad_inputs(tmp_path, path):
    """Command lines with one bad input each (files from :func:`_make_bad_files`)."""
    text, cube, tiny, truncated, link = (tmp_path / name for name in (
        "notes.png", "cube.npy", "tiny.png", "truncated.png", "link.png"))
    return {
        "missing file": ["denoise", tmp_path / "nope.png"],
        "a directory": ["denoise", tmp_path / "folder.png"],
        "truncated PNG": ["denoise", truncated],
        "empty .npy": ["denoise", tmp_path / "empty.npy"],
        "not an image": ["denoise", text],
        "3-D array": ["denoise", cube],
        "unsupported type": ["denoise", path.with_suffix(".txt")],
        "output equals input": ["denoise", path, "--out", path],
        "output equals input via another spelling": ["denoise", path, "--out",
                                                     path.parent / "." / path.name],
        "output is a link to the input": ["denoise", path, "--out", link],
        "zero noise std": ["denoise", path, "--noise-std", "0"],
        "negative noise std": ["denoise", path, "--noise-std", "-0.1"],
        "not a number": ["denoise", path, "--noise-std", "abc"],
        "negative steps": ["denoise", path, "--steps", "-5"],
        "zero channels": ["denoise", path, "--channels", "0"],
        "negative seed": ["denoise", path, "--seed", "-1", "--steps", "2", "--channels", "2"],
        "negative added noise": ["denoise", path, "--add-noise", "-0.1"],
        "zero steps": ["denoise", path, "--steps", "0"],
        "negative channels": ["denoise", path, "--channels", "-4"],
        "odd channels": ["denoise", path, "--channels", "7", "--steps", "2"],
        "filter larger than image": ["denoise", tiny, "--filter", "gaussian:2"],
        "unknown filter": ["denoise", path, "--filter", "sobel:3"],
        "bad filter parameter": ["denoise", path, "--filter", "gaussian:-1"],
        "unknown stop rule": ["denoise", path, "--stop", "never"],
        "oracle without reference": ["denoise", path, "--stop", "oracle"],
        "1-D signal to PNG": ["denoise", tmp_path / "line.npy", "--out", tmp_path / "line.png"],
        "missing output directory": ["denoise", path, "--out", tmp_path / "no" / "out.png"],
        "bad spectrum shape": ["spectrum", "--shape", "0x4"],
        "spectrum filter too large": ["spectrum", "--shape", "8", "--filter", "gaussian:3"],
        "figures into a missing directory": ["figures", "--out", tmp_path / "missing"],
        "figures with zero seeds": ["figures", "--seeds", "0"],
        "spectrum with an unknown filter": ["spectrum", "--filter", "sobel"],
    }


BAD = list(_bad_inputs(Path("/tmp"), Path("/tmp/x.png")))


@pytest.mark.parametrize("case", BAD)
def test_bad_input_one_line_exit_2_input_untouched(case, image, tmp_path, capsys):
    path, _ = image
    _make_bad_files(tmp_path, path)
    argv = _bad_inputs(tmp_path, path)[case]
    files = {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    code, out, err = run(argv, capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("minidip"), err
    assert "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()} == files


def _subprocess(argv, cwd, **env):
    """Run ``minidip`` in a fresh interpreter with SIGINT raising KeyboardInterrupt (a parent
    started in the background may pass SIGINT on as ignored)."""
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from minidip.cli import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], cwd=cwd,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


#: A tiny 1-D run in a subprocess: the numba kernels run as Python, so no JIT compile.
NO_JIT = {"NUMBA_DISABLE_JIT": "1"}


def interrupt_during_fit(proc, out_path, shape):
    """SIGINT once a million-step oracle run shows iterates: exit 130, the best iterate so far
    written to ``out_path`` (named in the report), no traceback."""
    seen = ""
    while not re.search(r"\| *[1-9]\d*/1000000", seen):   # wait for observed iterates
        chunk = os.read(proc.stderr.fileno(), 4096).decode()
        assert chunk, f"no progress before exit: {seen}"
        seen += chunk
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    match = re.search(r"interrupted: wrote the best output so far \(iteration (\d+) under "
                      r"'oracle'\) to (\S+)", out)
    assert match and match.group(2) == out_path.name, out
    assert "Traceback" not in err
    assert np.load(out_path).shape == (24,)


@pytest.fixture
def signal_file(tmp_path):
    path = tmp_path / "signal.npy"
    np.save(path, 0.5 + 0.4 * np.sin(np.linspace(0, 6, 24)))
    return path


def test_subprocess_bad_input(image, tmp_path):
    path, _ = image
    before = path.read_bytes()
    for argv, says in [(["denoise", path, "--out", path], "input"),
                       (["denoise", tmp_path / "absent.png"], "no such file")]:
        out, err = _subprocess(argv, tmp_path).communicate(timeout=120)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and says in lines[0] and "Traceback" not in err, err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["noisy.png"]


def test_subprocess_good_run_shows_progress(signal_file, tmp_path):
    before = signal_file.read_bytes()
    proc = _subprocess(["denoise", signal_file, "--out", "result.npy", "--channels", "2",
                        "--steps", "3"], tmp_path, **NO_JIT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "fit:" in err and "step/s" in err                  # the tqdm progress bar
    assert np.load(tmp_path / "result.npy").shape == (24,)
    assert "wrote result.npy" in out
    assert signal_file.read_bytes() == before


def test_subprocess_ctrl_c_writes_best_so_far(signal_file, tmp_path):
    """A real SIGINT during the fit: exit 130, the best iterate so far written, path named."""
    proc = _subprocess(["denoise", signal_file, "--out", "partial.npy", "--channels", "2",
                        "--steps", "1000000", "--stop", "oracle", "--add-noise", "0.1"],
                       tmp_path, **NO_JIT)
    interrupt_during_fit(proc, tmp_path / "partial.npy", (24,))


class _InterruptedDiscrepancy(stopping.Discrepancy):
    def observe(self, iteration, output, loss):
        if iteration == 4:
            raise KeyboardInterrupt
        return super().observe(iteration, output, loss)


def test_ctrl_c_writes_best_so_far(image, tmp_path, capsys, monkeypatch):
    path, _ = image
    monkeypatch.setitem(stopping.RULES, "discrepancy", _InterruptedDiscrepancy)
    code, out, err = run(["denoise", path, "--out", tmp_path / "partial.png", *FAST], capsys)
    assert code == 130
    assert "interrupted: wrote the best output so far (iteration 3" in out
    assert str(tmp_path / "partial.png") in out
    y = md.data.load(path)
    expected = dn.denoise(y, stop=None, channels=8, steps=3).output
    np.testing.assert_allclose(md.data.load(tmp_path / "partial.png"),
                               np.rint(np.clip(expected, 0, 1) * 255) / 255, atol=1e-6)


def test_spectrum_prints_summary_and_plots(tmp_path, capsys):
    out_png = tmp_path / "spec.png"
    code, out, err = run(["spectrum", "--filter", "gaussian:1.2:7", "--shape", "32x32",
                          "--out", out_png], capsys)
    assert code == 0, err
    lam = md.spectral.eigenvalues(md.filters.gaussian(1.2, ndim=2, size=7), (32, 32))
    assert f"lambda_max         {lam.max():.6g}" in out
    assert f"lambda_min         {lam.min():.6g}" in out
    assert f"condition          {lam.max() / lam.min():.6g}" in out
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run(["spectrum", "--shape", "64", "--out", tmp_path / "one.png"], capsys)
    assert code == 0 and "gaussian:2" in out


def test_figures_writes_comparison(tmp_path, capsys, monkeypatch):
    from minidip.experiments import denoising
    tiny = denoising.Case("tiny", lambda: (md.data.bandlimited((64,), p=4, seed=1) + 3) / 6,
                          0.05, "gaussian:2", channels=8, steps=20, deep=False)
    monkeypatch.setattr(denoising, "CASES", (tiny,))
    code, out, err = run(["figures", "--out", tmp_path, "--seeds", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert "| method | tiny (seed 0) |" in out
    assert (tmp_path / "denoising.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_acceptance_cli_gain_on_noisy_mri_png(tmp_path, capsys):
    clean = md.data.mri(downsample=2)
    noisy = clean + 0.1 * np.random.default_rng(11).standard_normal(clean.shape)
    path = md.data.save(tmp_path / "noisy.png", noisy)
    code, out, err = run(["denoise", path, "--out", tmp_path / "out.png", "--no-progress"],
                         capsys)
    assert code == 0, err
    before = md.metrics.psnr(md.data.load(path), clean, data_range=1.0)
    after = md.metrics.psnr(md.data.load(tmp_path / "out.png"), clean, data_range=1.0)
    assert after - before >= 3


def test_denoise_says_when_the_rule_did_not_decide(image, tmp_path, capsys):
    path, _ = image
    code, out, err = run(["denoise", path, "--out", path.with_name("a.png"), "--channels", "8",
                          "--steps", "1", "--no-progress"], capsys)
    assert code == 0, err
    assert "the discrepancy level was not reached in 1 steps" in out and "--steps" in out
    smooth = tmp_path / "smooth.npy"
    np.save(smooth, md.data.bandlimited((32, 32), p=6, seed=1)
            + 0.3 * np.random.default_rng(1).standard_normal((32, 32)))
    code, out, err = run(["denoise", smooth, "--no-progress"], capsys)
    assert code == 0 and "stopped at" in out and "note:" not in out


def test_denoise_says_when_the_estimated_noise_level_is_zero(tmp_path, capsys):
    # Constant 2x2 blocks: every finest-scale Haar coefficient is 0, so the estimate is 0.
    blocks = np.kron(md.data.shepp_logan(16), np.ones((2, 2)))
    path = tmp_path / "blocks.npy"
    np.save(path, blocks)
    code, out, err = run(["denoise", path, *FAST], capsys)
    assert code == 0, err
    assert "the estimated noise level is 0" in out and "--noise-std" in out
