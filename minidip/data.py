"""Embedded signals and images, and reading and writing of user files.

Synthetic signals (:func:`bandlimited`, :func:`sinusoids`, :func:`step`,
:func:`piecewise_smooth`, :func:`white_noise`, :func:`shepp_logan`) are 1-D or 2-D float64
arrays, deterministic given their arguments and ``seed``.  Real data come from the sample files
shipped inside matplotlib, so nothing is fetched at run time: :func:`mri`, :func:`grace_hopper`
(2-D, grayscale in [0, 1]; ``grace_hopper(color=True)`` in colour) and :func:`eeg`,
:func:`membrane` (1-D recordings).

Images are indexed ``[row, column]`` with row 0 at the top, as ``plt.imshow`` shows them by
default.  User files are read by :func:`load` and written atomically by :func:`save`.
Colour images are arrays of shape ``(3, h, w)``, channels first (R, G, B), as the generators
produce them; ``load(path, color=True)`` returns one for a colour file and :func:`save` writes
one as an RGB image.
"""
from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np

from . import _io
from . import validation as _check

__all__ = [
    "bandlimited", "sinusoids", "step", "piecewise_smooth", "white_noise", "shepp_logan",
    "mri", "grace_hopper", "eeg", "membrane", "load", "save", "SUFFIXES",
]

#: File suffixes understood by :func:`load` and :func:`save` (compared case-insensitively).
SUFFIXES = (".npy", ".png", ".jpg", ".jpeg")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

#: ITU-R BT.601 luma weights of R, G, B.
LUMA = np.array([0.299, 0.587, 0.114])


def bandlimited(shape, p: int = 6, seed: int = 0, max_freq: int | None = None) -> np.ndarray:
    """A random real signal whose DFT is non-zero on exactly ``p`` Fourier modes, unit RMS.

    The modes are drawn among the non-zero frequencies f with |f| <= ``max_freq`` (radial in
    2-D; default: the smallest radius offering at least 2p modes), in conjugate pairs, plus the
    zero frequency when ``p`` is odd.
    """
    shape = (shape,) if np.isscalar(shape) else tuple(shape)
    if int(p) != p or p < 1:
        raise ValueError(f"p must be a positive integer, got {p!r}")
    rng = np.random.default_rng(seed)
    freqs = np.meshgrid(*[np.fft.fftfreq(n, 1 / n) for n in shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))
    # A conjugate pair is represented by its member whose flat index is smaller.
    flat = np.arange(radius.size).reshape(shape)
    partner = np.roll(np.flip(flat, axis=tuple(range(len(shape)))), 1,
                      axis=tuple(range(len(shape))))
    pairs = (flat < partner) & (radius > 0)
    if max_freq is None:
        radii = np.sort(radius[pairs])
        max_freq = radii[min(p, radii.size) - 1] if radii.size else 0
    candidates = np.flatnonzero(pairs & (radius <= max_freq))
    if p // 2 > candidates.size or (p > candidates.size * 2 + 1):
        raise ValueError(f"only {2 * candidates.size + 1} modes have |f| <= {max_freq}; "
                         f"raise max_freq or lower p")
    chosen = rng.choice(candidates, size=p // 2, replace=False)
    spectrum = np.zeros(shape, complex)
    coef = rng.standard_normal(chosen.size) + 1j * rng.standard_normal(chosen.size)
    spectrum.flat[chosen] = coef
    spectrum.flat[partner.flat[chosen]] = np.conj(coef)
    if p % 2:
        spectrum.flat[0] = rng.standard_normal()
    x = np.fft.ifftn(spectrum).real
    return x / np.sqrt(np.mean(x**2))


def sinusoids(shape, freqs, amplitudes=None, phases=None) -> np.ndarray:
    """A sum of cosines with integer frequencies, exactly periodic on the grid.

    Parameters
    ----------
    shape : int or tuple of int
        ``(n,)`` or ``(n0, n1)``.
    freqs : sequence
        One integer frequency (cycles per signal length) per term in 1-D, one pair
        ``(f0, f1)`` per term in 2-D.
    amplitudes, phases : sequence of float, optional
        One per term; default all ones and all zeros.

    Returns
    -------
    x : ndarray of float64, shape ``shape``
        ``x[t] = sum_k amplitudes[k] cos(2 pi sum_d freqs[k][d] t_d / n_d + phases[k])``.
        A term with ``0 < |f| < n/2`` puts ``amplitude n/2 exp(+-i phase)`` on the DFT modes
        ``+-f`` and nothing elsewhere.
    """
    shape = _check.shape(shape)
    f = np.asarray(freqs)
    if f.ndim == 1 and len(shape) == 1:
        f = f[:, None]
    if f.ndim != 2 or f.shape[1] != len(shape) or f.shape[0] == 0:
        raise ValueError(f"freqs must hold one frequency per term in 1-D and one pair per term "
                         f"in 2-D for shape {shape}, got {freqs!r}")
    if not np.issubdtype(f.dtype, np.integer):
        raise ValueError(f"freqs must be integers (cycles per signal length) so the signal is "
                         f"periodic on the grid, got {freqs!r}")
    terms = f.shape[0]
    amplitudes = np.ones(terms) if amplitudes is None else np.asarray(amplitudes, np.float64)
    phases = np.zeros(terms) if phases is None else np.asarray(phases, np.float64)
    for name, value in (("amplitudes", amplitudes), ("phases", phases)):
        if value.shape != (terms,) or not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must hold {terms} finite numbers (one per frequency), "
                             f"got {value!r}")
    grid = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    x = np.zeros(shape)
    for fk, ak, pk in zip(f, amplitudes, phases):
        x += ak * np.cos(2 * np.pi * sum(fd * td for fd, td in zip(fk, grid)) + pk)
    return x


