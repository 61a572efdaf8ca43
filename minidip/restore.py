"""Restoring an image from linear measurements y = A x + z with an untrained generator:
inpainting, super-resolution, deblurring (E21-E23).

:func:`restore` is the library entry point behind ``minidip restore``: it builds a model for the
image grid of the operator A, fits it to y through A by gradient descent (E21) and returns the
iterate chosen by a stop rule.  In the linearised regime the fit follows E22 and, without noise,
converges to the minimum Sigma^{-1}-norm interpolant of E23, which :func:`interpolant` computes
in closed form with the same filter and offset.  :func:`baseline` gives the classical answer to
compare with (harmonic fill, bicubic upsampling).  The comparison on embedded images lives in
:mod:`minidip.experiments.restoration`.

Colour.  A colour image is an array ``(3, h, w)`` (channels first, :mod:`minidip.data`); its
measurements are ``(3, *A.output_shape)``: the same operator on every channel.  The two-layer
generator has one output channel, so each colour channel is fitted on its own (three fits of the
same generator, same seed): its prior (E8) does not couple the channels, so one joint fit would
give the same prediction as three.  A model with three output channels (the deep decoder) fits
all three at once through :class:`minidip.operators.PerChannel`.

How the defaults were chosen: by measurement on images that the README comparison does not use:
the Shepp-Logan phantom (128 x 128), matplotlib's ``jacksboro_fault_dem.npz`` (an elevation
map, 2x2-averaged and cropped to 128 x 160, scaled to [0, 1]) and the luma of
``Minduka_Present_Blue_Pack.png`` (a 128 x 128 drawing, on white), each with a random 50% pixel
mask (seed 0), PSNR on the missing pixels, and with x2 block-mean downsampling; mostly on the
predictions E22/E23, which the fit follows (tests/test_reconstruction.py), then on the fit.
See :data:`DEFAULT_FILTER`, :data:`DEFAULT_STEPS`, :data:`DEFAULT_STOP` and :func:`offset`.
"""
from __future__ import annotations

import numpy as np

from . import baselines, filters, operators, spectral
from . import validation as _check
from .fitting import FitInterrupted, FitResult, fit
from .generator import Generator

__all__ = ["restore", "interpolant", "baseline", "offset", "deep_layers", "MODELS",
           "DEFAULT_FILTER", "DEFAULT_CHANNELS", "DEFAULT_STEPS", "DEFAULT_STOP",
           "DEEP_CHANNELS", "DEEP_LAYERS"]

