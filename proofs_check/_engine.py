"""Independent tasks, run in-process one after another or on Dask (dask.distributed).

A task is a call ``function(**params)`` whose result depends only on its parameters (a seed
among them), never on where it ran or with how many threads: the Numba kernels are
bit-identical for any thread count.  So the same tasks give the same results whichever engine
runs them.

Engines (``scheduler``):

- ``None``: in this process, one task after another, with Numba's default threads;
- ``"local"``: a Dask LocalCluster on this machine, one single-threaded worker process per core;
- an address such as ``"tcp://10.0.0.5:8786"``: a running Dask cluster.

Dask is an optional extra (``pip install ".[cluster]"``), imported only when a scheduler is
given.  On a Dask worker each task sets its Numba threads from the worker's resources: the
worker's declared resource ``threads`` (``dask worker ADDRESS --nthreads 1 --resources
threads=4`` gives every fit 4 threads), else 1, because a worker with nthreads = t runs t tasks at
once, one per core it was given.
"""
from __future__ import annotations

import contextlib
import logging
import os

__all__ = ["LOCAL", "SchedulerError", "run_tasks", "worker_threads"]

#: The ``--scheduler`` value that starts a LocalCluster.
LOCAL = "local"

_INSTALL = "pip install '.[cluster]' (or pip install 'dask[distributed]')"


class SchedulerError(RuntimeError):
    """Dask is not installed, or the scheduler cannot be reached: the message says what to do."""


def run_tasks(function, tasks, scheduler=None, on_result=None) -> list:
    """Results of ``function(**task)`` for every task, in the order of ``tasks``.

    Parameters
    ----------
    function : callable
        A module-level function (workers import it by name), returning a picklable result.
    tasks : sequence of dict
        Keyword arguments of each call.
    scheduler : None, "local" or str
        The engine (see the module docstring).
    on_result : callable, optional
        ``on_result(index, result)`` as each task finishes (in order of completion on Dask).

    Raises
    ------
    SchedulerError if a scheduler is given and Dask is missing or unreachable; a task's own
    exception, re-raised with the task's parameters, if it fails.
    """
    tasks = [dict(task) for task in tasks]
    report = on_result or (lambda index, result: None)
    if scheduler is None:
        results = []
        for index, task in enumerate(tasks):
            results.append(_call(function, task))
            report(index, results[-1])
        return results
    distributed = _import_distributed()
    with _connect(distributed, str(scheduler)) as client:
        futures = [client.submit(_on_worker, function, task, pure=False) for task in tasks]
        position = {future.key: index for index, future in enumerate(futures)}
        results = [None] * len(tasks)
        for future in distributed.as_completed(futures):
            index = position[future.key]
            try:
                results[index] = future.result()
            except Exception as exc:
                raise RuntimeError(f"task {tasks[index]} failed: {exc}") from exc
            report(index, results[index])
        return results


def _call(function, task):
    try:
        return function(**task)
    except Exception as exc:
        raise RuntimeError(f"task {task} failed: {exc}") from exc


def worker_threads() -> int:
    """Numba threads for a task on the current Dask worker: its declared resource ``threads``,
    else 1; at most Numba's thread limit."""
    import numba
    from distributed import get_worker
    declared = get_worker().state.total_resources.get("threads")
    wanted = int(declared) if declared else 1
    return max(1, min(wanted, numba.config.NUMBA_NUM_THREADS))


def _on_worker(function, task):
    """Run one task on a Dask worker with the Numba threads its resources give."""
    import numba
    numba.set_num_threads(worker_threads())          # per worker thread: numba keeps it local
    return function(**task)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise SchedulerError(f"--scheduler needs dask.distributed, which is not installed; "
                             f"{_INSTALL}") from None
    return distributed


@contextlib.contextmanager
def _connect(distributed, scheduler):
    """A Client of the given scheduler (of a new LocalCluster for "local"), closed on exit."""
    cluster = client = None
    try:
        try:
            if scheduler == LOCAL:
                # Workers that ran Numba's parallel kernels can outlive the nanny's grace at
                # shutdown; it then ends them, which is what closing the cluster asks for.
                cluster = distributed.LocalCluster(n_workers=_cores(), threads_per_worker=1,
                                                   processes=True, dashboard_address=None,
                                                   silence_logs=logging.ERROR)
                client = distributed.Client(cluster)
            else:
                client = distributed.Client(scheduler, timeout="20s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerError(f"cannot reach the Dask scheduler {scheduler!r} ({exc}); give "
                                 f"the address of a running scheduler (dask scheduler prints "
                                 f"it) or 'local'") from None
        yield client
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                          # not on Linux
        return os.cpu_count() or 1
