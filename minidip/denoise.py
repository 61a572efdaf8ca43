"""Denoising a signal or image with an early-stopped generator.

:func:`denoise` is the library entry point behind ``minidip denoise``: it builds a generator
for the signal, fits it by gradient descent (E6) or Adam and returns the iterate chosen by a
stop rule (:mod:`minidip.stopping`).  Two models: the two-layer generator of E3
(``model="two-layer"``, the default) and the deep decoder of E15 (``model="deep"``), which also
denoises colour images ``(3, h, w)`` as one fit with three output channels.  The comparison
with linear baselines lives in :mod:`minidip.experiments.denoising` (``minidip figures``).
"""
from __future__ import annotations

import numpy as np

from . import filters, spectral, stopping
from . import validation as _check
from .baselines import gaussian_blur_baseline, wiener_baseline  # noqa: F401  (former home)
from .cropped import Cropped, padded_grid
from .filters import default_filter, parse_filter
from .fitting import FitInterrupted, FitResult, fit
from .generator import Generator, init_std_for
from .restore import MODELS

__all__ = ["denoise", "MODELS", "DEFAULT_CHANNELS", "DEFAULT_STEPS", "DEFAULT_INIT_RATIO",
           "DEFAULT_STEP_FRACTION", "DEEP_CHANNELS", "DEEP_LAYERS", "DEEP_UPSAMPLE",
           "DEEP_PARAMETRIZATION", "DEEP_NORM", "DEEP_SIGMOID", "DEEP_STEP_SIZE", "DEEP_STEPS",
           "DEEP_STOP", "DEEP_KAPPA", "deep_grid"]

DEFAULT_CHANNELS = 128
DEFAULT_STEPS = 300
#: The iid init_std is chosen so that E||G(C_0)|| = DEFAULT_INIT_RATIO ||y|| (init_std_for).
#: E11 assumes G(C_0) ~ 0: the part of G(C_0) not yet fitted away stays in the output as
#: structured noise, and the iid init at the generator's default scale (unit RMS output) is far
#: larger than an image in [0, 1].  Measured on the MRI case of the denoising comparison
#: (:mod:`minidip.experiments.denoising`; PSNR gain of the oracle stop over the noisy image,
#: mean of noise seeds 0-2, 128 channels, 300 steps of 1/lambda_max): 1.1 dB with the iid init
#: at the generator's default scale, 3.2 / 5.4 / 6.2 / 6.3 / 6.35 dB at ratio
#: 1 / 0.3 / 0.1 / 0.03 / 0.01.  With the default step (below), 0.03 against 0.01: MRI 6.48 vs
#: 6.50 dB, grace_hopper 3.83 vs 3.67 dB.  The cost of a small init shows on 1-D signals: on
#: the membrane case (seeds 0-2) the best iterate comes at step ~2100 at ratio 0.03 against
#: ~140 at 0.3, with the same best gain (2.2 dB), and the spectral rule, which predicts the
#: linearized dynamics (E10), then stops far too early (1.0 dB against 2.1 dB at ratio 0.3);
#: the discrepancy rule does about as well at either ratio (sigma estimated: 0.56 vs 0.32 dB).
DEFAULT_INIT_RATIO = 0.03
#: The step size is DEFAULT_STEP_FRACTION / lambda_max.  A smaller step follows nearly the same
#: path of spectral filters (1 - (1 - eta lambda_f)^t ~ 1 - exp(-eta lambda_f t)) on a finer
#: grid of stopping times: with eta = 1/lambda_max the MRI case's best iterate is near step 5
#: and a rule can only be off by whole coarse steps.  Measured on MRI / grace_hopper (gain in
#: dB, seeds 0-2, init ratio 0.03), going from 1 to 0.25: oracle stop 6.28 -> 6.48 /
#: 3.73 -> 3.83, discrepancy with sigma known 6.02 -> 6.28 / 3.32 -> 3.39, spectral with sigma
#: estimated 6.24 -> 6.40 / 3.48 -> 3.66, but discrepancy with sigma estimated 6.02 -> 5.76 /
#: 2.89 -> 2.94 (on MRI its estimate of sigma is 3-5% high, and once the rise of the PSNR is
#: resolved the early stop that causes costs more); 0.5 lies in between.  The price is four
#: times the steps: images need up to ~200, so :data:`DEFAULT_STEPS` = 300 suffices for them.
DEFAULT_STEP_FRACTION = 0.25

