from dataclasses import replace

import numpy as np
import pytest

import minidip as md
from minidip import denoise as dn
from minidip.experiments import denoising


TINY = denoising.Case("tiny", lambda: (md.data.bandlimited((96,), p=6, seed=1) + 3) / 6, 0.05,
                      "gaussian:2", channels=16, steps=60, deep=False)
_COLOUR = np.stack([(md.data.bandlimited((16, 16), p=3, seed=s) + 3) / 6 for s in (1, 2, 3)])
TINY_COLOUR = denoising.Case("tiny colour", lambda: _COLOUR, 0.1, "gaussian:1.2:5",
                             channels=8, steps=40, deep=False)


class StandIn:
    """A stand-in for the bm3d module: records its calls, returns y scaled by 0.9."""

    def __init__(self, rgb=True):
        self.calls = []
        if rgb:
            self.bm3d_rgb = lambda z, sigma: self._call("bm3d_rgb", z, sigma)

    def _call(self, name, z, sigma):
        self.calls.append((name, z.shape, sigma))
        return 0.9 * z

    def bm3d(self, z, sigma):
        return self._call("bm3d", z, sigma)


@pytest.fixture(scope="module")
def rows():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(denoising, "_import_bm3d", lambda: None)
        return denoising.compare(cases=(TINY,), seeds=(0, 1))


def test_compare_rows(rows):
    assert len(rows) == 2
    expected = {"noisy"} | set(denoising.TWO_LAYER) | set(denoising.LINEAR)
    for row in rows:
        assert set(row["psnr"]) == expected
        assert all(np.isfinite(v) for v in row["psnr"].values())
        # The oracle stop is the best iterate of the trajectory every rule chose from.
        for label, stop in row["stops"].items():
            assert row["psnr"][label] <= row["psnr"]["two-layer: oracle stop"] + 1e-9
            assert 0 <= stop <= TINY.steps
        # The fit's PSNR curve, from its l2 error, peaks at the oracle stop's PSNR.
        iterations, curve = row["curves"]["two-layer"]
        assert np.max(curve) == pytest.approx(row["psnr"]["two-layer: oracle stop"], abs=1e-9)
        assert iterations[np.argmax(curve)] == row["stops"]["two-layer: oracle stop"]


def test_compare_matches_separate_fits(rows):
    # Each rule's choice in the shared fit equals a fit stopped by that rule alone.
    row = rows[0]
    x, y = row["clean"], row["noisy"]
    for label, stop, noise_std in [("discrepancy (sigma known)", "discrepancy", TINY.noise_std),
                                   ("spectral (sigma estimated)", "spectral", None),
                                   ("oracle stop", "oracle", None)]:
        alone = dn.denoise(y, filter=TINY.filter, stop=stop, noise_std=noise_std,
                           channels=TINY.channels, steps=TINY.steps, seed=0, clean=x)
        assert alone.stopped_at == row["stops"][f"two-layer: {label}"]
        np.testing.assert_allclose(row["outputs"][f"two-layer: {label}"], alone.output,
                                   rtol=1e-12)


def test_comparison_table_without_bm3d(rows):
    table = denoising.comparison_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| method | tiny (seeds 0-1) |"
    noisy = [r["psnr"]["noisy"] for r in rows]
    assert f"| noisy | {np.mean(noisy):.2f} ± {np.std(noisy, ddof=1):.2f} |" in lines
    assert denoising.BM3D_ABSENT in lines
    assert not any(line.startswith(f"| {denoising.BM3D}") for line in lines)
    # Methods not run on this case (the deep decoder) have no row.
    assert not any(line.startswith("| deep decoder") for line in lines)


def test_hopper_crop_is_a_block_mean_of_the_centre():
    full = md.data.grace_hopper()
    assert full.shape == (600, 512)
    crop = full[44:556]
    reference = (crop[0::2, 0::2] + crop[1::2, 0::2] + crop[0::2, 1::2] + crop[1::2, 1::2]) / 4
    np.testing.assert_allclose(denoising.hopper_crop(), reference, rtol=0, atol=1e-12)
    colour = denoising.hopper_crop(color=True)
    assert colour.shape == (3, 256, 256)
    # Luma is linear in R, G, B: the grey crop is the luma of the colour crop.
    np.testing.assert_allclose(np.tensordot(md.data.LUMA, colour, axes=1), reference,
                               rtol=0, atol=1e-12)
    assert 0 <= colour.min() and colour.max() <= 1


