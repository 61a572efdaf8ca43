"""Benchmark of one gradient step (E3-E6): Numba, NumPy and PyTorch, against the roofline.

``minidip bench`` prints, for the shapes of SPEC section 7, the median time per step of each
implementation, the machine's measured sgemm rate and copy bandwidth, the roofline time of a step
and the fraction of it reached, and the cold compile time of the Numba kernels.  Numba is timed
in two modes: in the command's own process, which compiles for the full host CPU
(:mod:`minidip._cpu`), and in a child process with the library's default target, as a program
importing minidip gets it (not with ``--quick``).  Last, a child process times one Adam step of
the deep decoder against its PyTorch twin (:mod:`minidip.deep._bench`; with ``--quick`` only the
128x128 shape).

Roofline time of one step = max(4 N k taps / sgemm rate, 2 bytes(C) / copy bandwidth): the
forward and backward passes each take 2 N k taps flops, and C is read and written once.
The speed-up over PyTorch is the median over pairs of the ratio of one PyTorch step to a Numba
step timed right before it: other load on a shared machine then slows both sides of a pair.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from . import _cpu, filters
from .generator import Generator

__all__ = ["SHAPES", "Case", "measure", "run", "main"]


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


def check_torch(case: Case, rtol: float = 1e-9):
    """Raise if a PyTorch formulation's loss or gradient differs from the NumPy reference.

    Both in float64 (the same sums in other orders: relative differences near 1e-15; a
    pre-activation that rounding moves across 0 would need |U c| below that, which a Gaussian
    draw misses).  Returns the largest relative errors ``(loss, grad)``.
    """
    steppers, gen, y = _torch_steppers(case, np.float64)
    C = gen.init_weights()
    loss0, grad0 = gen.loss_and_grad(C, y)
    worst = (0.0, 0.0)
    for name, (_, loss_and_grad) in steppers.items():
        loss, grad = loss_and_grad(C)
        err_loss = abs(loss - loss0) / abs(loss0)
        err_grad = float(np.linalg.norm(grad - grad0) / np.linalg.norm(grad0))
        if err_loss > rtol or err_grad > rtol:
            raise RuntimeError(f"PyTorch '{name}' disagrees with the NumPy reference on "
                               f"{case.name}: loss {err_loss:.2e}, grad {err_grad:.2e} (relative)")
        worst = (max(worst[0], err_loss), max(worst[1], err_grad))
    return worst


def _checked(names):
    """The shape names to run (all by default); ValueError for an unknown one."""
    names = list(SHAPES) if not names else list(names)
    for name in names:
        if name not in SHAPES:
            raise ValueError(f"unknown shape {name!r}; choose from {', '.join(SHAPES)}")
    return names


#: Numba steps timed per pair (after one untimed step that brings C back into cache).
PAIR_STEPS = 3


def paired_ratios(numba_step, other_step, min_pairs: int, min_time: float):
    """Median over pairs of (seconds of one ``other_step``) / (seconds per ``numba_step``).

    A pair is one untimed and PAIR_STEPS timed Numba steps, then one timed other step.
    Returns ``(median ratio, median seconds of other_step)``.
    """
    ratios, others = [], []
    start = time.perf_counter()
    while len(ratios) < min_pairs or time.perf_counter() - start < min_time:
        numba_step()
        t_numba = sum(_timed(numba_step) for _ in range(PAIR_STEPS)) / PAIR_STEPS
        t_other = _timed(other_step)
        ratios.append(t_other / t_numba)
        others.append(t_other)
    return statistics.median(ratios), statistics.median(others)


def measure(names=None, repeats: int = 10, quick: bool = False, dtype=np.float32,
            reference: bool = True, out=print):
    """The figures of one process: per shape the Numba time, the NumPy reference time (when
    ``reference``), PyTorch's times and paired speed-ups, the copy bandwidth; and the best
    sgemm rate.  Returns ``(rows, sgemm flop/s)``."""
    names = _checked(names)
    try:
        import torch
        torch.set_num_threads(os.cpu_count() or 1)
    except ImportError:
        torch = None
    numpy_repeats = 1 if quick else max(1, repeats // 5)
    # Medians over a second of steps ride out bursts of other load on a shared machine.
    min_time = 0.0 if quick else 1.0
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
        gen, y, eta = _problem(case, dtype, "numba")
        stepper = gen.stepper(gen.init_weights(), y, eta)
        stepper.evaluate()
        row = dict(shape=name, case=case.name, bandwidth_gbs=bandwidth / 1e9, nbytes=nbytes,
                   numba_ms=1e3 * _median_time(stepper.step, repeats, min_time))
        if reference:
            row["numpy_ms"] = 1e3 * time_stepper(case, "numpy", numpy_repeats, dtype)
        if torch is not None:
            steppers, _, _ = _torch_steppers(case, dtype)
            row["agreement"] = check_torch(case)
            for form, (step, _) in steppers.items():
                ratio, seconds = paired_ratios(stepper.step, step, max(1, repeats // 2),
                                               min_time)
                row[f"torch_{form}_ms"], row[f"speedup_{form}"] = 1e3 * seconds, ratio
            best = min(steppers, key=lambda form: row[f"torch_{form}_ms"])
            row.update(torch_best=best, torch_best_ms=row[f"torch_{best}_ms"],
                       speedup=row[f"speedup_{best}"])
        rows.append(row)
    return rows, max(rate, sgemm_rate())


def _library_mode(names, repeats, quick, dtype):
    """:func:`measure` (without the NumPy reference) in a child process with the environment
    the command had before it selected the host CPU: the library's default target."""
    code = ("import json, sys, numpy as np; from minidip import bench; "
            "rows, rate = bench.measure(json.loads(sys.argv[1]), int(sys.argv[2]), "
            "sys.argv[3] == '1', np.dtype(sys.argv[4]), reference=False, "
            "out=lambda text: None); print(json.dumps([rows, rate]))")
    env = _cpu.library_environ()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code, json.dumps(names), str(repeats),
                           str(int(quick)), np.dtype(dtype).name], env=env,
                          capture_output=True, text=True, check=True)
    rows, rate = json.loads(done.stdout.strip().splitlines()[-1])
    return rows, rate