def _piece_starts(n: int, edges: np.ndarray) -> np.ndarray:
    """First sample of each piece after the first, along an axis of length ``n``."""
    starts = np.rint(edges * n).astype(int)
    if starts[0] < 1 or starts[-1] > n - 1 or np.any(np.diff(starts) == 0):
        raise ValueError(f"edges {edges} do not give distinct jump positions inside an axis "
                         f"of length {n}; use fewer or more widely spaced edges")
    return starts


def step(shape, edges=(0.5,), levels=(0.0, 1.0)) -> np.ndarray:
    """A piecewise-constant signal with jumps at given fractions of the length.

    Parameters
    ----------
    shape : int or tuple of int
        ``(n,)`` or ``(n0, n1)``.
    edges : sequence of float
        Strictly increasing fractions in (0, 1).  Along an axis of length ``n`` the edge ``e``
        starts a new piece at sample ``round(e * n)`` (nearest integer, ties to even); these
        samples must be distinct and inside ``1 .. n - 1``.
    levels : sequence of float
        Values used in turn, cyclically: in 1-D sample ``i`` of piece ``k(i)`` (the number
        of edges before it) is ``levels[k(i) % len(levels)]``; in 2-D pixel ``(i, j)`` is
        ``levels[(k(i) + k(j)) % len(levels)]``, a checkerboard of blocks.  Neighbouring
        pieces must get different levels, so every edge is a jump.

    Returns
    -------
    x : ndarray of float64, shape ``shape``
        Default: 0 on the first half and 1 on the second (1-D); four quadrants 0, 1 / 1, 0
        (2-D).  On the periodic grid there is also a jump at the wrap-around when the first
        and last pieces differ.
    """
    shape = _check.shape(shape)
    edges = np.asarray(edges, np.float64).reshape(-1)
    levels = np.asarray(levels, np.float64).reshape(-1)
    if edges.size == 0 or not (np.all(edges > 0) and np.all(edges < 1)
                               and np.all(np.diff(edges) > 0)):
        raise ValueError(f"edges must be strictly increasing fractions in (0, 1), got {edges}")
    used = levels[np.arange(len(shape) * edges.size + 1) % max(levels.size, 1)]
    if levels.size < 2 or not np.all(np.isfinite(levels)) or np.any(used[1:] == used[:-1]):
        raise ValueError(f"levels must be at least 2 finite numbers such that neighbouring "
                         f"pieces differ (levels are reused cyclically), got {levels}")
    pieces = [np.searchsorted(_piece_starts(n, edges), np.arange(n), side="right")
              for n in shape]
    index = pieces[0] if len(shape) == 1 else pieces[0][:, None] + pieces[1][None, :]
    return levels[index % levels.size]