MODELS = ("two-layer", "deep")
#: Filter of the two-layer generator for 2-D images and for 1-D signals.  Images: the E23
#: interpolant's PSNR on the missing pixels (phantom / elevation map / drawing, offset
#: subtracted) with Gaussian std 0.7 / 1 / 1.2 / 1.5 / 2 / 3: 18.6 / 19.7 / 19.7 / 19.7 / 19.8 /
#: 19.8, 23.4 / 29.8 / 32.0 / 33.1 / 33.2 / 33.0 and 20.7 / 24.8 / 25.4 / 25.6 / 25.6 / 25.6 dB
#: (harmonic fill 19.5, 32.0, 25.1 dB): a narrow filter interpolates little (neighbouring pixels
#: are nearly uncorrelated under Sigma), a wide one converges slowly (E22 at 300 steps is
#: 0.05-0.2 dB below E23 at std 2, 0.4-1.1 dB at std 3).  Std 1.5 truncated to 9 taps equals 11
#: taps to 0.01 dB; 7 taps lose 0.01-0.05 dB and cost 0.7 times as much per step as 9.  For x2
#: super-resolution std 1 / 1.5 / 2 gave 22.1 / 22.0 / 22.1, 35.7 / 35.5 / 35.5 and
#: 27.4 / 27.4 / 27.4 dB (bicubic 21.8, 35.9, 26.9).
#: 1-D, on the four channels of matplotlib's ``eeg.dat`` (scaled to [0, 1], 50% random mask):
#: E23 with std 1 / 1.5 / 2 / 3 was 0.9-1.8 dB below, 0.4 below to 0.3 above, 0.0-0.6 above and
#: 0.1-0.4 above the linear interpolation of the harmonic fill; for x2 super-resolution all four
#: were within 0.2 dB of each other and 0.4-1.7 dB above bicubic.
DEFAULT_FILTER = {1: "gaussian:2", 2: "gaussian:1.5:9"}
#: Width of the two-layer generator.  The fit follows E22 only up to the finite-width kernel
#: K_0 = J_0 J_0^T, which differs from Sigma by about (k/2)^(-1/2) with the paired init (C2),
#: and on images the K_0 interpolant is a noisier one: PSNR on the missing pixels after 300
#: steps (elevation map / drawing) 30.0 / 24.2 dB at k = 32, 32.0 / 25.1 at 128, 32.5 / 25.3 at
#: 256, 32.8 / 25.5 at 512 against E23's 33.1 / 25.6 and the harmonic fill's 32.0 / 25.1 (the
#: phantom: 19.4, 19.6 at k = 128, 256; E23 19.7, harmonic 19.5).  256 is the narrowest width
#: that beats the harmonic fill on all three; the cost of a step grows linearly with k.  A
#: larger init scale (10x, lazier) did not help: the deviation is the kernel's, not the
#: non-linearity's.
DEFAULT_CHANNELS = 256
#: Gradient steps at the default step size 1 / lambda_max(A Sigma A^T) (E22).  With the default
#: filter, E22 after 300 steps is within 0.03 dB of its limit E23 on the missing pixels of the
#: three tuning images (within 0.01 dB after 1000); for super-resolution it is within 0.05 dB
#: after 100.
DEFAULT_STEPS = 300
#: "auto": the discrepancy rule (:class:`minidip.stopping.Discrepancy`) when the noise level is
#: given, otherwise no early stop (the last iterate).  Without noise E23 is the answer and every
#: early stop is a loss: with the noise level estimated from a clean elevation map (Haar MAD
#: 0.011, texture rather than noise) the rule stopped at step 35 with 32.1 dB against 33.1 dB at
#: step 300.  With noise of known std 0.05 and 0.1 (measured on E22) it stopped within 0.11 dB
#: of the best iterate on the missing pixels of the phantom and the drawing, and 0.8-1.2 dB
#: below it on the elevation map; over the whole image it beat running all 300 steps by
#: 0.5-4.2 dB in five of the six cases (the known pixels are not fitted into the noise) and lost
#: 0.09 dB in the sixth (phantom, 0.05).
DEFAULT_STOP = "auto"
#: The deep decoder's width and largest depth (E15) when ``model="deep"``; the depth is lowered
#: until 2^(layers - 1) divides the grid (:func:`deep_layers`).
DEEP_CHANNELS, DEEP_LAYERS = 64, 4


# --------------------------------------------------------------------------------------------
# Measurements, colour and the offset

def _problem(y, operator):
    """Check the operator and y; return (y as float64, colour?)."""
    if not isinstance(operator, operators.Operator):
        raise ValueError("operator must be one from minidip.operators (Mask, Blur, Downsample, "
                         f"Gaussian or a composition), got {type(operator).__name__}")
    if len(operator.input_shape) not in (1, 2) or isinstance(operator, operators.PerChannel):
        raise ValueError(f"the operator acts on arrays of shape {operator.input_shape}; restore "
                         "needs an operator on one image grid, (n,) or (h, w); colour is handled "
                         "by passing y of shape (3, *operator.output_shape)")
    measured = tuple(operator.output_shape)
    y = np.asarray(y)
    colour = y.shape == (3,) + measured
    if not colour and y.shape != measured:
        raise ValueError(f"measurements y have shape {y.shape}, expected the operator's output "
                         f"{measured} or (3, {', '.join(map(str, measured))}) for colour")
    y = _check.signal(y, "measurements y", ndims=(y.ndim,))
    return y, colour


