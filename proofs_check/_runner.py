"""The claims as independent tasks: each runs into a folder of its own and returns its figures,
so that a claim runs the same in this process or on a Dask worker on another machine."""
from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

from minidip._io import atomic_write
from proofs_check import _engine as engine


def run_claim(name: str, full: bool = False, seed: int = 0, config=None):
    """Run claim module ``proofs_check.<name>`` in a temporary folder.

    Returns
    -------
    (ClaimResult, dict mapping figure file name -> PNG bytes)
    """
    module = importlib.import_module(f"proofs_check.{name}")
    with tempfile.TemporaryDirectory() as folder:
        result = module.run(out=folder, full=full, seed=seed, config=config)
        figures = {path.name: path.read_bytes() for path in Path(folder).glob("*.png")}
    return result, figures


def run_claims(names, out, full=False, seed=0, scheduler=None, configs=None, progress=None):
    """Run the claims (in-process, or on Dask: ``proofs_check._engine``), write their figures
    into ``out`` and return their results in the order of ``names``.

    ``configs`` maps a claim's module name to the Config it runs (default: DEFAULT or FULL);
    ``progress(result)`` is called as each claim finishes.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    configs = configs or {}
    tasks = [dict(name=name, full=full, seed=seed, config=configs.get(name)) for name in names]

    def finish(index, outcome):
        result, figures = outcome
        for file_name, data in figures.items():
            atomic_write(out / file_name, lambda file, data=data: file.write(data))
        if result.figure:
            result.figure = str(out / Path(result.figure).name)
        if progress:
            progress(result)

    return [result for result, _ in engine.run_tasks(run_claim, tasks, scheduler, finish)]
