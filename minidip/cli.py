"""The ``minidip`` command line.

Bad input ends the command with one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from . import _cpu

__all__ = ["main"]

class UsageError(Exception):
    """Bad input from the command line: printed as one line, exit code 2."""

def _demo(args):
    """Fit a generator to a noisy built-in signal and report the early-stopping effect."""
    import minidip as md

    n, k = args.n, args.channels
    x = md.data.bandlimited((n,), p=6, seed=args.seed)
    rng = np.random.default_rng(args.seed + 1)
    y = x + args.noise_std * rng.standard_normal(n)
    u = md.filters.gaussian(std=2.0)
    gen = md.Generator(u, (n,), channels=k, seed=args.seed, dtype=np.float32)
    res = md.fit(gen, y, steps=args.steps, clean=x, stop="oracle", progress=True)
    noise = float(np.linalg.norm(y - x))
    h = res.history
    print(f"minidip demo: band-limited signal (n={n}), noise std {args.noise_std}, "
          f"Gaussian filter std 2, k={k} channels, {args.steps} gradient steps ({gen.backend})")
    print(f"  noise norm ||y - x||            {noise:8.4f}")
    print(f"  best error ||G - x|| (oracle)   {h['error'].min():8.4f}  at iteration {res.stopped_at}")
    print(f"  final error after {args.steps:4d} steps    {h['error'][-1]:8.4f}  "
          f"(the fit has started to reproduce the noise)")
    print(f"  final loss                      {h['loss'][-1]:8.4g}")

_DEMO_NOISE = 0.1          # noise added to the embedded MRI slice when denoise gets no INPUT
_DENOISE_HELP = f"""Denoise a PNG/JPEG image or a 1-D/2-D .npy signal by fitting an untrained
generator and stopping early: the two-layer convolutional generator by gradient descent
(default; images converted to grayscale in [0, 1]) or, with --model deep, the deep decoder by
Adam (colour images stay colour; any size).  The output has the input's kind and is written
atomically; it never replaces the input.  Without INPUT the embedded MRI slice (2x2-averaged to
128x128) is used and, unless --add-noise says otherwise, Gaussian noise of std {_DEMO_NOISE} is
added so that the PSNR gain can be reported.  The noise std is estimated from the data unless
--noise-std is given (also with --add-noise).  Ctrl-C writes the best output so far under the
stop rule."""


def _denoise(args):
    """Denoise an image or signal file (or the embedded MRI slice) and write the result."""
    from pathlib import Path

    import minidip as md
    from minidip import denoise as dn

    deep = args.model == "deep"
    if args.stop not in ("auto", "none", *md.stopping.RULES):
        raise UsageError(f"unknown stop rule {args.stop!r}; choose auto, none or one of "
                         f"{', '.join(sorted(md.stopping.RULES))}")
    if deep and args.filter is not None:
        raise UsageError("--filter is an option of the two-layer model; the deep decoder's "
                         "upsampling is fixed (drop --filter or use --model two-layer)")
    if args.input is None:
        source, suffix = "the embedded MRI slice (2x2-averaged to 128x128)", ".png"
        y = md.data.mri(downsample=2)
        add_noise = _DEMO_NOISE if args.add_noise is None else args.add_noise
        out = Path(args.out or "mri_denoised.png")
    else:
        source = args.input
        path = Path(args.input)
        suffix = path.suffix.lower()
        out = Path(args.out) if args.out else path.with_name(f"{path.stem}_denoised{path.suffix}")
        if out.resolve() == path.resolve() or (out.exists() and path.exists()
                                               and os.path.samefile(out, path)):
            raise UsageError(f"the output {out} is the input file; choose another --out")
        y = md.data.load(path, color=deep)          # the deep decoder keeps colour
        add_noise = args.add_noise
    if y.ndim == 1 and out.suffix.lower() != ".npy":
        raise UsageError(f"a 1-D signal cannot be written as {out.suffix or 'a file without suffix'}"
                         f"; use an --out ending in .npy")
    if not out.parent.is_dir():
        raise UsageError(f"cannot write {out}: directory {out.parent} does not exist")
    clean = None
    if add_noise is not None:
        clean = y
        y = y + add_noise * np.random.default_rng(args.seed).standard_normal(y.shape)
    if args.stop == "oracle" and clean is None:
        raise UsageError("--stop oracle needs the clean signal: use --add-noise on a clean input")
    if args.filter is not None:
        md.filters.parse_filter(args.filter, y.ndim)    # a bad spec fails before any work
    stop = None if args.stop == "none" else args.stop
    interrupted = False
    try:
        res = dn.denoise(y, model=args.model, filter=args.filter, stop=stop,
                         noise_std=args.noise_std, channels=args.channels, steps=args.steps,
                         seed=args.seed, clean=clean, progress=not args.no_progress)
    except md.FitInterrupted as stop_now:
        res, interrupted = stop_now.result, True
    except md.FitDivergedError as err:
        raise UsageError(str(err)) from None
    md.data.save(out, res.output, protect=[] if args.input is None else [args.input])
    how = "estimated" if res.info["noise_std_estimated"] else "given"
    if args.stop == "auto":
        stop = dn.DEEP_STOP if deep else "discrepancy"
    rule = "none" if stop is None else stop
    label = repr(rule) + (f" (kappa {res.info['kappa']:g})"
                          if res.info.get("kappa", 1.0) != 1.0 else "")
    steps = args.steps or (dn.DEEP_STEPS if deep else dn.DEFAULT_STEPS)
    colour = y.ndim == 3
    grid = y.shape[1:] if colour else y.shape
    if deep:
        what = (f"deep decoder, {args.channels or dn.DEEP_CHANNELS} channels, "
                f"{res.info['layers']} layers (grid {'x'.join(map(str, res.info['grid']))})")
    else:
        what = (f"filter {args.filter or md.filters.default_filter(y.ndim)}, "
                f"{args.channels or dn.DEFAULT_CHANNELS} channels")
    print(f"minidip denoise: {source}, {'colour ' if colour else ''}shape "
          f"{'x'.join(map(str, grid))}, {what}, stop rule {label}")
    if add_noise is not None:
        print(f"  added Gaussian noise of std {add_noise:g} (seed {args.seed})")
    print(f"  noise std          {res.info['noise_std']:.4g} ({how})")
    print(f"  stopped at         iteration {res.stopped_at} of at most {steps}")
    for line in _undecided(res, rule, steps):
        print(f"  note: {line}")
    if clean is not None:
        span = float(np.ptp(clean)) or 1.0 if suffix == ".npy" else 1.0
        before = md.metrics.psnr(y, clean, data_range=span)
        after = md.metrics.psnr(res.output, clean, data_range=span)
        print(f"  PSNR               noisy {before:.2f} dB -> denoised {after:.2f} dB "
              f"(gain {after - before:+.2f} dB)")
    if interrupted:
        print(f"  interrupted: wrote the best output so far (iteration {res.stopped_at} under "
              f"{label}) to {out}")
        return 130
    print(f"  wrote {out}")
    return 0


def _undecided(res, stop, steps):
    """Lines that say why a stop rule did not decide (the last iterate was returned)."""
    lines = []
    if res.info.get("noise_std_estimated") and res.info.get("noise_std") == 0:
        lines.append("the estimated noise level is 0 (the finest scale of the input holds no "
                     "noise); pass --noise-std if you know it")
    if not res.info.get("triggered", True):
        reason = {"discrepancy": "the discrepancy level was not reached",
                  "spectral": "the predicted best stop (E12) is the last step",
                  "variance": "the running variance kept falling",
                  "oracle": "the error to the clean signal was still falling"}.get(stop)
        if reason:
            lines.append(f"{reason} in {steps} steps; the last iterate was returned (try "
                         "--steps)")
    return lines


def _parse_shape(text):
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or HxW, got {text!r}") from None
    if len(shape) not in (1, 2) or min(shape) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW of positive integers, got {text!r}")
    return shape


def _spectrum(args):
    """Print and plot the eigenvalue spectrum (E9) of a filter's dual kernel."""
    import minidip as md
    from minidip import plots

    shape = args.shape
    spec = args.filter or md.filters.default_filter(len(shape))
    taps = md.filters.parse_filter(spec, len(shape))
    lam = md.spectral.eigenvalues(taps, shape)
    info = plots.spectrum_summary(lam)
    print(f"minidip spectrum: filter {spec} ({'x'.join(map(str, taps.shape))} taps) on a "
          f"{'x'.join(map(str, shape))} grid")
    print(f"  lambda_max         {info['lambda_max']:.6g}")
    print(f"  lambda_min         {info['lambda_min']:.6g}")
    print(f"  condition          {info['condition']:.6g}")
    print(f"  90% of the trace   {info['modes_for_fraction']} of {info['size']} modes")
    print("  radially averaged spectrum (|f| in cycles per sample):")
    radius, mean = plots.radial_average(lam, bins=8)
    for r, m in zip(radius, mean):
        print(f"    |f| ~ {r:5.3f}   {m:.6g}")
    if args.out:
        plots.plot_spectrum(lam, args.out, title=f"{spec} on {'x'.join(map(str, shape))}")
        print(f"  wrote {args.out}")