# --------------------------------------------------------------------------------------------
# The deep decoder (model="deep").
#
# The defaults were chosen by measurement on validation images that the README comparison does
# not use: the Shepp-Logan phantom (256 x 256) and a 256 x 256 crop of matplotlib's
# ``jacksboro_fault_dem.npz`` (rows 44-299, columns 73-328 of the elevation map, scaled to
# [0, 1]), noise sigma = 0.1, noise and weight seed 0 (and 1 where noted), float32, one factor
# at a time from k = 64, L = 5, "linear" upsampling, "standard" parametrisation, channel
# normalisation, sigmoid, Adam 0.01 (the setting of the untuned PyTorch decoder in the issue).
# PSNR in dB (data range 1; noisy 20.0), with the step in parentheses: the oracle stop (best
# iterate), and the discrepancy rule with sigma known or estimated (Haar MAD, 0.2% / 2% high on
# the DEM / phantom) at kappa = 1 and 0.99; "never" = the level was not reached in the run
# (1000 steps; L = 5: 2500), followed by the PSNR of the last iterate; "s.1": seed 1.
#
# | setting | image | oracle | kappa 1: known/est. | kappa 0.99: known/est. |
# | --- | --- | --- | --- | --- |
# | L = 5 | DEM | 30.17 (140) | 29.79 (84)/29.74 (81) | 29.98 (99)/29.95 (96) |
# | L = 5 | phantom | 27.35 (429) | 26.98 (244)/26.51 (200) | 27.12 (285)/26.68 (209) |
# | L = 6 | DEM | 30.71 (433) | 30.20 (239)/30.27 (235) | 30.58 (294)/30.58 (294) |
# | L = 6 | phantom | 28.46 (722) | 28.18 (667)/27.75 (413) | 28.44 (773)/28.14 (522) |
# | L = 6, s.1 | DEM | 30.59 (657) | 30.06 (238)/30.06 (238) | 30.32 (330)/30.19 (326) |
# | L = 6, s.1 | phantom | 28.65 (902) | 27.92 (704)/27.59 (473) | 28.24 (831)/27.98 (581) |
# | L = 7 | DEM | 30.60 (944) | 30.08 (814)/30.08 (814) | never 29.52/30.47 (892) |
# | L = 7 | phantom | 29.31 (908) | never 27.46 | never 27.46 |
# | L = 6, k = 32 | DEM | 30.00 (781) | 29.72 (359)/29.72 (359) | 29.72 (584)/29.73 (555) |
# | L = 6, k = 32 | phantom | 27.21 (967) | never 26.67/27.13 (871) | never 26.67 |
# | L = 6, no sigmoid | DEM | 30.40 (960) | 29.76 (547)/29.75 (498) | 30.18 (718)/30.11 (643) |
# | L = 6, no sigmoid | phantom | 27.33 (963) | never 26.67 | never 26.67 |
# | L = 6, "nearest" | DEM | 19.29 | never 19.29 | never 19.29 |
# | L = 6, "nearest" | phantom | 14.62 | never 14.62 | never 14.62 |
# | L = 6, lr 0.005 | DEM | 30.66 (294) | 30.26 (126)/30.13 (125) | 30.53 (164)/30.47 (161) |
# | L = 6, lr 0.005 | phantom | 27.81 (904) | 27.24 (581)/26.94 (361) | 27.36 (677)/27.21 (430) |
# | L = 6, lr 0.02 | DEM | 30.59 (626) | 30.31 (336)/30.26 (331) | 30.36 (487)/30.06 (483) |
# | L = 6, lr 0.02 | phantom | 29.88 (891) | 29.68 (828)/29.44 (585) | never 26.87/29.25 (711) |
# | L = 6, k = 128 | DEM | 31.01 (494) | 30.53 (322)/30.30 (293) | 30.84 (373)/30.76 (372) |
# | L = 6, k = 128 | phantom | 29.69 (897) | 28.96 (764)/28.34 (520) | 29.30 (895)/28.87 (596) |
# | L = 6, k = 128, s.1 | DEM | 30.94 (569) | 30.49 (357)/30.40 (356) | 30.82 (446)/30.46 (445) |
# | L = 6, k = 128, s.1 | phant. | 29.26 (922) | 29.03 (773)/28.44 (545) | 29.25 (831)/28.79 (687) |
# | k = 128, y as is | DEM | 31.04 (430) | 30.27 (276)/30.27 (276) | 30.82 (315)/30.79 (313) |
# | k = 128, y as is | phant. | 35.29 (759) | 33.40 (731)/31.90 (336) | 35.12 (746)/32.46 (533) |
# | k = 128, margin 32 | DEM | 31.48 (378) | 30.98 (248)/30.91 (246) | 31.30 (300)/31.25 (296) |
#
# The last three rows (L = 6) are not adopted in the defaults: "y as
# is" fits y itself (both images lie in [0, 1]) instead of y mapped onto [0, 1] by its own
# minimum and maximum, so the sigmoid can saturate at the phantom's black background and white
# skull (+5.6 dB at the oracle stop, +3.6 dB with the rule; the DEM is unchanged); "margin 32"
# pads the grid by 32 more pixels per axis, so the periodic wrap-around of the decoder falls on
# unconstrained pixels (+0.5 dB on the non-periodic DEM, at 1.27 times the pixels).  Adopting
# the first needs a way to place an arbitrary y on the sigmoid's range that keeps the result
# independent of y's units; one seed, one image each.
#
# For scale: the Gaussian blur of the best std (chosen with the clean image, reflecting
# borders; :func:`minidip.baselines.gaussian_blur_baseline`) reaches 32.28 / 32.44 dB on the
# DEM and 24.39 / 24.43 dB on the phantom (seeds 0 / 1): the decoder is 4.4 dB above it on the
# piecewise-constant phantom and 1.6-2.0 dB below it on the smooth elevation map.
#
# Reading it: a sixth layer gains 0.5-1.1 dB at the oracle stop and 0.5-1.5 dB with the rule;
# a seventh fits the phantom better still but needs more than 1000 steps to reach the noise
# level.  Width 128 beats 64 in all four runs (with sigma estimated by 0.2-0.3 dB on the DEM and
# 0.7-0.8 dB on the phantom) at about 2.5 times the time per step; 32 loses 0.3-1.3 dB.  No
# sigmoid loses 0.3-1.1 dB.  Adam 0.005 is worse on both; 0.02 is 1.1 dB better on the phantom
# but 0.5 dB worse on the DEM and its phantom fit never reached the level with sigma known.
# Nearest upsampling cannot work here: every other operation of E15 is pointwise, so the output
# is constant on blocks of 2^(L-1) x 2^(L-1) pixels.  No fixed number of steps serves both
# images (best iterates 433 and 722 at L = 6, k = 64, and Adam's iterates jump: the DEM's PSNR
# is 24.7 dB at step 400 between 30.1 at 200 and 30.3 at 600), and the variance rule stopped
# far too early on the phantom (L = 5: 25.05 dB at step 81), so the rule is the discrepancy
# principle on the noise level estimated from y.  At the best iterate the residual is below
# N sigma^2 (the fit has absorbed some noise; see :class:`minidip.stopping.Discrepancy`), so
# kappa = 1 stops early: 0.3-0.9 dB below the oracle stop.  kappa^2 = 0.98 (kappa = 0.99) was
# reached in every run at L = 6 (k = 64 and 128) with sigma known or estimated and comes within
# 0.0-0.9 dB of the oracle stop (mean +0.3 dB over kappa = 1); 0.97 gained more with sigma
# estimated but was not reached on the phantom with sigma known (its smallest residual after
# 1000 steps was 0.977 N sigma^2).

