"""Denoising a signal or image with an early-stopped generator, and linear baselines to compare.

:func:`denoise` is the library entry point behind ``minidip denoise``: it builds a generator
for the signal, fits it by gradient descent (E6) and returns the iterate chosen by a stop rule
(:mod:`minidip.stopping`).  :func:`compare` measures every stop rule against the oracle stop
and against two linear filters whose parameters are chosen with the clean signal (upper bounds
for what such filters can do), on embedded real data.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import data, filters, metrics, spectral, stopping
from .fitting import FitInterrupted, FitResult, fit
from .generator import Generator, init_std_for

__all__ = ["denoise", "parse_filter", "default_filter", "gaussian_blur_baseline",
           "wiener_baseline", "compare", "Case", "CASES", "DEFAULT_CHANNELS", "DEFAULT_STEPS",
           "DEFAULT_INIT_RATIO", "DEFAULT_STEP_FRACTION"]

DEFAULT_CHANNELS = 128
DEFAULT_STEPS = 300
#: init_std is chosen so that E||G(C_0)|| = DEFAULT_INIT_RATIO ||y|| (generator.init_std_for).
#: E11 assumes G(C_0) ~ 0: the part of G(C_0) not yet fitted away stays in the output as
#: structured noise, and the generator's own default (unit RMS output) is far larger than an
#: image in [0, 1].  Measured on the MRI case of :data:`CASES` (PSNR gain of the oracle stop
#: over the noisy image, mean of noise seeds 0-2, 128 channels, 300 steps of 1/lambda_max):
#: 1.1 dB with the generator's default init, 3.2 / 5.4 / 6.2 / 6.3 / 6.35 dB at ratio
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

def _gaussian(ndim, std, size=None):
    return filters.gaussian(std, ndim=ndim, size=size)


# name: (constructor(ndim, *params), parsers of its parameters, how many are required)
_FILTERS = {
    "gaussian": (_gaussian, (float, int), 1),
    "triangle": (lambda ndim, p: filters.triangle(p, ndim=ndim), (int,), 1),
    "box": (lambda ndim, width: filters.box(width, ndim=ndim), (int,), 1),
    "upsampling": (lambda ndim, kind: filters.upsampling(kind, ndim=ndim), (str,), 1),
    "delta": (lambda ndim: filters.delta(ndim=ndim), (), 0),
    "random": (lambda ndim, width, seed=0: filters.random(width, seed=seed, ndim=ndim),
               (int, int), 1),
}
_FILTER_HELP = ('"gaussian:STD[:SIZE]", "triangle:P", "box:WIDTH", "upsampling:KIND", "delta" or '
                '"random:WIDTH[:SEED]"')


def default_filter(ndim: int) -> str:
    """The filter spec used when none is given: a 7x7 Gaussian of std 1.2 for images, a
    Gaussian of std 2 (13 taps) for 1-D signals."""
    return "gaussian:1.2:7" if ndim == 2 else "gaussian:2"


def parse_filter(spec: str, ndim: int) -> np.ndarray:
    """Filter taps from a text spec such as ``"gaussian:1.2:7"`` (std, size) or ``"box:3"``.

    Specs: ``gaussian:STD[:SIZE]``, ``triangle:P``, ``box:WIDTH``, ``upsampling:KIND`` (kinds of
    :func:`minidip.filters.upsampling`), ``delta``, ``random:WIDTH[:SEED]``.  ``ndim`` (1 or 2)
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
        A spec for :func:`parse_filter` or filter taps; default :func:`default_filter`.
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
        E||G(C_0)|| / ||y|| at initialization (see :data:`DEFAULT_INIT_RATIO`).
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
    y = np.asarray(y, dtype=np.float64)
    if y.ndim not in (1, 2):
        raise ValueError(f"the signal must be 1-D or 2-D, got shape {y.shape}")
    if filter is None or isinstance(filter, str):
        taps = parse_filter(filter or default_filter(y.ndim), y.ndim)
    else:
        taps = filters.as_taps(filter, y.ndim)
    if not (np.isfinite(init_ratio) and init_ratio > 0):
        raise ValueError(f"init_ratio must be a positive number, got {init_ratio!r}")
    if not np.any(y):
        raise ValueError("the signal is all zero; there is nothing to denoise")
    init_std = init_std_for(taps, y, init_ratio)
    gen = Generator(taps, y.shape, channels, init_std=init_std, seed=seed, backend=backend)
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


# --------------------------------------------------------------------------------------------
# Linear baselines with oracle parameters (chosen with the clean signal: upper bounds).

#: Blur widths searched by :func:`gaussian_blur_baseline` (std in samples).
BLUR_STDS = np.geomspace(0.2, 10.0, 80)
#: Power-law exponents and amplitudes searched by :func:`wiener_baseline` ("power").
POWER_EXPONENTS = np.linspace(0.5, 4.0, 29)
POWER_AMPLITUDES = np.geomspace(1e-6, 1e2, 81)


def _psnr(estimate, clean):
    return metrics.psnr(estimate, clean, data_range=1.0)       # every case lies in [0, 1]


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
# The comparison on embedded real data.

@dataclass(frozen=True)
class Case:
    """One benchmark of :func:`compare`: a clean signal in [0, 1], a noise level, the generator."""

    name: str
    load: object                  # () -> clean signal scaled to [0, 1]
    noise_std: float
    filter: str
    channels: int = DEFAULT_CHANNELS
    steps: int = DEFAULT_STEPS
    description: str = ""


