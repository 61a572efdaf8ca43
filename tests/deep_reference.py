"""An independent reference for the deep decoder (E15, E16), sharing no code with minidip.

The spatial maps are dense matrices built from the index definition (zero insertion, then
circular convolution with centred taps), and the gradients come from a tiny reverse-mode autograd
on 2-D arrays (channels x pixels), with channel normalisation composed from its primitive
operations.  Everything is float64.
"""
from __future__ import annotations

import itertools

import numpy as np

from reference import Var


def dense_spatial_matrix(taps, factor, grid) -> np.ndarray:
    """P with (P z)[i] = sum_m h[m] z_up[i - m], z_up[f j] = z[j] and 0 elsewhere, per axis.

    ``taps`` are 1-D, centred (an even length gets offsets -L/2 .. L/2 - 1), and act along
    every axis of ``grid`` (the coarse grid); indices are periodic on the fine grid.  Returns an
    (N_fine, N_coarse) matrix in row-major pixel order.
    """
    taps = np.asarray(taps, dtype=np.float64)
    grid = tuple(grid)
    fine = tuple(factor * n for n in grid)
    P = np.zeros((int(np.prod(fine)), int(np.prod(grid))))
    offsets = [t - len(taps) // 2 for t in range(len(taps))]
    for i in itertools.product(*[range(n) for n in fine]):
        for m in itertools.product(*[range(len(taps)) for _ in grid]):
            source = [(ii - offsets[t]) % n for ii, t, n in zip(i, m, fine)]
            if all(s % factor == 0 for s in source):
                j = [s // factor for s in source]
                P[np.ravel_multi_index(i, fine), np.ravel_multi_index(j, grid)] += \
                    np.prod([taps[t] for t in m])
    return P


class Node(Var):
    """A value (2-D array) and, after backward(), the gradient of the scalar output."""

    def __mul__(self, other):
        return Node(self.value * other.value,
                    ((self, lambda g: g * other.value), (other, lambda g: g * self.value)))

    def __matmul__(self, other):
        return Node(self.value @ other.value,
                    ((self, lambda g: g @ other.value.T), (other, lambda g: self.value.T @ g)))

    def sigmoid(self):
        s = 1 / (1 + np.exp(-self.value))
        return Node(s, ((self, lambda g: g * s * (1 - s)),))

    def rsqrt(self):
        r = self.value ** -0.5
        return Node(r, ((self, lambda g: -0.5 * g * r ** 3),))


def const(value):
    return Node(value)


def deep_decoder_autograd(params, B0, upsample_taps, norm, sigmoid, parametrization,
                          last_taps=None):
    """The output x as a Node of shape (c_out, N), and the Nodes of the trained arrays.

    ``params``: "W1".."WL", "Wout", ("gamma1".., "beta1".. with norm), the trained arrays;
    ``B0``: (k_0, *S_0).  Layer l < L upsamples x2 per axis with ``upsample_taps``, layer L
    convolves with ``last_taps`` (None: identity).
    """
    layers = sum(1 for name in params if name[0] == "W" and name != "Wout")
    grid = tuple(B0.shape[1:])
    nodes = {name: Node(value) for name, value in params.items()}
    B = const(B0.reshape(B0.shape[0], -1))
    for l in range(1, layers + 1):
        fan_in = B.value.shape[0]
        scale = np.sqrt(2.0 / fan_in) if parametrization == "ntk" else 1.0
        Z = (const(scale * np.ones_like(params[f"W{l}"])) * nodes[f"W{l}"]) @ B
        if l < layers:
            P = dense_spatial_matrix(upsample_taps, 2, grid)
            grid = tuple(2 * n for n in grid)
            Z = Z @ const(P.T)
        elif last_taps is not None:
            Z = Z @ const(dense_spatial_matrix(last_taps, 1, grid).T)
        A = Z.relu()
        if norm:
            k, n = A.value.shape
            mean_op = const(np.full((n, n), 1.0 / n))      # A @ mean_op: each row's mean, spread
            centred = A - A @ mean_op
            var = (centred * centred) @ mean_op
            xhat = centred * (var + const(np.full((k, n), 1e-5))).rsqrt()
            spread = const(np.ones((1, n)))
            B = (_column(nodes[f"gamma{l}"]) @ spread) * xhat + _column(nodes[f"beta{l}"]) @ spread
        else:
            B = A
    scale = np.sqrt(1.0 / B.value.shape[0]) if parametrization == "ntk" else 1.0
    out = (const(scale * np.ones_like(params["Wout"])) * nodes["Wout"]) @ B
    if sigmoid:
        out = out.sigmoid()
    return out, nodes


def _column(node):
    """A (k,) parameter as a (k, 1) column, passing gradients back."""
    return Node(node.value.reshape(-1, 1), ((node, lambda g: g.reshape(-1)),))


def loss_and_grad(params, B0, y, **config):
    """(output of y's shape, loss, grads) of 1/2 ||x - y||^2 for the deep decoder, by autograd."""
    out, nodes = deep_decoder_autograd(params, B0, **config)
    y = np.asarray(y, dtype=np.float64)
    loss = (out - const(y.reshape(out.value.shape))).half_sum_of_squares()
    loss.backward()
    return out.value.reshape(y.shape), float(loss.value), {n: v.grad for n, v in nodes.items()}