def piecewise_smooth(shape, jumps: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth pieces separated by a few jumps, scaled to [0, 1].

    A smooth periodic field (three cosines of frequency at most 2) plus ``jumps`` constant
    offsets, each switched on over one side of a random cut: a sample position in 1-D, a
    straight line in 2-D.  Each offset has magnitude in [0.5, 1], at least twice the largest
    change of the smooth part between neighbouring samples when ``n >= 64``, so the jumps
    stand out.

    Parameters
    ----------
    shape : int or tuple of int
        ``(n,)`` or ``(n0, n1)``; in 1-D ``n > jumps``.
    jumps : int
        Number of cuts (>= 0).  In 1-D the cuts are at distinct samples in ``1 .. n - 1``.
    seed : int
        Seed of ``numpy.random.default_rng``.

    Returns
    -------
    x : ndarray of float64, shape ``shape``, min 0 and max 1.
    """
    shape = _check.shape(shape)
    jumps = _check.non_negative_int(jumps, "jumps")
    if len(shape) == 1 and jumps > shape[0] - 1:
        raise ValueError(f"{jumps} jumps need a signal longer than {jumps}, got n={shape[0]}")
    rng = np.random.default_rng(seed)
    freqs = rng.integers(-2, 3, size=(3, len(shape)))
    freqs[np.all(freqs == 0, axis=1), 0] = 1
    amplitudes = rng.uniform(0.1, 0.2, size=3)
    x = sinusoids(shape, freqs, amplitudes, rng.uniform(0, 2 * np.pi, size=3))
    heights = rng.choice([-1.0, 1.0], size=jumps) * rng.uniform(0.5, 1.0, size=jumps)
    if len(shape) == 1:
        cuts = rng.choice(np.arange(1, shape[0]), size=jumps, replace=False)
        for cut, height in zip(cuts, heights):
            x[cut:] += height
    else:
        rows, cols = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
        for height in heights:
            centre, angle = rng.uniform(0.2, 0.8, size=2), rng.uniform(0, np.pi)
            side = np.cos(angle) * (rows - centre[0]) + np.sin(angle) * (cols - centre[1]) >= 0
            x[side] += height
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros(shape)


def white_noise(shape, std: float = 1.0, seed: int = 0) -> np.ndarray:
    """Independent Gaussian samples of mean 0 and standard deviation ``std``.

    Parameters
    ----------
    shape : int or tuple of int
        ``(n,)`` or ``(n0, n1)``.
    std : float
        Standard deviation, finite and >= 0.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same samples.

    Returns
    -------
    x : ndarray of float64, shape ``shape``
    """
    shape = _check.shape(shape)
    if not (np.isscalar(std) and np.isfinite(std) and std >= 0):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}")
    return float(std) * np.random.default_rng(seed).standard_normal(shape)


# Modified Shepp-Logan phantom (Toft 1996, as in MATLAB's phantom): intensity, semi-axes a
# (along x) and b (along y), centre (x0, y0), rotation in degrees, on [-1, 1]^2 with y up.
_SHEPP_LOGAN = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0.0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18.0),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18.0),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0.0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0.0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0.0),
    (0.1, 0.0230, 0.0230, 0.0, -0.606, 0.0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0.0),
)


def shepp_logan(n: int = 128) -> np.ndarray:
    """The modified Shepp-Logan head phantom, drawn from its 10 ellipses.

    Parameters
    ----------
    n : int
        Side length (>= 2).

    Returns
    -------
    x : ndarray of float64, shape ``(n, n)``, values in [0, 1]
        Pixel ``(i, j)`` samples the point ``x = (2 j - n + 1) / (n - 1)``,
        ``y = (n - 1 - 2 i) / (n - 1)`` of [-1, 1]^2 (row 0 is the top, y = 1), as MATLAB's
        ``phantom('Modified Shepp-Logan', n)``.  A point inside ellipse ``k`` (boundary
        included) receives its intensity; the intensities add up to 1 (skull), 0.2 (brain),
        0 (ventricles), 0.1 (where the left ventricle meets the upper ellipse), 0.3 and 0.4
        (small features), 0 outside.  Only the skull and the outside are left-right
        symmetric: the two ventricles differ in size, as do two of the three small ellipses
        at the bottom.
    """
    n = _check.positive_int(n, "n", minimum=2)
    coord = (2 * np.arange(n) - (n - 1)) / (n - 1)
    x, y = np.meshgrid(coord, -coord)
    image = np.zeros((n, n))
    for value, a, b, x0, y0, degrees in _SHEPP_LOGAN:
        c, s = math.cos(math.radians(degrees)), math.sin(math.radians(degrees))
        u, v = x - x0, y - y0
        inside = ((c * u + s * v) / a) ** 2 + ((-s * u + c * v) / b) ** 2 <= 1
        image[inside] += value
    # Rounding of 1 - 0.8 - 0.2 leaves ~1e-17 below zero inside the ventricles.
    return np.clip(image, 0.0, 1.0)


def _block_mean(x: np.ndarray, factor) -> np.ndarray:
    """Average over non-overlapping blocks of ``factor`` samples per axis, cropping the end."""
    factor = _check.positive_int(factor, "downsample")
    if factor > min(x.shape):
        raise ValueError(f"downsample={factor} is larger than the data {x.shape}; "
                         f"use at most {min(x.shape)}")
    if factor == 1:
        return x
    blocks = [n // factor for n in x.shape]
    x = x[tuple(slice(0, b * factor) for b in blocks)]
    split = [d for b in blocks for d in (b, factor)]
    return x.reshape(split).mean(axis=tuple(range(1, 2 * x.ndim, 2)))


def _sample_bytes(name: str) -> bytes:
    from matplotlib import cbook

    with cbook.get_sample_data(name) as file:  # .gz files come back decompressed
        return file.read()


def mri(downsample: int = 1) -> np.ndarray:
    """A sagittal MRI slice of a head (matplotlib's sample ``s1045.ima.gz``), in [0, 1].

    Parameters
    ----------
    downsample : int
        Block size: ``downsample=2`` averages 2 x 2 blocks.  When it does not divide 256 the
        last rows and columns are cropped (``256 // downsample`` blocks per axis).

    Returns
    -------
    x : ndarray of float64, shape ``(256 // downsample,) * 2``
        The 256 x 256 big-endian 16-bit raw values (0 .. 215 in this file) divided by their
        maximum, so the full-resolution image has min 0 and max 1, then block-averaged.
        Row 0 is the top of the head; the face looks left.
    """
    raw = np.frombuffer(_sample_bytes("s1045.ima.gz"), ">u2").reshape(256, 256)
    image = (raw - raw.min()) / float(raw.max() - raw.min())
    return _block_mean(image, downsample)


def grace_hopper(downsample: int = 1, color: bool = False) -> np.ndarray:
    """A portrait of Grace Hopper (matplotlib's sample ``grace_hopper.jpg``).

    Parameters
    ----------
    downsample : int
        Block size for averaging, as in :func:`mri`; the 600 x 512 image is cropped at the
        bottom and right when ``downsample`` does not divide both sides.
    color : bool
        False: grayscale; True: the three colour channels.

    Returns
    -------
    x : ndarray of float64, values in [0, 1]
        Grayscale, shape ``(600 // downsample, 512 // downsample)``: ITU-R BT.601 luma
        ``0.299 R + 0.587 G + 0.114 B`` of the 8-bit RGB values / 255, then block-averaged.
        Colour, shape ``(3, 600 // downsample, 512 // downsample)``: R, G, B / 255, each
        block-averaged.  Row 0 is the top of the picture.
    """
    from matplotlib import cbook, image as mimage

    with cbook.get_sample_data("grace_hopper.jpg") as file:
        rgb = mimage.imread(file, format="jpg") / 255.0
    if color:
        return np.stack([_block_mean(rgb[:, :, c], downsample) for c in range(3)])
    return _block_mean(rgb @ LUMA, downsample)


def eeg(channel: int = 0, downsample: int = 1) -> np.ndarray:
    """One channel of an EEG recording (matplotlib's sample ``eeg.dat``).

    The file holds 800 time samples x 4 channels of little-endian float64, each channel with
    mean about 0 and standard deviation about 1 (matplotlib shows it over 10 s, i.e. 80 Hz).

    Parameters
    ----------
    channel : int
        0, 1, 2 or 3.
    downsample : int
        Block size for averaging consecutive samples (the end is cropped as in :func:`mri`).

    Returns
    -------
    x : ndarray of float64, shape ``(800 // downsample,)``, the recorded values unchanged.
    """
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) \
            or not 0 <= channel < 4:
        raise ValueError(f"channel must be 0, 1, 2 or 3 (eeg.dat has 4 channels), "
                         f"got {channel!r}")
    data = np.frombuffer(_sample_bytes("eeg.dat"), "<f8").reshape(800, 4)
    return _block_mean(data[:, channel].astype(np.float64), downsample)


def membrane(downsample: int = 1) -> np.ndarray:
    """A recording of a cell's membrane potential (matplotlib's sample ``membrane.dat``).

    12000 little-endian float32 samples at 0.5 ms intervals (6 s): a resting level near -0.67,
    a depolarisation from sample ~900 and a train of spikes up to about 0.04 until sample
    ~11000.  Multiply by 100 for millivolts, as matplotlib's examples do.

    Parameters
    ----------
    downsample : int
        Block size for averaging consecutive samples (the end is cropped as in :func:`mri`).

    Returns
    -------
    x : ndarray of float64, shape ``(12000 // downsample,)``
    """
    data = np.frombuffer(_sample_bytes("membrane.dat"), "<f4").astype(np.float64)
    return _block_mean(data, downsample)


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"unsupported file type {path.suffix or '(none)'!r} for {path}; "
                         f"use one of {', '.join(SUFFIXES)}")
    return suffix


def _decoded(pixels: np.ndarray, path: Path, color: bool) -> np.ndarray:
    """Decoded image -> float64 in [0, 1]: (h, w) grayscale, or (3, h, w) for a colour image
    when ``color``.  Integer pixels are divided by their max; an alpha channel is dropped."""
    if np.issubdtype(pixels.dtype, np.integer):
        pixels = pixels / float(np.iinfo(pixels.dtype).max)
    pixels = np.asarray(pixels, np.float64)
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        rgb = pixels[:, :, :3]
        return np.moveaxis(rgb, -1, 0) if color else rgb @ LUMA
    if pixels.ndim == 2:
        return pixels
    raise ValueError(f"{path} decodes to pixels of shape {pixels.shape}; expected a grayscale, "
                     f"RGB or RGBA image")


def load(path, color: bool = False) -> np.ndarray:
    """Read a 1-D signal or a 2-D (grayscale or colour) image from a ``.npy``, PNG or JPEG file.

    Parameters
    ----------
    path : str or os.PathLike
        A file whose suffix (any case) is one of :data:`SUFFIXES`.
    color : bool
        False (default): a colour image is converted to grayscale.  True: a colour image is
        returned as its three channels, shape ``(3, h, w)``, and a ``.npy`` file may hold such
        an array; a grayscale image or a 1-D/2-D ``.npy`` array is returned as with False.

    Returns
    -------
    x : ndarray of float64, 1-D or 2-D, or ``(3, h, w)`` with ``color=True``
        ``.npy``: the stored real numbers (any real dtype), unchanged.  PNG/JPEG (decoded by
        ``matplotlib.image.imread``, i.e. Pillow): values in [0, 1], 8-bit values / 255 and
        16-bit grayscale / 65535; colour is converted with the ITU-R BT.601 luma weights
        unless ``color``, and an alpha channel is dropped.  matplotlib decodes PNG to float32,
        so PNG values carry float32 rounding (< 1e-7).  Row 0 is the top of the image.

    Raises
    ------
    ValueError
        Missing file, unsupported suffix, a file that cannot be decoded, an array that is not
        1-D or 2-D (or ``(3, h, w)`` with ``color``), non-real, empty, or holds nan/inf.
    """
    path = Path(path)
    suffix = _suffix(path)
    if not path.is_file():
        raise ValueError(f"no such file: {path}" if not path.exists()
                         else f"{path} is not a regular file")
    if suffix == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises ValueError, OSError, EOFError... on bad files
            raise ValueError(f"cannot read {path} as a .npy array ({err}); "
                             f"write it with numpy.save") from err
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
                or array.dtype == bool):
            raise ValueError(f"{path} holds {array.dtype} values; expected real numbers")
        array = array.astype(np.float64)
    else:
        from matplotlib import image as mimage

        try:
            pixels = mimage.imread(path, format=suffix[1:])
        except Exception as err:  # Pillow raises OSError, SyntaxError, ValueError... on bad files
            raise ValueError(f"cannot read {path} as a {suffix[1:].upper()} image ({err}); "
                             f"check that the file is a valid image") from err
        array = _decoded(pixels, path, color)
    if color and array.ndim == 3:
        return np.ascontiguousarray(_colour(array, str(path)))
    return np.ascontiguousarray(_check.signal(array, str(path)))


def _colour(array, name: str) -> np.ndarray:
    """A finite real ``(3, h, w)`` array as float64 (ValueError otherwise)."""
    array = _check.signal(array, name, ndims=(3,))
    if array.shape[0] != 3:
        raise ValueError(f"{name} has shape {array.shape}; a colour image has shape (3, h, w) "
                         "(channels first)")
    return array


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def save(path, array, *, data_range=(0.0, 1.0), bits: int = 8, protect=()) -> Path:
    """Write a signal or image atomically: to a temporary file, then renamed over ``path``.

    Parameters
    ----------
    path : str or os.PathLike
        Destination with a suffix from :data:`SUFFIXES`; its directory must exist.
    array : array_like
        1-D or 2-D finite real values, or a colour image of shape ``(3, h, w)`` (channels
        first; written as an RGB image, or stored as is in ``.npy``).  Images must be 2-D or
        colour.
    data_range : (float, float)
        For PNG/JPEG: values are clipped to ``[lo, hi]`` and mapped linearly to black..white.
        Ignored for ``.npy``.
    bits : {8, 16}
        PNG sample depth (16-bit for grayscale only, via Pillow); JPEG is always 8-bit.
    protect : path or sequence of paths, optional
        Files that must not be overwritten, typically the input; compared after resolving
        symbolic links (and as the same file on disk).

    Returns
    -------
    path : pathlib.Path
        The path written.

    Notes
    -----
    ``.npy`` stores float64 values exactly.  PNG quantizes to ``round(v * (2**bits - 1))``
    levels of the clipped, rescaled values, so :func:`load` gives them back within half a
    level; JPEG (quality 95) is lossy.  The temporary file lives in the destination directory
    (so the rename is atomic) and is removed on any error, leaving no partial output.
    """
    path = Path(path)
    suffix = _suffix(path)
    protect = [protect] if isinstance(protect, (str, os.PathLike)) else list(protect or ())
    for other in protect:
        if _same_file(path, Path(other)):
            raise ValueError(f"refusing to overwrite the input {other}; choose another output "
                             f"path")
    if not path.parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {path.parent} does not exist")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory")
    array = np.asarray(array)
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == bool):
        raise ValueError(f"cannot save {array.dtype} values; expected real numbers")
    if array.ndim == 3:
        array = _colour(array, "the colour image to save")
    else:
        array = _check.signal(array, "the array to save")
    if suffix == ".npy":
        write = functools.partial(np.save, arr=array, allow_pickle=False)
    else:
        write = _image_writer(array, suffix, data_range, bits)
    try:
        _io.atomic_write(path, write)
    except OSError as err:
        raise ValueError(f"cannot write {path}: {err.strerror or err}") from err
    return path


def _image_writer(array: np.ndarray, suffix: str, data_range, bits):
    """Validate the image options; return ``write(file)`` saving the quantized image."""
    from PIL import Image

    if array.ndim == 1:
        raise ValueError("a 1-D array cannot be written as an image; save it as .npy")
    try:
        lo, hi = (float(v) for v in data_range)
    except (TypeError, ValueError):
        raise ValueError(f"data_range must be a pair (lo, hi), got {data_range!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"data_range must be finite with lo < hi, got {data_range!r}")
    if bits not in (8, 16) or (bits == 16 and (suffix != ".png" or array.ndim == 3)):
        raise ValueError(f"bits must be 8, or 16 for a grayscale PNG, got {bits!r} for "
                         f"{'a colour ' if array.ndim == 3 else ''}{suffix}")
    top = 2**bits - 1
    levels = np.rint((np.clip(array, lo, hi) - lo) / (hi - lo) * top)
    if array.ndim == 3:
        levels = np.moveaxis(levels, 0, -1)                  # (3, h, w) -> (h, w, 3): RGB
    image = Image.fromarray(levels.astype(np.uint8 if bits == 8 else np.uint16))
    options = dict(format="PNG") if suffix == ".png" else dict(format="JPEG", quality=95)
    return functools.partial(image.save, **options)
