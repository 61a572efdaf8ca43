"""The golden files (tests/golden) against the library and against independent implementations.

Three checks per file: the library reproduces it; an independent implementation (dense matrices
from the index definitions of E1, E8, E10, E12, E13 and the reverse-mode autograd of
tests/reference.py) reproduces it; PyTorch (conv with circular padding and flipped taps, autograd)
reproduces it when installed.  Tolerances: 1e-9 relative for float64 quantities, 2e-4 for the
float32 ones, relative to the largest entry of the golden array.
"""
import importlib
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from minidip import generator, golden, spectral
from minidip.fitting import stable_step_limit
from reference import dense_conv_matrix, generator_autograd

GOLDEN = Path(__file__).parent / "golden"
PORTING = Path(__file__).parents[1] / "docs" / "porting.md"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())
CASES = {case["file"]: case for case in MANIFEST["cases"]}
FILES = sorted(CASES)
TOL = {"float64": 1e-9, "float32": 2e-4}
#: Arrays in the case's dtype; everything else is float64 whatever the case.
DTYPE_KEYS = ("weights", "target", "v", "output", "grad")


def _load(name):
    with np.load(GOLDEN / name, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def _rel(actual, expected) -> float:
    """max |actual - expected| / max |expected|."""
    expected = np.asarray(expected, dtype=np.float64)
    diff = np.max(np.abs(np.asarray(actual, dtype=np.float64) - expected))
    return float(diff / max(np.max(np.abs(expected)), np.finfo(float).tiny))


def _tol(name, key):
    return TOL[CASES[name]["dtype"]] if key in DTYPE_KEYS or key == "loss" else TOL["float64"]


# --------------------------------------------------------------------------------------------
# The files themselves

def test_manifest_matches_cases_and_files_exist():
    assert MANIFEST == json.loads(json.dumps(golden.manifest()))
    assert len(FILES) >= 4
    dims = {len(CASES[f]["shape"]) for f in FILES}
    dtypes = {CASES[f]["dtype"] for f in FILES}
    assert dims == {1, 2} and dtypes == {"float32", "float64"}
    assert sum(math.prod(CASES[f]["shape"]) <= 400 for f in FILES) >= 2
    for name in FILES:
        assert (GOLDEN / name).is_file()


@pytest.mark.parametrize("name", FILES)
def test_file_layout(name):
    g, case = _load(name), CASES[name]
    shape, k, dtype = tuple(case["shape"]), case["channels"], np.dtype(case["dtype"])
    T = len(case["pred_iterations"])
    expected = {"weights": (k, *shape), "grad": (k, *shape), "v": (k,), "target": shape,
                "output": shape, "clean": shape, "kernel_row": shape, "eigenvalues": shape,
                "init_cov_row": shape, "loss": (), "step_size": (), "init_std": (),
                "noise_std": (), "pred_iterations": (T,), "pred_residual_norms": (T,),
                "pred_risk": (T,), "pred_residuals": (T, *shape)}
    for key, key_shape in expected.items():
        assert g[key].shape == key_shape, key
        assert g[key].dtype == (dtype if key in DTYPE_KEYS else
                                np.int64 if key == "pred_iterations" else np.float64), key
    assert g["taps"].ndim == len(shape) and all(t % 2 == 1 for t in g["taps"].shape)


def test_filters_cover_symmetric_asymmetric_and_even():
    taps = [_load(f)["taps"] for f in FILES]
    symmetric = [np.array_equal(t, np.flip(t)) for t in taps]
    assert any(symmetric) and not all(symmetric)
    assert any(_load(f)["raw_taps"].shape != _load(f)["taps"].shape for f in FILES)


@pytest.mark.parametrize("name", FILES)
def test_recipe_of_the_inputs(name):
    # The manifest's recipe, written out: constructor, float64 draw rounded to dtype, target.
    g, case = _load(name), CASES[name]
    shape, dtype = tuple(case["shape"]), np.dtype(case["dtype"])
    constructor = getattr(md.filters, case["filter"]["constructor"].rsplit(".", 1)[1])
    assert _rel(constructor(**case["filter"]["args"]), g["raw_taps"]) < 1e-15
    draw = np.random.default_rng(case["seed"]).standard_normal((case["channels"], *shape))
    np.testing.assert_array_equal(g["weights"], (float(g["init_std"]) * draw).astype(dtype))
    noise = np.random.default_rng(case["seed"] + 1).standard_normal(shape)
    np.testing.assert_array_equal(g["target"], (g["clean"] + g["noise_std"] * noise).astype(dtype))


# --------------------------------------------------------------------------------------------
# The library against the files

def _backends():
    return ["numpy"] + (["numba"] if generator._numba_available() else [])


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("name", FILES)
def test_library_reproduces_golden(name, backend):
    g, case = _load(name), CASES[name]
    shape = tuple(case["shape"])
    gen = md.Generator(g["raw_taps"], shape, case["channels"], seed=case["seed"],
                       dtype=np.dtype(case["dtype"]), backend=backend, init=case["init"])
    np.testing.assert_array_equal(gen.taps, g["taps"])
    np.testing.assert_array_equal(gen.v, g["v"])
    assert gen.init_std == pytest.approx(float(g["init_std"]), rel=1e-14)
    assert _rel(gen.init_weights(), g["weights"]) <= _tol(name, "weights")
    loss, grad = gen.loss_and_grad(g["weights"], g["target"])
    assert _rel(gen.forward(g["weights"]), g["output"]) <= _tol(name, "output")
    assert _rel(loss, g["loss"]) <= _tol(name, "loss")
    assert _rel(grad, g["grad"]) <= _tol(name, "grad")


@pytest.mark.parametrize("name", FILES)
def test_library_spectral_reproduces_golden(name):
    g, case = _load(name), CASES[name]
    shape, taps, eta = tuple(case["shape"]), g["taps"], float(g["step_size"])
    iterations = g["pred_iterations"]
    r0 = g["output"].astype(np.float64) - g["target"].astype(np.float64)
    got = {
        "kernel_row": spectral.kernel_row(taps, shape),
        "eigenvalues": spectral.eigenvalues(taps, shape),
        "step_size": spectral.default_step_size(taps, shape),
        "pred_residuals": spectral.predict_residuals(taps, shape, r0, iterations),
        "pred_risk": spectral.predicted_risk(taps, shape, iterations, eta, x=g["clean"],
                                             sigma=float(g["noise_std"])),
        "init_cov_row": spectral.init_covariance_row(taps, shape, float(g["init_std"])),
    }
    for key, value in got.items():
        assert _rel(value, g[key]) <= 1e-9, key
    norms = np.linalg.norm(got["pred_residuals"].reshape(len(iterations), -1), axis=1)
    assert _rel(norms, g["pred_residual_norms"]) <= 1e-9
    assert stable_step_limit(md.Generator(taps, shape, 2)) == pytest.approx(2 * eta, rel=1e-12)


# --------------------------------------------------------------------------------------------
# An independent implementation against the files

def _dft_matrix(shape) -> np.ndarray:
    """F with (F x.ravel()) = fftn(x).ravel(): F[f, i] = exp(-2 pi i f.i / n), row-major."""
    F = np.ones((1, 1))
    for n in shape:
        j = np.arange(n)
        F = np.kron(F, np.exp(-2j * np.pi * np.outer(j, j) / n))
    return F


def _circulant(row) -> np.ndarray:
    """M[i, l] = row[(i - l) mod shape], grid points flattened row-major."""
    shape = row.shape
    coords = np.indices(shape).reshape(len(shape), -1)
    lag = (coords[:, :, None] - coords[:, None, :]) % np.array(shape)[:, None, None]
    return row[tuple(lag)]


def independent(g, case) -> dict:
    """Every golden quantity from dense matrices built from the definitions, in float64.

    E1: U from the index definition (reference.dense_conv_matrix); E2-E5: the reverse-mode
    autograd of reference.generator_autograd; E8: a(d) = (U U^T)[d, 0], the row
    s = 1/2 a (1 - arccos(a / a(0)) / pi) and the circulant Sigma it defines; E9: the diagonal of
    F Sigma F^H / N with an explicit DFT matrix F; E10, E12: dense powers of P = I - eta Sigma;
    E13: the covariance formula on the same row.
    """
    shape, k = tuple(case["shape"]), case["channels"]
    N = math.prod(shape)
    U = dense_conv_matrix(g["taps"], shape)
    output, loss, grad = generator_autograd(g["taps"], g["weights"], g["target"])
    # Normalize by the same a(0) at every lag: arccos has infinite slope at 1, so a ratio of
    # two roundings of a(0) would put an error of sqrt(eps) into s(0).
    a = (U @ U.T)[:, 0].reshape(shape)
    a0 = a.flat[0]
    theta = np.arccos(np.clip(a / a0, -1.0, 1.0))
    Sigma = _circulant(0.5 * a * (1.0 - theta / np.pi))
    F = _dft_matrix(shape)
    diagonalized = F @ Sigma @ F.conj().T / N
    spectrum = np.linalg.eigvalsh(Sigma)
    eta = 1.0 / spectrum.max()
    P = np.eye(N) - eta * Sigma
    r0 = (g["output"].astype(np.float64) - g["target"].astype(np.float64)).ravel()
    x = g["clean"].ravel()
    residuals, risks = [], []
    for tau in g["pred_iterations"]:
        P_tau = np.linalg.matrix_power(P, int(tau))
        residuals.append((P_tau @ r0).reshape(shape))
        risks.append(np.sum((P_tau @ x) ** 2)
                     + float(g["noise_std"]) ** 2 * np.sum((np.eye(N) - P_tau) ** 2))
    omega = float(g["init_std"])
    cov = omega**2 * a0 / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * a / a0 - 1.0)
    residuals = np.array(residuals)
    return {
        "v": np.where(np.arange(k) < k // 2, -1.0, 1.0) / math.sqrt(k),
        "init_std": 1.0 / math.sqrt(a0 * (0.5 - 0.5 / math.pi)),
        "output": output, "loss": loss, "grad": grad,
        "kernel_row": Sigma[:, 0].reshape(shape),                # Sigma[i, 0] = s(i)
        "eigenvalues": np.diag(diagonalized).real.reshape(shape),
        "offdiagonal": diagonalized - np.diag(np.diag(diagonalized)),
        "dense_eigenvalues": spectrum,
        "step_size": eta,
        "pred_residuals": residuals,
        "pred_residual_norms": np.linalg.norm(residuals.reshape(len(residuals), -1), axis=1),
        "pred_risk": np.array(risks),
        "init_cov_row": cov,
    }


@pytest.mark.parametrize("name", FILES)
def test_independent_implementation_reproduces_golden(name):
    g, case = _load(name), CASES[name]
    ref = independent(g, case)
    np.testing.assert_array_equal(dense_conv_matrix(g["raw_taps"], tuple(case["shape"])),
                                  dense_conv_matrix(g["taps"], tuple(case["shape"])))
    for key in ("v", "init_std", "output", "loss", "grad", "kernel_row", "eigenvalues",
                "step_size", "pred_residuals", "pred_residual_norms", "pred_risk",
                "init_cov_row"):
        assert _rel(g[key], ref[key]) <= _tol(name, key), key
    # E9: the Fourier modes diagonalize Sigma, and its spectrum is the golden one.
    assert np.max(np.abs(ref["offdiagonal"])) <= 1e-9 * np.max(np.abs(g["eigenvalues"]))
    assert _rel(np.sort(g["eigenvalues"].ravel()), ref["dense_eigenvalues"]) <= 1e-9


@pytest.mark.parametrize("name", FILES)
def test_golden_files_catch_wrong_conventions(name):
    # Mistakes of the math.md checklist move the golden arrays far beyond the tolerance.
    g = _load(name)
    C, y, taps = g["weights"].astype(np.float64), g["target"].astype(np.float64), g["taps"]
    v = g["v"].astype(np.float64)
    k = v.size
    alternating = np.where(np.arange(k) % 2, 1.0, -1.0) / math.sqrt(k)
    wrong = {"alternating signs of v": ("output", generator.forward(C, taps, alternating)),
             "loss as a mean": ("loss", np.mean((generator.forward(C, taps, v) - y) ** 2))}
    if not np.array_equal(taps, np.flip(taps)):
        wrong["correlation instead of convolution"] = ("output",
                                                       generator.forward(C, np.flip(taps), v))
    for mistake, (key, value) in wrong.items():
        assert _rel(value, g[key]) > 1e-3, mistake


# --------------------------------------------------------------------------------------------
# PyTorch (a port, as docs/porting.md describes it) against the files

def torch_loss_and_grad(torch, g):
    """Forward, loss, grad with PyTorch autograd in the dtype of the golden weights."""
    dtype = torch.float64 if g["weights"].dtype == np.float64 else torch.float32
    taps = torch.tensor(np.flip(g["taps"]).copy(), dtype=dtype)   # E1 convolves; conv correlates
    C = torch.tensor(g["weights"], requires_grad=True)
    pad = [p for t in reversed(taps.shape) for p in (t // 2, t // 2)]
    padded = torch.nn.functional.pad(C.unsqueeze(1), pad, mode="circular")
    conv = torch.nn.functional.conv1d if taps.ndim == 1 else torch.nn.functional.conv2d
    h = conv(padded, taps[None, None]).squeeze(1)                  # U c_j, (k, *S)
    v = torch.tensor(g["v"]).reshape((-1,) + (1,) * taps.ndim)
    output = torch.sum(v * torch.relu(h), dim=0)
    loss = 0.5 * torch.sum((output - torch.tensor(g["target"])) ** 2)
    loss.backward()
    return output.detach().numpy(), loss.item(), C.grad.numpy()


@pytest.mark.parametrize("name", FILES)
def test_torch_reproduces_golden(name):
    torch = pytest.importorskip("torch")
    g = _load(name)
    output, loss, grad = torch_loss_and_grad(torch, g)
    assert _rel(output, g["output"]) <= _tol(name, "output")
    assert _rel(loss, g["loss"]) <= _tol(name, "loss")
    assert _rel(grad, g["grad"]) <= _tol(name, "grad")


# --------------------------------------------------------------------------------------------
# Regeneration

def test_regeneration_reproduces_the_stored_arrays():
    rows = golden.check(GOLDEN)
    assert len(rows) == sum(len(_load(f)) for f in FILES)
    for file, key, distance in rows:
        limit = 0.0 if key in golden.EXACT_KEYS else golden.LAST_BITS
        assert distance <= limit, (f"{file}: {key} is {distance:.3g} eps * max|stored| from the "
                                   "library's output; if the change is intended, regenerate with "
                                   "`python -m minidip.golden --out tests/golden`")


def test_writing_is_deterministic(tmp_path):
    first = golden.write(tmp_path / "a")
    second = golden.write(tmp_path / "b")
    for a, b in zip(first, second):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_check_command_detects_a_changed_file(tmp_path, capsys):
    copy = tmp_path / "golden"
    shutil.copytree(GOLDEN, copy)
    assert golden.main(["--check", "--out", str(copy)]) == 0
    data = _load(FILES[0])
    data["grad"] = data["grad"] * (1 + 1e-3)
    np.savez(copy / FILES[0], **data)
    assert golden.main(["--check", "--out", str(copy)]) == 1
    assert "grad differs" in capsys.readouterr().out
    assert golden.main(["--check", "--out", str(tmp_path / "missing")]) == 2


# --------------------------------------------------------------------------------------------
# The worked examples of docs/porting.md run as written

EXAMPLES = re.findall(r"```python\n(.*?)```", PORTING.read_text(), re.S)


def test_porting_has_a_torch_and_a_numpy_example():
    assert len(EXAMPLES) >= 2 and any("import torch" in code for code in EXAMPLES)


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_porting_example_runs(index, monkeypatch, capsys):
    code = EXAMPLES[index]
    if "import torch" in code:
        pytest.importorskip("torch")
    monkeypatch.chdir(PORTING.parents[1])
    exec(compile(code, f"docs/porting.md, example {index + 1}", "exec"), {})
    assert "output" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# docs/math.md names the implementing functions; their docstrings cite the equation back

MATH = PORTING.parent / "math.md"


def _summary_rows():
    rows = []
    for line in MATH.read_text().splitlines():
        match = re.match(r"\| (E\d+) \|[^|]*\|([^|]*)\|", line)
        if match:
            rows.append((match.group(1), re.findall(r"`([\w.]+)`", match.group(2))))
    return rows


def _resolve(name):
    if name.startswith("Generator."):
        return getattr(md.Generator, name.split(".", 1)[1])
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):       # the longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def test_math_md_names_every_equation_with_a_function():
    rows = dict(_summary_rows())
    numbers = [int(e[1:]) for e in rows]
    assert numbers == sorted(set(numbers))
    assert set(range(1, 24)) <= set(numbers)
    assert all(rows.values())


@pytest.mark.parametrize("equation, names", _summary_rows())
def test_implementing_functions_cite_their_equation(equation, names):
    for name in names:
        doc = _resolve(name).__doc__ or ""
        assert re.search(rf"\b{equation}\b", doc), f"{name} does not cite {equation}"