#: Width k of every hidden layer of the deep decoder (64: 0.2-1.0 dB lower, 2.5 times faster).
DEEP_CHANNELS = 128
#: Largest number of layers L; fewer on grids too small for 2^(L-1) (see :func:`deep_grid`).
DEEP_LAYERS = 6
#: The x2 upsampling filter (:func:`minidip.deep.model.upsampling_taps`): [1/2, 1, 1/2].
DEEP_UPSAMPLE = "linear"
#: E16: "standard" trains W directly and learns features; under "ntk" with the same Adam rate
#: the fit stays lazy (24.6-25.0 dB against 26.4-27.0 at 128 x 128 in the issue's PyTorch runs).
DEEP_PARAMETRIZATION = "standard"
#: Channel normalisation and the output sigmoid (no sigmoid: 0.3-1.1 dB lower).  y is mapped
#: onto [0, 1] by its own minimum and maximum, so the sigmoid's range covers the noisy data.
DEEP_NORM, DEEP_SIGMOID = True, True
#: Adam's learning rate.
DEEP_STEP_SIZE = 0.01
#: The most Adam steps; the rule stopped between steps 294 and 895 in the runs above.
DEEP_STEPS = 1500
#: The stop rule of ``stop="auto"``: the discrepancy rule with kappa = :data:`DEEP_KAPPA`.
DEEP_STOP, DEEP_KAPPA = "discrepancy", 0.99