@pytest.mark.parametrize("rgb", [True, False])
def test_colour_case(monkeypatch, rgb):
    stand_in = StandIn(rgb=rgb)
    monkeypatch.setattr(denoising, "_import_bm3d", lambda: stand_in)
    (row,) = denoising.compare(cases=(TINY_COLOUR,), seeds=(3,))
    x, y = row["clean"], row["noisy"]
    assert all(out.shape == (3, 16, 16) for out in row["outputs"].values())
    # Colour PSNR over all three channels, data range 1.
    for method, out in row["outputs"].items():
        assert row["psnr"][method] == pytest.approx(
            10 * np.log10(1 / np.mean((out - x) ** 2)), rel=1e-12)
    # BM3D gets the true sigma: the whole image as (h, w, 3) through bm3d_rgb, else per channel.
    if rgb:
        assert stand_in.calls == [("bm3d_rgb", (16, 16, 3), 0.1)]
        assert row["info"]["bm3d"] == "bm3d_rgb"
    else:
        assert stand_in.calls == [("bm3d", (16, 16), 0.1)] * 3
        assert row["info"]["bm3d"] == "per channel"
    np.testing.assert_allclose(row["outputs"][denoising.BM3D], 0.9 * y, rtol=1e-15)
    # The two-layer generator runs channel by channel: channel 1 is a fit of its own.
    alone = dn.denoise(y[1], filter=TINY_COLOUR.filter, stop="discrepancy",
                       noise_std=TINY_COLOUR.noise_std, channels=TINY_COLOUR.channels,
                       steps=TINY_COLOUR.steps, seed=3, clean=x[1])
    np.testing.assert_allclose(row["outputs"]["two-layer: discrepancy (sigma known)"][1],
                               alone.output, rtol=1e-12)
    # The oracle Gaussian blur chooses its width per channel, never blurring across channels.
    blurred, _ = md.baselines.gaussian_blur_baseline(y[2], x[2])
    np.testing.assert_allclose(row["outputs"]["Gaussian blur (oracle std)"][2], blurred)
    table = denoising.comparison_table([row])
    assert denoising.BM3D_ABSENT not in table
    assert ("bm3d_rgb" in table) == rgb and ("per channel" in table) != rgb


def test_bm3d_for_real_when_installed():
    bm3d = pytest.importorskip("bm3d")
    case = denoising.Case("tiny image", lambda: _COLOUR[0], 0.1, "gaussian:1.2:5", channels=8,
                          steps=5, deep=False)
    (row,) = denoising.compare(cases=(case,), seeds=(0,), parts=("baselines",))
    np.testing.assert_array_equal(row["outputs"][denoising.BM3D],
                                  bm3d.bm3d(row["noisy"], 0.1))
    assert row["psnr"][denoising.BM3D] > row["psnr"]["noisy"]


