"""Writing files atomically: every file the project writes goes through :func:`atomic_write`."""
from __future__ import annotations

import os
import uuid
from pathlib import Path

__all__ = ["atomic_write"]


def atomic_write(path, write, *, fsync: bool = True) -> Path:
    """Write a file through ``write(file)`` into a temporary file beside ``path``, then rename it.

    The rename is atomic on one file system, so readers see the old file or the new one, never a
    part; on any error the temporary file is removed and ``path`` is untouched.  The directory
    must exist.  The new file gets the usual permissions of a new file (``0o666`` minus the
    umask).

    Returns
    -------
    pathlib.Path, the path written.
    """
    path = Path(path)
    temp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with os.fdopen(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
            write(file)
            file.flush()
            if fsync:
                os.fsync(file.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path
