"""Check the claims of minidip's theory on embedded defaults; exit non-zero if any fails."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from minidip import _cpu
from proofs_check import CLAIMS, _common as common, _engine as engine, _runner as runner

#: Rough wall time of --full on a 2-core machine (measured: 24 min), said before starting.
FULL_MINUTES = 25


def main(argv=None) -> int:
    if argv is None:                   # run as the program: its process is ours
        _cpu.use_host_cpu()
        _cpu.use_workqueue()
    parser = argparse.ArgumentParser(prog="python -m proofs_check", description=__doc__)
    parser.add_argument("--out", default=str(common.DEFAULT_OUT),
                        help="folder for the figures and report.json (default: figures)")
    parser.add_argument("--full", action="store_true",
                        help=f"paper-scale sizes (about {FULL_MINUTES} minutes on 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", metavar="CLAIM",
                        help="run only these claims (e.g. C1 C4)")
    parser.add_argument("--scheduler", metavar="ADDRESS|local",
                        help="run the claims as tasks on Dask: a scheduler's address, or "
                             "'local' for a LocalCluster (needs the cluster extra); "
                             "default: in-process, one after another")
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
    done = []

    def progress(result):
        done.append(result)
        print(f"[{len(done)}/{len(names)}] {result.claim} {result.statement}: "
              f"{'PASS' if result.passed else 'FAIL'} ({result.seconds:.1f} s)", flush=True)

    try:
        results = runner.run_claims(names, args.out, args.full, args.seed, args.scheduler,
                                    progress=progress)
    except engine.SchedulerError as exc:
        print(f"python -m proofs_check: error: {exc}", file=sys.stderr)
        return 2

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
