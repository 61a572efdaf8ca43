"""The compile target of Numba for the processes minidip owns: the command line and proofs_check.

Numba compiles for the host CPU, but LLVM's tuning for many AVX-512 CPUs (Skylake-X to
Emerald Rapids) prefers 256-bit vectors, so the loops LLVM vectorizes itself use half the
register width.  A program that owns its process may lift that before Numba is imported; a
library must not, so importing minidip changes nothing here: only :func:`use_host_cpu`, called
at the start of the two programs, does.  On a CPU without AVX-512 (e.g. AMD Zen 3) the host
target is Numba's default target (:func:`default_target`): both compile the same code, in
separate cache folders.
"""
from __future__ import annotations

import hashlib
import os
import sys

__all__ = ["host_target", "default_target", "wide_vectors", "use_host_cpu", "use_workqueue",
           "library_environ", "replaced"]

#: Environment variables through which a user chooses Numba's target; any of them set wins.
USER_CHOICE = ("NUMBA_CPU_NAME", "NUMBA_CPU_FEATURES")
#: The variables :func:`use_host_cpu` set in this process, with their values before (None:
#: unset); empty when it set nothing.
replaced: dict = {}


def host_target() -> tuple[str, str]:
    """``(cpu name, LLVM feature string)`` of this CPU, with 512-bit vectors preferred when it
    has AVX-512 (``-prefer-256-bit``)."""
    from llvmlite import binding as ll        # llvmlite alone: Numba reads its settings later

    features = ll.get_host_cpu_features().flatten()
    return ll.get_host_cpu_name(), wide_vectors(features)


def default_target() -> tuple[str, str]:
    """``(cpu name, LLVM feature string)`` Numba compiles for when nobody sets NUMBA_CPU_NAME or
    NUMBA_CPU_FEATURES: the host's own (equal to :func:`host_target` without AVX-512)."""
    from llvmlite import binding as ll

    return ll.get_host_cpu_name(), ll.get_host_cpu_features().flatten()


def wide_vectors(features: str) -> str:
    """An LLVM feature string that lets the vectorizer use 512-bit registers where it has them."""
    return features + ",-prefer-256-bit" if "+avx512f" in features.split(",") else features


def _cache_root(environ) -> str:
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "minidip", "numba")


def use_host_cpu(environ=os.environ) -> bool:
    """Let Numba compile this process's kernels for the full host CPU, unless the user chose.

    Sets NUMBA_CPU_NAME and NUMBA_CPU_FEATURES (:func:`host_target`) and a NUMBA_CACHE_DIR of
    their own per target (a subfolder of the user's NUMBA_CACHE_DIR when set), so code compiled
    for one CPU is never loaded on another.  Does nothing, and returns False, when the user set
    NUMBA_CPU_NAME or NUMBA_CPU_FEATURES, or when Numba is already imported (it reads these
    variables at import).  Returns True when it set them.
    """
    if any(name in environ for name in USER_CHOICE) or "numba" in sys.modules:
        return False
    name, features = host_target()
    tag = hashlib.sha256(f"{name} {features}".encode()).hexdigest()[:12]
    root = environ.get("NUMBA_CACHE_DIR") or _cache_root(environ)
    for key, value in (("NUMBA_CPU_NAME", name), ("NUMBA_CPU_FEATURES", features),
                       ("NUMBA_CACHE_DIR", os.path.join(root, f"{name}-{tag}"))):
        replaced.setdefault(key, environ.get(key))
        environ[key] = value
    return True


def use_workqueue(environ=os.environ) -> bool:
    """Run this process's Numba kernels on the workqueue threading layer, unless the user chose.

    With the OpenMP layer, whose idle threads spin, and OpenBLAS's own threads, a deep-decoder
    step alternates between Numba kernels and matrix products and the two sets of threads take
    turns on the same cores: measured on 2 cores (64x64, k = 64, L = 5, Adam), 67 ms per step
    with OpenMP against 7.7 ms with workqueue; a two-layer step (128x128, k = 256) goes from
    19-20 to 22 ms.  The kernels give the same bits on either layer.  Does nothing, and returns
    False, when NUMBA_THREADING_LAYER is set or Numba is already imported.
    """
    if "NUMBA_THREADING_LAYER" in environ or "numba" in sys.modules:
        return False
    replaced.setdefault("NUMBA_THREADING_LAYER", None)
    environ["NUMBA_THREADING_LAYER"] = "workqueue"
    return True


def library_environ(environ=os.environ) -> dict:
    """A copy of ``environ`` as it was before :func:`use_host_cpu` and :func:`use_workqueue`
    (for a library-mode child)."""
    env = dict(environ)
    for key, value in replaced.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
