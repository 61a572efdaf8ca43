"""Convolution filters u of the generator (E1).

A filter is a small array of taps, centred: along each axis of odd length ``L`` the taps sit at
offsets ``m = -(L-1)/2 .. (L-1)/2`` and ``taps[m + (L-1)/2]`` is ``u[m]``.  The generator applies
it as circular *convolution* on a periodic grid, ``(U c)[i] = sum_m u[m] c[i - m]`` (E1).

Every function that takes a filter accepts either one of the constructors below or any NumPy
array of taps.  An axis of even length ``L`` is centred by the documented rule of
:func:`as_taps`: a zero tap is appended, so the taps occupy offsets ``-L/2 .. L/2 - 1``.

All constructors return float64 arrays with unit l2 norm unless ``normalize=False``.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = [
    "gaussian", "triangle", "upsampling", "box", "delta", "random",
    "as_taps", "on_grid", "is_separable", "separable_factors", "parse_filter", "default_filter",
]


def _finish(taps: np.ndarray, normalize: bool) -> np.ndarray:
    taps = np.asarray(taps, dtype=np.float64)
    if normalize:
        taps = taps / np.linalg.norm(taps)
    return taps


def _outer(taps_1d: np.ndarray, ndim: int) -> np.ndarray:
    if ndim not in (1, 2):
        raise ValueError(f"ndim must be 1 or 2, got {ndim!r}")
    return taps_1d if ndim == 1 else np.outer(taps_1d, taps_1d)


def gaussian(std: float = 2.0, ndim: int = 1, *, size: int | None = None,
             normalize: bool = True) -> np.ndarray:
    """Sampled Gaussian ``exp(-m^2 / (2 std^2))``; 2-D is the (separable) outer product.

    ``size`` is the number of taps per axis (odd); by default ``2 * ceil(3 std) + 1``.
    """
    if not (np.isfinite(std) and std > 0):
        raise ValueError(f"gaussian std must be a positive number, got {std!r}")
    if size is None:
        size = 2 * math.ceil(3 * std - 1e-9) + 1
    if int(size) != size or size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian size must be a positive odd integer, got {size!r}")
    m = np.arange(size) - (size - 1) / 2
    return _finish(_outer(np.exp(-m**2 / (2 * std**2)), ndim), normalize)


def triangle(p: int = 2, ndim: int = 1, *, normalize: bool = True) -> np.ndarray:
    """Hat of length ``2p - 1``: ``u[m] = p - |m|`` for ``|m| < p`` (``p = 1`` is the delta)."""
    if int(p) != p or p < 1:
        raise ValueError(f"triangle p must be a positive integer, got {p!r}")
    m = np.arange(-(p - 1), p)
    return _finish(_outer((p - np.abs(m)).astype(np.float64), ndim), normalize)


_UPSAMPLING = {
    # Upsampling by 2 (zero insertion, then interpolation) is convolution with these taps.
    "nearest": ([1.0, 1.0], 1),
    "linear": ([0.5, 1.0, 0.5], 1),
    "bilinear": ([0.5, 1.0, 0.5], 2),
    # Keys cubic convolution (a = -0.5) sampled at half-integer offsets.
    "cubic": ([-0.0625, 0.0, 0.5625, 1.0, 0.5625, 0.0, -0.0625], 1),
    "bicubic": ([-0.0625, 0.0, 0.5625, 1.0, 0.5625, 0.0, -0.0625], 2),
}


def upsampling(kind: str = "linear", ndim: int | None = None, *,
               normalize: bool = True) -> np.ndarray:
    """The filter that x2 upsampling of kind ``kind`` induces.

    Kinds: ``"nearest"``, ``"linear"``, ``"bilinear"`` (2-D), ``"cubic"``, ``"bicubic"`` (2-D).
    ``"nearest"`` gives the even box ``[1, 1]``, centred by the rule of :func:`as_taps`
    (``u[-1] = u[0] = 1``).  ``ndim`` overrides the dimension implied by the name.
    """
    if kind not in _UPSAMPLING:
        raise ValueError(f"unknown upsampling kind {kind!r}; choose one of {sorted(_UPSAMPLING)}")
    taps, implied = _UPSAMPLING[kind]
    return _finish(_outer(np.array(taps), implied if ndim is None else ndim), normalize)


def box(width: int = 3, ndim: int = 1, *, normalize: bool = True) -> np.ndarray:
    """Constant taps of length ``width`` (an even width is centred by :func:`as_taps`)."""
    if int(width) != width or width < 1:
        raise ValueError(f"box width must be a positive integer, got {width!r}")
    return _finish(_outer(np.ones(int(width)), ndim), normalize)


def delta(ndim: int = 1) -> np.ndarray:
    """The identity filter: a single tap of value 1 (flat spectrum, no interpolation)."""
    return _outer(np.ones(1), ndim)


def random(width: int = 5, seed: int = 0, ndim: int = 1, *, normalize: bool = True) -> np.ndarray:
    """iid standard-normal taps (non-interpolating, generally asymmetric), ``width`` per axis."""
    if int(width) != width or width < 1:
        raise ValueError(f"random filter width must be a positive integer, got {width!r}")
    rng = np.random.default_rng(seed)
    return _finish(rng.standard_normal((int(width),) * ndim), normalize)


def as_taps(u, ndim: int) -> np.ndarray:
    """(E1) Validate a filter and return its taps as an odd-sized, centred float64 array.

    ``u`` must be real, finite, not all zero, with ``ndim`` axes.  An axis of even length ``L``
    gets one zero tap appended, so the taps sit at offsets ``-L/2 .. L/2 - 1``.
    """
    taps = np.asarray(u)
    if taps.dtype == object or not np.issubdtype(taps.dtype, np.number):
        raise ValueError("filter taps must be a numeric array")
    if np.iscomplexobj(taps):
        raise ValueError("filter taps must be real")
    taps = taps.astype(np.float64)
    if taps.ndim != ndim:
        raise ValueError(f"filter has {taps.ndim} axes but the signal has {ndim}; "
                         f"pass a {ndim}-D filter (e.g. ndim={ndim} in minidip.filters)")
    if taps.size == 0:
        raise ValueError("filter has no taps")
    if not np.all(np.isfinite(taps)):
        raise ValueError("filter taps contain NaN or infinity")
    if not np.any(taps):
        raise ValueError("filter taps are all zero")
    pad = [(0, 1 - n % 2) for n in taps.shape]
    return np.pad(taps, pad) if any(p[1] for p in pad) else taps


def on_grid(taps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Place centred taps on a periodic grid: ``grid[m mod shape] = u[m]``.

    With this array, ``np.fft.ifftn(np.fft.fftn(grid) * np.fft.fftn(c))`` is ``U c`` of E1.
    Raises ValueError if the filter is larger than the grid along some axis.
    """
    taps = np.asarray(taps, dtype=np.float64)
    shape = tuple(int(n) for n in shape)
    if any(t > n for t, n in zip(taps.shape, shape)):
        raise ValueError(f"filter of size {taps.shape} is larger than the signal {shape}; "
                         "use a smaller filter or a larger signal")
    grid = np.zeros(shape)
    grid[tuple(slice(0, t) for t in taps.shape)] = taps
    return np.roll(grid, [-(t // 2) for t in taps.shape], axis=tuple(range(len(shape))))


def separable_factors(taps: np.ndarray, rtol: float = 1e-12):
    """Return ``(rows, cols)`` with ``taps == outer(rows, cols)`` if a 2-D filter has rank 1, else None."""
    taps = np.asarray(taps, dtype=np.float64)
    if taps.ndim != 2:
        return None
    uu, s, vt = np.linalg.svd(taps)
    if s[1:].sum() > rtol * s[0]:
        return None
    return uu[:, 0] * math.sqrt(s[0]), vt[0] * math.sqrt(s[0])


def is_separable(taps: np.ndarray) -> bool:
    """True for a 2-D filter of rank 1 (it runs as two 1-D passes)."""
    return separable_factors(taps) is not None


# --------------------------------------------------------------------------------------------
# Filters named by text specs (the command line, experiment tables).

def _gaussian(ndim, std, size=None):
    return gaussian(std, ndim=ndim, size=size)


# name: (constructor(ndim, *params), parsers of its parameters, how many are required)
_FILTERS = {
    "gaussian": (_gaussian, (float, int), 1),
    "triangle": (lambda ndim, p: triangle(p, ndim=ndim), (int,), 1),
    "box": (lambda ndim, width: box(width, ndim=ndim), (int,), 1),
    "upsampling": (lambda ndim, kind: upsampling(kind, ndim=ndim), (str,), 1),
    "delta": (lambda ndim: delta(ndim=ndim), (), 0),
    "random": (lambda ndim, width, seed=0: random(width, seed=seed, ndim=ndim),
               (int, int), 1),
}
_FILTER_HELP = ('"gaussian:STD[:SIZE]", "triangle:P", "box:WIDTH", "upsampling:KIND", "delta" or '
                '"random:WIDTH[:SEED]"')


def default_filter(ndim: int) -> str:
    """The filter spec that denoising uses when none is given: a 7x7 Gaussian of std 1.2 for
    images, a Gaussian of std 2 (13 taps) for 1-D signals."""
    return "gaussian:1.2:7" if ndim == 2 else "gaussian:2"


def parse_filter(spec: str, ndim: int) -> np.ndarray:
    """Filter taps from a text spec such as ``"gaussian:1.2:7"`` (std, size) or ``"box:3"``.

    Specs: ``gaussian:STD[:SIZE]``, ``triangle:P``, ``box:WIDTH``, ``upsampling:KIND`` (kinds of
    :func:`upsampling`), ``delta``, ``random:WIDTH[:SEED]``.  ``ndim`` (1 or 2)
    is the dimension of the signal; 2-D filters are the separable outer products.  Numeric
    parameters must be positive (a random filter's seed may be 0).
    """
    name, *args = str(spec).strip().split(":")
    if name not in _FILTERS:
        raise ValueError(f"unknown filter {spec!r}; use {_FILTER_HELP}")
    make, parsers, required = _FILTERS[name]
    if not required <= len(args) <= len(parsers):
        raise ValueError(f"filter {spec!r} has {len(args)} parameters; use {_FILTER_HELP}")
    values = []
    for position, (text, parse) in enumerate(zip(args, parsers)):
        try:
            value = parse(text)
        except ValueError:
            raise ValueError(f"filter {spec!r}: {text!r} is not a valid {parse.__name__}") from None
        is_seed = name == "random" and position == 1
        if parse is not str and not (value >= 0 if is_seed else value > 0):
            raise ValueError(f"filter {spec!r}: {text!r} must be positive")
        values.append(value)
    return make(ndim, *values)
