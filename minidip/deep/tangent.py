"""The finite-width NTK of the deep decoder, J J^T, as an operator (E20).

J is the Jacobian of the output x (``gen.output_shape``) with respect to the trained arrays of
E16 (Omega under "ntk", W under "standard"; gamma, beta with channel normalisation).  Its
transpose is the model's backward pass (:func:`minidip.deep.model.backward`, the VJP); J itself
is the forward-mode pass below (the JVP), layer by layer next to the forward map of E15:

    dZ_l = dW_l B_{l-1} + W_l dB_{l-1}               (1x1 convolution; dB_0 = 0, B_0 is fixed)
    dU_l = P_l dZ_l                                   (the fixed spatial map is linear)
    dA_l = 1[U_l > 0] dU_l                            (ReLU, ReLU'(0) = 0)
    dB_l = dgamma_l xhat_l + dbeta_l
           + gamma_l inv_std_l (dA_l - mean(dA_l) - xhat_l mean(dA_l xhat_l))   (normalisation)
    dx   = dW_out B_L + W_out dB_L  (times x (1 - x) with the sigmoid)

with dW = s dOmega under "ntk" (s = sigma / sqrt(fan_in), :meth:`DeepDecoder.weight_scales`).
Everything runs in float64 on the NumPy reference of the model, whatever the model's dtype.

With channel normalisation the NTK has no closed form; these operators measure it, and
:func:`fourier_rayleigh_quotients` gives its Rayleigh quotients on the Fourier modes, to set
against the closed-form spectrum of E18/E19 (:func:`minidip.deep.kernels.ntk_phase_average`).
"""
from __future__ import annotations

import math

import numpy as np

from .. import validation as _check
from .model import (DeepDecoder, backward, channel_norm_backward, conv1x1, forward, relu_backward,
                    sigmoid_backward, spatial_map, spatial_map_adjoint)

__all__ = ["Linearisation", "linearise", "jvp", "vjp", "apply_empirical_ntk",
           "dense_empirical_ntk", "fourier_rayleigh_quotients", "fourier_modes",
           "MAX_BATCH_ENTRIES"]

#: Largest batch x channels x pixels of sensitivities held at once by the batched products
#: (2^25 float64 values, 256 MB).
MAX_BATCH_ENTRIES = 2**25


class Linearisation:
    """The model at fixed parameters, ready for JVPs and VJPs (E20).

    Attributes: ``gen``; ``W`` the effective weights in float64 (E16); ``tape`` the forward pass
    of :func:`minidip.deep.model.forward`; ``scales`` name -> s with W = s * P[name].
    """

    def __init__(self, gen, P):
        if not isinstance(gen, DeepDecoder):
            raise ValueError(f"the finite-width NTK needs a minidip.DeepDecoder, got "
                             f"{type(gen).__name__}")
        P = gen.check_weights(P)
        self.gen = gen
        self.scales = gen.weight_scales()
        self.W = {name: self.scales.get(name, 1.0) * value.astype(np.float64)
                  for name, value in P.items()}
        self.input = gen.input.astype(np.float64)
        self.output, self.tape = forward(self.W, self.input, gen.spatial, gen.norm, gen.sigmoid)

    @property
    def size(self) -> int:
        """The number of outputs, c_out N."""
        return self.output.size


def linearise(gen, P) -> Linearisation:
    """The model linearised at the parameters ``P`` (E20): reuse it for many JVPs and VJPs."""
    return Linearisation(gen, P)


def _at(gen_or_lin, P) -> Linearisation:
    return gen_or_lin if isinstance(gen_or_lin, Linearisation) else Linearisation(gen_or_lin, P)