def offset(y, operator) -> float:
    """The constant c whose measurements A(c 1) are closest to y: c = <A 1, y> / ||A 1||^2 (E21).

    :func:`restore` fits the generator to y - A(c 1) and adds c back: the prior of the
    generator has mean zero, so without the offset an unmeasured region is pulled towards 0
    rather than towards the image's level (a GP / kriging mean with a constant mean).  For a
    mask c is the mean of the known pixels; for a blur or downsampling that keeps the mean
    brightness it is the mean of y.  Measured on E23 with a Gaussian filter of std 1.5 (PSNR on
    the missing pixels, phantom / elevation map / drawing): 19.72 / 32.00 / 25.04 dB without and
    19.74 / 33.08 / 25.60 dB with it; at std 0.7-1 the gap grows to 5-9 dB.
    Super-resolution is unaffected (the mean is measured exactly).

    Parameters
    ----------
    y : array of ``operator.output_shape``, one channel.
    operator : Operator on a grid ``(n,)`` or ``(h, w)``.

    Returns
    -------
    float (0 when A maps constants to zero).
    """
    ones = operator.forward(np.ones(operator.input_shape))
    norm = float(np.sum(ones * ones))
    return float(np.sum(ones * y)) / norm if norm > 0 else 0.0


def _channels(y, colour):
    return list(y) if colour else [y]


# --------------------------------------------------------------------------------------------
# Models: each builder returns (model, fit options, joint) where joint says that the model
# outputs all colour channels at once.

def deep_layers(shape, largest: int = DEEP_LAYERS) -> int:
    """The most layers (<= ``largest``) for which 2^(layers - 1) divides every axis of ``shape``
    and the input grid keeps at least 4 samples per axis (the upsampling filter fits)."""
    layers = 1
    while layers < largest and all(n % 2 ** layers == 0 and n // 2 ** layers >= 4
                                   for n in shape):
        layers += 1
    return layers


def _taps(filter, shape) -> np.ndarray:
    """The two-layer generator's filter: a spec, taps, or None for :data:`DEFAULT_FILTER`."""
    ndim = len(shape)
    if filter is None or isinstance(filter, str):
        taps = filters.parse_filter(filter or DEFAULT_FILTER[ndim], ndim)
    else:
        taps = filters.as_taps(filter, ndim)
    return _check.filter_on_grid(taps, shape)


def _two_layer(shape, colour, filter, channels, seed, backend):
    gen = Generator(_taps(filter, shape), shape,
                    DEFAULT_CHANNELS if channels is None else channels, seed=seed,
                    backend=backend)
    return gen, {}, False


def _deep(shape, colour, filter, channels, seed, backend):
    try:
        from . import DeepDecoder
    except ImportError:
        raise ValueError("model 'deep' needs minidip.DeepDecoder, which this version of "
                         "minidip does not have; use model 'two-layer'") from None
    if filter is not None:
        raise ValueError("the deep decoder has no filter option (its upsampling filter is "
                         "fixed); leave filter unset or use model 'two-layer'")
    gen = DeepDecoder(shape, channels=DEEP_CHANNELS if channels is None else channels,
                      layers=deep_layers(shape), out_channels=3 if colour else 1, seed=seed,
                      backend=backend)
    return gen, {"optimizer": "adam"}, True


_BUILDERS = {"two-layer": _two_layer, "deep": _deep}


# --------------------------------------------------------------------------------------------

