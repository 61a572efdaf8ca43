"""Rules that choose which iterate of a fit to return (early stopping).

A rule watches the fit one iterate at a time.  :meth:`StopRule.observe` is called with the
iteration number, the output G(C_t) and the loss; it returns True to end the fit there.
``best_iteration`` is the iterate the rule would return now.  Rules whose answer can lie in the
past (``keeps_best = True``) make :func:`minidip.fit` keep a copy of that iterate.
"""
from __future__ import annotations

import numpy as np

__all__ = ["StopRule", "Last", "Oracle", "make_rule", "RULES"]


class StopRule:
    """Base class: return the last iterate, never stop early."""

    name = "none"
    keeps_best = False

    def __init__(self):
        self.best_iteration = None
        self.info: dict = {}

    def start(self, *, gen, y, step_size, clean=None, noise_std=None):
        """Called once before the first iterate; y is the target, clean the reference if any."""

    def observe(self, iteration: int, output: np.ndarray, loss: float) -> bool:
        self.best_iteration = iteration
        return False


Last = StopRule


class Oracle(StopRule):
    """Return the iterate of least l2 error to the clean signal (needs ``clean``)."""

    name = "oracle"
    keeps_best = True

    def start(self, *, gen, y, step_size, clean=None, noise_std=None):
        if clean is None:
            raise ValueError("stop='oracle' needs the clean signal: pass clean=...")
        self.clean = np.asarray(clean, np.float64)
        self.best_error = np.inf

    def observe(self, iteration, output, loss):
        error = float(np.linalg.norm(output - self.clean))
        if error < self.best_error:
            self.best_error, self.best_iteration = error, iteration
        return False


RULES = {"oracle": Oracle}


def make_rule(stop) -> StopRule:
    """A fresh rule from a name in :data:`RULES`, None (the last iterate), or a StopRule."""
    if stop is None:
        return StopRule()
    if isinstance(stop, StopRule):
        return stop
    if isinstance(stop, str) and stop in RULES:
        return RULES[stop]()
    raise ValueError(f"unknown stop rule {stop!r}; choose None or one of {sorted(RULES)}")