def test_cache_resumes_and_notices_changed_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(denoising, "_import_bm3d", lambda: None)
    first = denoising.compare(cases=(TINY,), seeds=(0,), cache=tmp_path)
    assert len(list(tmp_path.glob("*.npz"))) == 2                # baselines and two-layer

    def refuse(*args):
        raise AssertionError("recomputed a cached part")

    monkeypatch.setitem(denoising._PARTS, "two-layer", refuse)
    monkeypatch.setitem(denoising._PARTS, "baselines", refuse)
    (again,) = denoising.compare(cases=(TINY,), seeds=(0,), cache=tmp_path)
    assert again["psnr"] == first[0]["psnr"] and again["stops"] == first[0]["stops"]
    for method, out in first[0]["outputs"].items():
        np.testing.assert_array_equal(again["outputs"][method], out)
    np.testing.assert_array_equal(again["curves"]["two-layer"][1],
                                  first[0]["curves"]["two-layer"][1])
    # Other settings (here the steps) make the cached part stale: it is computed again.
    with pytest.raises(AssertionError, match="recomputed"):
        denoising.compare(cases=(replace(TINY, steps=61),), seeds=(0,), cache=tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        denoising.compare(cases=(TINY,), cache=tmp_path / "missing")


def test_panel_records_when_each_rule_would_end():
    x = TINY.load()
    y = x + 0.05 * np.random.default_rng(0).standard_normal(x.shape)
    panel = denoising.Panel({"d": (md.stopping.Discrepancy(), True),
                             "o": (md.stopping.Oracle(), False)})
    dn.denoise(y, filter=TINY.filter, stop=panel, noise_std=0.05, channels=16, steps=60,
               clean=x)
    alone = dn.denoise(y, filter=TINY.filter, stop="discrepancy", noise_std=0.05, channels=16,
                       steps=60, clean=x)
    assert panel.ended["d"] == alone.history["iteration"][-1]
    assert "o" not in panel.ended                         # the oracle never ends a fit


@pytest.fixture
def small_deep(monkeypatch):
    # The deep decoder's defaults, made small: the experiment must read them at run time.
    monkeypatch.setattr(dn, "DEEP_STEPS", 25)
    monkeypatch.setattr(dn, "DEEP_CHANNELS", 8)
    monkeypatch.setattr(denoising, "_import_bm3d", lambda: None)


@pytest.mark.parametrize("colour", [False, True])
def test_deep_rows_match_separate_fits(small_deep, colour):
    clean = _COLOUR if colour else _COLOUR[0]
    case = denoising.Case("deep", lambda: clean, 0.1, "gaussian:1.2:5", channels=8, steps=5)
    (row,) = denoising.compare(cases=(case,), seeds=(2,), parts=("deep",))
    x, y = row["clean"], row["noisy"]
    oracle = dn.denoise(y, model="deep", stop="oracle", seed=2, clean=x)
    default = dn.denoise(y, model="deep", seed=2)                  # the default rule, no clean
    assert oracle.output.shape == default.output.shape == x.shape
    np.testing.assert_array_equal(row["outputs"][denoising.DEEP_ORACLE], oracle.output)
    np.testing.assert_array_equal(row["outputs"][denoising.DEEP_DEFAULT], default.output)
    assert row["stops"][denoising.DEEP_ORACLE] == oracle.stopped_at
    assert row["stops"][denoising.DEEP_DEFAULT] == default.stopped_at
    iterations, curve = row["curves"]["deep"]
    assert np.max(curve) == pytest.approx(row["psnr"][denoising.DEEP_ORACLE], abs=1e-9)
    assert f"discrepancy, kappa = {dn.DEEP_KAPPA:g}" in denoising.comparison_table([row])


def test_cached_deep_rows_follow_the_defaults(small_deep, tmp_path, monkeypatch):
    case = denoising.Case("deep", lambda: _COLOUR[0], 0.1, "gaussian:1.2:5", channels=8, steps=5)
    denoising.compare(cases=(case,), seeds=(0,), parts=("deep",), cache=tmp_path)
    monkeypatch.setattr(dn, "DEEP_STOP", None)
    monkeypatch.setattr(dn, "DEEP_STEPS", 26)
    (row,) = denoising.compare(cases=(case,), seeds=(0,), parts=("deep",), cache=tmp_path)
    assert row["stops"][denoising.DEEP_DEFAULT] == 26
    assert "none (the last of 26 Adam steps)" in denoising.comparison_table([row])


def test_comparison_table_marks_cells_with_fewer_seeds(rows):
    blur = denoising.LINEAR[0]
    partial = [rows[0], dict(rows[1], psnr={k: v for k, v in rows[1]["psnr"].items()
                                            if k != blur})]
    lines = denoising.comparison_table(partial).splitlines()
    assert f"| {blur} | {rows[0]['psnr'][blur]:.2f} [seed 0] |" in lines
