"""Classical baselines to compare restorations with.

Denoising: linear filters whose parameters are chosen with the clean signal (oracle parameters,
so upper bounds for what such filters can do): :func:`gaussian_blur_baseline`,
:func:`wiener_baseline`.

Inpainting and super-resolution:

* :func:`harmonic_fill`: the missing pixels solve the discrete Laplace equation, with the known
  pixels as Dirichlet data (the smoothest fill in the sense of the Dirichlet energy).
* :func:`upsample_bicubic`: Keys cubic convolution (a = -0.5), the "bicubic" of PIL and MATLAB's
  imresize, with pixel centres aligned as in :class:`minidip.operators.Downsample`'s default
  block mean.

Images are 1-D or 2-D real arrays; results are float64.
"""
from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from . import metrics
from . import operators as _operators
from . import validation as _check

__all__ = ["gaussian_blur_baseline", "wiener_baseline", "harmonic_fill", "upsample_bicubic",
           "keys_cubic", "BLUR_STDS", "POWER_EXPONENTS", "POWER_AMPLITUDES"]

#: Blur widths searched by :func:`gaussian_blur_baseline` (std in samples).
BLUR_STDS = np.geomspace(0.2, 10.0, 80)
#: Power-law exponents and amplitudes searched by :func:`wiener_baseline` ("power").
POWER_EXPONENTS = np.linspace(0.5, 4.0, 29)
POWER_AMPLITUDES = np.geomspace(1e-6, 1e2, 81)


def gaussian_blur_baseline(y, clean):
    """The Gaussian blur of y (reflecting borders) of least error to ``clean``.

    Returns ``(output, std)``: the blur width in samples is searched over :data:`BLUR_STDS`.
    """
    from scipy import ndimage

    y, clean = np.asarray(y, np.float64), np.asarray(clean, np.float64)
    best = min(BLUR_STDS, key=lambda s: metrics.mse(ndimage.gaussian_filter(y, s), clean))
    return ndimage.gaussian_filter(y, best), float(best)


def wiener_baseline(y, clean, noise_std, model="oracle"):
    """The Wiener-type spectral filter H_f = P_f / (P_f + sigma^2) applied to y (periodic DFT).

    ``model="oracle"``: P_f = |xhat_f|^2 of the clean signal (unitary DFT), the best
    frequency-wise linear shrinkage for white noise, an upper bound for every linear
    shift-invariant denoiser.  ``model="power"``: P_f = A |f|^(-alpha) (f the radial frequency in
    cycles per sample; the mean passes unchanged) with A and alpha searched over
    :data:`POWER_AMPLITUDES` and :data:`POWER_EXPONENTS` for the least error to ``clean``.

    Returns ``(output, params)`` with params a dict ({} for "oracle", A and alpha for "power").
    """
    y, clean = np.asarray(y, np.float64), np.asarray(clean, np.float64)
    yhat = np.fft.fftn(y, norm="ortho")
    sigma2 = float(noise_std) ** 2

    def apply(gain):
        return np.fft.ifftn(yhat * gain, norm="ortho").real

    if model == "oracle":
        power = np.abs(np.fft.fftn(clean, norm="ortho")) ** 2
        return apply(power / (power + sigma2)), {}
    if model != "power":
        raise ValueError(f"model must be 'oracle' or 'power', got {model!r}")
    freqs = np.meshgrid(*[np.fft.fftfreq(n) for n in y.shape], indexing="ij")
    radius = np.sqrt(sum(f**2 for f in freqs))

    def gain(amplitude, alpha):          # P / (P + sigma^2) with P = A |f|^-alpha; 1 at f = 0
        return 1.0 / (1.0 + sigma2 * radius**alpha / amplitude)

    amplitude, alpha = min(((a, e) for e in POWER_EXPONENTS for a in POWER_AMPLITUDES),
                           key=lambda p: metrics.mse(apply(gain(*p)), clean))
    return apply(gain(amplitude, alpha)), {"A": float(amplitude), "alpha": float(alpha)}


# --------------------------------------------------------------------------------------------
# Inpainting and super-resolution.

def _check_known(known, shape) -> np.ndarray:
    known = _operators.Mask(known).mask                  # the operators' mask validation
    if known.shape != shape:
        raise ValueError(f"known has shape {known.shape}, expected the image's {shape}")
    return known


