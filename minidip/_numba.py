"""Numba kernels of the generator (E1-E6): forward, gradient and the fused gradient step.

The NumPy functions in :mod:`minidip.generator` are the reference; these kernels compute the
same quantities faster.

Layout of one gradient step (E5, E6) followed by the evaluation of the new iterate (E3, E4):

* phase A, parallel over fixed blocks of channels: for every channel j of a block, the masked
  backward pass ``g_j = U^T(1[U c_j > 0] * r)`` with the mask kept from the previous forward
  pass, the update ``c_j <- c_j - eta v_j g_j``, and at once the forward pass of the new c_j,
  which stores the new mask and adds ``v_j ReLU(U c_j)`` to the block's partial output;
* phase B: the output ``G = sum of the partial outputs`` in block order, ``r = G - y`` and the
  loss, accumulated in float64 over fixed chunks.

The channel blocks and the loss chunks depend only on the problem size, never on the number of
threads, and every sum runs in a fixed order: results are bit-identical for any thread count.

Filters are applied as correlations of periodically padded rows (no modulo in inner loops).
A 2-D filter of rank 1 (:func:`minidip.filters.separable_factors`) runs as two 1-D passes; a 1-D
signal is a single row of a 2-D one.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
except ImportError as exc:          # generator._numba_available relies on ImportError only
    raise ImportError("the numba backend needs numba (pip install numba)") from exc

from . import filters as _filters

__all__ = ["forward", "loss_and_grad", "Stepper"]

#: Upper bound on the number of channel blocks of phase A (and of partial outputs).
MAX_BLOCKS = 16
#: Partial outputs are kept to about this many grid values in total (they stay in cache).
PARTIAL_BUDGET = 2 ** 19
#: Grid values per chunk of the float64 loss reduction in phase B.
LOSS_CHUNK = 4096


def _jit(**options):
    """``numba.njit`` with on-disk caching, or without it when no cache folder is writable.

    Numba looks for a writable cache folder when the function is decorated and raises
    RuntimeError if there is none (e.g. a read-only install without NUMBA_CACHE_DIR).
    """
    def decorate(fn):
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError:
            return numba.njit(cache=False, **options)(fn)
    return decorate


# FMA contraction changes no result between runs or thread counts; reassociation is not allowed,
# so every sum below runs in the order the code states.
_FAST = {"fastmath": {"contract"}}


# --------------------------------------------------------------------------------------------
# Row kernels.  All loops over a row are contiguous and vectorize over the row.

@_jit(**_FAST)
def _correlate_row(out, x, x0, w, n, accumulate):
    """``out[i] (+)= sum_t w[t] x[x0 + i + t]`` for i < n, taps summed in groups of 8, 4, 1."""
    T = w.shape[0]
    t = 0
    while t < T:
        b = x0 + t
        add = accumulate or t > 0
        if T - t >= 8:
            w0, w1, w2, w3 = w[t], w[t + 1], w[t + 2], w[t + 3]
            w4, w5, w6, w7 = w[t + 4], w[t + 5], w[t + 6], w[t + 7]
            if add:
                for i in range(n):
                    out[i] += (w0 * x[b + i] + w1 * x[b + i + 1] + w2 * x[b + i + 2]
                               + w3 * x[b + i + 3] + w4 * x[b + i + 4] + w5 * x[b + i + 5]
                               + w6 * x[b + i + 6] + w7 * x[b + i + 7])
            else:
                for i in range(n):
                    out[i] = (w0 * x[b + i] + w1 * x[b + i + 1] + w2 * x[b + i + 2]
                              + w3 * x[b + i + 3] + w4 * x[b + i + 4] + w5 * x[b + i + 5]
                              + w6 * x[b + i + 6] + w7 * x[b + i + 7])
            t += 8
        elif T - t >= 4:
            w0, w1, w2, w3 = w[t], w[t + 1], w[t + 2], w[t + 3]
            if add:
                for i in range(n):
                    out[i] += (w0 * x[b + i] + w1 * x[b + i + 1] + w2 * x[b + i + 2]
                               + w3 * x[b + i + 3])
            else:
                for i in range(n):
                    out[i] = (w0 * x[b + i] + w1 * x[b + i + 1] + w2 * x[b + i + 2]
                              + w3 * x[b + i + 3])
            t += 4
        else:
            w0 = w[t]
            if add:
                for i in range(n):
                    out[i] += w0 * x[b + i]
            else:
                for i in range(n):
                    out[i] = w0 * x[b + i]
            t += 1


@_jit(**_FAST)
def _combine_rows(out, o, X, r0, w, n):
    """``out[o + i] = sum_s w[s] X[r0 + s, i]`` for i < n: a filter along the slow axis."""
    T = w.shape[0]
    s = 0
    while s < T:
        if T - s >= 4:
            w0, w1, w2, w3 = w[s], w[s + 1], w[s + 2], w[s + 3]
            x0, x1, x2, x3 = X[r0 + s], X[r0 + s + 1], X[r0 + s + 2], X[r0 + s + 3]
            if s == 0:
                for i in range(n):
                    out[o + i] = w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
            else:
                for i in range(n):
                    out[o + i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
            s += 4
        else:
            w0, x0 = w[s], X[r0 + s]
            if s == 0:
                for i in range(n):
                    out[o + i] = w0 * x0[i]
            else:
                for i in range(n):
                    out[o + i] += w0 * x0[i]
            s += 1


@_jit()
def _wrap_row(x, h, n):
    """Fill the periodic halos of a padded row ``x[h:h+n]``."""
    for i in range(h):
        x[i] = x[n + i]
        x[h + n + i] = x[h + i]


@_jit()
def _wrap_rows(X, h, n):
    """Fill the periodic halo rows of a padded array ``X[h:h+n]``."""
    for i in range(h):
        X[i, :] = X[n + i, :]
        X[h + n + i, :] = X[h + i, :]


@_jit(**_FAST)
def _activate_row(h, mask, part, vj, n, first):
    """Keep the mask 1[h > 0] (ReLU'(0) = 0) and add ``v_j ReLU(h)`` to the partial output (E3)."""
    for i in range(n):
        m = h[i] > 0
        mask[i] = m
        a = vj * (h[i] * m)
        if first:
            part[i] = a
        else:
            part[i] += a


# --------------------------------------------------------------------------------------------
# One channel.  Rows are padded by the filter's half-widths; the buffers belong to the block.

@_jit(**_FAST)
def _channel_separable(c, mask, r, part, grad, vj, eta, a, af, b, bf,
                       qp, sp, rows, backward, write_grad, do_forward, first):
    """Backward / update / forward of one channel for the filter ``outer(a, b)``.

    ``af``, ``bf`` are the flipped factors: convolution (E1) is correlation with the flipped
    filter.  With one row of taps (``a.shape[0] == 1``, e.g. a 1-D signal) the slow-axis
    passes reduce to a scaling and are skipped.
    """
    H, W = c.shape
    h0, h1 = a.shape[0] // 2, b.shape[0] // 2
    rowp, cpad, g, hrow = rows[0], rows[1], rows[2], rows[3]
    ev = eta * vj
    if backward:
        if h0 > 0:
            for i0 in range(H):
                for i1 in range(W):
                    qp[h0 + i0, i1] = r[i0, i1] * mask[i0, i1]
            _wrap_rows(qp, h0, H)
        for i0 in range(H):
            if h0 > 0:
                _combine_rows(rowp, h1, qp, i0, a, W)
            else:
                a0 = a[0]
                for i1 in range(W):
                    rowp[h1 + i1] = a0 * (r[i0, i1] * mask[i0, i1])
            _wrap_row(rowp, h1, W)
            _correlate_row(g, rowp, 0, b, W, False)                  # g = U^T(mask * r)
            if write_grad:
                for i1 in range(W):
                    grad[i0, i1] = vj * g[i1]
            else:
                crow = c[i0]
                for i1 in range(W):
                    cpad[h1 + i1] = crow[i1] - ev * g[i1]            # E6
                for i1 in range(W):
                    crow[i1] = cpad[h1 + i1]
                if do_forward:
                    _wrap_row(cpad, h1, W)
                    _correlate_row(sp[h0 + i0], cpad, 0, bf, W, False)
    if not do_forward:
        return
    if not backward:
        for i0 in range(H):
            for i1 in range(W):
                cpad[h1 + i1] = c[i0, i1]
            _wrap_row(cpad, h1, W)
            _correlate_row(sp[h0 + i0], cpad, 0, bf, W, False)
    if h0 > 0:
        _wrap_rows(sp, h0, H)
        for i0 in range(H):
            _combine_rows(hrow, 0, sp, i0, af, W)                       # h = U c_j
            _activate_row(hrow, mask[i0], part[i0], vj, W, first)
    else:
        a0 = af[0]
        for i0 in range(H):
            for i1 in range(W):
                hrow[i1] = a0 * sp[i0, i1]
            _activate_row(hrow, mask[i0], part[i0], vj, W, first)


@_jit(**_FAST)
def _fill_padded(X, src, msk, h0, h1, use_mask):
    """``X[h0:h0+H, h1:h1+W] = src (* msk)`` with periodic halos on both axes."""
    H, W = src.shape
    for i0 in range(H):
        row = X[h0 + i0]
        if use_mask:
            for i1 in range(W):
                row[h1 + i1] = src[i0, i1] * msk[i0, i1]
        else:
            for i1 in range(W):
                row[h1 + i1] = src[i0, i1]
        _wrap_row(row, h1, W)
    _wrap_rows(X, h0, H)


@_jit(**_FAST)
def _channel_direct(c, mask, r, part, grad, vj, eta, w, wf, pad, rows,
                    backward, write_grad, do_forward, first):
    """Backward / update / forward of one channel for a general 2-D filter ``w``."""
    H, W = c.shape
    h0, h1 = w.shape[0] // 2, w.shape[1] // 2
    g, hrow = rows[2], rows[3]
    ev = eta * vj
    if backward:
        _fill_padded(pad, r, mask, h0, h1, True)
        for i0 in range(H):
            for t0 in range(w.shape[0]):
                _correlate_row(g, pad[i0 + t0], 0, w[t0], W, t0 > 0)  # g = U^T(mask * r)
            if write_grad:
                for i1 in range(W):
                    grad[i0, i1] = vj * g[i1]
            else:
                for i1 in range(W):
                    c[i0, i1] -= ev * g[i1]                          # E6
    if not do_forward:
        return
    _fill_padded(pad, c, mask, h0, h1, False)
    for i0 in range(H):
        for t0 in range(wf.shape[0]):
            _correlate_row(hrow, pad[i0 + t0], 0, wf[t0], W, t0 > 0)  # h = U c_j
        _activate_row(hrow, mask[i0], part[i0], vj, W, first)


# --------------------------------------------------------------------------------------------
# The two phases.

@_jit(parallel=True, **_FAST)
def _phase_a(C, mask, r, parts, grad, v, eta, separable, a, af, b, bf, w, wf,
             qp, sp, pad, rows, backward, write_grad, do_forward):
    """Run every channel; block ``blk`` owns channels ``blk*k//nb .. (blk+1)*k//nb - 1``."""
    k = C.shape[0]
    nb = parts.shape[0]
    for blk in numba.prange(nb):
        for j in range(blk * k // nb, (blk + 1) * k // nb):
            first = j == blk * k // nb
            if separable:
                _channel_separable(C[j], mask[j], r, parts[blk], grad[j], v[j], eta,
                                   a, af, b, bf, qp[blk], sp[blk], rows[blk],
                                   backward, write_grad, do_forward, first)
            else:
                _channel_direct(C[j], mask[j], r, parts[blk], grad[j], v[j], eta,
                                w, wf, pad[blk], rows[blk], backward, write_grad, do_forward,
                                first)


@_jit(parallel=True, **_FAST)
def _phase_b(parts, y, out, r, chunk_loss):
    """``out = sum_b parts[b]`` in block order, ``r = out - y``; returns 1/2 ||r||^2 (E4)."""
    nb, N = parts.shape
    nchunks = chunk_loss.shape[0]
    for ch in numba.prange(nchunks):
        lo = ch * N // nchunks
        hi = (ch + 1) * N // nchunks
        for i in range(lo, hi):
            out[i] = parts[0, i]
        for blk in range(1, nb):
            for i in range(lo, hi):
                out[i] += parts[blk, i]
        acc = 0.0
        for i in range(lo, hi):
            ri = out[i] - y[i]
            r[i] = ri
            acc += np.float64(ri) * np.float64(ri)
        chunk_loss[ch] = acc
    total = 0.0
    for ch in range(nchunks):
        total += chunk_loss[ch]
    return 0.5 * total


@_jit(parallel=True)
def parallel_copy(dst, src):
    """``dst[:] = src`` over all threads (the copy bandwidth of the benchmark's roofline)."""
    dst[:] = src


# --------------------------------------------------------------------------------------------
# Python side.

class _Plan:
    """Filter factors, scratch buffers and block layout for one generator (all in gen.dtype)."""

    def __init__(self, gen):
        dt = gen.dtype
        self.dtype = dt
        self.shape = gen.shape
        self.grid = (1,) + gen.shape if len(gen.shape) == 1 else gen.shape   # (H, W)
        H, W = self.grid
        k = gen.channels
        N = H * W
        self.blocks = max(1, min(k, MAX_BLOCKS, PARTIAL_BUDGET // N))
        self.v = np.ascontiguousarray(gen.v, dtype=dt)
        taps = gen.taps.reshape(1, -1) if gen.taps.ndim == 1 else gen.taps
        factors = ((np.ones(1), taps[0]) if taps.shape[0] == 1
                   else _filters.separable_factors(taps))
        nb = self.blocks
        self.separable = factors is not None
        if self.separable:
            a, b = factors
            h0, h1 = len(a) // 2, len(b) // 2
            self.w = self.wf = np.zeros((1, 1), dt)
            self.qp = np.zeros((nb, H + 2 * h0, W), dt)
            self.sp = np.zeros((nb, H + 2 * h0, W), dt)
            self.pad = np.zeros((nb, 1, 1), dt)
        else:
            a = b = np.zeros(1)
            h0, h1 = taps.shape[0] // 2, taps.shape[1] // 2
            self.w = np.ascontiguousarray(taps, dtype=dt)
            self.wf = np.ascontiguousarray(taps[::-1, ::-1], dtype=dt)
            self.qp = self.sp = np.zeros((nb, 1, 1), dt)
            self.pad = np.zeros((nb, H + 2 * h0, W + 2 * h1), dt)
        self.a, self.af = (np.ascontiguousarray(x, dtype=dt) for x in (a, a[::-1]))
        self.b, self.bf = (np.ascontiguousarray(x, dtype=dt) for x in (b, b[::-1]))
        self.rows = np.zeros((nb, 4, W + 2 * h1), dt)
        self.parts = np.zeros((nb, H, W), dt)
        self.chunk_loss = np.zeros(max(1, -(-N // LOSS_CHUNK)))
        self.no_grad = np.zeros((k, 1, 1), dt)

    def as_grid(self, X):
        """View (..., *shape) as (..., H, W)."""
        return X.reshape(X.shape[: X.ndim - len(self.shape)] + self.grid)

    def phase_a(self, C, mask, r, eta, *, backward, write_grad=False, do_forward=True,
                grad=None):
        _phase_a(self.as_grid(C), mask, r, self.parts, self.no_grad if grad is None else grad,
                 self.v, self.dtype.type(eta), self.separable, self.a, self.af, self.b, self.bf,
                 self.w, self.wf, self.qp, self.sp, self.pad, self.rows,
                 backward, write_grad, do_forward)

    def phase_b(self, y, r):
        """Return ``(loss, output)`` from the partial outputs; fills r (H, W) with G - y."""
        out = np.empty(self.shape, self.dtype)
        nb = self.blocks
        loss = _phase_b(self.parts.reshape(nb, -1), y.reshape(-1), out.reshape(-1),
                        r.reshape(-1), self.chunk_loss)
        return float(loss), out


def _target(plan, y):
    return np.ascontiguousarray(y, dtype=plan.dtype)


def forward(gen, C) -> np.ndarray:
    """(E3) G(C) for a checked C of shape (k, *shape) in gen.dtype."""
    plan = _Plan(gen)
    mask = np.empty((gen.channels,) + plan.grid, np.uint8)
    r = np.empty(plan.grid, plan.dtype)
    plan.phase_a(C, mask, r, 0.0, backward=False)
    return plan.phase_b(np.zeros(plan.grid, plan.dtype), r)[1]


def loss_and_grad(gen, C, y):
    """(E4, E5) ``(loss, grad)``: loss = 1/2 ||G(C) - y||^2 (float64 sum), grad of C's shape."""
    plan = _Plan(gen)
    mask = np.empty((gen.channels,) + plan.grid, np.uint8)
    r = np.empty(plan.grid, plan.dtype)
    plan.phase_a(C, mask, r, 0.0, backward=False)
    loss, _ = plan.phase_b(_target(plan, y).reshape(plan.grid), r)
    grad = np.empty_like(C)
    plan.phase_a(C, mask, r, 0.0, backward=True, write_grad=True, do_forward=False,
                 grad=plan.as_grid(grad))
    return loss, grad


class Stepper:
    """Fused gradient descent C <- C - eta dL/dC (E6) on ``weights``, which it owns and updates.

    ``evaluate()`` returns ``(loss, output)`` at the current weights; ``step()`` takes one
    gradient step and returns ``(loss, output)`` at the new weights, reusing the mask and the
    residual of the previous evaluation.  Each call returns a new output array.
    """

    def __init__(self, gen, C, y, step_size):
        self.gen = gen
        self._plan = _Plan(gen)
        self.weights = np.ascontiguousarray(C, dtype=gen.dtype)
        self.y = _target(self._plan, y).reshape(self._plan.grid)
        self.step_size = float(step_size)
        self._mask = np.empty((gen.channels,) + self._plan.grid, np.uint8)
        self._r = np.empty(self._plan.grid, gen.dtype)
        self._fresh = False                    # mask and r describe the current weights

    def evaluate(self):
        self._plan.phase_a(self.weights, self._mask, self._r, 0.0, backward=False)
        self._fresh = True
        return self._plan.phase_b(self.y, self._r)

    def step(self):
        if not self._fresh:
            self.evaluate()
        self._plan.phase_a(self.weights, self._mask, self._r, self.step_size, backward=True)
        return self._plan.phase_b(self.y, self._r)