def run(names=None, repeats: int = 10, quick: bool = False, dtype=np.float32, out=print):
    """Run the benchmark and print the tables; returns one dict of figures per shape and mode,
    then one per deep decoder shape (:func:`deep_rows`)."""
    names = _checked(names)
    out(f"machine: {machine()}")
    try:
        import torch
        out(f"torch {torch.__version__}, {os.cpu_count()} threads")
    except ImportError:
        out("torch not installed (pip install '.[bench]'): PyTorch columns skipped")
    here = "command, host CPU" if _cpu.replaced else "as configured"
    out(f"numba target of this process ({here}): {_short_target()}")
    if _cpu.replaced and _cpu.host_target() == _cpu.default_target():
        out("the host target is Numba's default target on this CPU: both modes compile the "
            "same code and differ only by their cache folders")
    rows, rate = measure(names, repeats, quick, dtype, out=out)
    for row in rows:
        row["mode"] = here
    if _cpu.replaced and quick:
        out("--quick: the library's default target is not timed")
    elif _cpu.replaced:
        out("timing the library's default target in a child process ...")
        library, child_rate = _library_mode(names, repeats, quick, dtype)
        rate = max(rate, child_rate)
        for row, mine in zip(library, rows):
            row.update(mode="library default", numpy_ms=mine["numpy_ms"],
                       bandwidth_gbs=max(row["bandwidth_gbs"], mine["bandwidth_gbs"]))
            mine["bandwidth_gbs"] = row["bandwidth_gbs"]
        rows = [r for pair in zip(rows, library) for r in pair]
    out(f"sgemm (NumPy float32 matmul, best in the run): {rate / 1e9:.1f} GFLOP/s; "
        f"dtype {np.dtype(dtype).name}")
    for row in rows:
        case = SHAPES[row["shape"]]
        roofline = max(case.flops / rate, 2 * row["nbytes"] / (1e9 * row["bandwidth_gbs"]))
        row["roofline_ms"] = 1e3 * roofline
        out(_format_row(row))
    compile_s = None if quick else compile_time(dtype)
    if compile_s is not None:
        out(f"first-call compile time (cold cache, one signature): {compile_s:.1f} s")
    out("timing the deep decoder (one Adam step, float32) in a child process ...")
    deep = deep_rows(quick)
    for row in deep:
        out(_format_deep(row))
    out("")
    out(markdown_table(rows, rate, compile_s))
    out("")
    out(deep_table(deep))
    return rows + deep


#: The deep decoder's shapes (minidip.deep._bench.SHAPES) timed by ``--quick``, and all rounds.
DEEP_QUICK = ("128",)


