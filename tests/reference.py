"""Independent references for the tests: a dense convolution matrix built from the index
definition of E1 and a tiny reverse-mode autograd, sharing no code with minidip."""
from __future__ import annotations

import itertools

import numpy as np


def dense_conv_matrix(taps, shape) -> np.ndarray:
    """U with (U c)[i] = sum_m u[m] c[i - m] (periodic), as an N x N matrix, from the definition.

    Taps are centred; an even-sized axis gets offsets -L/2 .. L/2 - 1 (a zero tap appended).
    """
    taps = np.asarray(taps, dtype=np.float64)
    shape = tuple(shape)
    size = int(np.prod(shape))
    U = np.zeros((size, size))
    centre = [t // 2 for t in taps.shape]
    for i in itertools.product(*[range(n) for n in shape]):
        row = np.ravel_multi_index(i, shape)
        for index in itertools.product(*[range(t) for t in taps.shape]):
            m = [a - c for a, c in zip(index, centre)]
            col = np.ravel_multi_index([(ii - mm) % n for ii, mm, n in zip(i, m, shape)], shape)
            U[row, col] += taps[index]
    return U


class Var:
    """A node of a computation graph: a value and, after backward(), its gradient.

    Operations return the type of ``self``, so a subclass can add operations.
    """

    def __init__(self, value, parents=()):
        self.value = np.asarray(value, dtype=np.float64)
        self.parents = parents            # pairs (parent, vector-Jacobian product)
        self.grad = np.zeros_like(self.value)

    def __add__(self, other):
        return type(self)(self.value + other.value, ((self, lambda g: g), (other, lambda g: g)))

    def __sub__(self, other):
        return type(self)(self.value - other.value, ((self, lambda g: g), (other, lambda g: -g)))

    def scale(self, a):
        return type(self)(a * self.value, ((self, lambda g: a * g),))

    def matvec(self, M):
        return type(self)(M @ self.value, ((self, lambda g: M.T @ g),))

    def relu(self):
        mask = self.value > 0
        return type(self)(np.where(mask, self.value, 0.0), ((self, lambda g: g * mask),))

    def half_sum_of_squares(self):
        return type(self)(0.5 * np.sum(self.value**2), ((self, lambda g: g * self.value),))

    def backward(self):
        order, seen = [], set()

        def visit(node):
            if id(node) not in seen:
                seen.add(id(node))
                for parent, _ in node.parents:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = np.ones_like(self.value)
        for node in reversed(order):
            for parent, vjp in node.parents:
                parent.grad = parent.grad + vjp(node.grad)


def generator_autograd(taps, C, y, A=None):
    """Forward, loss and gradient of E3-E5 by autograd on dense matrices.

    With a dense measurement matrix ``A`` (M x N) the loss is 1/2 ||A G - y||^2 (E21) and y has
    M entries.  Returns (output, loss, grad) in float64, output and grad in the shapes of the
    grid and C.
    """
    C = np.asarray(C, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    k = C.shape[0]
    shape = C.shape[1:]
    U = dense_conv_matrix(taps, shape)
    channels = [Var(c.ravel()) for c in C]
    output = None
    for j, c in enumerate(channels):
        v_j = (-1.0 if j < k // 2 else 1.0) / np.sqrt(k)
        term = c.matvec(U).relu().scale(v_j)
        output = term if output is None else output + term
    measured = output if A is None else output.matvec(np.asarray(A, dtype=np.float64))
    loss = (measured - Var(y.ravel())).half_sum_of_squares()
    loss.backward()
    grad = np.stack([c.grad for c in channels]).reshape(C.shape)
    return output.value.reshape(shape), float(loss.value), grad


def dense_dual_kernel(taps, shape) -> np.ndarray:
    """Sigma of E8 as an N x N matrix: 1/2 a (1 - arccos(a / a(0)) / pi) with a = U U^T.

    The diagonal is set to exactly a(0)/2 (arccos(1) = 0), which rounding in a / a(0) would
    otherwise perturb by about sqrt(eps).
    """
    U = dense_conv_matrix(taps, shape)
    a = U @ U.T
    ratio = np.clip(a / a[0, 0], -1.0, 1.0)
    np.fill_diagonal(ratio, 1.0)
    return 0.5 * a * (1.0 - np.arccos(ratio) / np.pi)
