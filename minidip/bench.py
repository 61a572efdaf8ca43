"""Benchmark of one gradient step (E3-E6): Numba, NumPy and PyTorch, against the roofline.

``minidip bench`` prints, for the shapes of SPEC section 7, the median time per step of each
implementation, the machine's measured sgemm rate and copy bandwidth, the roofline time of a step
and the fraction of it reached, and the cold compile time of the Numba kernels.

Roofline time of one step = max(4 N k taps / sgemm rate, 2 bytes(C) / copy bandwidth): the
forward and backward passes each take 2 N k taps flops, and C is read and written once.
"""
from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from . import filters
from .generator import Generator

__all__ = ["SHAPES", "Case", "run", "main"]


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple
    channels: int
    taps: np.ndarray

    @property
    def flops(self) -> float:
        """4 N k taps: forward and backward, one multiply-add (2 flops) per tap each."""
        return 4.0 * np.prod(self.shape) * self.channels * self.taps.size


SHAPES = {
    "1d-small": Case("1-D n=1024 k=4096 9 taps", (1024,), 4096,
                     filters.gaussian(std=2.0, size=9)),
    "1d-large": Case("1-D n=4096 k=1024 25 taps", (4096,), 1024,
                     filters.gaussian(std=4.0, size=25)),
    "2d-small": Case("2-D 128x128 k=256 5x5 sep.", (128, 128), 256,
                     filters.gaussian(std=1.0, ndim=2, size=5)),
    "2d-large": Case("2-D 256x256 k=64 7x7 sep.", (256, 256), 64,
                     filters.gaussian(std=1.5, ndim=2, size=7)),
}