def deep_grid(shape, layers: int = DEEP_LAYERS):
    """``(layers, grid)``: the deep decoder's depth and padded grid for a signal of ``shape``.

    The grid is ``shape`` padded at the end to multiples of 2^(layers - 1)
    (:func:`minidip.cropped.padded_grid`); ``layers`` is lowered until every axis of the input
    grid has at least 2 samples (n > 2^(layers - 1)), so that the upsampling filter fits.
    """
    layers = _check.positive_int(layers, "layers")
    while layers > 1 and any(n <= 2 ** (layers - 1) for n in shape):
        layers -= 1
    return layers, padded_grid(shape, 2 ** (layers - 1))


def denoise(y, *, model="two-layer", filter=None, stop="auto", noise_std=None, channels=None,
            steps=None, step_size=None, init_ratio=None, layers=None, seed: int = 0,
            clean=None, progress: bool = False, backend=None) -> FitResult:
    """Denoise a 1-D signal or 2-D image y (with ``model="deep"`` also a colour image
    ``(3, h, w)``) by an early-stopped fit of a generator.

    Parameters
    ----------
    y : array, ``(n,)`` or ``(h, w)``; ``(3, h, w)`` (channels first) with ``model="deep"``
        The noisy signal.
    model : "two-layer" or "deep"
        The two-layer generator of E3, fitted by gradient descent (E6), or the deep decoder of
        E15 fitted by Adam: generated on ``y``'s grid padded to a multiple of 2^(L-1)
        (:func:`deep_grid`) and fitted through the crop to ``y``'s shape
        (:class:`minidip.cropped.Cropped`), with ``y`` mapped affinely onto [0, 1] (its minimum
        and maximum) for the fit and the output mapped back.
    filter : str or array, optional
        Two-layer only: a spec for :func:`minidip.filters.parse_filter` or filter taps; default
        :func:`minidip.filters.default_filter`.
    stop : "auto", None, str or StopRule
        "auto": "discrepancy" for the two-layer model; for the deep one :data:`DEEP_STOP`
        (the discrepancy rule with kappa = :data:`DEEP_KAPPA`);
        None: the last iterate; otherwise a rule of :data:`minidip.stopping.RULES`.
    noise_std : float, optional
        The noise std if known; otherwise the rule estimates it
        (:func:`minidip.stopping.estimate_noise_std`).
    channels, steps : int, optional
        Width k and the largest number of steps: default :data:`DEFAULT_CHANNELS`,
        :data:`DEFAULT_STEPS` (two-layer) or :data:`DEEP_CHANNELS`, :data:`DEEP_STEPS` (deep).
    step_size : float, optional
        Two-layer: eta, default DEFAULT_STEP_FRACTION / lambda_max (see
        :data:`DEFAULT_STEP_FRACTION`).  Deep: Adam's learning rate, default
        :data:`DEEP_STEP_SIZE`.
    init_ratio : float, optional
        Two-layer only: E||G(C_0)|| / ||y|| at initialization, iid init; default
        :data:`DEFAULT_INIT_RATIO`.
    layers : int, optional
        Deep only: the most layers L, default :data:`DEEP_LAYERS` (lowered on small grids).
    seed : int
        Seed of the initial weights (and of the deep decoder's fixed input).
    clean : array of y's shape, optional
        Clean reference: adds "error"/"psnr" to the history and allows ``stop="oracle"``.
    progress : bool
        Show a progress bar.
    backend : "numpy" or "numba", optional
        The model's backend (default numba when it imports).

    Returns
    -------
    FitResult
        ``output`` has y's shape.  ``info`` always holds "noise_std" and "noise_std_estimated"
        (estimated here when the rule does not use a noise level) besides what the rule
        recorded; with ``model="deep"`` also "layers" and "grid" (the padded grid) and
        "range" (the minimum and maximum of y that the fit's [0, 1] maps to).  The history's
        "loss" and "error" are in y's units.

    Raises
    ------
    ValueError for bad input; :class:`minidip.FitInterrupted` on Ctrl-C, carrying the result
    that the rule would return so far (with the same ``info`` keys).
    """
    if model not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if model == "deep":
        return _denoise_deep(y, filter, stop, noise_std, channels, steps, step_size, init_ratio,
                             layers, seed, clean, progress, backend)
    if layers is not None:
        raise ValueError("layers is an option of the deep decoder; use model='deep' or leave "
                         "layers unset")
    y = _check.signal(y, "the signal")
    if filter is None or isinstance(filter, str):
        taps = parse_filter(filter or default_filter(y.ndim), y.ndim)
    else:
        taps = filters.as_taps(filter, y.ndim)
    init_ratio = _check.positive(DEFAULT_INIT_RATIO if init_ratio is None else init_ratio,
                                 "init_ratio")
    if not np.any(y):
        raise ValueError("the signal is all zero; there is nothing to denoise")
    init_std = init_std_for(taps, y, init_ratio)
    gen = Generator(taps, y.shape, DEFAULT_CHANNELS if channels is None else channels,
                    init_std=init_std, seed=seed, backend=backend, init="iid")
    if step_size is None:
        step_size = DEFAULT_STEP_FRACTION / float(spectral.eigenvalues(taps, y.shape).max())
    if isinstance(stop, str) and stop == "auto":
        stop = "discrepancy"

    def note_noise_level(result):
        if "noise_std" not in result.info:
            known = noise_std is not None
            result.info.update(noise_std=float(noise_std) if known
                               else stopping.estimate_noise_std(y), noise_std_estimated=not known)
        return result

    try:
        result = fit(gen, y, DEFAULT_STEPS if steps is None else steps, step_size=step_size,
                     clean=clean, stop=stop, noise_std=noise_std, progress=progress)
    except FitInterrupted as interrupt:
        note_noise_level(interrupt.result)
        raise
    return note_noise_level(result)


