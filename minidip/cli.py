"""The ``minidip`` command line.

Bad input ends the command with one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

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

def _positive(kind):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
        return value
    return parse

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minidip", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="fit a built-in noisy signal and print a short report")
    demo.add_argument("--n", type=_positive(int), default=256, help="signal length")
    demo.add_argument("--channels", type=_positive(int), default=512, help="channels k (even)")
    demo.add_argument("--steps", type=_positive(int), default=2000, help="gradient steps")
    demo.add_argument("--noise-std", type=_positive(float), default=0.5)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser

def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except (UsageError, ValueError, OSError) as exc:
        print(f"minidip {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    sys.exit(main())