def jvp(gen, P, tangent) -> np.ndarray:
    """(E20) J t: the change of the output along a change ``tangent`` of the trained arrays.

    Parameters
    ----------
    gen : DeepDecoder, or a :class:`Linearisation` (then ``P`` is ignored and may be None)
    P : dict of trained arrays, the point of linearisation
    tangent : dict with the keys of P (arrays of their shapes)

    Returns
    -------
    array of ``gen.output_shape``, float64.
    """
    lin = _at(gen, P)
    gen, W, tape = lin.gen, lin.W, lin.tape
    d = _tangent(lin, tangent)
    dB = None
    for l, spatial in enumerate(gen.spatial, start=1):
        entry = tape["layers"][l - 1]
        dZ = conv1x1(d[f"W{l}"], entry["input"])
        if dB is not None:
            dZ = dZ + conv1x1(W[f"W{l}"], dB)
        dU = dZ if spatial is None else spatial_map(dZ, *spatial)
        dA = relu_backward(dU, entry["A"])                 # the same mask forwards and back
        if gen.norm:
            dB = _channel_norm_jvp(dA, d[f"gamma{l}"], d[f"beta{l}"], W[f"gamma{l}"],
                                   *entry["norm"])
        else:
            dB = dA
    dx = conv1x1(d["Wout"], tape["B"]) + conv1x1(W["Wout"], dB)
    if gen.sigmoid:
        dx = sigmoid_backward(dx, tape["out"])              # x (1 - x) dx
    return dx.reshape(gen.output_shape)


def _channel_norm_jvp(dA, dgamma, dbeta, gamma, xhat, inv_std):
    """dB of B = gamma xhat + beta along (dA, dgamma, dbeta) (E15).

    d xhat = inv_std (dA - mean(dA) - xhat mean(dA xhat)), means over each channel's pixels:
    the same symmetric map as the backward pass of :func:`channel_norm_backward`.
    """
    pixels = tuple(range(1, dA.ndim))
    column = (-1,) + (1,) * (dA.ndim - 1)
    dxhat = inv_std * (dA - dA.mean(axis=pixels, keepdims=True)
                       - xhat * (dA * xhat).mean(axis=pixels, keepdims=True))
    return (dgamma.reshape(column) * xhat + dbeta.reshape(column)
            + gamma.reshape(column) * dxhat)


def _tangent(lin: Linearisation, tangent) -> dict:
    """The tangent of the effective weights: s * tangent for the W arrays (E16)."""
    shapes = lin.gen.weight_shapes()
    if not isinstance(tangent, dict) or set(tangent) != set(shapes):
        raise ValueError(f"tangent must be a dict with the keys {sorted(shapes)} (the trained "
                         "arrays of init_weights())")
    out = {}
    for name, shape in shapes.items():
        value = np.asarray(tangent[name], dtype=np.float64)
        if value.shape != shape:
            raise ValueError(f"tangent {name} has shape {value.shape}, expected {shape}")
        out[name] = lin.scales.get(name, 1.0) * value
    return out


def vjp(gen, P, cotangent) -> dict:
    """(E20) J^T r: the gradient of <x, r> with respect to every trained array.

    The model's backward pass (:func:`minidip.deep.model.backward`) in float64; under "ntk"
    the W entries are gradients with respect to Omega (s dL/dW).

    Returns
    -------
    dict with the keys of P, float64 arrays.
    """
    lin = _at(gen, P)
    gen = lin.gen
    r = _check.signal(cotangent, "cotangent", gen.output_shape, ndims=(1, 2, 3))
    grads = backward(r.reshape(lin.output.shape), lin.W, lin.tape, gen.spatial, gen.norm,
                     gen.sigmoid)
    return {name: lin.scales.get(name, 1.0) * g for name, g in grads.items()}


def apply_empirical_ntk(gen, P, r) -> np.ndarray:
    """(E20) J J^T r, the finite-width NTK at ``P`` applied to r (one VJP, one JVP).

    No N x N matrix.  Pass a :class:`Linearisation` as ``gen`` to apply it many times.

    Returns
    -------
    array of ``gen.output_shape``, float64.
    """
    lin = _at(gen, P)
    return jvp(lin, None, vjp(lin, None, r))


