import numpy as np
import pytest

import minidip as md
from minidip import plots


def test_spectrum_summary_on_known_values():
    info = plots.spectrum_summary(np.array([[1.0, 4.0], [2.0, 3.0]]), fraction=0.9)
    # Sorted 4, 3, 2, 1; trace 10; 4 + 3 + 2 = 9 reaches 90 %.
    assert info == {"lambda_max": 4.0, "lambda_min": 1.0, "condition": 4.0,
                    "modes_for_fraction": 3, "fraction": 0.9, "size": 4}
    assert plots.spectrum_summary(np.array([1.0, 0.0]))["condition"] == np.inf


def test_radial_average():
    radius, mean = plots.radial_average(np.full((16, 16), 2.5))
    np.testing.assert_allclose(mean, 2.5)
    assert np.all(np.diff(radius) > 0)
    # 1-D: +f and -f fall in the same ring.
    values = np.abs(np.fft.fftfreq(32))
    radius, mean = plots.radial_average(values, bins=16)
    np.testing.assert_allclose(mean, radius, atol=0.5 / 16)


@pytest.mark.parametrize("shape", [(64,), (16, 20)])
def test_plot_spectrum_writes_png(shape, tmp_path):
    lam = md.spectral.eigenvalues(md.filters.gaussian(1.0, ndim=len(shape), size=5), shape)
    path = plots.plot_spectrum(lam, tmp_path / "s.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["s.png"]       # no temporary file left


def test_plot_spectrum_errors(tmp_path):
    lam = np.ones(8)
    with pytest.raises(ValueError, match=".png"):
        plots.plot_spectrum(lam, tmp_path / "s.pdf")
    with pytest.raises(ValueError, match="does not exist"):
        plots.plot_spectrum(lam, tmp_path / "none" / "s.png")