def restore(y, operator, *, model="two-layer", filter=None, channels=None,
            steps: int = DEFAULT_STEPS, step_size=None, stop=DEFAULT_STOP, noise_std=None,
            center: bool = True, seed: int = 0, clean=None, progress: bool = False,
            backend=None) -> FitResult:
    """Restore an image from measurements y = A x + z by fitting a generator through A (E21).

    Parameters
    ----------
    y : array
        The measurements: ``operator.output_shape``, or ``(3, *operator.output_shape)`` for a
        colour image.
    operator : minidip.operators.Operator
        A on the image grid ``(n,)`` or ``(h, w)`` (Mask, Blur, Downsample, Gaussian, ...).
    model : "two-layer" or "deep"
        The two-layer generator of E3 (colour: one fit per channel), or the deep decoder of
        E15 (colour: one fit with three output channels, Adam), when minidip has it.
    filter : str or array, optional
        Two-layer model only: a spec for :func:`minidip.filters.parse_filter` or taps; default
        :data:`DEFAULT_FILTER`.
    channels : int, optional
        Width: default :data:`DEFAULT_CHANNELS` (two-layer) or :data:`DEEP_CHANNELS` (deep).
    steps : int
        The largest number of steps.
    step_size : float, optional
        Default: 1 / lambda_max(A Sigma A^T) for gradient descent (E22), Adam's default rate
        for the deep model.
    stop : "auto", None, str or StopRule
        "auto" (:data:`DEFAULT_STOP`): "discrepancy" when ``noise_std`` is given, else None
        (the last iterate).  Otherwise as in :func:`minidip.fit`; a rule that needs the noise
        level and gets none estimates it from y (``operator.estimate_noise_std``).
    noise_std : float, optional
        The std of the noise z, if known.
    center : bool
        Fit y - A(c 1) and add c back, c = :func:`offset` (per colour channel).
    seed : int
        Seed of the model's weights.
    clean : array of the image's shape (colour: ``(3, h, w)``), optional
        Adds "error" and "psnr" (image space) to the history and allows ``stop="oracle"``.
    progress : bool
        Show a progress bar (one per fit).
    backend : "numpy" or "numba", optional
        The model's backend (default: numba when it imports).

    Returns
    -------
    FitResult
        ``output`` has the image's shape (``(3, h, w)`` for colour).  ``info["offset"]`` is c
        (a float, or one per colour channel).  For a colour image fitted channel by channel,
        ``weights``, ``stopped_at`` and ``history`` are tuples of the three channels' values
        (R, G, B), ``info["channels"]`` the three channels' ``info`` and ``info["triggered"]``
        is True when the rule decided in every channel.

    Raises
    ------
    ValueError for bad input; :class:`minidip.FitInterrupted` on Ctrl-C, carrying the result so
    far (the same form as the return value; channels not fitted yet hold their offset, with
    ``stopped_at`` 0 and ``info["fitted"]`` False; ``info["interrupted_channel"]`` says which
    channel was running).
    """
    y, colour = _problem(y, operator)
    if model not in _BUILDERS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    shape = tuple(operator.input_shape)
    if clean is not None:
        expected = ((3,) if colour else ()) + shape
        clean = _check.signal(clean, "clean", expected, ndims=(len(expected),))
    if isinstance(stop, str) and stop == "auto":
        stop = None if noise_std is None else "discrepancy"
    gen, options, joint = _BUILDERS[model](shape, colour, filter, channels, seed, backend)
    fit_args = dict(steps=steps, step_size=step_size, stop=stop, noise_std=noise_std,
                    progress=progress, **options)
    if joint or not colour:
        op = operators.PerChannel(operator, 3) if colour else operator
        shifts = [offset(c, operator) if center else 0.0 for c in _channels(y, colour)]
        c = np.reshape(shifts, (3,) + (1,) * len(shape)) if colour else shifts[0]
        return _fit_shifted(gen, y, op, c, clean, fit_args)
    return _fit_per_channel(gen, y, operator, center, clean, fit_args)


