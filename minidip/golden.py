"""Golden files: fixed inputs and the library's outputs, for checking a port of minidip.

Each case of :data:`CASES` becomes one ``<name>.npz`` in the output directory, and
``manifest.json`` records how every file was made.  Run::

    python -m minidip.golden --out tests/golden     # write (or rewrite) the files
    python -m minidip.golden --check                # regenerate in memory and compare

Keys of every ``.npz`` (``S`` is the signal shape, ``k`` the number of channels; "dtype" is the
case's float32 or float64, everything spectral is float64):

===================  ==============  =========================================================
key                  shape, dtype    meaning
===================  ==============  =========================================================
raw_taps             filter, f64     what the filter constructor returned (may have even axes)
taps                 odd, f64        ``filters.as_taps(raw_taps)``: centred, odd on every axis (E1)
v                    (k,), dtype     output weights (E2)
init_std             (), f64         omega of the initialization (E6)
weights              (k, *S), dtype  C_0 = ``Generator.init_weights()`` (E6)
target               S, dtype        y, see :func:`target`
output               S, dtype        G(C_0) (E3)
loss                 (), f64         1/2 ||G(C_0) - y||^2 (E4), accumulated in float64
grad                 (k, *S), dtype  dL/dC at C_0 (E5)
kernel_row           S, f64          s(d) of the dual kernel (E8)
eigenvalues          S, f64          lambda_f = DFT(s)_f in ``np.fft`` order (E9)
step_size            (), f64         the default eta = 1 / lambda_max (E10)
pred_iterations      (T,), int64     the iterations tau of the predictions
pred_residuals       (T, *S), f64    r_tau = (I - eta Sigma)^tau r_0 with r_0 = G(C_0) - y (E10)
pred_residual_norms  (T,), f64       ||r_tau||
clean                S, f64          x, the noiseless part of the target (:func:`clean_signal`)
noise_std            (), f64         sigma of the noise in the target
pred_risk            (T,), f64       R(tau) of E12 for x and sigma, at pred_iterations
init_cov_row         S, f64          row of Cov[G(C_0)] over the initialization (E13)
===================  ==============  =========================================================

The files are written byte for byte the same on every run (fixed zip timestamps, sorted JSON).
``target``, ``clean`` and ``v`` use only the seeded generator and correctly rounded arithmetic,
so they are the same bits on every platform; the other arrays go through exp, arccos, FFTs or
BLAS, so they are the same bits on one machine and agree to the last bits of their largest entries
across machines.  ``loss`` and the predicted residuals are float64 but computed from the float32
output of a float32 case, so their last bits are those of float32 (:data:`FROM_OUTPUT_KEYS`).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import _io, filters, spectral
from .generator import Generator

__all__ = ["CASES", "GoldenCase", "PRED_ITERATIONS", "NOISE_STD", "LAST_BITS", "EXACT_KEYS",
           "FROM_OUTPUT_KEYS", "clean_signal", "target", "make", "manifest", "write", "check", "main"]

#: Iterations at which the linearized residual (E10) is stored.
PRED_ITERATIONS = (0, 1, 3, 10, 30, 100)
#: Standard deviation of the white noise added to the target (a power of two: exact scaling).
NOISE_STD = 0.25
#: Distance allowed between a regenerated computed array and the stored one, in units of
#: eps(dtype) * max|stored|: "the last bits of the largest entries" (0 on the generating machine).
LAST_BITS = 8.0

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

#: Keys that regenerate bit for bit on every platform (seeded draws, correctly rounded arithmetic).
EXACT_KEYS = ("v", "target", "clean", "noise_std", "pred_iterations")
#: float64 keys computed from the case's float32 or float64 output G(C_0): they carry its rounding,
#: so their last bits are counted in eps of the case's dtype (BLAS kernels differ between CPUs).
FROM_OUTPUT_KEYS = ("loss", "pred_residuals", "pred_residual_norms")


@dataclass(frozen=True)
class GoldenCase:
    """The generating parameters of one golden file."""

    name: str
    filter: str                   # a constructor of minidip.filters
    filter_args: dict = field(default_factory=dict)
    shape: tuple = ()
    channels: int = 2
    seed: int = 0
    dtype: str = "float64"

    def taps(self) -> np.ndarray:
        return getattr(filters, self.filter)(**self.filter_args)

    def manifest(self) -> dict:
        return {"file": f"{self.name}.npz",
                "filter": {"constructor": f"minidip.filters.{self.filter}",
                           "args": dict(self.filter_args)},
                "shape": list(self.shape), "channels": self.channels, "seed": self.seed,
                "dtype": self.dtype,
                "init_std": "minidip.generator.default_init_std(taps) (unit RMS output, E6)",
                "init": "iid",
                "weights": "Generator(taps, shape, channels, seed=seed, dtype=dtype, init='iid')"
                           ".init_weights(): float64 N(0, init_std^2) from "
                           "numpy.random.default_rng(seed), then rounded to dtype",
                "target": {"recipe": "minidip.golden.target(shape, seed + 1)",
                           "clean": "minidip.golden.clean_signal(shape): product over axes of "
                                    "the triangle wave 1 - 4 |i/n - 1/2| (i = 0..n-1)",
                           "noise": f"{NOISE_STD} * default_rng(seed + 1).standard_normal(shape)",
                           "dtype": "computed in float64, rounded to dtype"},
                "step_size": "1 / max(eigenvalues)",
                "pred_iterations": list(PRED_ITERATIONS),
                "pred_r0": "float64(output) - float64(target)",
                "pred_risk": f"E12 with x = clean, sigma = {NOISE_STD}, the default step size",
                "init_cov_row": "E13 with omega = init_std"}


CASES = (
    GoldenCase("gauss1d_f64", "gaussian", {"std": 1.5}, (64,), 8, seed=0, dtype="float64"),
    GoldenCase("random1d_f32", "random", {"width": 5, "seed": 1}, (100,), 6, seed=1,
               dtype="float32"),
    GoldenCase("random_even1d_f64", "random", {"width": 4, "seed": 7}, (48,), 4, seed=2,
               dtype="float64"),
    GoldenCase("gauss2d_f32", "gaussian", {"std": 1.0, "ndim": 2}, (12, 16), 4, seed=3,
               dtype="float32"),
    GoldenCase("random_even2d_f64", "random", {"width": 4, "seed": 5, "ndim": 2}, (10, 14), 6,
               seed=4, dtype="float64"),
    GoldenCase("bilinear2d_f32", "upsampling", {"kind": "bilinear"}, (24, 20), 4, seed=5,
               dtype="float32"),
)


def clean_signal(shape) -> np.ndarray:
    """The noiseless part x of the target: a product over axes of the triangle wave
    ``1 - 4 |i/n - 1/2|``, float64 in [-1, 1]."""
    signal = np.ones(tuple(shape))
    for axis, n in enumerate(shape):
        wave = 1.0 - 4.0 * np.abs(np.arange(n) / n - 0.5)
        signal = signal * wave.reshape([n if a == axis else 1 for a in range(len(shape))])
    return signal


def target(shape, seed: int) -> np.ndarray:
    """The target y = x + z: :func:`clean_signal` plus white noise of std :data:`NOISE_STD`.

    float64; only correctly rounded arithmetic and the seeded normal generator are used, so the
    array is the same bits on every platform.
    """
    noise = np.random.default_rng(seed).standard_normal(tuple(shape))
    return clean_signal(shape) + NOISE_STD * noise


def make(case: GoldenCase) -> dict:
    """All arrays of one golden file (see the module docstring for the keys)."""
    raw = case.taps()
    gen = Generator(raw, case.shape, case.channels, seed=case.seed, dtype=np.dtype(case.dtype),
                    backend="numpy", init="iid")
    C = gen.init_weights()
    x = clean_signal(case.shape)
    y = gen.check_target(target(case.shape, case.seed + 1))
    loss, grad = gen.loss_and_grad(C, y)
    output = gen.forward(C)
    lam = spectral.eigenvalues(gen.taps, gen.shape)
    step_size = 1.0 / float(lam.max())
    iterations = np.array(PRED_ITERATIONS, dtype=np.int64)
    r0 = output.astype(np.float64) - y.astype(np.float64)
    pred = spectral.predict_residuals(gen.taps, gen.shape, r0, iterations, step_size=step_size)
    norms = np.sqrt(np.sum(np.square(pred).reshape(len(iterations), -1), axis=1))
    return {"raw_taps": raw, "taps": gen.taps, "v": gen.v, "init_std": np.float64(gen.init_std),
            "weights": C, "target": y, "output": output, "loss": np.float64(loss), "grad": grad,
            "kernel_row": spectral.kernel_row(gen.taps, gen.shape), "eigenvalues": lam,
            "step_size": np.float64(step_size), "pred_iterations": iterations,
            "pred_residuals": pred, "pred_residual_norms": norms, "clean": x,
            "noise_std": np.float64(NOISE_STD),
            "pred_risk": spectral.predicted_risk(gen.taps, gen.shape, iterations, step_size,
                                                 x=x, noise_std=NOISE_STD),
            "init_cov_row": spectral.init_covariance_row(gen.taps, gen.shape, gen.init_std)}


def _npz_bytes(arrays: dict) -> bytes:
    """An .npz archive (for np.load) with fixed timestamps: equal arrays give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(arrays[key]), allow_pickle=False)
            archive.writestr(info, member.getvalue())
    return buffer.getvalue()


