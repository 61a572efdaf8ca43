"""Fast path of the deep decoder (E15): BLAS for the 1x1 convolutions, Numba for the rest.

Arrays are stored as (channels, pixels), C-contiguous, so every 1x1 convolution and its two
backward products are one matrix product each (NumPy's BLAS).  Everything between them runs in
Numba, one channel at a time while it sits in cache:

* forward of layer l: the spatial map P_l in polyphase form (zero insertion is never
  materialised: each output phase is a short correlation of the input), the ReLU and the
  channel statistics;
* backward of layer l: the sums of the normalisation's backward pass, then dL/dU (normalisation,
  ReLU mask) and the adjoint P_l^T.

The normalised activations B_l = s_l A_l + t_l (per channel scale s = gamma / sqrt(var + eps),
shift t = beta - mean s) are never stored: the next product uses them as
W_{l+1} B_l = (W_{l+1} diag(s_l)) A_l + (W_{l+1} t_l) 1^T, the shift entering as a per-channel
bias of the next layer's kernel, and its gradient as dZ B^T = (dZ A^T) diag(s) + (dZ 1) t^T.
The output layer is folded into the last layer's kernels: dL/dB_L = W_out^T g is formed one
channel at a time, and dL/dW_out from the sums g A_L^T that the normalisation needs anyway.

A 2-D map runs as two 1-D passes: along rows (each phase one long loop over the whole channel,
the few columns that wrap around each row recomputed afterwards), then across rows.  A 1-D grid
is one row.

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
# Sums (vectorised by reassociation) and flat loops over a channel.

@_jit(**_SUMS)
def _relu_sums(out, x, bias):
    """out = ReLU(x + bias); returns (sum out, sum out^2) in float64."""
    zero = out.dtype.type(0)
    s1 = 0.0
    s2 = 0.0
    for i in range(out.size):
        v = max(x[i] + bias, zero)
        out[i] = v
        d = np.float64(v)
        s1 += d
        s2 += d * d
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


@_jit(**_SUMS)
def _sum(x):
    """sum x in float64."""
    s = 0.0
    for i in range(x.size):
        s += np.float64(x[i])
    return s


@_jit(inline="always", **_FAST)
def _axpy(out, o, w, x, xo, n, first, relu=False):
    """``out[o + j] = w x[xo + j]`` (first) or ``+=``, for j < n (offsets >= 0); with ``relu``
    the result is clipped at 0 (a separate in-place ReLU pass would not vectorise: LLVM turns
    its store into a conditional one)."""
    o, xo = max(o, 0), max(xo, 0)       # lets LLVM drop negative-index wraparound: vectorises
    zero = out.dtype.type(0)
    if first and relu:
        for j in range(n):
            out[o + j] = max(w * x[xo + j], zero)
    elif first:
        for j in range(n):
            out[o + j] = w * x[xo + j]
    elif relu:
        for j in range(n):
            out[o + j] = max(out[o + j] + w * x[xo + j], zero)
    else:
        for j in range(n):
            out[o + j] += w * x[xo + j]


@_jit(inline="always", **_FAST)
def _masked_gradient(out, d, a, x0, n, alpha, beta, gamma):
    """out[j] = 1[a > 0] (alpha d + beta + gamma a) at ``x0 + j``, j < n: dL/dU through the
    normalisation and the ReLU."""
    zero = a.dtype.type(0)
    x0 = max(x0, 0)
    for j in range(n):
        v = alpha * d[x0 + j] + beta + gamma * a[x0 + j]
        out[j] = v if a[x0 + j] > zero else zero


# --------------------------------------------------------------------------------------------
# The 1-D map along the rows of a channel (rows, n) -> (rows, f n), and its adjoint.

@_jit(**_FAST)
def _tap_total(weight, t0, t1):
    total = weight.dtype.type(0)
    for t in range(t0, t1):
        total += weight[t]
    return total


@_jit(inline="always", **_FAST)
def _tap_sum(x, base, n, i, t0, t1, shift, weight, sign):
    """``sum_t weight[t] x[base + (i + sign shift[t]) mod n]`` for t0 <= t < t1 (|shift| < n)."""
    acc = x.dtype.type(0)
    for t in range(t0, t1):
        j = i + sign * shift[t]
        j = j + n if j < 0 else (j - n if j >= n else j)
        acc += weight[t] * x[base + j]
    return acc


@_jit(**_FAST)
def _rows_forward(out, x, rows, n, ph, f, start, shift, weight, lo, hi, bias):
    """``out[r, f i + p] = sum_t weight[t] (x[r, (i + shift[t]) mod n] + bias)``, flat arrays.

    ph: (f, rows * n) scratch.  Each tap is one loop over the whole channel; columns whose
    shifted index leaves the row (i < lo or i >= n - hi) are recomputed with wrap-around.
    """
    size = rows * n
    for p in range(f):
        q = ph[p]
        if start[p] == start[p + 1]:
            q[:] = 0
        for t in range(start[p], start[p + 1]):
            s = shift[t]
            q0, q1 = max(0, -s), size - max(0, s)
            _axpy(q, q0, weight[t], x, q0 + s, q1 - q0, t == start[p])
        e0, e1 = min(lo, n), max(n - hi, min(lo, n))
        for r in range(rows):
            for i in range(e0):
                q[r * n + i] = _tap_sum(x, r * n, n, i, start[p], start[p + 1], shift, weight, 1)
            for i in range(e1, n):
                q[r * n + i] = _tap_sum(x, r * n, n, i, start[p], start[p + 1], shift, weight, 1)
    # the bias of x reaches phase p multiplied by the sum of its taps
    b0 = _tap_total(weight, start[0], start[1]) * bias
    if f == 1:
        q = ph[0]
        for j in range(size):
            out[j] = q[j] + b0
        return
    b1 = _tap_total(weight, start[1], start[2]) * bias
    even, odd = ph[0], ph[1]
    for j in range(size):
        out[2 * j] = even[j] + b0
        out[2 * j + 1] = odd[j] + b1


@_jit(**_FAST)
def _rows_adjoint(out, g, rows, n, ph, f, start, shift, weight, lo, hi):
    """The adjoint of :func:`_rows_forward` (no bias): ``out[r, i] = sum_p sum_t weight[t]
    g[r, f ((i - shift[t]) mod n) + p]``.  ph: (f, rows * n) scratch."""
    size = rows * n
    if f == 1:
        ph[0, :size] = g[:size]
    else:
        even, odd = ph[0], ph[1]
        for j in range(size):
            even[j] = g[2 * j]
            odd[j] = g[2 * j + 1]
    first = True
    for p in range(f):
        q = ph[p]
        for t in range(start[p], start[p + 1]):
            s = shift[t]
            q0, q1 = max(0, s), size - max(0, -s)
            _axpy(out, q0, weight[t], q, q0 - s, q1 - q0, first)
            first = False
    if first:
        out[:size] = 0
    # columns i < hi or i >= n - lo read across a row boundary: recompute them
    e0, e1 = min(hi, n), max(n - lo, min(hi, n))
    for r in range(rows):
        for i in range(e0):
            out[r * n + i] = _adjoint_at(ph, r * n, n, i, f, start, shift, weight)
        for i in range(e1, n):
            out[r * n + i] = _adjoint_at(ph, r * n, n, i, f, start, shift, weight)


@_jit(**_FAST)
def _adjoint_at(ph, base, n, i, f, start, shift, weight):
    """One entry of :func:`_rows_adjoint`, with wrap-around."""
    acc = ph.dtype.type(0)
    for p in range(f):
        acc += _tap_sum(ph[p], base, n, i, start[p], start[p + 1], shift, weight, -1)
    return acc


# --------------------------------------------------------------------------------------------
# One channel.

@_jit(**_FAST)
def _channel_forward(z, a, bias, hp, vp, rows, cols, H, ph, identity):
    """a = ReLU(P (z + bias)) for one channel; returns (sum a, sum a^2) in float64.

    z: (rows * cols,) coarse; a: (f_v rows * f_h cols,) fine; hp, vp: (factor, start, shift,
    weight, lo, hi) of the maps along and across rows; H: (rows * f_h cols,) scratch.
    """
    if identity:
        return _relu_sums(a, z, bias)
    hf, vf = hp[0], vp[0]
    _rows_forward(H, z, rows, cols, ph, hf, hp[1], hp[2], hp[3], hp[4], hp[5], bias)
    fine = hf * cols
    vstart, vshift, vweight = vp[1], vp[2], vp[3]
    for i in range(rows):
        for p in range(vf):
            o = (vf * i + p) * fine
            if vstart[p] == vstart[p + 1]:
                a[o:o + fine] = 0
            for t in range(vstart[p], vstart[p + 1]):
                _axpy(a, o, vweight[t], H, ((i + vshift[t]) % rows) * fine, fine,
                      t == vstart[p], t == vstart[p + 1] - 1)
    return _dot_sums(a, a)


@_jit(**_FAST)
def _channel_backward(dz, d, a, alpha, beta, gamma, hp, vp, rows, cols, T, row, ph):
    """dz = P^T du for one channel, du = dL/dU formed row by row from d = dL/dB and a
    (see :func:`_masked_gradient`); T: (rows * f_h cols,) and row: (f_h cols,) scratch."""
    hf, vf = hp[0], vp[0]
    fine = hf * cols
    vstart, vshift, vweight = vp[1], vp[2], vp[3]
    T[:rows * fine] = 0
    for i in range(rows):                          # across rows: scatter each fine row
        for p in range(vf):
            _masked_gradient(row, d, a, (vf * i + p) * fine, fine, alpha, beta, gamma)
            for t in range(vstart[p], vstart[p + 1]):
                _axpy(T, ((i + vshift[t]) % rows) * fine, vweight[t], row, 0, fine, False)
    _rows_adjoint(dz, T, rows, cols, ph, hf, hp[1], hp[2], hp[3], hp[4], hp[5])


# --------------------------------------------------------------------------------------------
# One layer, parallel over fixed blocks of channels.

@_jit(parallel=True, **_FAST)
def _layer_forward(Z, A, bias, gamma, beta, mean, inv, scale, shift, hp, vp, rows, cols, H,
                   ph, identity, norm):
    """A = ReLU(P (Z + bias)); per channel its mean, 1/sqrt(var + eps), and the scale and
    shift of the normalisation (1 and 0 without it)."""
    k, n = A.shape
    nb = H.shape[0]
    for blk in numba.prange(nb):
        for c in range(blk * k // nb, (blk + 1) * k // nb):
            s1, s2 = _channel_forward(Z[c], A[c], bias[c], hp, vp, rows, cols, H[blk], ph[blk],
                                      identity)
            m = s1 / n
            mean[c] = m
            inv[c] = 1.0 / math.sqrt(max(s2 / n - m * m, 0.0) + NORM_EPS)
            if norm:
                scale[c] = gamma[c] * inv[c]
                shift[c] = beta[c] - m * scale[c]
            else:
                scale[c] = 1.0
                shift[c] = 0.0


@_jit(parallel=True, **_FAST)
def _layer_backward(dZ, dB, A, gamma, mean, inv, scale, shift, dgamma, dbeta, dz_sums,
                    G, g_sums, Wout, dWout, hp, vp, rows, cols, T, row, ph, D, identity, norm,
                    from_output):
    """dZ = P^T dL/dU given dL/dB (normalisation and ReLU on the way); dL/dgamma, dL/dbeta and
    the pixel sums of dZ per channel.

    With ``from_output``, dL/dB = W_out^T G is formed one channel at a time in the scratch D,
    and dL/dW_out = (G A^T) diag(scale) + (G 1) shift^T is written to dWout (c_out, k).
    """
    k, n = A.shape
    nb = T.shape[0]
    for blk in numba.prange(nb):
        for c in range(blk * k // nb, (blk + 1) * k // nb):
            a = A[c]
            d = D[blk] if from_output else dB[c]
            sd, sda = 0.0, 0.0
            if from_output:
                for o in range(G.shape[0]):
                    w = Wout[o, c]
                    _axpy(d, 0, w, G[o], 0, n, o == 0)
                    _, ga = _dot_sums(G[o], a)
                    dWout[o, c] = scale[c] * ga + shift[c] * g_sums[o]
                    sd += np.float64(w) * g_sums[o]
                    sda += np.float64(w) * ga
            elif norm:
                sd, sda = _dot_sums(d, a)
            alpha, beta, gam = 1.0, 0.0, 0.0
            if norm:
                dg = (sda - mean[c] * sd) * inv[c]
                dgamma[c] = dg
                dbeta[c] = sd
                # dA = gamma inv (dB - mean(dB) - xhat mean(dB xhat)), xhat = (A - mean) inv
                alpha = gamma[c] * inv[c]
                gam = -alpha * inv[c] * dg / n
                beta = -alpha * sd / n - gam * mean[c]
            t = A.dtype.type
            if identity:
                _masked_gradient(dZ[c], d, a, 0, n, t(alpha), t(beta), t(gam))
            else:
                _channel_backward(dZ[c], d, a, t(alpha), t(beta), t(gam), hp, vp, rows, cols,
                                  T[blk], row[blk], ph[blk])
            dz_sums[c] = _sum(dZ[c])


# --------------------------------------------------------------------------------------------

class _Map:
    """The spatial map of one layer in polyphase form, along rows (h) and across rows (v)."""

    def __init__(self, spatial, grid_in, dtype):
        self.identity = spatial is None
        self.rows, self.cols = (1,) + grid_in if len(grid_in) == 1 else grid_in
        taps, factor = (np.ones(1), 1) if spatial is None else spatial
        self.h = self._table(taps, factor, dtype)
        self.v = self._table(taps if len(grid_in) == 2 else np.ones(1),
                             factor if len(grid_in) == 2 else 1, dtype)
        self.grid_out = (self.v[0] * self.rows, factor * self.cols)
        self.factor = factor

    @staticmethod
    def _table(taps, factor, dtype):
        """(factor, start, shift, weight, lo, hi): the forward pass reads x[i + shift]
        (lo, hi: how far before and after the row), the adjoint g[i - shift]."""
        start, shift, weight = polyphase(taps, factor)
        lo, hi = max(0, -int(shift.min())), max(0, int(shift.max()))
        return (factor, start, shift, weight.astype(dtype), lo, hi)


class FastPath:
    """Forward and backward passes of a :class:`DeepDecoder` with a workspace kept between calls.

    ``forward(W)`` takes the effective weights (E16 applied) and keeps what ``backward`` needs;
    ``backward(dout, W)`` returns dL/dW (effective) for the last forward pass.
    """

    def __init__(self, gen):
        self.dtype = dt = gen.dtype
        self.norm, self.sigmoid = gen.norm, gen.sigmoid
        self.layers = gen.layers
        widths = (gen.input_channels,) + gen.channels
        self.input = np.ascontiguousarray(gen.input.reshape(widths[0], -1))
        self.maps, self.Z, self.A, self.dB, self.stats, self.scratch = [], [], [], [], [], []
        grid = gen.input_shape
        largest = max(widths[l] * math.prod(gen.shape) for l in range(1, self.layers + 1))
        dB = np.empty(largest, dt)                 # one layer's dL/dB at a time
        for l in range(1, self.layers + 1):
            k = widths[l]
            m = _Map(gen.spatial[l - 1], grid, dt)
            n_in, n_out = m.rows * m.cols, math.prod(m.grid_out)
            nb = min(k, MAX_BLOCKS)
            self.maps.append(m)
            self.Z.append(np.empty((k, n_in), dt))
            self.A.append(np.empty((k, n_out), dt))
            self.dB.append(dB[:k * n_out].reshape(k, n_out))
            self.stats.append({name: np.empty(k) for name in
                               ("mean", "inv", "scale", "shift", "dz_sums")})
            self.scratch.append(dict(H=np.empty((nb, m.rows * m.factor * m.cols), dt),
                                     row=np.empty((nb, m.factor * m.cols), dt),
                                     ph=np.empty((nb, m.factor, n_in), dt),
                                     D=np.empty((nb, n_out if l == self.layers else 1), dt)))
            grid = m.grid_out if len(grid) == 2 else (m.grid_out[1],)
        self._ones = np.ones(1, dt)        # gamma, beta without normalisation (never read)
        self._none = np.zeros((1, 1), dt)  # G, W_out of layers below the last (never read)

    def forward(self, W):
        """The output (c_out, N) of E15 for effective weights W; keeps the activations."""
        A, bias = self.input, np.zeros(self.Z[0].shape[0], self.dtype)
        for l in range(1, self.layers + 1):
            i, m, s, st = l - 1, self.maps[l - 1], self.scratch[l - 1], self.stats[l - 1]
            Wl = W[f"W{l}"]
            if l > 1:                                # B_{l-1} = scale A + shift, folded in
                prev = self.stats[l - 2]
                bias = (Wl @ prev["shift"]).astype(self.dtype)
                Wl = (Wl * prev["scale"]).astype(self.dtype)
            np.matmul(Wl, A, out=self.Z[i])
            gamma, beta = (W[f"gamma{l}"], W[f"beta{l}"]) if self.norm else (self._ones,) * 2
            _layer_forward(self.Z[i], self.A[i], bias, gamma, beta, st["mean"], st["inv"],
                           st["scale"], st["shift"], m.h, m.v, m.rows, m.cols, s["H"], s["ph"],
                           m.identity, self.norm)
            A = self.A[i]
        last = self.stats[-1]
        out = (W["Wout"] * last["scale"]).astype(self.dtype) @ A
        out += (W["Wout"] @ last["shift"]).astype(self.dtype)[:, None]
        if self.sigmoid:
            out = sigmoid(out)
        self._out = out
        return out

    def backward(self, dout, W) -> dict:
        """dL/dW for every effective weight, given dL/dx (c_out, N) at the last forward pass."""
        if self.sigmoid:
            dout = sigmoid_backward(dout, self._out)
        G = np.ascontiguousarray(dout, self.dtype)
        g_sums = G.sum(axis=1, dtype=np.float64)
        Wout = np.ascontiguousarray(W["Wout"])
        dWout = np.empty(Wout.shape)
        grads = {}
        for l in range(self.layers, 0, -1):
            i, m, s, st = l - 1, self.maps[l - 1], self.scratch[l - 1], self.stats[l - 1]
            k = self.A[i].shape[0]
            dgamma, dbeta = np.empty(k), np.empty(k)
            gamma = W[f"gamma{l}"] if self.norm else self._ones
            top = l == self.layers
            _layer_backward(self.Z[i], self.dB[i], self.A[i], gamma, st["mean"], st["inv"],
                            st["scale"], st["shift"], dgamma, dbeta, st["dz_sums"],
                            G if top else self._none, g_sums, Wout if top else self._none,
                            dWout, m.h, m.v, m.rows, m.cols, s["H"], s["row"], s["ph"], s["D"],
                            m.identity, self.norm, top)
            if self.norm:
                grads[f"gamma{l}"], grads[f"beta{l}"] = dgamma, dbeta
            if l == 1:
                grads["W1"] = self.Z[0] @ self.input.T
                continue
            prev = self.stats[l - 2]                 # dZ B^T = (dZ A^T) diag(s) + (dZ 1) t^T
            grads[f"W{l}"] = ((self.Z[i] @ self.A[i - 1].T) * prev["scale"]
                              + np.outer(st["dz_sums"], prev["shift"]))
            np.matmul(W[f"W{l}"].T, self.Z[i], out=self.dB[i - 1])
        grads["Wout"] = dWout
        return grads