def _fit_shifted(gen, y, op, c, clean, fit_args) -> FitResult:
    """fit(gen) to y - A(c 1) with A = op, then add c back to the output."""
    ones = np.ones(op.input_shape)
    target = y - op.forward(c * ones)
    reference = None if clean is None else clean - c

    def shifted(result):
        result.output = result.output + c
        result.info["offset"] = c if np.ndim(c) == 0 else np.ravel(c).tolist()
        return result

    try:
        return shifted(fit(gen, target, clean=reference, operator=op, **fit_args))
    except FitInterrupted as interrupt:
        shifted(interrupt.result)
        raise


def _fit_per_channel(gen, y, operator, center, clean, fit_args) -> FitResult:
    """Fit the three colour channels one after the other with the same generator."""
    results = []
    for index in range(3):
        c = offset(y[index], operator) if center else 0.0
        try:
            results.append(_fit_shifted(gen, y[index], operator, c,
                                        None if clean is None else clean[index], fit_args))
        except FitInterrupted as interrupt:
            results.append(interrupt.result)
            for later in range(index + 1, 3):
                start = offset(y[later], operator) if center else 0.0
                results.append(FitResult(output=np.full(operator.input_shape, start),
                                         weights=None, stopped_at=0,
                                         info={"offset": start, "fitted": False}))
            combined = _combine(results)
            combined.info["interrupted_channel"] = index
            raise FitInterrupted(f"fit interrupted in colour channel {index} after iteration "
                                 f"{interrupt.iteration}", interrupt.iteration,
                                 combined) from None
    return _combine(results)


def _combine(results) -> FitResult:
    infos = tuple(r.info for r in results)
    return FitResult(output=np.stack([r.output for r in results]),
                     weights=tuple(r.weights for r in results),
                     stopped_at=tuple(r.stopped_at for r in results),
                     history=tuple(r.history for r in results), step_size=results[0].step_size,
                     info={"channels": infos, "offset": [i["offset"] for i in infos],
                           "triggered": all(i.get("triggered", False) for i in infos)})


# --------------------------------------------------------------------------------------------
# What to compare with

def interpolant(y, operator, *, filter=None, center: bool = True) -> np.ndarray:
    """The limit of :func:`restore`'s two-layer fit without noise: E23 with the same filter and
    offset, c + Sigma A^T (A Sigma A^T)^+ (y - A(c 1)), per colour channel.

    Parameters
    ----------
    y : array, ``operator.output_shape`` or ``(3, *operator.output_shape)``
    operator : Operator on ``(n,)`` or ``(h, w)``
    filter : str or array, optional
        As in :func:`restore`; default :data:`DEFAULT_FILTER`.
    center : bool
        Subtract :func:`offset` first, as :func:`restore` does.

    Returns
    -------
    array of the image's shape (``(3, h, w)`` for colour), float64.
    """
    y, colour = _problem(y, operator)
    shape = tuple(operator.input_shape)
    taps = _taps(filter, shape)
    ones = np.ones(shape)
    out = []
    for channel in _channels(y, colour):
        c = offset(channel, operator) if center else 0.0
        out.append(c + spectral.interpolant(taps, shape, operator,
                                            channel - c * operator.forward(ones)))
    return np.stack(out) if colour else out[0]


def baseline(y, operator):
    """The classical restoration for the operator, per colour channel, or None if there is none.

    :class:`~minidip.operators.Mask`: :func:`minidip.baselines.harmonic_fill` of the known
    pixels; :class:`~minidip.operators.Downsample` with its default block-mean filter:
    :func:`minidip.baselines.upsample_bicubic`.  Other operators: None.
    """
    y, colour = _problem(y, operator)
    if isinstance(operator, operators.Mask):
        def one(channel):
            return baselines.harmonic_fill(channel, operator.mask)
    elif isinstance(operator, operators.Downsample) and np.array_equal(
            operator.blur.taps, operators._block_mean_taps(operator.factor,
                                                           len(operator.input_shape))):
        def one(channel):
            return baselines.upsample_bicubic(channel, operator.factor)
    else:
        return None
    out = [one(channel) for channel in _channels(y, colour)]
    return np.stack(out) if colour else out[0]

