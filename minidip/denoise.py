"""Denoising a signal or image with an early-stopped generator.

:func:`denoise` is the library entry point behind ``minidip denoise``: it builds a generator
for the signal, fits it by gradient descent (E6) and returns the iterate chosen by a stop rule
(:mod:`minidip.stopping`).  The comparison with linear baselines lives in
:mod:`minidip.experiments.denoising` (``minidip figures``).
"""
from __future__ import annotations

import numpy as np

from . import filters, spectral, stopping
from . import validation as _check
from .baselines import gaussian_blur_baseline, wiener_baseline  # noqa: F401  (former home)
from .filters import default_filter, parse_filter
from .fitting import FitInterrupted, FitResult, fit
from .generator import Generator, init_std_for

__all__ = ["denoise", "DEFAULT_CHANNELS", "DEFAULT_STEPS", "DEFAULT_INIT_RATIO",
           "DEFAULT_STEP_FRACTION"]

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


def denoise(y, *, filter=None, stop="discrepancy", noise_std=None,
            channels: int = DEFAULT_CHANNELS, steps: int = DEFAULT_STEPS, step_size=None,
            init_ratio: float = DEFAULT_INIT_RATIO, seed: int = 0, clean=None,
            progress: bool = False, backend=None) -> FitResult:
    """Denoise a 1-D signal or 2-D image y by early-stopped gradient descent on a generator.

    Parameters
    ----------
    y : array, 1-D or 2-D
        The noisy signal.
    filter : str or array, optional
        A spec for :func:`minidip.filters.parse_filter` or filter taps; default
        :func:`minidip.filters.default_filter`.
    stop : str, StopRule or None
        Stop rule (:data:`minidip.stopping.RULES`); default "discrepancy".
    noise_std : float, optional
        The noise std if known; otherwise the rule estimates it
        (:func:`minidip.stopping.estimate_noise_std`).
    channels, steps : int
        Generator width k and the largest number of gradient steps.
    step_size : float, optional
        eta; default DEFAULT_STEP_FRACTION / lambda_max (see :data:`DEFAULT_STEP_FRACTION`).
    init_ratio : float
        E||G(C_0)|| / ||y|| at initialization, iid init (see :data:`DEFAULT_INIT_RATIO`).
    seed : int
        Seed of the initial weights.
    clean : array, optional
        Clean reference: adds "error"/"psnr" to the history and allows ``stop="oracle"``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    FitResult
        ``info`` always holds "noise_std" and "noise_std_estimated" (estimated here when the
        rule does not use a noise level) besides what the rule recorded.

    Raises
    ------
    ValueError for bad input; :class:`minidip.FitInterrupted` on Ctrl-C, carrying the result
    that the rule would return so far (with the same ``info`` keys).
    """
    y = _check.signal(y, "the signal")
    if filter is None or isinstance(filter, str):
        taps = parse_filter(filter or default_filter(y.ndim), y.ndim)
    else:
        taps = filters.as_taps(filter, y.ndim)
    init_ratio = _check.positive(init_ratio, "init_ratio")
    if not np.any(y):
        raise ValueError("the signal is all zero; there is nothing to denoise")
    init_std = init_std_for(taps, y, init_ratio)
    gen = Generator(taps, y.shape, channels, init_std=init_std, seed=seed, backend=backend,
                    init="iid")
    if step_size is None:
        step_size = DEFAULT_STEP_FRACTION / float(spectral.eigenvalues(taps, y.shape).max())

    def note_noise_level(result):
        if "noise_std" not in result.info:
            known = noise_std is not None
            result.info.update(noise_std=float(noise_std) if known
                               else stopping.estimate_noise_std(y), noise_std_estimated=not known)
        return result

    try:
        result = fit(gen, y, steps, step_size=step_size, clean=clean, stop=stop,
                     noise_std=noise_std, progress=progress)
    except FitInterrupted as interrupt:
        note_noise_level(interrupt.result)
        raise
    return note_noise_level(result)
