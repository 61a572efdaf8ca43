"""Fast path of the deep decoder (E15): BLAS for the 1x1 convolutions, Numba for the rest.

Arrays are stored as (channels, pixels), C-contiguous, so every 1x1 convolution and its two
backward products are one matrix product each (NumPy's BLAS).  Everything between them runs in
Numba, one channel at a time while it sits in cache:

* forward of layer l: the spatial map P_l (polyphase: zero insertion is never materialised,
  each output phase is a short correlation of the input), the ReLU and the channel statistics
  in one pass, then the normalisation;
* backward of layer l: the sums of the normalisation's backward pass, then dL/dU (normalisation,
  ReLU mask) row by row, fed straight into the adjoint P_l^T.

A 2-D map runs as two 1-D passes: along the rows of the coarse grid (with interleaving), then
across rows (whole rows at a time).  A 1-D grid is one row.

Channels run in parallel in fixed blocks (a function of k only); each channel is computed by one
thread, start to end, so results are bit-identical for any number of Numba threads.  The
per-channel sums are vectorised by LLVM (the only functions compiled with reassociation): their
order is fixed by the compiled code, not by the thread count.

The matrix products are NumPy's (BLAS), whose rounding is BLAS's business.  Measured with
OpenBLAS 0.3.31: any number of BLAS threads >= 2 gives the same bits (the threads split the rows
and columns of the result), but its single-threaded driver rounds differently, so a run with
``OPENBLAS_NUM_THREADS=1`` agrees with the others to rounding only.  Keep the BLAS thread count
fixed (or >= 2) when bit-identical reruns matter.
"""
from __future__ import annotations

import math

import numpy as np

try:
    import numba
except ImportError as exc:          # DeepDecoder falls back to NumPy on ImportError only
    raise ImportError("the numba backend needs numba (pip install numba)") from exc

from .._numba import _FAST, _jit
from .model import NORM_EPS, sigmoid, sigmoid_backward

__all__ = ["FastPath", "polyphase"]

#: Channels are split into at most this many blocks; each block owns one scratch area.
MAX_BLOCKS = 16
# Sums may be reassociated (vectorised); nothing else is.
_SUMS = {"fastmath": {"contract", "reassoc"}}