# --------------------------------------------------------------------------------------------
# Batched: J^T on many cotangents at once, and the Gram matrix of the results

def _gram(lin: Linearisation, R: np.ndarray, diagonal: bool, train_output: bool):
    """(E20) ``(J^T R)(J^T R)^T`` (m x m), or its diagonal, for cotangents R (m, c_out * N).

    The reverse pass of the model on a batch: with dZ_l the cotangent of the 1x1 convolution
    of layer l, the block of Omega_l is ``s_l^2 sum_a dZ[a] B_{l-1}^T B_{l-1} dZ'[a]^T``;
    gamma_l and beta_l contribute the products of their gradients, W_out that of
    ``s_out dx B_L^T``.
    """
    gen, W, tape = lin.gen, lin.W, lin.tape
    m = R.shape[0]
    out_shape = lin.output.shape                                      # (c_out, *S)
    dx = R.reshape((m,) + out_shape)
    if gen.sigmoid:
        dx = sigmoid_backward(dx, tape["out"])
    total = np.zeros(m if diagonal else (m, m))

    def add(g, h=None):
        nonlocal total
        g = g.reshape(m, -1)
        h = g if h is None else h.reshape(m, -1)
        total = total + (np.einsum("ip,ip->i", g, h) if diagonal else g @ h.T)

    def weights(name, dZ, B):
        # <dZ B^T, dZ' B^T> summed over (a, b), contracted in the cheaper order
        B = B.reshape(B.shape[0], -1)
        dZ = dZ.reshape(m, dZ.shape[1], -1)
        s2 = lin.scales.get(name, 1.0) ** 2
        if B.shape[0] <= B.shape[1]:
            add(np.sqrt(s2) * (dZ @ B.T))
        else:
            add(s2 * (dZ @ (B.T @ B)), dZ)

    if train_output:
        weights("Wout", dx, tape["B"])
    dB = _left_multiply(W["Wout"].T, dx)
    for l in range(len(gen.spatial), 0, -1):
        entry, spatial = tape["layers"][l - 1], gen.spatial[l - 1]
        k, grid = dB.shape[1], dB.shape[2:]
        if gen.norm:
            xhat, inv_std = entry["norm"]
            flat = (m * k,) + grid
            dA, dgamma, dbeta = channel_norm_backward(
                dB.reshape(flat), np.tile(W[f"gamma{l}"], m),
                np.broadcast_to(xhat, (m,) + xhat.shape).reshape(flat),
                np.broadcast_to(inv_std, (m,) + inv_std.shape).reshape((m * k,) + (1,) * len(grid)))
            dA = dA.reshape(dB.shape)
            add(dgamma)
            add(dbeta)
        else:
            dA = dB
        dU = relu_backward(dA, entry["A"])
        if spatial is None:
            dZ = dU
        else:
            dZ = spatial_map_adjoint(dU.reshape((m * k,) + grid), *spatial)
            dZ = dZ.reshape((m, k) + dZ.shape[1:])
        weights(f"W{l}", dZ, entry["input"])
        if l > 1:
            dB = _left_multiply(W[f"W{l}"].T, dZ)
    return total


def _left_multiply(A: np.ndarray, X: np.ndarray) -> np.ndarray:
    """A X[i] for every item of a batch X (m, k, *grid): one matrix product over the batch."""
    m, k, grid = X.shape[0], X.shape[1], X.shape[2:]
    columns = np.moveaxis(X.reshape(m, k, -1), 1, 0).reshape(k, -1)         # (k, m pixels)
    return np.moveaxis((A @ columns).reshape(A.shape[0], m, -1), 0, 1).reshape(
        (m, A.shape[0]) + grid)


