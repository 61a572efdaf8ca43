"""An independent reference for the deep kernels (E17, E18) and a batched Monte-Carlo of the
network, sharing no code with minidip.

The spatial maps are the dense matrices of tests/deep_reference.py (built from the index
definition); the arc-cosine maps are written out with np.arccos; the network is a batched NumPy
forward pass over many independent draws of the weights.  Everything is float64 unless stated.
"""
from __future__ import annotations

import numpy as np

from deep_reference import dense_spatial_matrix


def spatial_matrices(input_grid, layers, upsample_taps, last_taps=None):
    """The dense P_1..P_L of E15: L-1 x2 upsamplings, then the last filter (or the identity)."""
    grid, mats = tuple(input_grid), []
    for _ in range(layers - 1):
        mats.append(dense_spatial_matrix(upsample_taps, 2, grid))
        grid = tuple(2 * n for n in grid)
    size = int(np.prod(grid))
    mats.append(np.eye(size) if last_taps is None else dense_spatial_matrix(last_taps, 1, grid))
    return mats


def _relu_expectations(Q):
    """E[1[u>0] 1[u'>0]] and E[ReLU(u) ReLU(u')] for centred Gaussians with covariance Q."""
    q = np.diag(Q)
    norm = np.sqrt(np.outer(q, q))
    cos = np.clip(np.divide(Q, norm, out=np.ones_like(Q), where=norm > 0), -1.0, 1.0)
    # two copies of one pixel have cos = 1 up to rounding; arccos(1 - 2 eps) = 2e-8 would move
    # (pi - t) / (2 pi) by 3e-9, so the documented convention takes 1 - cos <= 16 eps as 0
    cos[1 - cos <= 16 * np.finfo(float).eps] = 1.0
    np.fill_diagonal(cos, 1.0)
    t = np.arccos(cos)
    both_positive = np.where(norm > 0, (np.pi - t) / (2 * np.pi), 0.0)
    product = norm * (np.sin(t) + (np.pi - t) * np.cos(t)) / (2 * np.pi)
    return both_positive, product


def kernels(K0, mats, hidden_variance=2.0, output_variance=1.0):
    """(NNGP, NTK with W_out trained, NTK with W_out fixed) from the pixel Gram K0 (E17, E18)."""
    K, T = K0, None
    for P in mats:
        Q = hidden_variance * P @ K @ P.T
        T = Q if T is None else Q + hidden_variance * P @ (T * dot) @ P.T
        dot, K = _relu_expectations(Q)
    return output_variance * K, output_variance * (K + T * dot), output_variance * T * dot


def sample_outputs(B0, mats, widths, seeds, rng, parametrization="ntk", dtype=np.float64):
    """Outputs x = W_out ReLU(P_L W_L ... ReLU(P_1 W_1 B_0)) for ``seeds`` independent weight
    draws, (seeds, N).  ``widths``: k_1..k_L.  "ntk": W = sigma/sqrt(fan_in) N(0, 1) with
    sigma^2 = 2 (hidden), 1 (output); "standard": uniform on +-1/sqrt(fan_in)."""
    def draw(shape):
        fan_in = shape[-1]
        if parametrization == "standard":
            bound = 1 / np.sqrt(fan_in)
            return rng.uniform(-bound, bound, shape).astype(dtype)
        return rng.standard_normal(shape, dtype=dtype) * dtype(np.sqrt(2.0 / fan_in))

    flat = B0.reshape(B0.shape[0], -1).astype(dtype)
    B = np.broadcast_to(flat, (seeds,) + flat.shape)
    for k, P in zip(widths, mats):
        W = draw((seeds, k, B.shape[1]))
        B = np.maximum((W @ B) @ P.T.astype(dtype), 0)
    W_out = draw((seeds, 1, B.shape[1]))
    if parametrization == "ntk":
        W_out = W_out / dtype(np.sqrt(2.0))                  # sigma_o^2 = 1
    return (W_out @ B)[:, 0, :].astype(np.float64)
