"""Fitting a model to a target by gradient descent (E6) or Adam, optionally through a forward
operator (E21), with stop rules and observers.

A model is anything with the small protocol that :func:`fit` uses (both :class:`minidip.Generator`
and :class:`minidip.DeepDecoder` have it):

``init_weights()``
    The starting weights: an array, or a dict of named arrays.
``check_weights(W)``
    W validated and converted to the model's dtype (ValueError otherwise).
``check_target(y)``
    y validated as an output of the model (ValueError otherwise).
``output_shape``
    The shape of ``forward(W)``.
``forward(W)``, ``loss_and_grad(W, y)``
    The output, and (1/2 ||G(W) - y||^2, its gradient with W's structure).
``objective_grad(W, objective)``
    ``(loss, grads, output)`` for an :class:`Objective`, which forms the residual.
``stable_step_limit(operator=None)``
    The largest stable step size of gradient descent on the linearized dynamics, or None when
    the model has no closed form for it (gradient descent then needs an explicit step size).
``stepper(W, objective, step_size)`` (optional)
    A fused gradient-descent iterator; models without one get :class:`GradientDescent`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from . import metrics, stopping
from . import validation as _check
from .spectral import resolve_step_size

__all__ = ["fit", "FitResult", "FitDivergedError", "FitInterrupted", "Objective", "Iterate",
           "GradientDescent", "Adam", "OPTIMIZERS", "ADAM_STEP_SIZE", "ADAM_BETAS", "ADAM_EPS",
           "stable_step_limit"]

#: The loss counts as exploding once it exceeds this multiple of max(L(C_0), ||y||^2 / 2).
EXPLOSION_FACTOR = 1e3
OPTIMIZERS = ("gd", "adam")
#: Adam's defaults (Kingma and Ba 2015, as in PyTorch): the learning rate that the deep decoder
#: is usually run with (Heckel and Hand 2019), the decay rates of the two moments, and the
#: denominator's guard.
ADAM_STEP_SIZE = 0.01
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8


@dataclass
class FitResult:
    """What :func:`fit` returns.

    output : the model's output at the returned iterate (chosen by the stop rule), float64.
    weights : the weights at that iterate (an array, or a dict of arrays).
    stopped_at : the iteration number of that iterate (0 is the initialization).
    history : name -> 1-D array, one entry per recorded iteration: "iteration", "loss", and with
        ``clean`` also "error" (l2 distance to clean) and "psnr" (dB, data range of clean).
    step_size : the step size used (Adam's learning rate with ``optimizer="adam"``).
    info : "triggered" (True when the stop rule decided, False when it never fired and the last
        iterate is returned), "optimizer", "noise_std" and "noise_std_estimated" when a noise
        level was used, and what the stop rule measured.
    """

    output: np.ndarray
    weights: object
    stopped_at: int
    history: dict = field(default_factory=dict)
    step_size: float = math.nan
    info: dict = field(default_factory=dict)


class FitDivergedError(RuntimeError):
    """The fit diverged; ``iteration`` says where, ``result`` holds the fit so far."""

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
        g = self.operator.adjoint(m)
        return 0.5 * float(np.sum(np.square(m, dtype=np.float64))), g.astype(output.dtype)


class Iterate(NamedTuple):
    """What observers see at every iterate: do not modify the arrays; copy what you keep.

    ``weights`` are the optimizer's live weights, valid until the next step.
    """

    iteration: int
    output: np.ndarray
    loss: float
    weights: object


def stable_step_limit(gen, operator=None) -> float:
    """The model's stable limit for gradient descent (2 / lambda_max for the two-layer model, E10)."""
    return gen.stable_step_limit(operator)


# --------------------------------------------------------------------------------------------
# Optimizers on weights that are an array or a dict of arrays.

def _arrays(W) -> list:
    return list(W.values()) if isinstance(W, dict) else [W]


def _copy(W):
    return {k: v.copy() for k, v in W.items()} if isinstance(W, dict) else W.copy()


class GradientDescent:
    """Plain gradient descent W <- W - eta dL/dW (E6) on its own copy of the weights.

    ``evaluate()`` returns ``(loss, output)`` at the current ``weights``; ``step()`` takes one
    step and returns ``(loss, output)`` at the new weights.
    """

    def __init__(self, model, W, objective, step_size):
        self.model, self.weights, self.objective = model, _copy(W), objective
        self.step_size = float(step_size)
        self._grads = None

    def evaluate(self):
        loss, grads, output = self.model.objective_grad(self.weights, self.objective)
        self._grads = _arrays(grads)
        return loss, output

    def step(self):
        if self._grads is None:
            self.evaluate()
        for w, g in zip(_arrays(self.weights), self._grads):
            w -= w.dtype.type(self.step_size) * g
        return self.evaluate()


class Adam(GradientDescent):
    """Adam (Kingma and Ba 2015) with bias correction, in PyTorch's form.

    At step t: m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
    W <- W - (eta / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps), elementwise per array.
    Defaults :data:`ADAM_BETAS` and :data:`ADAM_EPS`; eta is the step size (learning rate).
    """

    def __init__(self, model, W, objective, step_size, betas=ADAM_BETAS, eps=ADAM_EPS):
        super().__init__(model, W, objective, step_size)
        self.betas, self.eps = betas, float(eps)
        self._m = [np.zeros_like(w) for w in _arrays(self.weights)]
        self._v = [np.zeros_like(w) for w in _arrays(self.weights)]
        self._t = 0

    def step(self):
        if self._grads is None:
            self.evaluate()
        self._t += 1
        b1, b2 = self.betas
        scale = self.step_size / (1 - b1**self._t)
        root_bc2 = math.sqrt(1 - b2**self._t)
        for w, g, m, v in zip(_arrays(self.weights), self._grads, self._m, self._v):
            dt = w.dtype.type
            m *= dt(b1)
            m += dt(1 - b1) * g
            v *= dt(b2)
            v += dt(1 - b2) * np.square(g)
            w -= dt(scale) * m / (np.sqrt(v) / dt(root_bc2) + dt(self.eps))
        return self.evaluate()


def _stepper(model, W, objective, optimizer, step_size):
    if optimizer == "adam":
        return Adam(model, W, objective, step_size)
    if hasattr(model, "stepper"):
        return model.stepper(W, objective, step_size)
    return GradientDescent(model, W, objective, step_size)


# --------------------------------------------------------------------------------------------
# fit

class _History:
    """The recorder behind ``FitResult.history``: an observer of every ``record_every``-th iterate."""

    def __init__(self, clean, record_every, last):
        self.clean, self.every, self.last = clean, record_every, last
        span = float(clean.max() - clean.min()) if clean is not None else 1.0
        self.data_range = span if span > 0 else 1.0
        self.rows = {"iteration": [], "loss": []}
        if clean is not None:
            self.rows.update(error=[], psnr=[])

    def __call__(self, it: Iterate, force=False):
        if not (force or it.iteration % self.every == 0 or it.iteration == self.last):
            return
        if self.rows["iteration"] and self.rows["iteration"][-1] == it.iteration:
            return
        self.rows["iteration"].append(it.iteration)
        self.rows["loss"].append(it.loss)
        if self.clean is not None:
            err = math.sqrt(float(np.sum(np.square(it.output - self.clean))))   # no BLAS threads
            self.rows["error"].append(err)
            self.rows["psnr"].append(metrics.psnr(it.output, self.clean,
                                                  data_range=self.data_range))

    def arrays(self):
        return {name: np.asarray(values, dtype=np.int64 if name == "iteration" else np.float64)
                for name, values in self.rows.items()}


def _check_measurements(gen, y, operator):
    if operator is None:
        return gen.check_target(y)
    if tuple(operator.input_shape) != tuple(gen.output_shape):
        raise ValueError(f"the operator takes inputs of shape {tuple(operator.input_shape)} but "
                         f"the model's output has shape {tuple(gen.output_shape)}; build the "
                         "operator for the model's grid")
    return _check.signal(y, "measurements y", tuple(operator.output_shape),
                         ndims=(len(operator.output_shape),), dtype=gen.dtype)


def _noise_level(rule, y, operator, noise_std):
    """(sigma, estimated): the given noise_std, or an estimate from y when the rule needs one."""
    if noise_std is not None:
        return _check.positive(noise_std, "noise_std"), False
    if not rule.needs_noise_level:
        return None, False
    if operator is None:
        return stopping.estimate_noise_std(y), True
    estimate = getattr(operator, "estimate_noise_std", None)
    if estimate is None:
        raise ValueError(f"stop rule {rule.name!r} needs the noise level and it cannot be "
                         f"estimated from the measurements of {type(operator).__name__}; pass "
                         "noise_std=...")
    return float(estimate(y)), True


def _step_size(gen, optimizer, step_size, operator):
    if optimizer == "adam":
        return ADAM_STEP_SIZE if step_size is None else _check.positive(step_size, "step_size")
    limit = gen.stable_step_limit(operator)
    if limit is None:
        if step_size is None:
            raise ValueError(f"{type(gen).__name__} has no closed-form stable step size for "
                             "gradient descent; pass step_size=... or use optimizer='adam'")
        return _check.positive(step_size, "step_size")
    return resolve_step_size(step_size, limit)


def fit(gen, y, steps, step_size=None, weights=None, clean=None, stop=None, noise_std=None,
        record_every=1, progress=False, *, optimizer="gd", operator=None,
        observers=()) -> FitResult:
    """Fit a model to ``y`` by gradient descent (E6) or Adam for up to ``steps`` steps.

    Minimises L = 1/2 ||G(W) - y||^2 (E4), or 1/2 ||A G(W) - y||^2 with a forward ``operator``
    A (E21).

    Parameters
    ----------
    gen : Generator, DeepDecoder or any model with the protocol of :mod:`minidip.fitting`
    y : array
        The target: an output of the model (e.g. a noisy image), or measurements of shape
        ``operator.output_shape``.
    steps : int
        Maximum number of steps; iterates 0..steps are observed.
    step_size : float, optional
        Gradient descent: eta, default half the model's stable limit (1 / lambda_max of the dual
        kernel for the two-layer generator, E10; of A Sigma A^T with an operator, E22); an
        explicit one must lie in (0, limit).  Adam: the learning rate, default
        :data:`ADAM_STEP_SIZE`.
    weights : array or dict, optional
        Start; default ``gen.init_weights()``.  Not modified.
    clean : array of the model's output shape, optional
        Reference for the "error" and "psnr" history (in image space, also with an operator) and
        for ``stop="oracle"``.
    stop : None, str or StopRule
        None returns the last iterate; "oracle" the iterate of least error to ``clean``; see
        :mod:`minidip.stopping` for the others.
    noise_std : float, optional
        Noise level of y.  Resolved once: rules that need it and get none use an estimate from y
        (:func:`minidip.stopping.estimate_noise_std`).
    record_every : int
        Record the history every this many iterations (and always at the last one).
    progress : bool
        Show a progress bar.
    optimizer : "gd" or "adam"
    operator : forward operator, optional
        With ``forward``, ``adjoint``, ``input_shape`` (the model's output shape) and
        ``output_shape`` (y's shape), e.g. from :mod:`minidip.operators`.
    observers : sequence of callables
        Each is called with an :class:`Iterate` at every iterate (recorders, plots, logs).

    Raises
    ------
    ValueError for bad input; FitDivergedError (with the history so far) when the loss becomes
    non-finite or explodes; FitInterrupted (with the result so far) on KeyboardInterrupt.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    y = _check_measurements(gen, y, operator)
    steps = _check.non_negative_int(steps, "steps")
    record_every = _check.positive_int(record_every, "record_every")
    step_size = _step_size(gen, optimizer, step_size, operator)
    if clean is not None:
        clean = _check.signal(clean, "clean", tuple(gen.output_shape),
                              ndims=(len(gen.output_shape),))
    W0 = gen.init_weights() if weights is None else gen.check_weights(weights)
    objective = Objective(y, operator)

    rule = stopping.make_rule(stop)
    sigma, estimated = _noise_level(rule, y, operator, noise_std)
    rule.start(stopping.FitContext(model=gen, y=y, objective=objective, step_size=step_size,
                                   optimizer=optimizer, steps=steps, clean=clean,
                                   noise_std=sigma))
    noise_info = {} if sigma is None else dict(noise_std=sigma, noise_std_estimated=estimated)
    history = _History(clean, record_every, steps)
    watchers = [history, *observers]
    stepper = _stepper(gen, W0, objective, optimizer, step_size)
    kept = None                                    # (output, weights) of rule.best_iteration

    def result(t, output):
        if rule.keeps_best and kept is not None:
            output, weights_t = kept
        else:
            weights_t = _copy(stepper.weights)
        stopped = rule.best_iteration if rule.best_iteration is not None else t
        return FitResult(output=np.array(output, dtype=np.float64), weights=weights_t,
                         stopped_at=stopped, history=history.arrays(), step_size=step_size,
                         info=dict(noise_info, optimizer=optimizer, **rule.info,
                                   triggered=rule.triggered(stopped, t)))

    scale = None
    bar = _progress_bar(steps, progress)
    loss, output = stepper.evaluate()
    t, observed = 0, None                          # observed: (t, output) last seen by the rule
    try:
        while True:
            if scale is None:
                scale = max(loss, 0.5 * float(np.sum(np.square(y, dtype=np.float64))))
            it = Iterate(t, output, loss, stepper.weights)
            if not np.isfinite(loss) or loss > EXPLOSION_FACTOR * scale:
                history(it, force=True)
                bar.close()
                hint = ("a smaller step_size" if optimizer == "adam" else
                        f"a smaller step_size (stable limit {_limit_text(gen, operator)})")
                name = "Adam" if optimizer == "adam" else "gradient descent"
                raise FitDivergedError(f"{name} diverged at iteration {t} (loss {loss:.4g}); "
                                       f"use {hint}", t, result(t, output))
            for watch in watchers:
                watch(it)
            stop_now = rule.observe(t, output, loss)
            observed = (t, np.array(output, dtype=np.float64))
            if rule.keeps_best and rule.best_iteration == t:
                kept = (observed[1], _copy(stepper.weights))
            if stop_now or t == steps:
                history(it, force=True)
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


def _limit_text(gen, operator) -> str:
    limit = gen.stable_step_limit(operator)
    return "unknown" if limit is None else f"{limit:.6g}"


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