def _batch_size(lin: Linearisation) -> int:
    widest = max(e["A"].size for e in lin.tape["layers"])
    return max(1, MAX_BATCH_ENTRIES // widest)


def dense_empirical_ntk(gen, P, *, train_output=True) -> np.ndarray:
    """(E20) The dense finite-width NTK J J^T at ``P``, (c_out N) x (c_out N), small N only.

    Rows and columns in the order of the flattened output (channel-major for c_out = 3).
    ``train_output=False`` leaves W_out out of J (fixed output weights).

    Raises
    ------
    ValueError if the batched reverse pass would hold more than MAX_BATCH_ENTRIES values
    (use :func:`apply_empirical_ntk`, the operator, instead).
    """
    lin = _at(gen, P)
    if lin.size > _batch_size(lin):
        raise ValueError(f"a dense empirical NTK of {lin.size} outputs at these widths needs more "
                         f"than {MAX_BATCH_ENTRIES} values at once; apply it as an operator "
                         "(md.deep.apply_empirical_ntk) instead")
    return _gram(lin, np.eye(lin.size), False, train_output)


def fourier_modes(shape, frequencies):
    """Real and imaginary parts of the unitary Fourier modes phi_f = exp(2 pi i f.x / S) / sqrt(N).

    ``frequencies``: flat indices into ``shape`` (np.fft order).  Returns ``(cos, sin)``, each
    (len(frequencies), N).
    """
    coords = np.indices(shape).reshape(len(shape), -1)
    f = np.array(np.unravel_index(np.asarray(frequencies), shape)).reshape(len(shape), -1)
    phase = 2 * np.pi * sum(np.outer(f[a], coords[a]) / n for a, n in enumerate(shape))
    scale = 1 / math.sqrt(math.prod(shape))
    return scale * np.cos(phase), scale * np.sin(phase)


def fourier_rayleigh_quotients(gen, P, frequencies=None, *, train_output=True) -> np.ndarray:
    """(E20) Rayleigh quotients of J J^T on the unitary Fourier modes: ``||J^T phi_f||^2``.

    For a circulant kernel they are its eigenvalues; for the cyclostationary E18/E19 kernel the
    diagonal of F Theta F^H, i.e. the phase-averaged spectrum of
    :func:`minidip.deep.kernels.ntk_phase_average`.  phi_f = cos_f + i sin_f, so the quotient
    is ``||J^T cos_f||^2 + ||J^T sin_f||^2`` (f and -f give the same value).

    Parameters
    ----------
    gen : DeepDecoder (any: norm, sigmoid, either parametrisation) or a Linearisation
    P : trained arrays (ignored with a Linearisation)
    frequencies : None or 1-D int array
        Flat indices into ``gen.shape`` (np.fft order); None: every frequency.

    Returns
    -------
    float64 array: ``gen.output_shape`` for None, else (len(frequencies),) or (c_out, len) —
    the mode placed in each output channel in turn.
    """
    lin = _at(gen, P)
    gen = lin.gen
    n = gen.size
    index = np.arange(n) if frequencies is None else np.asarray(frequencies).ravel()
    if index.size == 0 or index.dtype.kind not in "iu" or index.min() < 0 or index.max() >= n:
        raise ValueError(f"frequencies must be flat indices in 0..{n - 1} (np.fft order of "
                         f"{gen.shape}), e.g. np.ravel_multi_index(f, shape)")
    c_out = gen.out_channels
    out = np.empty((c_out, index.size))
    chunk = max(1, _batch_size(lin) // 2)
    for start in range(0, index.size, chunk):
        part = index[start:start + chunk]
        cos, sin = fourier_modes(gen.shape, part)
        for c in range(c_out):
            R = np.zeros((2 * part.size, c_out, n))
            R[:part.size, c], R[part.size:, c] = cos, sin
            q = _gram(lin, R.reshape(2 * part.size, -1), True, train_output)
            out[c, start:start + part.size] = q[:part.size] + q[part.size:]
    if frequencies is None:
        return out.reshape(gen.output_shape)
    return out[0] if c_out == 1 else out
