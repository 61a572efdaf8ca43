"""Numba's compile target: the programs choose the host CPU, the library never touches it.

Each check runs a fresh interpreter, since Numba reads its settings once, when imported.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidip import _cpu, cli

ROOT = Path(__file__).resolve().parents[1]
NUMBA_VARIABLES = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES", "NUMBA_CACHE_DIR")

#: Runs a program's main as the program itself (no argv: its process is ours), then reports
#: what Numba was told and what it read.
AS_PROGRAM = """
import json, os, sys
sys.argv = [sys.argv[0], "--help"]
from {module} import main
try:
    main()
except SystemExit:
    pass
import numba
print(json.dumps(dict(env={{k: os.environ.get(k) for k in {names}}},
                      numba=[numba.config.CPU_NAME, numba.config.CPU_FEATURES])))
"""


def _child(code, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("NUMBA_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**base, "PYTHONPATH": str(ROOT), **env}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_minidip_changes_nothing():
    """No variable is set and Numba is not imported, so a program can still choose."""
    code = ("import json, os, sys; before = dict(os.environ); import minidip, minidip.cli, "
            "minidip.bench; print(json.dumps([dict(os.environ) == before, 'numba' in sys.modules]))")
    assert _child(code) == [True, False]


@pytest.mark.parametrize("module", ["minidip.cli", "proofs_check.__main__"])
def test_programs_select_the_host_cpu(module, tmp_path):
    name, features = _cpu.host_target()
    out = _child(AS_PROGRAM.format(module=module, names=list(NUMBA_VARIABLES)),
                 XDG_CACHE_HOME=str(tmp_path))
    assert out["numba"] == [name, features]
    assert out["env"]["NUMBA_CPU_NAME"] == name and out["env"]["NUMBA_CPU_FEATURES"] == features
    cache = Path(out["env"]["NUMBA_CACHE_DIR"])
    assert cache.parent == tmp_path / "minidip" / "numba" and cache.name.startswith(name + "-")


def test_user_choice_wins():
    out = _child(AS_PROGRAM.format(module="minidip.cli", names=list(NUMBA_VARIABLES)),
                 NUMBA_CPU_NAME="generic")
    assert out["env"] == {"NUMBA_CPU_NAME": "generic", "NUMBA_CPU_FEATURES": None,
                          "NUMBA_CACHE_DIR": None}
    assert out["numba"][0] == "generic"


def test_cache_per_target_under_the_users_cache_dir(tmp_path, monkeypatch):
    """The folder is named after the target, under the user's NUMBA_CACHE_DIR; the library's
    environment is the one from before."""
    monkeypatch.setattr(_cpu, "replaced", {})
    monkeypatch.delitem(sys.modules, "numba", raising=False)      # as in a fresh program
    env = {"NUMBA_CACHE_DIR": str(tmp_path)}
    assert _cpu.use_host_cpu(env) is True
    name, features = _cpu.host_target()
    assert Path(env["NUMBA_CACHE_DIR"]).parent == tmp_path
    assert Path(env["NUMBA_CACHE_DIR"]).name.startswith(name + "-")
    assert _cpu.library_environ(env) == {"NUMBA_CACHE_DIR": str(tmp_path)}
    other = {"NUMBA_CACHE_DIR": str(tmp_path)}
    monkeypatch.setattr(_cpu, "host_target", lambda: (name, features + ",-sse4a"))
    assert _cpu.use_host_cpu(other) is True
    assert other["NUMBA_CACHE_DIR"] != env["NUMBA_CACHE_DIR"]


def test_no_change_once_numba_is_imported():
    pytest.importorskip("numba")
    env = {}
    assert _cpu.use_host_cpu(env) is False and env == {}


def test_command_called_with_arguments_leaves_the_process_alone(capsys):
    """Tests and other callers pass argv: the process is theirs, not the command's."""
    before = {k: os.environ.get(k) for k in NUMBA_VARIABLES}
    assert cli.main(["--help"]) == 0
    capsys.readouterr()
    assert {k: os.environ.get(k) for k in NUMBA_VARIABLES} == before


def test_wide_vectors_make_llvm_use_512_bit_registers():
    """On an AVX-512 CPU whose tuning prefers 256 bits, the added feature lifts the preference
    (compiled for Sapphire Rapids whatever the host: only code generation, nothing runs)."""
    ll = pytest.importorskip("llvmlite.binding")
    ll.initialize_native_target()
    ll.initialize_native_asmprinter()
    ir = """
    define void @axpy(ptr noalias %x, ptr noalias %y, float %a, i64 %n) {
    entry:
      br label %loop
    loop:
      %i = phi i64 [0, %entry], [%next, %loop]
      %px = getelementptr float, ptr %x, i64 %i
      %py = getelementptr float, ptr %y, i64 %i
      %s = fadd float %a, 0.0
      %vx = load float, ptr %px
      %vy = load float, ptr %py
      %m = fmul float %s, %vx
      %r = fadd float %m, %vy
      store float %r, ptr %py
      %next = add i64 %i, 1
      %more = icmp slt i64 %next, %n
      br i1 %more, label %loop, label %done
    done:
      ret void
    }"""
    triple = "x86_64-unknown-linux-gnu"

    def assembly(features):
        machine = ll.Target.from_triple(triple).create_target_machine(
            cpu="sapphirerapids", features=features, opt=3)
        module = ll.parse_assembly(ir)
        module.triple = triple
        builder = ll.create_pass_builder(machine, ll.create_pipeline_tuning_options(3))
        builder.getModulePassManager().run(module, builder)
        return machine.emit_assembly(module)

    base = "+avx,+avx2,+fma,+avx512f,+avx512vl,+avx512bw,+avx512dq"
    assert "zmm" not in assembly(base)
    assert "zmm" in assembly(_cpu.wide_vectors(base))
    assert _cpu.wide_vectors("+avx,+avx2,+fma") == "+avx,+avx2,+fma"


LAYER = AS_PROGRAM.split("print(")[0] + \
    'print(json.dumps([os.environ.get("NUMBA_THREADING_LAYER"), numba.config.THREADING_LAYER]))\n'


@pytest.mark.parametrize("module", ["minidip.cli", "proofs_check.__main__"])
def test_programs_run_on_the_workqueue_layer_unless_the_user_chose(module):
    assert _child(LAYER.format(module=module)) == ["workqueue", "workqueue"]
    assert _child(LAYER.format(module=module), NUMBA_THREADING_LAYER="omp") == ["omp", "omp"]

