"""Check the claims of minidip's theory on embedded defaults; exit non-zero if any fails."""
from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

from proofs_check import CLAIMS, _common as common

#: Rough wall time of --full on a 2-core machine (measured: 24 min), said before starting.
FULL_MINUTES = 25


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__)
    parser.add_argument("--out", default=str(common.DEFAULT_OUT),
                        help="folder for the figures and report.json (default: figures)")
    parser.add_argument("--full", action="store_true",
                        help=f"paper-scale sizes (about {FULL_MINUTES} minutes on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="CLAIM",
                        help="run only these claims (e.g. C1 C4)")
    args = parser.parse_args(argv)

    names = CLAIMS
    if args.only:
        wanted = {c.upper() for c in args.only}
        names = [n for n in CLAIMS if n.split("_")[0].upper() in wanted]
        unknown = wanted - {n.split("_")[0].upper() for n in names}
        if unknown:
            print(f"python -m proofs_check: error: unknown claim(s) {sorted(unknown)}; "
                  f"choose among {', '.join(n.split('_')[0].upper() for n in CLAIMS)}",
                  file=sys.stderr)
            return 2
    if args.full:
        print(f"--full: paper-scale sizes, roughly {FULL_MINUTES} minutes on 2 cores.")

    start = time.perf_counter()
    results = []
    for i, name in enumerate(names, 1):
        module = importlib.import_module(f"proofs_check.{name}")
        print(f"[{i}/{len(names)}] {module.CLAIM} {module.STATEMENT} ...", end="", flush=True)
        result = module.run(out=args.out, full=args.full, seed=args.seed)
        results.append(result)
        print(f" {'PASS' if result.passed else 'FAIL'} ({result.seconds:.1f} s)", flush=True)

    print()
    print(f"{'claim':5}  {'result':6}  measured vs threshold")
    for r in results:
        print(f"{r.claim:5}  {'PASS' if r.passed else 'FAIL':6}  {r.summary()}")
    report = Path(args.out) / "report.json"
    common.write_report(results, report)
    failed = [r.claim for r in results if not r.passed]
    print(f"\n{len(results) - len(failed)}/{len(results)} claims pass in "
          f"{time.perf_counter() - start:.0f} s; figures and {report.name} in {args.out}/"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