def machine() -> str:
    """CPU model, cores and Numba threads, e.g. for the README table."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import numba
    return (f"{model}, {os.cpu_count()} logical cores, {numba.get_num_threads()} Numba threads, "
            f"numba {numba.__version__}, numpy {np.__version__}")


def _median_time(fn, repeats: int, min_time: float = 0.0) -> float:
    """Median seconds per call of ``fn`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time:
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def sgemm_rate(size: int = 2048, repeats: int = 7) -> float:
    """Measured float32 matrix-multiply rate of NumPy's BLAS, flop/s (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    a @ b
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * size ** 3 / best


def copy_bandwidth(nbytes: int, repeats: int = 20) -> float:
    """Measured bytes/s (read + write) of copying a buffer of ``nbytes``.

    Best of ``repeats`` copies, each on all Numba threads and on one thread (NumPy).
    """
    from ._numba import parallel_copy
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    parallel_copy(dst, src)
    best = min(min(_timed(lambda: parallel_copy(dst, src)), _timed(lambda: np.copyto(dst, src)))
               for _ in range(repeats))
    return 2.0 * src.nbytes / best


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _problem(case: Case, dtype, backend):
    gen = Generator(case.taps, case.shape, case.channels, dtype=dtype, backend=backend)
    y = np.random.default_rng(1).standard_normal(case.shape)
    from .fitting import stable_step_limit
    return gen, y, 0.5 * stable_step_limit(gen)


def time_stepper(case: Case, backend: str, repeats: int, dtype=np.float32,
                 min_time: float = 0.0) -> float:
    """Median seconds per ``Stepper.step()`` of a backend (at least ``repeats`` steps)."""
    gen, y, eta = _problem(case, dtype, backend)
    stepper = gen.stepper(gen.init_weights(), y, eta)
    stepper.evaluate()
    return _median_time(stepper.step, repeats, min_time)


def compile_time(dtype=np.float32) -> float:
    """Seconds of the first evaluate + step in a fresh process with an empty Numba cache.

    All shapes share the same compiled kernels (one signature per dtype), so one small case
    measures the cold compile.
    """
    code = ("import time, numpy as np; t = time.perf_counter(); import minidip as md; "
            "g = md.Generator(md.filters.gaussian(2.0), (64,), 4, "
            f"dtype=np.{np.dtype(dtype).name}, "
            "backend='numba'); s = g.stepper(g.init_weights(), np.ones(64), 0.1); "
            "s.evaluate(); s.step(); print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# PyTorch formulations of the same model (E3-E6), with autograd for the gradient.

def _torch_steppers(case: Case, dtype):
    """``{name: (step, loss_and_grad)}`` for the PyTorch formulations that apply to ``case``."""
    import torch
    import torch.nn.functional as F

    gen, y, eta = _problem(case, dtype, "numpy")
    tdt = torch.float32 if np.dtype(dtype) == np.float32 else torch.float64
    taps = gen.taps
    ndim = taps.ndim
    v = torch.tensor(gen.v, dtype=tdt).reshape((-1,) + (1,) * ndim)
    yt = torch.tensor(y, dtype=tdt)
    C0 = gen.init_weights()
    halo = [t // 2 for t in taps.shape]

    k = case.channels

    def depthwise(x, w):
        # One group per channel: (1, k, *S) convolved with k copies of the same filter.
        w = torch.tensor(np.ascontiguousarray(w), dtype=tdt).reshape((1, 1) + w.shape)
        w = w.expand((k, 1) + tuple(w.shape[2:])).contiguous()
        return (F.conv1d if ndim == 1 else F.conv2d)(x, w, groups=k)

    def circular(x, halos):
        return F.pad(x, sum(([h, h] for h in reversed(halos)), []), mode="circular")

    flipped = taps[(slice(None, None, -1),) * ndim]     # conv*d correlates; E1 convolves

    def conv_direct(C):
        return depthwise(circular(C.unsqueeze(0), halo), flipped).squeeze(0)

    def conv_separable(C):
        a, b = filters.separable_factors(taps)
        x = depthwise(circular(C.unsqueeze(0), [0, halo[1]]), b[::-1].reshape(1, -1))
        return depthwise(circular(x, [halo[0], 0]), a[::-1].reshape(-1, 1)).squeeze(0)

    spectrum = torch.tensor(np.fft.rfftn(filters.on_grid(taps, case.shape)))
    spectrum = spectrum.to(torch.complex64 if tdt == torch.float32 else torch.complex128)
    dims = tuple(range(1, ndim + 1))

    def fft(C):
        return torch.fft.irfftn(torch.fft.rfftn(C, dim=dims) * spectrum, s=case.shape, dim=dims)

    forms = {"conv": conv_direct, "fft": fft}
    if ndim == 2 and filters.separable_factors(taps) is not None:
        forms["conv-sep"] = conv_separable

    def make(pre):
        C = torch.tensor(C0, dtype=tdt, requires_grad=True)

        def loss_of(W):
            out = (v * torch.relu(pre(W))).sum(0)                # E3
            return 0.5 * ((out - yt) ** 2).sum()                 # E4

        def step():
            C.grad = None
            loss_of(C).backward()                                # E5 by autograd
            with torch.no_grad():
                C.sub_(eta * C.grad)                             # E6

        def loss_and_grad(Cnp):
            W = torch.tensor(Cnp, dtype=tdt, requires_grad=True)
            loss = loss_of(W)
            loss.backward()
            return loss.item(), W.grad.numpy()

        return step, loss_and_grad

    return {name: make(pre) for name, pre in forms.items()}, gen, y


def check_torch(case: Case, steppers, gen, y, rtol: float = 2e-4):
    """Raise if a PyTorch formulation's loss or gradient differs from Numba's beyond rtol.

    The gradient is compared in the l2 norm: in float32 a few pre-activations within rounding
    of 0 take the other side of the ReLU in one of the two, which moves single entries.
    Returns the largest relative errors ``(loss, grad)``.
    """
    C = gen.init_weights()
    ref = Generator(gen.taps, gen.shape, gen.channels, dtype=gen.dtype, backend="numba")
    loss0, grad0 = ref.loss_and_grad(C, y)
    worst = (0.0, 0.0)
    for name, (_, loss_and_grad) in steppers.items():
        loss, grad = loss_and_grad(C)
        err_loss = abs(loss - loss0) / abs(loss0)
        err_grad = float(np.linalg.norm(grad - grad0) / np.linalg.norm(grad0))
        if err_loss > rtol or err_grad > rtol:
            raise RuntimeError(f"PyTorch '{name}' disagrees with numba on {case.name}: "
                               f"loss {err_loss:.2e}, grad {err_grad:.2e} (relative)")
        worst = (max(worst[0], err_loss), max(worst[1], err_grad))
    return worst


def run(names=None, repeats: int = 10, quick: bool = False, dtype=np.float32, out=print):
    """Run the benchmark and print a table; returns one dict of figures per shape."""
    names = list(SHAPES) if not names else list(names)
    for name in names:
        if name not in SHAPES:
            raise ValueError(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")
    try:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    numpy_repeats = 1 if quick else max(1, repeats // 5)
    # Medians over a second of steps ride out bursts of other load on a shared machine.
    min_time = 0.0 if quick else 1.0
    out(f"machine: {machine()}")
    if torch is not None:
        out(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    else:
        out("torch not installed (pip install '.[bench]'): PyTorch columns skipped")
    # The machine's rate is the best one seen in the run: other load only lowers a measurement,
    # and a lower rate would flatter the fraction of the roofline.
    rate = sgemm_rate()
    rows = []
    for name in names:
        case = SHAPES[name]
        out(f"timing {case.name} ...")
        nbytes = int(np.prod(case.shape)) * case.channels * np.dtype(dtype).itemsize
        bandwidth = copy_bandwidth(nbytes)
        rate = max(rate, sgemm_rate())
        row = dict(shape=name, case=case.name, bandwidth_gbs=bandwidth / 1e9, nbytes=nbytes,
                   numba_ms=1e3 * time_stepper(case, "numba", repeats, dtype, min_time))
        row["numpy_ms"] = 1e3 * time_stepper(case, "numpy", numpy_repeats, dtype)
        if torch is not None:
            steppers, gen, y = _torch_steppers(case, dtype)
            row["agreement"] = check_torch(case, steppers, gen, y)
            for form, (step, _) in steppers.items():
                row[f"torch_{form}_ms"] = 1e3 * _median_time(step, max(1, repeats // 2),
                                                             min_time)
            best = min((k for k in row if k.startswith("torch_")), key=row.get)
            row["torch_best"] = best[len("torch_"):-len("_ms")]
            row["torch_best_ms"] = row[best]
        rows.append(row)
    rate = max(rate, sgemm_rate())
    out(f"sgemm (NumPy float32 matmul, best in the run): {rate / 1e9:.1f} GFLOP/s; "
        f"dtype {np.dtype(dtype).name}")
    for row in rows:
        case = SHAPES[row["shape"]]
        roofline = max(case.flops / rate, 2 * row["nbytes"] / (1e9 * row["bandwidth_gbs"]))
        row["roofline_ms"] = 1e3 * roofline
        out(_format_row(row))
    compile_s = compile_time(dtype)
    out(f"first-call compile time (cold cache, one signature): {compile_s:.1f} s")
    out("")
    out(markdown_table(rows, rate, compile_s))
    return rows


def _torch_forms(row):
    return [k for k in row if k.startswith("torch_") and k.endswith("_ms") and k != "torch_best_ms"]


def _format_row(row) -> str:
    share = 100 * row["roofline_ms"] / row["numba_ms"]
    text = (f"{row['case']:<28} numba {row['numba_ms']:8.2f} ms  numpy {row['numpy_ms']:9.1f} ms"
            f"  roofline {row['roofline_ms']:6.2f} ms ({share:4.1f}%)"
            f"  copy {row['bandwidth_gbs']:5.1f} GB/s")
    if _torch_forms(row):
        text += "  torch " + ", ".join(f"{k[6:-3]} {row[k]:.2f}" for k in _torch_forms(row))
        text += f" ms  speed-up vs torch {row['torch_best_ms'] / row['numba_ms']:.1f}x"
        text += " (agrees: loss {:.1e}, grad {:.1e})".format(*row["agreement"])
    return text


def markdown_table(rows, rate, compile_s) -> str:
    """The README table: ms/step and ratios per shape."""
    lines = ["| shape | numba ms/step | NumPy ms/step | PyTorch ms/step | speed-up vs best "
             "PyTorch | roofline ms | % of roofline |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        forms = _torch_forms(row)
        torch_ms = " / ".join(f"{k[6:-3]} {row[k]:.0f}" for k in forms) if forms else "n/a"
        speedup = (f"{row['torch_best_ms'] / row['numba_ms']:.0f}x ({row['torch_best']})"
                   if forms else "n/a")
        lines.append(f"| {row['case']} | {row['numba_ms']:.2f} | {row['numpy_ms']:.0f} "
                     f"| {torch_ms} | {speedup} | {row['roofline_ms']:.2f} "
                     f"| {100 * row['roofline_ms'] / row['numba_ms']:.0f}% |")
    lines.append(f"\nsgemm {rate / 1e9:.0f} GFLOP/s (NumPy float32 matmul); roofline = "
                 f"max(4 N k taps / sgemm, 2 bytes(C) / copy bandwidth); cold compile "
                 f"{compile_s:.1f} s.")
    return "\n".join(lines)


def main(args) -> None:
    """Entry point of ``minidip bench``."""
    run(args.shapes, repeats=args.repeats, quick=args.quick,
        dtype=np.float64 if args.dtype == "float64" else np.float32)