def _write_atomic(path: Path, data: bytes) -> None:
    _io.atomic_write(path, lambda file: file.write(data))


def manifest() -> dict:
    """The generating parameters of all cases, as written to ``manifest.json``."""
    return {"command": "python -m minidip.golden --out tests/golden",
            "conventions": "docs/math.md", "keys": "minidip/golden.py (module docstring)",
            "cases": [case.manifest() for case in CASES]}


def write(out_dir) -> list[Path]:
    """Write every golden file and ``manifest.json`` into ``out_dir``; return the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for case in CASES:
        paths.append(out / f"{case.name}.npz")
        _write_atomic(paths[-1], _npz_bytes(make(case)))
    paths.append(out / "manifest.json")
    text = json.dumps(manifest(), indent=2, sort_keys=True) + "\n"
    _write_atomic(paths[-1], text.encode())
    return paths


def _distance(new: np.ndarray, old: np.ndarray, unit=None) -> float:
    """max |new - old| in units of eps(unit) * max|old| (0 for identical bits).

    ``unit`` is a dtype whose eps counts the last bits; default the arrays' own dtype.
    """
    if new.shape != old.shape or new.dtype != old.dtype:
        return math.inf
    if np.array_equal(new, old):
        return 0.0
    if old.dtype.kind != "f":
        return math.inf
    scale = float(np.max(np.abs(old))) * float(np.finfo(unit or old.dtype).eps)
    diff = float(np.max(np.abs(new.astype(np.float64) - old.astype(np.float64))))
    return diff / scale if scale > 0 else math.inf


def check(golden_dir) -> list[tuple[str, str, float]]:
    """Regenerate every case and compare with the files in ``golden_dir``.

    Returns ``(file, key, distance)`` for every stored array, the distance in units of
    eps(dtype) * max|stored| (0 means identical bits); for :data:`FROM_OUTPUT_KEYS` the eps is
    that of the case's dtype.  Raises ValueError if the directory lacks a
    file or a file lacks a key, or if the manifest differs from :func:`manifest`.
    """
    golden_dir = Path(golden_dir)
    manifest_path = golden_dir / "manifest.json"
    if not manifest_path.is_file():
        raise ValueError(f"no manifest.json in {golden_dir}; write the files with "
                         f"`python -m minidip.golden --out {golden_dir}`")
    if json.loads(manifest_path.read_text()) != json.loads(json.dumps(manifest())):
        raise ValueError(f"{manifest_path} does not match minidip.golden.CASES; regenerate it")
    rows = []
    for case in CASES:
        path = golden_dir / f"{case.name}.npz"
        if not path.is_file():
            raise ValueError(f"missing golden file {path}; regenerate with --out {golden_dir}")
        fresh = make(case)
        with np.load(path, allow_pickle=False) as stored:
            missing = sorted(set(fresh) - set(stored.files))
            if missing:
                raise ValueError(f"{path} lacks keys {missing}; regenerate it")
            rows += [(path.name, key,
                      _distance(fresh[key], stored[key],
                                case.dtype if key in FROM_OUTPUT_KEYS else None))
                     for key in sorted(fresh)]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidip.golden",
                                     description="Write or check the golden files of minidip.")
    parser.add_argument("--out", default="tests/golden", metavar="DIR",
                        help="directory of the golden files (default %(default)s)")
    parser.add_argument("--check", action="store_true",
                        help="regenerate in memory and compare with the files in DIR instead of "
                        "writing; exit 1 if target, clean or v differ in any bit or another array "
                        f"by more than {LAST_BITS:g} eps * max|stored|")
    args = parser.parse_args(argv)
    try:
        if not args.check:
            for path in write(args.out):
                print(path)
            return 0
        rows = check(args.out)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    bad = [(f, k, d) for f, k, d in rows if d > (0.0 if k in EXACT_KEYS else LAST_BITS)]
    identical = sum(d == 0 for _, _, d in rows)
    for f, k, d in bad:
        print(f"{f}: {k} differs ({d:.3g} eps * max|stored|)")
    print(f"{identical} of {len(rows)} arrays identical bit for bit; {len(bad)} out of tolerance")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