def deep_rows(quick: bool = False) -> list:
    """:func:`minidip.deep._bench.compare` for the deep decoder's shapes (only the small one
    with ``quick``), in a child process on Numba's workqueue threading layer unless the user
    chose one (see :func:`minidip.deep._bench.prefer_workqueue`: OpenMP's spinning threads and
    BLAS's take turns badly on shared cores).  Without PyTorch only our step is timed."""
    from .deep import _bench as deep
    names = list(DEEP_QUICK if quick else deep.SHAPES)
    code = ("import json, sys; from minidip.deep import _bench as deep; deep.prefer_workqueue(); "
            "print(json.dumps([deep.compare(deep.SHAPES[n], int(sys.argv[2])) "
            "for n in json.loads(sys.argv[1])]))")
    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-c", code, json.dumps(names),
                           str(5 if quick else 21)], env=env, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _format_deep(row) -> str:
    text = (f"deep decoder {row['case']}: ours {1e3 * row['ours']:.1f} ms/Adam step, matmul "
            f"{row['flops'] / 1e9:.2f} GFLOP = {100 * row['roofline']:.0f}% of the step at "
            f"{row['sgemm'] / 1e9:.0f} GFLOP/s sgemm ({row['threading_layer']})")
    if row["torch"] is not None:
        text += (f"; PyTorch twin {1e3 * row['torch']:.1f} ms, speed-up {row['speedup']:.2f}x "
                 f"(paired; target 2x); twin gradients within {row['gradient_agreement']:.1e}")
    return text


def deep_table(rows) -> str:
    """The README table of the deep decoder: ms per Adam step against the PyTorch twin."""
    lines = ["| deep decoder, float32 | ours ms/Adam step | PyTorch twin ms | speed-up "
             "(paired, target >= 2x) | matmul GFLOP | % of sgemm roofline |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        twin = "n/a (no torch)" if row["torch"] is None else f"{1e3 * row['torch']:.1f}"
        speedup = "n/a" if row["torch"] is None else f"{row['speedup']:.2f}x"
        lines.append(f"| {row['case']} | {1e3 * row['ours']:.1f} | {twin} | {speedup} "
                     f"| {row['flops'] / 1e9:.2f} | {100 * row['roofline']:.0f}% |")
    return "\n".join(lines)


def _short_target() -> str:
    """The CPU name Numba compiles for and whether it may use 512-bit vectors."""
    import numba
    from llvmlite import binding as ll
    name = numba.config.CPU_NAME or ll.get_host_cpu_name()
    features = numba.config.CPU_FEATURES or ll.get_host_cpu_features().flatten()
    wide = ("512-bit vectors" if "-prefer-256-bit" in features else
            "AVX-512, 256-bit preferred" if "+avx512f" in features.split(",") else "no AVX-512")
    return f"{name} ({wide})"


def _torch_forms(row):
    return [k for k in row if k.startswith("torch_") and k.endswith("_ms") and k != "torch_best_ms"]


def _format_row(row) -> str:
    share = 100 * row["roofline_ms"] / row["numba_ms"]
    text = (f"{row['case']:<28} {row['mode']:<18} numba {row['numba_ms']:8.2f} ms"
            f"  numpy {row['numpy_ms']:9.1f} ms  roofline {row['roofline_ms']:6.2f} ms"
            f" ({share:4.1f}%)  copy {row['bandwidth_gbs']:5.1f} GB/s")
    if _torch_forms(row):
        text += "  torch " + ", ".join(f"{k[6:-3]} {row[k]:.2f}" for k in _torch_forms(row))
        text += f" ms  speed-up vs torch {row['speedup']:.1f}x (paired)"
        text += " (agrees: loss {:.1e}, grad {:.1e})".format(*row["agreement"])
    return text


def markdown_table(rows, rate, compile_s) -> str:
    """The README table: ms/step and ratios per shape and mode."""
    lines = ["| shape | mode | numba ms/step | NumPy ms/step | PyTorch ms/step | speed-up vs best "
             "PyTorch (paired) | roofline ms | % of roofline |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        forms = _torch_forms(row)
        torch_ms = " / ".join(f"{k[6:-3]} {row[k]:.0f}" for k in forms) if forms else "n/a"
        speedup = f"{row['speedup']:.1f}x ({row['torch_best']})" if forms else "n/a"
        lines.append(f"| {row['case']} | {row['mode']} | {row['numba_ms']:.2f} "
                     f"| {row['numpy_ms']:.0f} | {torch_ms} | {speedup} "
                     f"| {row['roofline_ms']:.2f} "
                     f"| {100 * row['roofline_ms'] / row['numba_ms']:.0f}% |")
    compiled = "not timed (--quick)" if compile_s is None else f"{compile_s:.1f} s"
    lines.append(f"\nsgemm {rate / 1e9:.0f} GFLOP/s (NumPy float32 matmul); roofline = "
                 f"max(4 N k taps / sgemm, 2 bytes(C) / copy bandwidth); cold compile "
                 f"{compiled}.")
    return "\n".join(lines)


def main(args) -> None:
    """Entry point of ``minidip bench``."""
    run(args.shapes, repeats=args.repeats, quick=args.quick,
        dtype=np.float64 if args.dtype == "float64" else np.float32)
