"""The regime map (proofs_check.regime) and the engine that runs its tasks and the claims
(proofs_check._engine, _runner): the same results in-process and on Dask."""
import csv
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

import minidip as md
from proofs_check import _common as common
from proofs_check import _engine as engine
from proofs_check import _runner as runner
from proofs_check import regime
from proofs_check.__main__ import main as run_all

#: A tiny grid: 16 fits of a few milliseconds each.
TINY = dict(widths=(16, 64), init_ratios=(0.1, 1.0), sizes=(32,),
            filters=("gaussian:1.5", "triangle:2"), seeds=(0, 1), steps=30)


def _without_seconds(path):
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    seconds = rows[0].index("seconds")
    return [row[:seconds] + row[seconds + 1:] for row in rows]


# --------------------------------------------------------------------------------------------
# One task and the CSV

def _circular_masks(C, taps):
    """1[U c_j > 0] by FFT circular convolution (no code shared with minidip.generator)."""
    n = C.shape[-1]
    kernel = np.zeros(n)
    half = taps.size // 2
    for m, value in enumerate(taps):
        kernel[(m - half) % n] = value
    return np.fft.ifft(np.fft.fft(C, axis=-1) * np.fft.fft(kernel)).real > 0


def test_task_row_against_an_independent_fit():
    n, k, ratio, spec, seed, steps = 32, 16, 0.1, "gaussian:1.5", 3, 40
    row = regime.run_task(n, k, ratio, spec, seed, steps=steps, step_fraction=0.5)
    assert tuple(row) == regime.COLUMNS
    assert (row["n"], row["k"], row["init_ratio"], row["filter"], row["seed"]) == \
        (n, k, ratio, spec, seed)
    # The same fit from its definition: y, the iid init at the ratio, plain GD (numpy backend).
    u = md.filters.parse_filter(spec, ndim=1)
    x, z = common.signal_and_noise((n,), regime.SIGNAL_MODES, seed)
    gen = md.Generator(u, (n,), k, init_std=md.init_std_for(u, x + z, ratio), seed=seed,
                       dtype=np.float64, backend="numpy", init="iid")
    eta = 0.5 / md.spectral.eigenvalues(u, (n,)).max()
    C = gen.init_weights()
    errors = [np.linalg.norm(gen.forward(C) - x)]
    start = C.copy()
    for _ in range(steps):
        C = C - eta * gen.loss_and_grad(C, x + z)[1]
        errors.append(np.linalg.norm(gen.forward(C) - x))
    flipped = np.mean(_circular_masks(start, gen.taps) != _circular_masks(C, gen.taps))
    assert row["best_error"] == pytest.approx(min(errors) / np.linalg.norm(z), rel=1e-9)
    assert row["mask_flipped"] == pytest.approx(flipped, abs=0.5 / C.size)
    assert 0 < row["mask_flipped"] < 0.5 and row["deviation"] > 0 and row["eps"] >= 0


def test_a_step_too_small_to_move_flips_no_mask_and_follows_e10():
    row = regime.run_task(32, 16, 0.3, "gaussian:1.5", 0, steps=5, step_fraction=1e-9)
    assert row["mask_flipped"] == 0
    assert row["deviation"] < 1e-9


def test_deviation_falls_with_width_and_grows_as_the_init_shrinks():
    # The regime map's two readings, at a size where they are far above seed-to-seed scatter:
    # 16x the width at the lazy init (k^(-1/2): a factor 4), 10x smaller init at one width.
    rows = [regime.run_task(64, k, ratio, "gaussian:2", 0, steps=100)
            for k in (64, 1024) for ratio in (0.1, 1.0)]
    dev = {(r["k"], r["init_ratio"]): r["deviation"] for r in rows}
    assert dev[1024, 1.0] < dev[64, 1.0] / 2
    assert dev[64, 0.1] > dev[64, 1.0] and dev[1024, 0.1] > dev[1024, 1.0]


def test_csv_round_trips_exactly(tmp_path):
    rows = [dict(n=8, k=4, init_ratio=0.1, filter="gaussian:1.5", seed=0,
                 deviation=0.1 + 0.2, eps=0.0, best_error=1 / 3, mask_flipped=0.25,
                 seconds=1.5)]
    (tmp_path / "r.csv").write_text(regime.csv_text(rows))
    assert regime.read_csv(tmp_path / "r.csv") == rows
    assert regime.csv_text(rows).splitlines()[0] == ",".join(regime.COLUMNS)


def test_grid_order_and_validation():
    tasks = regime.grid(**TINY)
    assert len(tasks) == 2 * 2 * 2 * 2
    assert [(t["init_ratio"], t["k"], t["seed"]) for t in tasks[:4]] == \
        [(0.1, 16, 0), (0.1, 16, 1), (0.1, 64, 0), (0.1, 64, 1)]
    for bad, word in [(dict(widths=(15,)), "even"), (dict(filters=("gauss:2",)), "unknown"),
                      (dict(init_ratios=(0.0,)), "init ratio"), (dict(sizes=(8,)), "n = 8"),
                      (dict(seeds=()), "empty")]:
        with pytest.raises(ValueError, match=word):
            regime.grid(**dict(TINY, **bad))