def _unit_range(x):
    return (x - x.min()) / (x.max() - x.min())


CASES = (
    Case("mri", lambda: data.mri(downsample=2), 0.1, "gaussian:1.2:7",
         description="MRI slice s1045, 2x2-averaged to 128x128, in [0, 1]"),
    Case("grace_hopper", lambda: data.grace_hopper(downsample=4), 0.1, "gaussian:1.2:7",
         description="grace_hopper.jpg, luma, 4x4-averaged to 150x128, in [0, 1]"),
    Case("membrane", lambda: _unit_range(data.membrane(downsample=4)), 0.05, "gaussian:2",
         steps=2500, description="membrane.dat, 4-averaged to 3000 samples, scaled to [0, 1]"),
)

#: Columns of the comparison, in order.
METHODS = ("noisy", "discrepancy (sigma known)", "discrepancy (sigma estimated)",
           "spectral (sigma known)", "spectral (sigma estimated)", "variance", "oracle stop",
           "Gaussian blur (oracle std)", "Wiener, power law (oracle A, alpha)",
           "Wiener, oracle spectrum")


class _Panel(stopping.StopRule):
    """Runs several rules on one trajectory and keeps the iterate each chooses.

    A rule's choice depends only on the iterates, which do not depend on when the fit ends, so
    one fit that runs until every rule has stopped answers for all of them.
    """

    def __init__(self, rules):
        super().__init__()
        self.rules = rules
        self.chosen = {}                           # label -> (iteration, output)
        self.done = set()

    def start(self, **kwargs):
        noise_std = kwargs.pop("noise_std")
        for label, (rule, known) in self.rules.items():
            rule.start(noise_std=noise_std if known else None, **kwargs)

    def observe(self, iteration, output, loss):
        self.best_iteration = iteration
        for label, (rule, _) in self.rules.items():
            if label in self.done:
                continue
            if rule.observe(iteration, output, loss):
                self.done.add(label)
            if rule.best_iteration == iteration:
                self.chosen[label] = (iteration, np.array(output, dtype=np.float64))
        return len(self.done) == len(self.rules)


def compare(cases=CASES, seeds=(0, 1, 2), progress=False):
    """Denoise each case with every stop rule, the oracle stop and the linear baselines.

    For every case and seed: y = x + sigma z with z ~ N(0, I) drawn from ``seed``; one fit of
    :func:`denoise`'s generator (defaults of this module, init seed ``seed``) observed by all
    rules at once; the baselines get the clean x to choose their parameters.

    Returns
    -------
    list of dict, one per (case, seed): "case", "seed", "psnr" (method -> dB, keys
    :data:`METHODS`), "stop" (method -> iteration), "noise_std_estimate", "blur_std",
    "wiener_power" (A, alpha), and for the figure "clean", "noisy", "outputs" (method -> array)
    and "history" (the fit's history).
    """
    rows = []
    for case in cases:
        x = np.asarray(case.load(), np.float64)
        for seed in seeds:
            rng = np.random.default_rng(seed)
            y = x + case.noise_std * rng.standard_normal(x.shape)
            rules = {"discrepancy (sigma known)": (stopping.Discrepancy(), True),
                     "discrepancy (sigma estimated)": (stopping.Discrepancy(), False),
                     "spectral (sigma known)": (stopping.Spectral(), True),
                     "spectral (sigma estimated)": (stopping.Spectral(), False),
                     "variance": (stopping.Variance(), False),
                     "oracle stop": (stopping.Oracle(), False)}
            panel = _Panel(rules)
            res = denoise(y, filter=case.filter, stop=panel, noise_std=case.noise_std,
                          channels=case.channels, steps=case.steps, seed=seed, clean=x,
                          progress=progress)
            outputs = {"noisy": y}
            stops = {}
            for label, (iteration, output) in panel.chosen.items():
                outputs[label], stops[label] = output, iteration
            outputs["Gaussian blur (oracle std)"], blur_std = gaussian_blur_baseline(y, x)
            outputs["Wiener, power law (oracle A, alpha)"], power = wiener_baseline(
                y, x, case.noise_std, model="power")
            outputs["Wiener, oracle spectrum"], _ = wiener_baseline(y, x, case.noise_std)
            rows.append(dict(
                case=case.name, seed=seed, clean=x, noisy=y, outputs=outputs, stops=stops,
                psnr={m: _psnr(outputs[m], x) for m in METHODS}, history=res.history,
                noise_std_estimate=stopping.estimate_noise_std(y), blur_std=blur_std,
                wiener_power=power))
    return rows


def comparison_table(rows) -> str:
    """A Markdown table of the mean PSNR (dB) over seeds for each case and method, with the
    mean stopping iteration of each rule in parentheses."""
    cases = list(dict.fromkeys(r["case"] for r in rows))
    lines = ["| method | " + " | ".join(cases) + " |", "|---|" + "---|" * len(cases)]
    for method in METHODS:
        cells = []
        for case in cases:
            mine = [r for r in rows if r["case"] == case]
            cell = f"{np.mean([r['psnr'][method] for r in mine]):.2f}"
            if method in mine[0]["stops"]:
                cell += f" ({np.mean([r['stops'][method] for r in mine]):.0f})"
            cells.append(cell)
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
