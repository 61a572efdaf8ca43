import numpy as np
import pytest

import minidip as md
from minidip import denoise as dn
from minidip.experiments import denoising


TINY = denoising.Case("tiny", lambda: (md.data.bandlimited((96,), p=6, seed=1) + 3) / 6, 0.05,
                      "gaussian:2", channels=16, steps=60)


@pytest.fixture(scope="module")
def rows():
    return denoising.compare(cases=(TINY,), seeds=(0, 1))


def test_compare_rows(rows):
    assert len(rows) == 2
    for row in rows:
        assert set(row["psnr"]) == set(denoising.METHODS)
        assert all(np.isfinite(v) for v in row["psnr"].values())
        # The oracle stop is the best iterate of the trajectory every rule chose from.
        for label, stop in row["stops"].items():
            assert row["psnr"][label] <= row["psnr"]["oracle stop"] + 1e-9
            assert 0 <= stop <= TINY.steps


def test_compare_matches_separate_fits(rows):
    # Each rule's choice in the shared fit equals a fit stopped by that rule alone.
    row = rows[0]
    x, y = row["clean"], row["noisy"]
    for label, stop, noise_std in [("discrepancy (sigma known)", "discrepancy", TINY.noise_std),
                                   ("spectral (sigma estimated)", "spectral", None),
                                   ("oracle stop", "oracle", None)]:
        alone = dn.denoise(y, filter=TINY.filter, stop=stop, noise_std=noise_std,
                           channels=TINY.channels, steps=TINY.steps, seed=0, clean=x)
        assert alone.stopped_at == row["stops"][label]
        np.testing.assert_allclose(row["outputs"][label], alone.output, rtol=1e-12)


def test_comparison_table(rows):
    table = denoising.comparison_table(rows)
    lines = table.splitlines()
    assert lines[0] == "| method | tiny |" and len(lines) == 2 + len(denoising.METHODS)
    mean_noisy = np.mean([r["psnr"]["noisy"] for r in rows])
    assert f"| noisy | {mean_noisy:.2f} |" in lines
