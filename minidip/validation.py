"""Input checks shared by every module: each raises one ValueError that names the problem and the fix.

Checks return the validated value in the form the caller needs (a tuple shape, a float, a float64
array), so a function validates its inputs first and then computes.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["shape", "signal", "weights", "filter_on_grid", "step_size", "positive",
           "positive_int", "non_negative_int", "iterations", "real_number"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def real_number(value) -> float:
    """``value`` as a float, or NaN if it is not a real number (bools are not numbers here)."""
    if isinstance(value, (bool, np.bool_)) or not np.isscalar(value):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def positive(value, name: str) -> float:
    """A positive finite number."""
    number = real_number(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return number


def positive_int(value, name: str, minimum: int = 1) -> int:
    """An integer >= ``minimum`` (a float with an integer value is accepted)."""
    number = real_number(value)
    if not (math.isfinite(number) and number == int(number) and number >= minimum) \
            or not (_is_int(value) or isinstance(value, (float, np.floating))):
        what = {0: "a non-negative integer", 1: "a positive integer"}.get(
            minimum, f"an integer >= {minimum}")
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(number)


def non_negative_int(value, name: str) -> int:
    """An integer >= 0."""
    return positive_int(value, name, minimum=0)


def shape(value, name: str = "shape") -> tuple[int, ...]:
    """A grid shape ``(n,)`` or ``(h, w)`` of positive integers; an int means ``(n,)``."""
    dims = (value,) if np.isscalar(value) else tuple(value)
    if len(dims) not in (1, 2) or not all(_is_int(n) and n >= 1 for n in dims):
        raise ValueError(f"{name} must be (n,) or (h, w) of positive integers, got {value!r}")
    return tuple(int(n) for n in dims)


def signal(value, name: str, shape=None, *, ndims=(1, 2), dtype=np.float64) -> np.ndarray:
    """A finite real array (1-D or 2-D by default), optionally of a given shape, as ``dtype``."""
    array = np.asarray(value)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number)
                                     or array.dtype == bool) or np.iscomplexobj(array):
        raise ValueError(f"{name} must be a real numeric array")
    if shape is not None and array.shape != tuple(shape):
        raise ValueError(f"{name} has shape {array.shape}, expected {tuple(shape)}")
    if array.ndim not in ndims:
        allowed = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {allowed}, got {array.ndim} axes (shape {array.shape})")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.all(np.isfinite(array)):
        count = array.size - int(np.count_nonzero(np.isfinite(array)))
        raise ValueError(f"{name} contains {count} non-finite values (NaN or infinity); clean or "
                         "mask those values first")
    return array.astype(dtype, copy=False) if dtype is not None else array


def weights(value, expected_shape, dtype) -> np.ndarray:
    """Weights of a given shape, finite, as a contiguous array of ``dtype``."""
    array = np.asarray(value)
    if array.shape != tuple(expected_shape):
        raise ValueError(f"weights have shape {array.shape}, expected {tuple(expected_shape)} "
                         "(channels, *shape)")
    if array.dtype == object or not np.issubdtype(array.dtype, np.number) \
            or np.iscomplexobj(array):
        raise ValueError("weights must be a real numeric array")
    if not np.all(np.isfinite(array)):
        raise ValueError("weights contain NaN or infinity")
    return np.ascontiguousarray(array, dtype=dtype)


def filter_on_grid(taps: np.ndarray, grid) -> np.ndarray:
    """Refuse a filter larger than the grid along some axis; return the taps."""
    if taps.ndim != len(grid):
        raise ValueError(f"filter has {taps.ndim} axes but the grid {tuple(grid)} has "
                         f"{len(grid)}; pass a {len(grid)}-D filter")
    if any(t > n for t, n in zip(taps.shape, grid)):
        raise ValueError(f"filter of size {taps.shape} is larger than the signal {tuple(grid)}; "
                         "use a smaller filter or a larger signal")
    return taps


def step_size(value, limit: float) -> float:
    """A step size in the stable range (0, limit) of gradient descent (E10: limit = 2/lambda_max)."""
    eta = real_number(value)
    if not 0 < eta < limit:                                     # False for NaN
        raise ValueError(f"step_size must lie in (0, 2/lambda_max) = (0, {limit:.6g}) for stable "
                         f"gradient descent, got {value!r}")
    return eta


def iterations(value, name: str = "iterations") -> np.ndarray:
    """A non-empty 1-D list of iteration numbers (non-negative integers) as int64."""
    t = np.atleast_1d(np.asarray(value))
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D list of iteration numbers")
    if t.dtype == bool or not np.issubdtype(t.dtype, np.number) or np.iscomplexobj(t):
        raise ValueError(f"{name} must hold non-negative integers, got {value!r}")
    if not np.all(np.isfinite(t)) or np.any(t < 0) or np.any(t != np.round(t)):
        raise ValueError(f"{name} must hold non-negative integers, got {value!r}")
    return t.astype(np.int64)
