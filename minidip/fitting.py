"""Fitting a model to a target by plain gradient descent (E6)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import metrics, spectral, stopping

__all__ = ["fit", "FitResult", "FitDivergedError", "FitInterrupted", "stable_step_limit"]

#: The loss counts as exploding once it exceeds this multiple of max(L(C_0), ||y||^2 / 2).
EXPLOSION_FACTOR = 1e3


@dataclass
class FitResult:
    """What :func:`fit` returns.

    output : G at the returned iterate (chosen by the stop rule), float64, shape of y.
    weights : the weights C at that iterate, shape (k, *shape).
    stopped_at : the iteration number of that iterate (0 is the initialization).
    history : name -> 1-D array, one entry per recorded iteration: "iteration", "loss", and with
        ``clean`` also "error" (l2 distance to clean) and "psnr" (dB, data range of clean).
    step_size : the step size used.
    info : what the stop rule measured (e.g. an estimated noise level).
    """

    output: np.ndarray
    weights: np.ndarray
    stopped_at: int
    history: dict = field(default_factory=dict)
    step_size: float = math.nan
    info: dict = field(default_factory=dict)


class FitDivergedError(RuntimeError):
    """Gradient descent diverged; ``iteration`` says where, ``result`` holds the fit so far."""

    def __init__(self, message, iteration, result):
        super().__init__(message)
        self.iteration, self.result = iteration, result


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C during a fit; ``result`` holds the iterate the stop rule would return so far.

    A KeyboardInterrupt, so callers that do not handle it still stop.  ``iteration`` is the last
    iterate observed.  With a rule that keeps its best iterate, ``result.weights`` belong to
    ``result.output``; otherwise they are the current weights, which an interrupt inside a
    step may have moved one step past ``result.output``.
    """

    def __init__(self, message, iteration, result):
        super().__init__(message)
        self.iteration, self.result = iteration, result


class Objective:
    """The loss of an output G: L(G) = 1/2 ||A G - y||^2 (E4; E21 with a forward operator A).

    The one place where the residual is formed.  ``objective(output)`` returns
    ``(loss, dL/dG)`` with dL/dG = A^T (A G - y), which is G - y without an operator; the loss is
    accumulated in float64.  Backends that fuse the residual into their own kernels use
    :meth:`target_as` when ``operator`` is None.

    Parameters
    ----------
    y : array
        The target (measurements ``A x + z`` with an operator).
    operator : object with ``forward`` and ``adjoint``, optional
    """

    def __init__(self, y, operator=None):
        self.y = y
        self.operator = operator
        self._targets = {}

    def target_as(self, dtype) -> np.ndarray:
        """y in ``dtype`` (cached)."""
        dtype = np.dtype(dtype)
        if dtype not in self._targets:
            self._targets[dtype] = np.ascontiguousarray(self.y, dtype=dtype)
        return self._targets[dtype]

    def __call__(self, output):
        if self.operator is None:
            r = output - self.target_as(output.dtype)
            return 0.5 * float(np.sum(np.square(r, dtype=np.float64))), r
        m = self.operator.forward(output) - self.y
        return 0.5 * float(np.sum(np.square(m, dtype=np.float64))), self.operator.adjoint(m)


def stable_step_limit(gen) -> float:
    """2 / lambda_max of the dual kernel (E9, E10): gradient descent is stable below it."""
    return 2.0 / float(spectral.eigenvalues(gen.taps, gen.shape).max())


class _History:
    def __init__(self, clean, data_range):
        self.clean, self.data_range = clean, data_range
        self.rows = {"iteration": [], "loss": []}
        if clean is not None:
            self.rows.update(error=[], psnr=[])

    def record(self, t, loss, output):
        self.rows["iteration"].append(t)
        self.rows["loss"].append(loss)
        if self.clean is not None:
            err = math.sqrt(float(np.sum(np.square(output - self.clean))))   # no BLAS threads
            self.rows["error"].append(err)
            self.rows["psnr"].append(metrics.psnr(output, self.clean, data_range=self.data_range))

    def arrays(self):
        return {name: np.asarray(values, dtype=np.int64 if name == "iteration" else np.float64)
                for name, values in self.rows.items()}