def _deep_signal(y):
    """y checked for the deep decoder: (y as float64, its grid, colour?)."""
    y = np.asarray(y)
    if y.ndim == 3 and y.shape[0] != 3:
        hint = (" (channels last? pass np.moveaxis(y, -1, 0))" if y.shape[-1] == 3 else "")
        raise ValueError(f"a 3-D signal must be a colour image (3, h, w), channels first; got "
                         f"shape {y.shape}{hint}")
    y = _check.signal(y, "the signal", ndims=(1, 2, 3))
    grid = y.shape[1:] if y.ndim == 3 else y.shape
    if min(grid) < 2:
        raise ValueError(f"the signal of shape {y.shape} is too small: the deep decoder needs "
                         "at least 2 samples along each axis")
    return y, grid, y.ndim == 3


def _denoise_deep(y, filter, stop, noise_std, channels, steps, step_size, init_ratio, layers,
                  seed, clean, progress, backend) -> FitResult:
    from .deep import DeepDecoder

    if filter is not None:
        raise ValueError("the deep decoder has no filter option (its upsampling filter is "
                         "fixed); leave filter unset or use model 'two-layer'")
    if init_ratio is not None:
        raise ValueError("init_ratio is an option of the two-layer model; leave it unset for "
                         "model 'deep'")
    y, grid, colour = _deep_signal(y)
    if clean is not None:
        clean = _check.signal(clean, "clean", y.shape, ndims=(y.ndim,))
    if noise_std is not None:
        noise_std = _check.positive(noise_std, "noise_std")
    low, high = float(y.min()), float(y.max())
    if not high > low:
        raise ValueError("the signal is constant; there is nothing to denoise")
    span = high - low
    used_layers, padded = deep_grid(grid, DEEP_LAYERS if layers is None else layers)
    gen = DeepDecoder(padded, channels=DEEP_CHANNELS if channels is None else channels,
                      layers=used_layers, upsample=DEEP_UPSAMPLE, norm=DEEP_NORM,
                      sigmoid=DEEP_SIGMOID, out_channels=3 if colour else 1,
                      parametrization=DEEP_PARAMETRIZATION, seed=seed, backend=backend)
    model = Cropped(gen, grid)
    if isinstance(stop, str) and stop == "auto":
        stop = stopping.Discrepancy(kappa=DEEP_KAPPA)

    def in_units_of_y(result):
        """Map the fit on (y - low) / span back to y's units; record the noise level."""
        result.output = low + span * result.output
        for name, power in (("loss", 2), ("error", 1)):
            if name in result.history:
                result.history[name] = result.history[name] * span**power
        info = result.info
        for name, power in (("noise_std", 1), ("threshold", 2), ("min_variance", 2)):
            if info.get(name) is not None:
                info[name] = info[name] * span**power
        known = noise_std is not None
        if known or "noise_std" not in info:
            info.update(noise_std=noise_std if known else stopping.estimate_noise_std(y),
                        noise_std_estimated=not known)
        info.update(layers=used_layers, grid=padded, range=(low, high))
        return result

    try:
        result = fit(model, (y - low) / span, DEEP_STEPS if steps is None else steps,
                     step_size=DEEP_STEP_SIZE if step_size is None else step_size,
                     clean=None if clean is None else (clean - low) / span, stop=stop,
                     noise_std=None if noise_std is None else noise_std / span,
                     progress=progress, optimizer="adam")
    except FitInterrupted as interrupt:
        in_units_of_y(interrupt.result)
        raise
    return in_units_of_y(result)