def test_cli_writes_csv_png_json_and_reports_bad_input(tmp_path, capsys):
    out = tmp_path / "map"
    argv = ["--widths", "16", "64", "--init-ratios", "0.1", "1", "--n", "32", "--filters",
            "gaussian:1.5", "--seeds", "0", "--steps", "20", "--out", str(out)]
    assert regime.main(argv) == 0
    rows = regime.read_csv(out / "regime.csv")
    assert len(rows) == 4 and (out / "regime.png").stat().st_size > 0
    assert (out / "regime.json").is_file()
    assert regime.main(argv[:-2] + ["--filters", "nope", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown filter" in err[0]


def test_missing_dask_is_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)          # import fails
    argv = ["--widths", "16", "--init-ratios", "1", "--n", "32", "--seeds", "0", "--steps",
            "5", "--out", str(tmp_path), "--scheduler", "local"]
    assert regime.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install" in err[0] and "dask" in err[0]
    assert run_all(["--only", "C2", "--out", str(tmp_path), "--scheduler", "local"]) == 2


# --------------------------------------------------------------------------------------------
# The same results on Dask

@pytest.fixture(scope="module")
def cluster():
    # One worker declaring 2 Numba threads per task; "local" below gives 1: the same results.
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None, resources={"threads": 2},
                                  silence_logs=logging.ERROR) as local:
        yield local


def test_regime_csv_is_the_same_in_process_and_on_dask(cluster, monkeypatch, tmp_path):
    monkeypatch.setattr(regime, "plot", lambda rows, path, *args: None)   # tested above
    tasks = regime.grid(**dict(TINY, filters=TINY["filters"][:1]))
    regime.run(tasks, tmp_path / "here")
    regime.run(tasks, tmp_path / "address", scheduler=cluster.scheduler_address)
    regime.run(tasks, tmp_path / "local", scheduler=engine.LOCAL)
    here = _without_seconds(tmp_path / "here" / "regime.csv")
    assert len(here) == 1 + len(tasks)
    assert _without_seconds(tmp_path / "address" / "regime.csv") == here
    assert _without_seconds(tmp_path / "local" / "regime.csv") == here


def test_tasks_take_their_numba_threads_from_the_worker(cluster):
    import numba
    wanted = min(2, numba.config.NUMBA_NUM_THREADS)
    assert engine.run_tasks(numba.get_num_threads, [{}], cluster.scheduler_address) == [wanted]


@pytest.mark.parametrize("resources, threads", [({}, 1), ({"threads": 1}, 1),
                                                ({"threads": 10**6}, None)])
def test_worker_threads_reads_the_declared_resource(monkeypatch, resources, threads):
    distributed = pytest.importorskip("distributed")
    import numba

    class Worker:
        class state:
            total_resources = resources

    monkeypatch.setattr(distributed, "get_worker", lambda: Worker)
    expected = numba.config.NUMBA_NUM_THREADS if threads is None else threads
    assert engine.worker_threads() == expected


def test_claims_are_the_same_in_process_and_on_dask(cluster, tmp_path):
    # C5 in float64, C7 in float32, at tiny sizes; run with 2 Numba threads here, 2 on the worker
    # declaring them, so it is the engine that must not matter.
    from proofs_check import c5_early_stopping as c5, c7_spectral_bias as c7
    names = ["c5_early_stopping", "c7_spectral_bias"]
    configs = {"c5_early_stopping": c5.Config(n=32, widths=(16, 32), steps=20),
               "c7_spectral_bias": c7.Config(downsample=16, widths=(8, 16, 32), steps=40)}
    here = runner.run_claims(names, tmp_path / "here", configs=configs)
    there = runner.run_claims(names, tmp_path / "there", full=True, configs=configs,
                              scheduler=cluster.scheduler_address)
    for name, a, b in zip(names, here, there):
        assert a.claim == b.claim and a.summary() == b.summary()
        assert common._jsonable(a.measured) == common._jsonable(b.measured)
        assert b.figure == str(tmp_path / "there" / f"{name}.png")
        assert (tmp_path / "there" / f"{name}.png").is_file()


def test_runner_passes_full_and_scheduler_through(monkeypatch, tmp_path):
    seen = {}

    def fake(names, out, full, seed, scheduler, progress=None):
        seen.update(names=list(names), full=full, scheduler=scheduler)
        return [common.ClaimResult("C2", "s", [common.Check("a", 1.0, "<=", 2.0)])]

    monkeypatch.setattr(runner, "run_claims", fake)
    assert run_all(["--full", "--only", "C2", "--scheduler", "tcp://h:1", "--out",
                    str(tmp_path)]) == 0
    assert seen == dict(names=["c2_concentration"], full=True, scheduler="tcp://h:1")
    assert (tmp_path / "report.json").is_file()


@pytest.fixture(scope="module")
def separate_cluster(tmp_path_factory):
    """A `dask scheduler` and two `dask worker` processes started from the command line, as a
    user would on a cluster; yields the scheduler's address."""
    pytest.importorskip("distributed")
    import json
    import shutil
    import subprocess
    dask = shutil.which("dask", path=str(Path(sys.executable).parent)) or shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    folder = tmp_path_factory.mktemp("dask")
    file = folder / "scheduler.json"
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=folder)
    procs = [subprocess.Popen([dask, "scheduler", "--scheduler-file", str(file), "--port", "0",
                               "--no-dashboard"], **quiet)]
    try:
        procs += [subprocess.Popen([dask, "worker", "--scheduler-file", str(file),
                                    "--nthreads", "1", "--no-dashboard"], **quiet)
                  for _ in range(2)]
        from distributed import Client
        with Client(scheduler_file=str(file), timeout=120) as client:   # waits for the file
            client.wait_for_workers(2, timeout=120)
        yield json.loads(file.read_text())["address"]
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)


def test_regime_csv_is_the_same_on_a_separately_started_scheduler(separate_cluster, monkeypatch,
                                                                   tmp_path):
    monkeypatch.setattr(regime, "plot", lambda rows, path, *args: None)
    tasks = regime.grid(**TINY)
    regime.run(tasks, tmp_path / "here")
    regime.run(tasks, tmp_path / "remote", scheduler=separate_cluster)
    assert _without_seconds(tmp_path / "remote" / "regime.csv") == \
        _without_seconds(tmp_path / "here" / "regime.csv")