def _grid_edges(shape, periodic: bool):
    """Pairs (i, j) of flat indices of neighbouring pixels along each axis."""
    index = np.arange(math.prod(shape)).reshape(shape)
    first, second = [], []
    for axis, n in enumerate(shape):
        if n < 2:
            continue
        ahead = np.roll(index, -1, axis=axis)               # ahead[i] = index[i + 1 mod n]
        keep = [slice(None)] * len(shape)
        if not periodic:
            keep[axis] = slice(0, n - 1)
        first.append(index[tuple(keep)].ravel())
        second.append(ahead[tuple(keep)].ravel())
    return np.concatenate(first), np.concatenate(second)


def harmonic_fill(image, known, *, periodic=False) -> np.ndarray:
    """Fill the unknown pixels with the discrete harmonic interpolant of the known ones.

    The filled image x minimises the Dirichlet energy sum over neighbouring pixels (i, j) of
    (x_i - x_j)^2 with x = image on the known pixels; equivalently, the graph Laplacian
    (4 neighbours in 2-D, 2 in 1-D) of x vanishes at every unknown pixel.  Solved as one sparse
    linear system L_UU x_U = -L_UK x_K (scipy.sparse, direct).

    Boundary: with ``periodic=False`` the image edge has no neighbours beyond it (a natural,
    zero-flux boundary): in 1-D this is linear interpolation between known samples, constant
    beyond the first and last; a linear ramp in 2-D is reproduced exactly when the border pixels
    are known.  With ``periodic=True`` the grid wraps around, as minidip's signals do.

    Parameters
    ----------
    image : array (n,) or (h, w)
        Values at the known pixels (the others are ignored).
    known : array of bool, the shape of ``image``
        True where the pixel is known (the mask of :class:`minidip.operators.Mask`).
    periodic : bool

    Returns
    -------
    array of the image's shape, float64, equal to ``image`` on the known pixels.
    """
    image = _check.signal(image, "image").astype(np.float64)
    known = _check_known(known, image.shape)
    size = image.size
    i, j = _grid_edges(image.shape, periodic)
    weights = sp.coo_matrix((np.ones(2 * i.size), (np.r_[i, j], np.r_[j, i])),
                            shape=(size, size)).tocsr()
    laplacian = sp.diags(np.asarray(weights.sum(axis=1)).ravel()) - weights
    flat_known = known.ravel()
    unknown = np.flatnonzero(~flat_known)
    filled = image.ravel().copy()
    if unknown.size:
        inner = laplacian[unknown][:, unknown].tocsc()
        rhs = -(laplacian[unknown][:, np.flatnonzero(flat_known)] @ filled[flat_known])
        filled[unknown] = spla.spsolve(inner, rhs)
    return filled.reshape(image.shape)


def keys_cubic(t, a=-0.5) -> np.ndarray:
    """Keys' cubic convolution kernel W(t) (1981), support |t| < 2; a = -0.5 reproduces
    quadratics."""
    t = np.abs(np.asarray(t, dtype=np.float64))
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t < 1, near, np.where(t < 2, far, 0.0))


def _upsample_axis(x: np.ndarray, factor: int, axis: int) -> np.ndarray:
    n = x.shape[axis]
    source = (np.arange(n * factor) + 0.5) / factor - 0.5   # pixel centres, half-pixel aligned
    base = np.floor(source).astype(np.int64)
    out = 0.0
    for offset in (-1, 0, 1, 2):
        taps = keys_cubic(source - (base + offset))
        shape = [1] * x.ndim
        shape[axis] = -1
        # Edge pixels are replicated beyond the border.
        out = out + taps.reshape(shape) * np.take(x, np.clip(base + offset, 0, n - 1), axis=axis)
    return out


def upsample_bicubic(image, factor=2) -> np.ndarray:
    """Upsample by an integer ``factor`` per axis with Keys cubic convolution (a = -0.5).

    Output pixel i (per axis) sits at input coordinate ``(i + 0.5) / factor - 0.5``: the input
    pixel j is the centre of the output block ``factor j .. factor j + factor - 1``, which is
    the block that :class:`minidip.operators.Downsample` (default filter) averages into pixel
    j.  Separable (one 1-D pass per axis); pixels beyond the border replicate the edge.
    Bicubic here means Keys' kernel, as in PIL and MATLAB, not the cubic B-spline of
    ``scipy.ndimage.zoom(order=3)``.

    Parameters
    ----------
    image : array (n,) or (h, w)
    factor : int >= 1

    Returns
    -------
    array (factor n,) or (factor h, factor w), float64.
    """
    image = _check.signal(image, "image").astype(np.float64)
    factor = _check.positive_int(factor, "factor")
    out = image
    for axis in range(image.ndim):
        out = _upsample_axis(out, factor, axis)
    return out
