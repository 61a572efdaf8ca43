"""Synthetic signals, matplotlib's sample data, and load/save of user files."""
import math
import os

import numpy as np
import pytest
from matplotlib import cbook
from PIL import Image

from minidip import data

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def nonzero_modes(x):
    spectrum = np.abs(np.fft.fftn(x))
    return spectrum > 1e-9 * spectrum.max()


def block_means(x, b):
    """Explicit loop over the blocks, the last partial ones dropped."""
    if x.ndim == 1:
        return np.array([x[i * b:(i + 1) * b].mean() for i in range(len(x) // b)])
    rows, cols = x.shape[0] // b, x.shape[1] // b
    return np.array([[x[i * b:(i + 1) * b, j * b:(j + 1) * b].mean() for j in range(cols)]
                     for i in range(rows)])


def sample_path(name):
    return cbook.get_sample_data(name, asfileobj=False)


# ---------------------------------------------------------------- synthetic signals

@pytest.mark.parametrize("shape", [(64,), (33,), (16, 16), (9, 12)])
@pytest.mark.parametrize("p", [1, 2, 5, 6])
def test_bandlimited_has_exactly_p_modes(shape, p):
    x = data.bandlimited(shape, p=p, seed=3)
    assert x.shape == shape and x.dtype == np.float64
    assert np.count_nonzero(nonzero_modes(x)) == p
    assert np.sqrt(np.mean(x**2)) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_array_equal(x, data.bandlimited(shape, p=p, seed=3))


def test_bandlimited_respects_max_freq():
    x = data.bandlimited((128,), p=8, seed=0, max_freq=10)
    freqs = np.fft.fftfreq(128, 1 / 128)[nonzero_modes(x)]
    assert np.all(np.abs(freqs) <= 10)


def test_sinusoids_dft_closed_form():
    n, f, a, phi = 32, 5, 1.5, 0.7
    spectrum = np.fft.fft(data.sinusoids(n, [f], [a], [phi]))
    expected = np.zeros(n, complex)
    expected[f], expected[n - f] = a * n / 2 * np.exp(1j * phi), a * n / 2 * np.exp(-1j * phi)
    np.testing.assert_allclose(spectrum, expected, atol=1e-10)


def test_sinusoids_2d_matches_formula():
    shape, freqs = (6, 10), [(1, 2), (0, 3)]
    i, j = np.meshgrid(np.arange(6), np.arange(10), indexing="ij")
    expected = 2 * np.cos(2 * np.pi * (i / 6 + 2 * j / 10) + 0.5) + np.cos(2 * np.pi * 3 * j / 10)
    got = data.sinusoids(shape, freqs, amplitudes=[2, 1], phases=[0.5, 0])
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize("kwargs", [
    dict(shape=8, freqs=[1.5]),                    # not an integer frequency
    dict(shape=(8, 8), freqs=[1, 2]),              # 2-D needs pairs
    dict(shape=8, freqs=[]),
    dict(shape=8, freqs=[1, 2], amplitudes=[1]),
    dict(shape=8, freqs=[1], phases=[np.nan]),
    dict(shape=(8, 8, 8), freqs=[(1, 1, 1)]),
])
def test_sinusoids_errors(kwargs):
    with pytest.raises(ValueError):
        data.sinusoids(**kwargs)


def jump_positions(x):
    return np.flatnonzero(np.diff(x)) + 1


def test_step_jump_locations():
    np.testing.assert_array_equal(data.step(16), [0] * 8 + [1] * 8)
    np.testing.assert_array_equal(jump_positions(data.step(10, edges=(0.29, 0.7))), [3, 7])
    np.testing.assert_array_equal(jump_positions(data.step(100, edges=(0.29,))), [29])
    np.testing.assert_array_equal(data.step(8, edges=(0.25, 0.5, 0.75), levels=(0, 1, 2)),
                                  [0, 0, 1, 1, 2, 2, 0, 0])
    np.testing.assert_array_equal(data.step(8, edges=(0.25, 0.75), levels=(0, 1, 0)),
                                  [0, 0, 1, 1, 1, 1, 0, 0])


def test_step_2d_is_a_checkerboard_of_blocks():
    x = data.step((8, 6))
    i, j = np.meshgrid(np.arange(8), np.arange(6), indexing="ij")
    np.testing.assert_array_equal(x, ((i >= 4) ^ (j >= 3)).astype(float))
    y = data.step((12, 12), edges=(0.25, 0.5, 0.75), levels=(-1.0, 2.0))
    for row in y:
        assert list(jump_positions(row)) == [3, 6, 9]
    assert y.dtype == np.float64 and set(np.unique(y)) == {-1.0, 2.0}


@pytest.mark.parametrize("kwargs", [
    dict(shape=8, edges=()),
    dict(shape=8, edges=(0.0,)),
    dict(shape=8, edges=(1.0,)),
    dict(shape=8, edges=(0.6, 0.4)),
    dict(shape=8, edges=(0.5, 0.52)),              # same sample
    dict(shape=8, edges=(0.01,)),                  # rounds to sample 0
    dict(shape=8, levels=(1.0,)),
    dict(shape=8, levels=(1.0, 1.0)),
    dict(shape=8, edges=(0.25, 0.5, 0.75), levels=(0.0, 1.0, 0.0)),  # pieces 3, 4 equal
    dict(shape=(8, 8), edges=(0.25, 0.75), levels=(0.0, 1.0, 0.0)),  # index 2 -> 3 equal
    dict(shape=8, levels=(0.0, np.inf)),
    dict(shape=(8, 2), edges=(0.25, 0.75)),        # too many edges for an axis of 2
    dict(shape=0),
    dict(shape=(4, 0)),
    dict(shape=(2, 2, 2)),
    dict(shape=4.0),
])
def test_step_errors(kwargs):
    with pytest.raises(ValueError):
        data.step(**kwargs)


def test_piecewise_smooth_1d_jumps_stand_out():
    for seed in range(4):
        x = data.piecewise_smooth(256, jumps=3, seed=seed)
        assert x.dtype == np.float64 and x.min() == 0.0 and x.max() == 1.0
        d = np.sort(np.abs(np.diff(x)))[::-1]
        assert d[2] > 2 * d[3]
    first = data.piecewise_smooth(64, seed=5)
    np.testing.assert_array_equal(first, data.piecewise_smooth(64, seed=5))
    assert not np.array_equal(first, data.piecewise_smooth(64, seed=6))


@pytest.mark.parametrize("shape", [(64,), (16, 20)])
def test_piecewise_smooth_without_jumps_is_band_limited(shape):
    x = data.piecewise_smooth(shape, jumps=0, seed=1)
    grids = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    low = np.all([np.abs(f) <= 2 for f in grids], axis=0)
    spectrum = np.abs(np.fft.fftn(x))
    spectrum[0] = 0
    assert np.all(spectrum[~low] < 1e-9 * spectrum.max())


def test_piecewise_smooth_2d_edges_are_lines():
    x = data.piecewise_smooth((64, 64), jumps=2, seed=0)
    assert x.shape == (64, 64) and x.min() == 0.0 and x.max() == 1.0
    big = (np.abs(np.diff(x, axis=0)) > 0.1).sum() + (np.abs(np.diff(x, axis=1)) > 0.1).sum()
    # each straight cut crosses at most 2 * 64 neighbour pairs
    assert 0 < big <= 2 * 2 * 64


@pytest.mark.parametrize("kwargs", [dict(shape=3, jumps=3), dict(shape=8, jumps=-1),
                                    dict(shape=8, jumps=1.5)])
def test_piecewise_smooth_errors(kwargs):
    with pytest.raises(ValueError):
        data.piecewise_smooth(**kwargs)


def test_white_noise_statistics_and_seed():
    n, std = 40_000, 2.5
    x = data.white_noise((200, 200), std=std, seed=7)
    assert x.dtype == np.float64
    # standard errors: mean std/sqrt(n), sample std about std/sqrt(2n); allow 5 of them
    assert abs(x.mean()) < 5 * std / math.sqrt(n)
    assert abs(x.std() - std) < 5 * std / math.sqrt(2 * n)
    np.testing.assert_array_equal(x, data.white_noise((200, 200), std=std, seed=7))
    assert not np.array_equal(x, data.white_noise((200, 200), std=std, seed=8))
    np.testing.assert_array_equal(data.white_noise(5, std=0.0), np.zeros(5))


@pytest.mark.parametrize("std", [-1.0, np.nan, np.inf, [1.0]])
def test_white_noise_errors(std):
    with pytest.raises(ValueError, match="std"):
        data.white_noise(8, std=std)


def test_shepp_logan_values_and_shape():
    n = 257  # pixel i, j samples y = (256 - 2 i) / 256, x = (2 j - 256) / 256
    x = data.shepp_logan(n)
    assert x.shape == (n, n) and x.dtype == np.float64
    assert x.min() == 0.0 and x.max() == 1.0
    allowed = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 1.0])
    assert np.all(np.min(np.abs(x[..., None] - allowed), axis=-1) < 1e-12)

    def at(xc, yc):
        return x[round((1 - yc) * 128), round((xc + 1) * 128)]

    assert at(0, 0) == pytest.approx(0.2)           # ellipses 1 + 2
    assert at(0, 0.9) == 1.0                        # skull: ellipse 1 only
    assert at(0.22, 0) == pytest.approx(0.0)        # right ventricle: 1 - 0.8 - 0.2
    assert at(0, 0.35) == pytest.approx(0.3)        # ellipse 5, above the centre (row 0 = top)
    assert at(0, -0.35) == pytest.approx(0.2)
    assert at(0, -0.606) == pytest.approx(0.3)      # small ellipse 9 near the bottom
    assert at(-0.95, 0.95) == 0.0


def test_shepp_logan_skull_is_symmetric_with_known_area():
    n = 257
    skull = data.shepp_logan(n) == 1.0
    np.testing.assert_array_equal(skull, skull[:, ::-1])
    area = skull.sum() * (2 / (n - 1)) ** 2
    assert area == pytest.approx(math.pi * (0.69 * 0.92 - 0.6624 * 0.874), rel=0.03)
    small = data.shepp_logan(2)
    assert small.shape == (2, 2)


@pytest.mark.parametrize("n", [1, 0, 2.5, True])
def test_shepp_logan_errors(n):
    with pytest.raises(ValueError):
        data.shepp_logan(n)


# ---------------------------------------------------------------- matplotlib sample data

def test_mri():
    x = data.mri()
    assert x.shape == (256, 256) and x.dtype == np.float64
    assert x.min() == 0.0 and x.max() == 1.0
    with cbook.get_sample_data("s1045.ima.gz") as file:
        raw = np.frombuffer(file.read(), ">u2").reshape(256, 256).astype(float)
    np.testing.assert_allclose(x, raw / raw.max(), rtol=1e-15)
    # A correctly decoded slice is smooth: neighbours differ little on average.
    assert np.mean(np.abs(np.diff(x, axis=1))) < 0.05
    assert x[:16, :16].mean() < 0.05  # dark background in the corner
    np.testing.assert_allclose(data.mri(downsample=2), block_means(x, 2), rtol=1e-13)
    down3 = data.mri(downsample=3)
    assert down3.shape == (85, 85)
    np.testing.assert_allclose(down3, block_means(x, 3), rtol=1e-13)


def test_grace_hopper_is_luma_of_the_jpeg():
    x = data.grace_hopper()
    assert x.shape == (600, 512) and x.dtype == np.float64
    assert 0.0 <= x.min() and x.max() <= 1.0
    with Image.open(sample_path("grace_hopper.jpg")) as im:
        rgb = np.asarray(im.convert("RGB"), np.float64) / 255
    expected = LUMA[0] * rgb[..., 0] + LUMA[1] * rgb[..., 1] + LUMA[2] * rgb[..., 2]
    np.testing.assert_allclose(x, expected, atol=1e-12)
    down = data.grace_hopper(downsample=3)
    assert down.shape == (200, 170)
    np.testing.assert_allclose(down, block_means(x, 3), atol=1e-12)


def test_eeg_channels():
    table = np.fromfile(sample_path("eeg.dat"), "<f8").reshape(800, 4)
    for channel in range(4):
        x = data.eeg(channel)
        assert x.shape == (800,) and x.dtype == np.float64
        np.testing.assert_array_equal(x, table[:, channel])
        # An EEG channel is a slowly varying trace: neighbouring samples correlate strongly.
        assert np.corrcoef(x[:-1], x[1:])[0, 1] > 0.5
        assert 0.5 < x.std() < 2
    np.testing.assert_allclose(data.eeg(2, downsample=4), block_means(table[:, 2], 4))


@pytest.mark.parametrize("channel", [-1, 4, 1.0, True])
def test_eeg_bad_channel(channel):
    with pytest.raises(ValueError, match="channel"):
        data.eeg(channel)


def test_membrane():
    x = data.membrane()
    assert x.shape == (12000,) and x.dtype == np.float64
    np.testing.assert_array_equal(x, np.fromfile(sample_path("membrane.dat"), "<f4"))
    assert -1.0 < x.min() and x.max() < 0.1  # a potential in units of 100 mV
    assert np.median(x[:500]) == pytest.approx(-0.67, abs=0.01)  # resting level
    down = data.membrane(downsample=7)
    assert down.shape == (1714,)
    np.testing.assert_allclose(down, block_means(x, 7), rtol=1e-13)


@pytest.mark.parametrize("factor", [0, -2, 1.5, 257])
def test_bad_downsample(factor):
    with pytest.raises(ValueError, match="downsample"):
        data.mri(downsample=factor)


# ---------------------------------------------------------------- load / save

def listing(path):
    return sorted(os.listdir(path))


@pytest.mark.parametrize("array", [np.linspace(-3, 7, 11),
                                   np.random.default_rng(0).normal(size=(5, 4))])
def test_npy_round_trip_is_exact(tmp_path, array):
    out = data.save(tmp_path / "x.npy", array)
    assert out == tmp_path / "x.npy"
    back = data.load(out)
    assert back.dtype == np.float64
    np.testing.assert_array_equal(back, array)
    assert listing(tmp_path) == ["x.npy"]


def test_npy_other_real_dtypes_load_as_float64(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(6, dtype=np.int16).reshape(2, 3))
    np.save(tmp_path / "f.npy", np.array([0.1, 0.2], np.float32))
    np.testing.assert_array_equal(data.load(tmp_path / "i.npy"), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(data.load(tmp_path / "f.npy"),
                                  np.array([0.1, 0.2], np.float32).astype(np.float64))


@pytest.mark.parametrize("bits", [8, 16])
def test_png_round_trip_within_quantization(tmp_path, bits):
    x = np.random.default_rng(1).uniform(size=(13, 17))
    x[0, :3] = 0.0, 1.0, 0.5
    data.save(tmp_path / "x.png", x, bits=bits)
    back = data.load(tmp_path / "x.png")
    assert back.shape == x.shape and back.dtype == np.float64
    # half a quantization level, plus the float32 rounding of matplotlib's PNG decoder
    assert np.max(np.abs(back - x)) <= 0.5 / (2**bits - 1) + 1e-7
    assert back[0, 0] == 0.0 and back[0, 1] == 1.0


def test_png_data_range_maps_and_clips(tmp_path):
    x = np.array([[-2.0, -1.0, 0.0], [1.0, 3.0, 0.5]])
    data.save(tmp_path / "x.png", x, data_range=(-1.0, 1.0), bits=16)
    expected = (np.clip(x, -1, 1) + 1) / 2
    np.testing.assert_allclose(data.load(tmp_path / "x.png"), expected, atol=0.5 / 65535 + 1e-7)


def test_jpeg_round_trip_is_close(tmp_path):
    x = data.grace_hopper(downsample=4)
    for name in ("x.jpg", "x.JPEG"):
        data.save(tmp_path / name, x)
        back = data.load(tmp_path / name)
        assert back.shape == x.shape
        assert np.mean(np.abs(back - x)) < 0.01
    assert listing(tmp_path) == ["x.JPEG", "x.jpg"]


def test_load_colour_png_uses_luma_and_drops_alpha(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    rgba[..., 3] = rng.choice([0, 128, 255], size=(6, 5))
    expected = (LUMA[0] * rgba[..., 0] + LUMA[1] * rgba[..., 1] + LUMA[2] * rgba[..., 2]) / 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., :3], "RGB").save(tmp_path / "rgb.png")
    for name in ("rgba.png", "rgb.png"):
        np.testing.assert_allclose(data.load(tmp_path / name), expected, atol=1e-6)


def test_load_gray_png_8_and_16_bit(tmp_path):
    g8 = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    g16 = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
    Image.fromarray(g8).save(tmp_path / "g8.png")
    Image.fromarray(g16).save(tmp_path / "g16.png")
    np.testing.assert_allclose(data.load(tmp_path / "g8.png"), g8 / 255, atol=1e-7)
    np.testing.assert_allclose(data.load(tmp_path / "g16.png"), g16 / 65535, atol=1e-7)


def test_save_replaces_atomically_and_keeps_permissions(tmp_path):
    target = tmp_path / "x.npy"
    data.save(target, np.zeros(3))
    data.save(target, np.ones(3))
    np.testing.assert_array_equal(data.load(target), np.ones(3))
    assert listing(tmp_path) == ["x.npy"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_rename_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "x.npy"
    data.save(target, np.zeros(3))

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(data.os, "replace", broken_replace)
    with pytest.raises(ValueError, match="cannot write"):
        data.save(target, np.ones(3))
    assert listing(tmp_path) == ["x.npy"]
    np.testing.assert_array_equal(np.load(target), np.zeros(3))


def test_failure_while_writing_leaves_no_partial_file(tmp_path, monkeypatch):
    def broken_save(file, arr, allow_pickle):
        file.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(data.np, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        data.save(tmp_path / "x.npy", np.ones(3))
    assert listing(tmp_path) == []


def test_save_refuses_to_overwrite_protected_paths(tmp_path):
    source = tmp_path / "in.png"
    data.save(source, np.zeros((4, 4)))
    before = source.read_bytes()
    (tmp_path / "sub").mkdir()
    os.symlink(source, tmp_path / "link.png")
    for out in (source, str(source), tmp_path / "sub" / ".." / "in.png", tmp_path / "link.png"):
        with pytest.raises(ValueError, match="refusing to overwrite"):
            data.save(out, np.ones((4, 4)), protect=source)
    with pytest.raises(ValueError, match="refusing to overwrite"):
        data.save(source, np.ones((4, 4)), protect=[tmp_path / "other.npy", str(source)])
    assert source.read_bytes() == before
    data.save(tmp_path / "out.png", np.ones((4, 4)), protect=source)
    data.save(tmp_path / "out.png", np.ones((4, 4)), protect=None)
    assert listing(tmp_path) == ["in.png", "link.png", "out.png", "sub"]


@pytest.mark.parametrize("name, content, match", [
    ("missing.npy", None, "no such file"),
    ("x.txt", b"1 2 3", r"unsupported file type '\.txt'.*\.npy, \.png, \.jpg, \.jpeg"),
    ("noext", b"1 2 3", "unsupported file type"),
    ("text.png", b"hello", "cannot read .* as a PNG image"),
    ("text.jpg", b"hello", "cannot read .* as a JPG image"),
    ("truncated.png", "truncated", "cannot read"),
    ("junk.npy", b"\x93NUMPYjunk", "cannot read .* as a .npy array"),
])
def test_load_unreadable_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content == "truncated":
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(path)
        path.write_bytes(path.read_bytes()[:40])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        data.load(path)
    assert name in str(info.value)


def test_load_directory(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match="not a regular file"):
        data.load(tmp_path / "d.npy")


@pytest.mark.parametrize("array, match", [
    (np.zeros((2, 2, 2)), "shape"),
    (np.float64(3.0), "shape"),
    (np.zeros(0), "shape"),
    (np.array([1.0, np.nan]), "non-finite"),
    (np.array([[1.0, np.inf]]), "non-finite"),
    (np.array([1 + 1j]), "complex"),
    (np.array(["a", "b"]), "expected real numbers"),
    (np.array([{}, 1], dtype=object), "cannot read"),
])
def test_load_bad_npy_contents(tmp_path, array, match):
    path = tmp_path / "x.npy"
    np.save(path, array, allow_pickle=True)
    with pytest.raises(ValueError, match=match):
        data.load(path)


@pytest.mark.parametrize("name, array, kwargs, match", [
    ("x.png", np.zeros(5), {}, "cannot be written as an image"),
    ("x.npy", np.zeros((2, 2, 2)), {}, "shape"),
    ("x.png", np.zeros((4, 3, 3)), {}, r"shape \(3, h, w\)"),
    ("x.png", np.zeros((3, 4, 4)), dict(bits=16), "grayscale PNG"),
    ("x.npy", np.array([np.nan]), {}, "non-finite"),
    ("x.npy", np.array([1j]), {}, "real numbers"),
    ("x.png", np.zeros((3, 3)), dict(data_range=(1.0, 1.0)), "data_range"),
    ("x.png", np.zeros((3, 3)), dict(data_range=(0.0, np.inf)), "data_range"),
    ("x.png", np.zeros((3, 3)), dict(data_range=1.0), "data_range"),
    ("x.jpg", np.zeros((3, 3)), dict(bits=16), "bits"),
    ("x.png", np.zeros((3, 3)), dict(bits=12), "bits"),
    ("x.tif", np.zeros((3, 3)), {}, "unsupported file type"),
    ("nodir/x.npy", np.zeros(3), {}, "does not exist"),
])
def test_save_errors_create_nothing(tmp_path, name, array, kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.save(tmp_path / name, array, **kwargs)
    assert listing(tmp_path) == []


def test_save_onto_a_directory(tmp_path):
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        data.save(tmp_path / "d.npy", np.zeros(3))
    assert listing(tmp_path) == ["d.npy"]


# ---------------------------------------------------------------- colour

def test_grace_hopper_in_colour_is_the_jpeg_channels():
    x = data.grace_hopper(downsample=4, color=True)
    with Image.open(sample_path("grace_hopper.jpg")) as im:
        rgb = np.asarray(im.convert("RGB"), np.float64) / 255
    assert x.shape == (3, 150, 128)
    for c in range(3):
        np.testing.assert_allclose(x[c], block_means(rgb[..., c], 4), atol=1e-12)
    # Luma is linear, so it commutes with the block mean.
    np.testing.assert_allclose(np.tensordot(LUMA, x, axes=1), data.grace_hopper(downsample=4),
                               atol=1e-12)


def test_load_colour_keeps_the_channels_and_drops_alpha(tmp_path):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(rgba[..., :3], "RGB").save(tmp_path / "rgb.png")
    expected = np.moveaxis(rgba[..., :3], -1, 0) / 255                # channels first
    for name in ("rgba.png", "rgb.png"):
        back = data.load(tmp_path / name, color=True)
        assert back.shape == (3, 6, 5) and back.dtype == np.float64
        np.testing.assert_allclose(back, expected, atol=1e-6)
    gray = rng.integers(0, 256, size=(4, 7), dtype=np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    np.testing.assert_allclose(data.load(tmp_path / "gray.png", color=True), gray / 255,
                               atol=1e-7)                              # stays (h, w)


def test_save_colour_png_is_read_back_by_pillow_as_rgb(tmp_path):
    x = np.random.default_rng(4).random((3, 5, 6))
    data.save(tmp_path / "c.png", x)
    with Image.open(tmp_path / "c.png") as im:
        assert im.mode == "RGB"
        pixels = np.asarray(im)
    np.testing.assert_array_equal(pixels, np.rint(np.moveaxis(x, 0, -1) * 255))
    np.testing.assert_allclose(data.load(tmp_path / "c.png", color=True), x, atol=0.5 / 255 + 1e-7)
    data.save(tmp_path / "c.jpg", x)
    assert data.load(tmp_path / "c.jpg", color=True).shape == (3, 5, 6)


def test_colour_npy_round_trip_and_errors(tmp_path):
    x = np.random.default_rng(5).normal(size=(3, 4, 2))
    data.save(tmp_path / "c.npy", x)
    np.testing.assert_array_equal(data.load(tmp_path / "c.npy", color=True), x)
    with pytest.raises(ValueError, match="1-D or 2-D"):
        data.load(tmp_path / "c.npy")                                   # colour not asked for
    np.save(tmp_path / "four.npy", np.zeros((4, 3, 3)))
    with pytest.raises(ValueError, match=r"\(3, h, w\)"):
        data.load(tmp_path / "four.npy", color=True)