def polyphase(taps: np.ndarray, factor: int):
    """The polyphase form of "zero insertion by ``factor``, then circular convolution" (E15).

    ``out[f i + p] = sum_t weight[t] x[i + shift[t]]`` for t in ``start[p] .. start[p+1] - 1``
    (indices of x periodic), from ``out[j] = sum_m h[m] x_up[j - m]`` with
    ``x_up[f i] = x[i]``: the tap m feeds phase ``p = m mod f`` with shift ``(p - m) / f``.
    Zero taps are left out.  Returns ``(start, shift, weight)`` (int64, int64, float64).
    """
    centre = len(taps) // 2
    start, shift, weight = [0], [], []
    for p in range(factor):
        for t, w in enumerate(taps):
            m = t - centre
            if w != 0 and (m - p) % factor == 0:
                shift.append((p - m) // factor)
                weight.append(float(w))
        start.append(len(shift))
    return (np.array(start, np.int64), np.array(shift, np.int64), np.array(weight, np.float64))


# --------------------------------------------------------------------------------------------
# Row kernels: contiguous 1-D rows; offset rows are passed as views (a store at ``x[h + i]``
# would keep LLVM from vectorising, see minidip._numba).

@_jit(**_FAST)
def _axpy(out, w, x, first):
    """``out = w x`` (first) or ``out += w x``."""
    if first:
        for i in range(out.size):
            out[i] = w * x[i]
    else:
        for i in range(out.size):
            out[i] += w * x[i]


@_jit(**_SUMS)
def _sums(x):
    """(sum x, sum x^2) in float64."""
    s1 = 0.0
    s2 = 0.0
    for i in range(x.size):
        v = np.float64(x[i])
        s1 += v
        s2 += v * v
    return s1, s2


@_jit(**_SUMS)
def _dot_sums(d, a):
    """(sum d, sum d a) in float64."""
    s1 = 0.0
    s2 = 0.0
    for i in range(d.size):
        v = np.float64(d[i])
        s1 += v
        s2 += v * np.float64(a[i])
    return s1, s2


@_jit(**_FAST)
def _wrap_pads(xp, lo, n):
    """Fill ``xp[:lo]`` and ``xp[lo + n:]`` periodically from the row ``xp[lo:lo + n]``."""
    for j in range(lo):
        xp[j] = xp[lo + (j - lo) % n]
    for j in range(lo + n, xp.size):
        xp[j] = xp[lo + (j - lo) % n]


@_jit(**_FAST)
def _upsample_row(out, x, xp, ph, factor, start, shift, weight, lo):
    """One row through a 1-D map: ``out[f i + p] = sum_t weight[t] x[i + shift[t]]``."""
    n = x.size
    body = xp[lo:lo + n]
    for i in range(n):
        body[i] = x[i]
    _wrap_pads(xp, lo, n)
    for p in range(factor):
        dst = out if factor == 1 else ph[p]
        if start[p] == start[p + 1]:
            dst[:] = 0
        for t in range(start[p], start[p + 1]):
            o = lo + shift[t]
            _axpy(dst, weight[t], xp[o:o + n], t == start[p])
    if factor == 2:
        even, odd = ph[0], ph[1]
        for i in range(n):
            out[2 * i] = even[i]
            out[2 * i + 1] = odd[i]


@_jit(**_FAST)
def _upsample_row_adjoint(out, g, gp, factor, start, shift, weight, front):
    """The adjoint of :func:`_upsample_row`: ``out[i] = sum_p sum_t weight[t] g[f (i - shift[t]) + p]``.

    ``gp`` (factor, front + n + back) receives the phases of g, padded periodically; ``front``
    is the largest shift, ``back`` minus the smallest.
    """
    n = out.size
    for p in range(factor):
        q = gp[p]
        body = q[front:front + n]
        for i in range(n):
            body[i] = g[factor * i + p]
        _wrap_pads(q, front, n)
    first = True
    for p in range(factor):
        for t in range(start[p], start[p + 1]):
            o = front - shift[t]
            _axpy(out, weight[t], gp[p, o:o + n], first)
            first = False
    if first:
        out[:] = 0


# --------------------------------------------------------------------------------------------
# One channel.

@_jit(**_FAST)
def _relu_sums(out, x):
    """out = ReLU(x); returns (sum, sum of squares) of out in float64."""
    zero = out.dtype.type(0)
    for i in range(out.size):
        out[i] = max(x[i], zero)
    return _sums(out)


@_jit(**_FAST)
def _channel_forward(z, a, hp, vp, shape_in, H, xp, ph, identity):
    """A = ReLU(P z) for one channel; returns (sum A, sum A^2) in float64.

    z: (rows * cols,) coarse; a: (f_v rows * f_h cols,) fine; hp, vp: (factor, start, shift,
    weight, lo) of the horizontal and vertical maps; H: (rows, f_h cols) scratch.
    """
    if identity:
        return _relu_sums(a, z)
    rows, cols = shape_in
    hf, hstart, hshift, hweight, hlo = hp[0], hp[1], hp[2], hp[3], hp[4]
    vf, vstart, vshift, vweight = vp[0], vp[1], vp[2], vp[3]
    fine = hf * cols
    for i in range(rows):
        _upsample_row(H[i], z[i * cols:(i + 1) * cols], xp, ph, hf, hstart, hshift, hweight, hlo)
    s1 = 0.0
    s2 = 0.0
    for i in range(rows):
        for p in range(vf):
            row = a[(vf * i + p) * fine:(vf * i + p + 1) * fine]
            if vstart[p] == vstart[p + 1]:
                row[:] = 0
            for t in range(vstart[p], vstart[p + 1]):
                _axpy(row, vweight[t], H[(i + vshift[t]) % rows], t == vstart[p])
            r1, r2 = _relu_sums(row, row)
            s1 += r1
            s2 += r2
    return s1, s2


@_jit(**_FAST)
def _channel_backward(dz, dB, a, alpha, beta, gamma, hp, vp, shape_in, T, row, gp, identity):
    """dz = P^T (1[a > 0] (alpha dB + beta + gamma a)) for one channel (shapes as forward)."""
    zero = dB.dtype.type(0)
    if identity:
        for i in range(dz.size):
            d = alpha * dB[i] + beta + gamma * a[i]
            dz[i] = d if a[i] > zero else zero
        return
    rows, cols = shape_in
    hf, hstart, hshift, hweight, hhi = hp[0], hp[1], hp[2], hp[3], hp[5]
    vf, vstart, vshift, vweight = vp[0], vp[1], vp[2], vp[3]
    fine = hf * cols
    T[:] = 0
    for i in range(rows):
        for p in range(vf):
            base = (vf * i + p) * fine
            for j in range(fine):
                d = alpha * dB[base + j] + beta + gamma * a[base + j]
                row[j] = d if a[base + j] > zero else zero
            for t in range(vstart[p], vstart[p + 1]):       # vertical adjoint: scatter rows
                _axpy(T[(i + vshift[t]) % rows], vweight[t], row, False)
    for i in range(rows):
        _upsample_row_adjoint(dz[i * cols:(i + 1) * cols], T[i], gp, hf, hstart, hshift,
                              hweight, hhi)


# --------------------------------------------------------------------------------------------
# One layer, parallel over fixed blocks of channels.

@_jit(parallel=True, **_FAST)
def _layer_forward(Z, A, B, mean, inv, gamma, beta, hp, vp, shape_in, H, xp, ph, identity,
                   norm):
    """A = ReLU(P Z), its channel statistics, and B = normalised A (when ``norm``)."""
    k, n = A.shape
    nb = H.shape[0]
    for blk in numba.prange(nb):
        for c in range(blk * k // nb, (blk + 1) * k // nb):
            s1, s2 = _channel_forward(Z[c], A[c], hp, vp, shape_in, H[blk], xp[blk], ph[blk],
                                      identity)
            m = s1 / n
            var = max(s2 / n - m * m, 0.0)
            mean[c] = m
            inv[c] = 1.0 / math.sqrt(var + NORM_EPS)
            if norm:
                scale = gamma[c] * inv[c]
                shift = beta[c] - m * scale
                sc, sh = A.dtype.type(scale), A.dtype.type(shift)
                ac, bc = A[c], B[c]
                for i in range(n):
                    bc[i] = sc * ac[i] + sh


@_jit(parallel=True, **_FAST)
def _layer_backward(dZ, dB, A, mean, inv, gamma, dgamma, dbeta, hp, vp, shape_in, T, row, gp,
                    identity, norm):
    """dZ = P^T dL/dU from dB = dL/dB (normalisation, ReLU); dL/dgamma, dL/dbeta."""
    k, n = A.shape
    nb = T.shape[0]
    for blk in numba.prange(nb):
        for c in range(blk * k // nb, (blk + 1) * k // nb):
            alpha, beta, gam = 1.0, 0.0, 0.0
            if norm:
                sd, sda = _dot_sums(dB[c], A[c])
                dg = (sda - mean[c] * sd) * inv[c]
                dgamma[c] = dg
                dbeta[c] = sd
                # dA = gamma inv (dB - mean(dB) - xhat mean(dB xhat)), xhat = (A - mean) inv
                alpha = gamma[c] * inv[c]
                gam = -alpha * inv[c] * dg / n
                beta = -alpha * sd / n - gam * mean[c]
            t = A.dtype.type
            _channel_backward(dZ[c], dB[c], A[c], t(alpha), t(beta), t(gam), hp, vp, shape_in,
                              T[blk], row[blk], gp[blk], identity)


# --------------------------------------------------------------------------------------------

class _Map:
    """The spatial map of one layer on (rows, cols) grids: its two 1-D polyphase tables."""

    def __init__(self, spatial, grid_in, dtype):
        self.identity = spatial is None
        self.rows, self.cols = (1,) + grid_in if len(grid_in) == 1 else grid_in
        taps, factor = (np.ones(1), 1) if spatial is None else spatial
        start, shift, weight = polyphase(taps, factor)
        lo, hi = max(0, -int(shift.min())), max(0, int(shift.max()))
        # the forward pass reads x[i + shift] (pads lo, hi), the adjoint g[i - shift] (hi, lo)
        self.h = (factor, start, shift, weight.astype(dtype), lo, hi)
        self.pad = (lo, hi)
        if len(grid_in) == 1:
            self.v = (1,) + polyphase(np.ones(1), 1)[:2] + (np.ones(1, dtype),)
        else:
            self.v = (factor, start, shift, weight.astype(dtype))
        vf = self.v[0]
        self.grid_out = (vf * self.rows, factor * self.cols)
        self.factor = factor


class FastPath:
    """Forward and backward passes of a :class:`DeepDecoder` with a workspace kept between calls.

    ``forward(W)`` takes the effective weights (E16 applied) and keeps what ``backward`` needs;
    ``backward(dout, W)`` returns dL/dW (effective) for the last forward pass.
    """

    def __init__(self, gen):
        self.dtype = gen.dtype
        self.norm, self.sigmoid = gen.norm, gen.sigmoid
        self.layers = gen.layers
        dt = self.dtype
        widths = (gen.input_channels,) + gen.channels
        self.input = np.ascontiguousarray(gen.input.reshape(widths[0], -1))
        self.maps, self.Z, self.A, self.B, self.dB = [], [], [], [], []
        self.mean, self.inv, self.scratch = [], [], []
        grid = gen.input_shape
        for l in range(1, self.layers + 1):
            k = widths[l]
            m = _Map(gen.spatial[l - 1], grid, dt)
            n_in, n_out = m.rows * m.cols, math.prod(m.grid_out)
            nb = min(k, MAX_BLOCKS)
            lo, hi = m.pad
            self.maps.append(m)
            self.Z.append(np.empty((k, n_in), dt))
            self.A.append(np.empty((k, n_out), dt))
            self.B.append(np.empty((k, n_out), dt) if self.norm else self.A[-1])
            self.dB.append(self.B[-1] if self.norm else np.empty((k, n_out), dt))
            self.mean.append(np.empty(k))
            self.inv.append(np.empty(k))
            fine_cols = m.factor * m.cols
            self.scratch.append(dict(
                H=np.empty((nb, m.rows, fine_cols), dt),
                xp=np.empty((nb, lo + m.cols + hi), dt),
                ph=np.empty((nb, m.factor, m.cols), dt),
                row=np.empty((nb, fine_cols), dt),
                gp=np.empty((nb, m.factor, hi + m.cols + lo), dt)))
            grid = m.grid_out if len(grid) == 2 else (m.grid_out[1],)
        self._ones = np.ones(1, dt)        # gamma, beta without normalisation (never read)

    def forward(self, W):
        """The output (c_out, N) of E15 for effective weights W; keeps the activations."""
        B = self.input
        for l in range(1, self.layers + 1):
            i, m, s = l - 1, self.maps[l - 1], self.scratch[l - 1]
            np.matmul(W[f"W{l}"], B, out=self.Z[i])
            gamma, beta = (W[f"gamma{l}"], W[f"beta{l}"]) if self.norm else (self._ones,) * 2
            _layer_forward(self.Z[i], self.A[i], self.B[i], self.mean[i], self.inv[i], gamma,
                           beta, m.h, m.v, (m.rows, m.cols), s["H"], s["xp"], s["ph"],
                           m.identity, self.norm)
            B = self.B[i]
        out = W["Wout"] @ B
        if self.sigmoid:
            out = sigmoid(out)
        self._out = out
        return out

    def backward(self, dout, W) -> dict:
        """dL/dW for every effective weight, given dL/dx (c_out, N) at the last forward pass."""
        if self.sigmoid:
            dout = sigmoid_backward(dout, self._out)
        grads = {"Wout": dout @ self.B[-1].T}
        np.matmul(W["Wout"].T, dout, out=self.dB[-1])
        for l in range(self.layers, 0, -1):
            i, m, s = l - 1, self.maps[l - 1], self.scratch[l - 1]
            k = self.A[i].shape[0]
            dgamma, dbeta = np.empty(k, self.dtype), np.empty(k, self.dtype)
            gamma = W[f"gamma{l}"] if self.norm else self._ones
            _layer_backward(self.Z[i], self.dB[i], self.A[i], self.mean[i], self.inv[i], gamma,
                            dgamma, dbeta, m.h, m.v, (m.rows, m.cols), s["H"], s["row"],
                            s["gp"], m.identity, self.norm)
            if self.norm:
                grads[f"gamma{l}"], grads[f"beta{l}"] = dgamma, dbeta
            B_prev = self.input if l == 1 else self.B[i - 1]
            grads[f"W{l}"] = self.Z[i] @ B_prev.T
            if l > 1:
                np.matmul(W[f"W{l}"].T, self.Z[i], out=self.dB[i - 1])
        return grads