def _figures(args):
    """Write the denoising (or restoration) comparison figure and print its PSNR table."""
    from pathlib import Path

    from minidip.experiments import denoising, restoration

    folder = Path(args.out)
    if not folder.is_dir():
        raise UsageError(f"output directory {folder} does not exist; create it or pass --out DIR")
    experiment, name = (restoration, "restoration") if args.restoration else (denoising,
                                                                              "denoising")
    options = {} if args.restoration or args.cache is None else {"cache": args.cache}
    rows = experiment.compare(seeds=tuple(range(args.seeds)), progress=not args.no_progress,
                              **options)
    path = experiment.plot_comparison(rows, folder / f"{name}.png")
    print(experiment.comparison_table(rows))
    print(f"wrote {path}")


def _positive(kind, allow_zero=False):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if not (value >= 0 if allow_zero else value > 0):
            raise argparse.ArgumentTypeError(
                f"must be {'non-negative' if allow_zero else 'positive'}, got {text!r}")
        return value
    return parse

class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line (and exit code 2), pointing to --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="minidip", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fit a built-in noisy signal and print a short report")
    demo.add_argument("--n", type=_positive(int), default=256, help="signal length")
    demo.add_argument("--channels", type=_positive(int), default=512, help="channels k (even)")
    demo.add_argument("--steps", type=_positive(int), default=2000, help="gradient steps")
    demo.add_argument("--noise-std", type=_positive(float), default=0.5)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    from . import bench
    bench_cmd = sub.add_parser("bench", help="time one gradient step: numba, NumPy, PyTorch, roofline")
    bench_cmd.add_argument("--shapes", nargs="+", choices=list(bench.SHAPES), default=None,
                           help="subset of the shapes (default: all four)")
    bench_cmd.add_argument("--repeats", type=_positive(int), default=10, help="timed steps per shape")
    bench_cmd.add_argument("--quick", action="store_true",
                           help="one NumPy step, one CPU mode, no cold compile, one deep shape")
    bench_cmd.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    bench_cmd.set_defaults(run=bench.main)

    den = sub.add_parser("denoise", help="denoise an image or 1-D signal file by an early-stopped "
                         "generator", description=_DENOISE_HELP)
    den.add_argument("input", nargs="?", help="PNG, JPEG or .npy file (default: the embedded MRI "
                     f"slice with noise {_DEMO_NOISE} added)")
    den.add_argument("--out", help="output file (default: INPUT stem + '_denoised' + suffix)")
    den.add_argument("--noise-std", type=_positive(float), help="noise std if known (default: "
                     "estimated from the input)")
    den.add_argument("--model", choices=["two-layer", "deep"], default="two-layer",
                     help="generator: two-layer (default, gradient descent) or deep (the deep "
                     "decoder, Adam; colour stays colour)")
    den.add_argument("--stop", default="auto", help="stop rule: auto (default: discrepancy for "
                     "two-layer, the deep model's default for deep), none (all --steps), "
                     "discrepancy, spectral (two-layer), variance, or oracle (needs --add-noise)")
    den.add_argument("--filter", help='two-layer filter spec, e.g. "gaussian:1.2:7" (default for '
                     'images), "gaussian:2" (default for 1-D), "triangle:3", "box:3", '
                     '"upsampling:linear", "delta", "random:5:0"')
    from . import denoise as dn
    den.add_argument("--channels", type=_positive(int), help=f"channels k (default "
                     f"{dn.DEFAULT_CHANNELS} two-layer, even; {dn.DEEP_CHANNELS} deep)")
    den.add_argument("--steps", type=_positive(int), help=f"most steps (default "
                     f"{dn.DEFAULT_STEPS} two-layer, {dn.DEEP_STEPS} deep)")
    den.add_argument("--add-noise", type=_positive(float), help="add Gaussian noise of this std "
                     "first and report PSNRs against the input")
    den.add_argument("--seed", type=_positive(int, allow_zero=True), default=0,
                     help="seed of the noise and the weights")
    den.add_argument("--no-progress", action="store_true", help="no progress bar")
    den.set_defaults(run=_denoise)

    from . import _restore_command
    _restore_command.add_parser(sub, _positive)

    spec = sub.add_parser("spectrum", help="print and plot the eigenvalue spectrum of a filter")
    spec.add_argument("--filter", help="filter spec as for denoise (default: gaussian:1.2:7 in "
                      "2-D, gaussian:2 in 1-D)")
    spec.add_argument("--shape", type=_parse_shape, default=(128, 128), help="N or HxW "
                      "(default 128x128)")
    spec.add_argument("--out", default="spectrum.png", help="PNG to write (default spectrum.png)")
    spec.set_defaults(run=_spectrum)

    fig = sub.add_parser("figures", help="write the denoising (or restoration) comparison figure "
                         "and print its PSNR table")
    fig.add_argument("--out", default="figures", help="directory (default figures)")
    fig.add_argument("--seeds", type=_positive(int), default=1, help="noise seeds per case "
                     "(default 1)")
    fig.add_argument("--cache", help="denoising: keep each case's results in this directory "
                     "and reuse them (resumes a long run)")
    fig.add_argument("--restoration", action="store_true", help="the restoration comparison "
                     "(inpainting, super-resolution) instead of denoising")
    fig.add_argument("--no-progress", action="store_true", help="no progress bar")
    fig.set_defaults(run=_figures)
    return parser

def main(argv=None) -> int:
    if argv is None:                   # run as the program: its process is ours
        _cpu.use_host_cpu()
        _cpu.use_workqueue()
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # usage errors (one line, code 2) and --help (code 0)
        return exc.code
    try:
        code = args.run(args)
    except (UsageError, ValueError, OSError) as exc:
        message = " ".join(str(exc).split())          # one line, whatever the library said
        print(f"minidip {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"minidip {args.command}: interrupted", file=sys.stderr)
        return 130
    return code or 0

if __name__ == "__main__":
    sys.exit(main())
