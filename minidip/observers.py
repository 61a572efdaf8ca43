"""Observers: callables that watch a fit at every iterate (``minidip.fit(..., observers=...)``).

An observer is called with a :class:`minidip.fitting.Iterate` (iteration, output, loss, live
weights) and returns nothing; it never changes which iterate the fit returns (that is what stop
rules do).  Any callable works; these are the ones the project uses.
"""
from __future__ import annotations

import numpy as np

__all__ = ["Snapshots"]


class Snapshots:
    """Keep copies of the outputs (and optionally the weights) at chosen iterations.

    Parameters
    ----------
    iterations : iterable of int
        The iterations to keep.
    weights : bool
        Also keep a copy of the weights there.

    Attributes
    ----------
    outputs : dict iteration -> float64 array
    weights : dict iteration -> weights (only with ``weights=True``)
    """

    def __init__(self, iterations, weights: bool = False):
        self.iterations = set(int(t) for t in iterations)
        self.outputs = {}
        self.weights = {} if weights else None

    def __call__(self, iterate):
        if iterate.iteration in self.iterations:
            self.outputs[iterate.iteration] = np.array(iterate.output, dtype=np.float64)
            if self.weights is not None:
                w = iterate.weights
                self.weights[iterate.iteration] = ({k: v.copy() for k, v in w.items()}
                                                   if isinstance(w, dict) else w.copy())

    def stack(self) -> np.ndarray:
        """The kept outputs in iteration order, shape (len(kept), *output_shape)."""
        return np.stack([self.outputs[t] for t in sorted(self.outputs)])
