"""C5 Early stopping denoises: the bound E11 holds along the trajectory, the early-stopped error
is far below the noise, and the predicted best iteration (E12) is close to the measured one.

Setting of the theorem (E11): y = x + z with x in the span of the p Fourier modes of largest
eigenvalue and white Gaussian noise z.  Two init regimes: G(C_0) = 0 (paired init) with init_std
10x the lazy scale, at every width; and the theorem's own, the iid init at
||G(C_0)|| ~ 0.1 ||y||, at the largest width.
Measured for each width k: the smallest eps for which
||G_tau - x|| <= (1 - eta lambda_(p))^tau ||x|| + ||(I - (I - eta Sigma)^tau) z|| + eps ||y||
holds for every tau <= T; the deviation of the trajectory from E10,
max_tau ||G_tau - Ghat_tau|| / ||y||; the best error min_tau ||G_tau - x|| against ||z||; and
tau* = argmin of the predicted risk R(tau) (E12, x and sigma known) against the measured best;
and tau*_y, the same argmin with |xhat_f|^2 estimated from y alone (E12's second form,
max(|yhat_f|^2 - sigma^2, 0), sigma known).

Thresholds.  eps <= 0.05 at every width: E11 holds with eps = 0 for the linear dynamics, and
the deviation from them (<= 0.04 of ||y|| at k = 512, C3) bounds what eps can need.  The
deviation must shrink with k (log-log slope <= -0.3; -0.5 from the concentration of K_0).  Best
error <= 0.5 ||z||: the linear theory predicts about 0.34 ||z|| here, since the p = 15 signal
modes are fitted ~10x faster than the median noise mode.  ||G_tau* - x|| <= 1.1 min_tau
||G_tau - x||: R is an expectation over the noise and is flat near its minimum; for one draw of
z (N = 256) the realized error curve's minimum moves by a few iterations, costing ~2%.  The
step size is a tenth of the default 1/lambda_max so that the trajectory is resolved over tens
of iterations (at the default the best iterate is the first or second).

The deviation in magnitude, not only its slope: max_tau ||G_tau - Ghat_tau|| / ||y|| <= 0.05 at
every width, the eps budget.  By the triangle inequality ||G_tau - x|| <= ||Ghat_tau - x|| +
||G_tau - Ghat_tau||, and the linear error is at most the bound without eps, so the measured eps
is at most the deviation; the eps check alone can pass on the bound's slack even when the
trajectory ignores E10 (a network that fits noise more slowly than predicted), the deviation
check asks that E10 itself account for the trajectory to within the same budget.

tau*_y from sampling error: under the linear dynamics (E10, no network), over 1000 draws of x (in
the top 15 modes) and z at this n, filter and step size, the error at tau*_y over the best error
has median 1.014, 99th percentile 1.13 and maximum 1.22 (for tau* with x known: 1.003, 1.035,
1.07): estimating |xhat_f|^2 from y leaves a positive bias of about 0.37 sigma^2 at every
noise-only frequency (the mean of max(E - 1, 0) for E ~ Exp(1)), which favours later stops.
Threshold 1.2: that 99th percentile plus the margin the x-known check allows over its own
(1.035 -> 1.1) for the finite width.

The theorem's regime (iid init, ||G(C_0)|| ~ 0.1 ||y||, k = the largest width).  The theorem says
that with the init at xi ||y|| and k large enough (k >= C n / xi^8, C not given) the bound holds
with eps = xi: so eps <= 0.1 here, which tests whether the largest default width is wide enough
for what the theorem promises at this init.  The best error must be <= 0.5 ||z|| as in the lazy
regime: the linear theory is the same and the init's 0.1 ||y|| start is fitted away with the
signal.  Its deviation from E10 and its tau* are reported, not checked (C3 shows the deviation
at small init; the regime map shows where it stops mattering).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import minidip as md
from proofs_check import _common as common

CLAIM = "C5"
STATEMENT = ("early-stopped gradient descent denoises; bound E11 holds, tau* of E12 (x known, "
             "or from y) is accurate (paired init 10x lazy; iid init at 0.1 ||y||)")

FILTER = md.filters.gaussian(2.0)
SIGNAL_MODES = 15                   # x in the span of the top 15 modes (E11)
NOISE_STD = 1.0                     # unit-RMS x, so ||z|| ~ ||x||
INIT, INIT_RATIO = "paired", 10.0
THEOREM_INIT, THEOREM_INIT_RATIO = "iid", 0.1   # the theorem's regime: ||G(C_0)|| ~ 0.1 ||y||
STEP_FRACTION = 0.1                 # step size = STEP_FRACTION / lambda_max
MAX_EPS = 0.05
MAX_DEVIATION = MAX_EPS             # the eps budget (see the docstring)
MAX_SLOPE = -0.3
MAX_ERROR_TO_NOISE = 0.5
MAX_TAU_STAR_EXCESS = 1.1
MAX_TAU_STAR_Y_EXCESS = 1.2
MAX_THEOREM_EPS = THEOREM_INIT_RATIO



@dataclass(frozen=True)
class Config:
    """Signal length, widths k and gradient steps."""

    n: int = 256
    widths: tuple = (512, 2048, 8192)
    steps: int = 300


DEFAULT = Config()
FULL = Config(n=4096, widths=(1024, 4096, 16384), steps=1000)


def top_mode_signal(u, shape, p, seed) -> np.ndarray:
    """A random unit-RMS signal in the span of the p modes of largest eigenvalue (E11)."""
    mask = md.spectral.top_modes(u, shape, p)
    white = np.random.default_rng(seed).standard_normal(shape)
    x = np.fft.ifftn(np.where(mask, np.fft.fftn(white), 0)).real
    return x / np.sqrt(np.mean(x**2))


def measure(u, x, z, widths, init, init_ratio, seed, steps, step_size=None, p=None):
    """Bound, deviation, best error and tau* for y = x + z at each width (E10-E12).

    ``p``: x lies in the top-p modes (the theorem's linear term); None: the exact linear term.
    """
    y = x + z
    sigma = float(np.std(z))
    taus = np.arange(steps + 1)
    rows, errors = {}, {}
    for k in widths:
        gen = common.make_generator(u, y, k, init_ratio, seed, init)
        res, outputs = common.fit_with_outputs(gen, y, steps, step_size=step_size, clean=x)
        bound = md.spectral.denoising_bound(u, x.shape, x, z, taus, res.step_size, p=p)
        error = res.history["error"]
        tau_star = md.spectral.optimal_stop(u, x.shape, steps, res.step_size, x=x,
                                            noise_std=sigma)
        tau_star_y = md.spectral.optimal_stop(u, x.shape, steps, res.step_size, y=y,
                                              noise_std=sigma)
        rows[k] = dict(
            eps=md.spectral.measured_eps(error, bound, np.linalg.norm(y)),
            deviation=float(common.prediction_deviation(gen, y, outputs, res.step_size).max()),
            best_error_to_noise=float(error.min() / np.linalg.norm(z)),
            best_iteration=int(np.argmin(error)), tau_star=tau_star,
            tau_star_excess=float(error[tau_star] / error.min()), tau_star_y=tau_star_y,
            tau_star_y_excess=float(error[tau_star_y] / error.min()))
        errors[k] = (error, bound)
    return rows, errors


@common.timed
def run(out=common.DEFAULT_OUT, full=False, seed=0, config=None):
    c = common.pick(config, full, DEFAULT, FULL)
    n, widths, steps = c.n, c.widths, c.steps
    shape = (n,)
    x = top_mode_signal(FILTER, shape, SIGNAL_MODES, seed)
    z = NOISE_STD * np.random.default_rng(seed + 1).standard_normal(shape)
    eta = STEP_FRACTION / md.spectral.eigenvalues(FILTER, shape).max()
    rows, errors = measure(FILTER, x, z, widths, INIT, INIT_RATIO, seed, steps, eta,
                           p=SIGNAL_MODES)
    theorem, theorem_errors = measure(FILTER, x, z, widths[-1:], THEOREM_INIT,
                                      THEOREM_INIT_RATIO, seed, steps, eta, p=SIGNAL_MODES)
    theorem = theorem[widths[-1]]
    slope = common.loglog_slope(widths, [rows[k]["deviation"] for k in widths])
    noise = np.linalg.norm(z)
    y_norm = np.linalg.norm(x + z)

    fig, axes = common.new_figure(2)
    k = widths[-1]
    error, bound = errors[k]
    axes[0].plot(error / noise, label=f"||G_tau - x||, k = {k}")
    axes[0].plot(bound / noise, "--", label="bound E11 (eps = 0)")
    axes[0].plot((bound + rows[k]["eps"] * y_norm) / noise, ":", color="C1",
                 label=f"bound E11, eps = {rows[k]['eps']:.3f}")
    axes[0].plot(theorem_errors[k][0] / noise, color="C2", lw=0.8,
                 label=f"||G_tau - x||, iid init at {THEOREM_INIT_RATIO:g} ||y|| "
                       f"(eps = {theorem['eps']:.3f})")
    axes[0].axvline(rows[k]["tau_star"], color="gray", lw=0.8, label="tau* (E12)")
    axes[0].axvline(rows[k]["tau_star_y"], color="gray", lw=0.8, ls=":",
                    label="tau* from y (E12)")
    axes[0].axhline(1, color="k", lw=0.5)
    axes[0].set(xlabel="iteration", ylabel="error / ||z||", ylim=(0, 1.5),
                title="early stopping: error and bound")
    axes[0].legend(fontsize=8)
    axes[1].loglog(widths, [rows[w]["deviation"] for w in widths], "o-",
                   label=f"deviation from E10 (slope {slope:.2f})")
    axes[1].loglog([k], [theorem["deviation"]], "s", color="C2",
                   label=f"iid init at {THEOREM_INIT_RATIO:g} ||y|| (reported)")
    axes[1].axhline(MAX_DEVIATION, color="gray", lw=0.8)
    axes[1].set(xlabel="channels k", ylabel="max_tau ||G_tau - prediction|| / ||y||",
                title="measured eps: " + ", ".join(f"{rows[w]['eps']:.2g}" for w in widths))
    common.label_widths(axes[1], widths)
    axes[1].legend(fontsize=8)
    figure = common.save_figure(fig, out, "c5_early_stopping")

    worst = lambda key: max(rows[w][key] for w in widths)  # noqa: E731
    checks = [common.Check("eps (worst over k)", worst("eps"), "<=", MAX_EPS),
              common.Check("deviation from E10 (worst over k)", worst("deviation"), "<=",
                           MAX_DEVIATION),
              common.Check("log-log slope of deviation", slope, "<=", MAX_SLOPE),
              common.Check("best error / ||z|| (worst over k)", worst("best_error_to_noise"),
                           "<=", MAX_ERROR_TO_NOISE),
              common.Check("error at tau* / best error", worst("tau_star_excess"), "<=",
                           MAX_TAU_STAR_EXCESS),
              common.Check("error at tau* from y / best error", worst("tau_star_y_excess"),
                           "<=", MAX_TAU_STAR_Y_EXCESS),
              common.Check(f"theorem's regime (iid, {THEOREM_INIT_RATIO:g} ||y||, "
                           f"k = {widths[-1]}): eps", theorem["eps"], "<=", MAX_THEOREM_EPS),
              common.Check("theorem's regime: best error / ||z||",
                           theorem["best_error_to_noise"], "<=", MAX_ERROR_TO_NOISE)]
    return common.ClaimResult(CLAIM, STATEMENT, checks,
                              dict(rows=rows, slope=slope, theorem_regime=theorem), figure)


if __name__ == "__main__":
    import sys
    sys.exit(common.claim_main(sys.modules[__name__]))