def fit(gen, y, steps, step_size=None, weights=None, clean=None, stop=None, noise_std=None,
        record_every=1, progress=False) -> FitResult:
    """Fit ``gen`` to ``y`` by gradient descent C <- C - eta dL/dC (E6) for up to ``steps`` steps.

    Parameters
    ----------
    gen : Generator
    y : array of gen.shape
        The target (e.g. a noisy signal).
    steps : int
        Maximum number of gradient steps; iterates 0..steps are observed.
    step_size : float, optional
        eta; default 1 / lambda_max of the dual kernel (E9, E10).  Must lie in (0, 2/lambda_max).
    weights : array (k, *shape), optional
        Start; default ``gen.init_weights()``.  Not modified.
    clean : array of gen.shape, optional
        Reference for the "error" and "psnr" history and for ``stop="oracle"``.
    stop : None, str or StopRule
        None returns the last iterate; "oracle" the iterate of least error to ``clean``; see
        :mod:`minidip.stopping` for the others.
    noise_std : float, optional
        Noise level, for stop rules that use it.
    record_every : int
        Record the history every this many iterations (and always at the last one).
    progress : bool
        Show a progress bar.

    Raises
    ------
    ValueError for bad input; FitDivergedError (with the history so far) when the loss becomes
    non-finite or explodes; FitInterrupted (with the result so far) on KeyboardInterrupt.
    """
    y = gen.check_target(y)
    if int(steps) != steps or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    if int(record_every) != record_every or record_every < 1:
        raise ValueError(f"record_every must be a positive integer, got {record_every!r}")
    limit = stable_step_limit(gen)
    if step_size is None:
        step_size = limit / 2
    elif not (np.isfinite(step_size) and 0 < step_size < limit):
        raise ValueError(f"step_size must lie in (0, 2/lambda_max) = (0, {limit:.6g}) for stable "
                         f"gradient descent, got {step_size!r}")
    if clean is not None:
        from .generator import _check_signal
        clean = _check_signal(clean, "clean", gen.shape).astype(np.float64)
    if noise_std is not None and not (np.isfinite(noise_std) and noise_std > 0):
        raise ValueError(f"noise_std must be a positive number, got {noise_std!r}")
    C0 = gen.init_weights() if weights is None else gen.check_weights(weights)

    rule = stopping.make_rule(stop)
    rule.start(gen=gen, y=y, step_size=float(step_size), clean=clean, noise_std=noise_std,
               steps=int(steps))
    span = float(clean.max() - clean.min()) if clean is not None else 1.0
    history = _History(clean, span if span > 0 else 1.0)
    stepper = gen.stepper(C0, y, float(step_size))
    kept = None                                    # (output, weights) of rule.best_iteration

    def result(t, output):
        if rule.keeps_best and kept is not None:
            output, weights_t = kept
        else:
            weights_t = stepper.weights.copy()
        return FitResult(output=np.array(output, dtype=np.float64), weights=weights_t,
                         stopped_at=rule.best_iteration if rule.best_iteration is not None else t,
                         history=history.arrays(), step_size=float(step_size),
                         info=dict(rule.info))

    scale = None
    bar = _progress_bar(steps, progress)
    loss, output = stepper.evaluate()
    t, observed = 0, None                          # observed: (t, output) last seen by the rule
    try:
        while True:
            if scale is None:
                scale = max(loss, 0.5 * float(np.sum(np.square(y, dtype=np.float64))))
            if not np.isfinite(loss) or loss > EXPLOSION_FACTOR * scale:
                history.record(t, loss, output)
                bar.close()
                raise FitDivergedError(
                    f"gradient descent diverged at iteration {t} (loss {loss:.4g}); use a smaller "
                    f"step_size (stable limit 2/lambda_max = {limit:.6g})", t, result(t, output))
            if t % record_every == 0 or t == steps:
                history.record(t, loss, output)
            stop_now = rule.observe(t, output, loss)
            observed = (t, np.array(output, dtype=np.float64))
            if rule.keeps_best and rule.best_iteration == t:
                kept = (observed[1], stepper.weights.copy())
            if stop_now or t == steps:
                if t % record_every and t != steps:
                    history.record(t, loss, output)
                break
            loss, output = stepper.step()
            t += 1
            bar.update(1)
    except KeyboardInterrupt:
        bar.close()
        if observed is None:
            raise
        raise FitInterrupted(f"fit interrupted after iteration {observed[0]}", observed[0],
                             result(*observed)) from None
    bar.close()
    return result(t, output)


def _progress_bar(total, enabled):
    if enabled:
        try:
            from tqdm import tqdm
            return tqdm(total=total, desc="fit", unit="step", leave=False)
        except ImportError:
            pass
    return _NoBar()


class _NoBar:
    def update(self, n):
        pass

    def close(self):
        pass
