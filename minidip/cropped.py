"""A model fitted on a padded grid whose output is the leading block of that grid.

The deep decoder (E15) generates on grids whose sides are multiples of 2^(L-1).  To fit a
signal of any shape S it generates on the grid padded at the end to such a multiple and is
measured through :class:`minidip.operators.Crop` (E21): the padded pixels carry no data, so the
fit leaves them free, and because the model is periodic they also keep the right edge from
being tied to the left one.  :class:`Cropped` puts the crop inside the model, so that everything
that looks at outputs (``clean``, the history, the oracle and variance rules, observers) sees
the real pixels only.
"""
from __future__ import annotations

import math

from . import operators

__all__ = ["Cropped", "padded_grid"]


def padded_grid(shape, factor: int) -> tuple[int, ...]:
    """The smallest grid >= ``shape`` whose sides are multiples of ``factor``."""
    return tuple(factor * math.ceil(n / factor) for n in shape)


class Cropped:
    """The model protocol of :mod:`minidip.fitting` for ``model`` cropped to ``shape``.

    Parameters
    ----------
    model : a model whose output grid (the last axes of ``output_shape``) is at least ``shape``
    shape : tuple of int
        The grid kept, ``(n,)`` or ``(h, w)``; leading channels (colour) are kept whole.

    Notes
    -----
    G_S(W) = C G(W) with C the crop (:class:`minidip.operators.Crop`, per channel for colour);
    the loss 1/2 ||A C G(W) - y||^2 is the model's loss through the operator A C, so its
    gradient is the model's own (E21).
    """

    def __init__(self, model, shape):
        grid = tuple(model.output_shape)[-len(shape):]
        channels = tuple(model.output_shape)[:-len(shape)]
        crop = operators.Crop(shape, grid)
        self.crop = operators.PerChannel(crop, channels[0]) if channels else crop
        self.model = model
        self.output_shape = tuple(self.crop.output_shape)
        self.dtype = model.dtype
        self._inner = {}

    def init_weights(self):
        return self.model.init_weights()

    def check_weights(self, W):
        return self.model.check_weights(W)

    def check_target(self, y):
        from .validation import signal
        return signal(y, "target y", self.output_shape, ndims=(len(self.output_shape),),
                      dtype=self.dtype)

    def forward(self, W):
        return self.crop.forward(self.model.forward(W))

    def _through_crop(self, objective):
        """The objective y -> 1/2 ||A C G - y||^2 on the model's grid (one per objective)."""
        from .fitting import Objective
        key = id(objective)
        if key not in self._inner:
            outer = objective.operator
            op = self.crop if outer is None else operators.Compose(outer, self.crop)
            self._inner = {key: (objective, Objective(objective.y, op))}
        return self._inner[key][1]

    def objective_grad(self, W, objective):
        loss, grads, output = self.model.objective_grad(W, self._through_crop(objective))
        return loss, grads, self.crop.forward(output)

    def loss_and_grad(self, W, y):
        from .fitting import Objective
        loss, grads, _ = self.objective_grad(W, Objective(self.check_target(y)))
        return loss, grads

    def stable_step_limit(self, operator=None):
        return None

    def __repr__(self):
        return f"Cropped({self.model!r}, shape={self.output_shape})"
