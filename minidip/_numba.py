"""Numba kernels of the generator (E1-E6): forward, gradient and the fused gradient step.

The NumPy functions in :mod:`minidip.generator` are the reference; these kernels compute the
same quantities faster.

Layout of one gradient step (E5, E6) followed by the evaluation of the new iterate (E3, E4):

* phase A, parallel over fixed blocks of channels: for every channel j of a block, the masked
  backward pass ``g_j = U^T(1[U c_j > 0] * r)`` with the mask kept from the previous forward
  pass, the update ``c_j <- c_j - eta v_j g_j``, and at once the forward pass of the new c_j,
  which stores the new mask and adds ``v_j ReLU(U c_j)`` to the block's partial output;
* phase B: the output ``G = sum of the partial outputs`` in block order, ``r = G - y`` and the
  loss, accumulated in float64.

The channel blocks depend only on the problem size, never on the number of threads, and every
sum runs in a fixed order: results are bit-identical for any thread count.

Filters are applied as correlations of periodically padded rows (no modulo in inner loops).
A 2-D filter of rank 1 (:func:`minidip.filters.separable_factors`) runs as two 1-D passes; a 1-D
signal is a single row of a 2-D one.
"""
from __future__ import annotations

import numpy as np

try:
    import numba
    from llvmlite import binding as _ll
    from llvmlite import ir as _ir
    from numba.core import cgutils as _cgutils
    from numba.extending import intrinsic as _intrinsic
except ImportError as exc:          # generator._numba_available relies on ImportError only
    raise ImportError("the numba backend needs numba (pip install numba)") from exc

from . import filters as _filters
from .generator import output_weights

__all__ = ["forward", "loss_and_grad", "Stepper"]

#: Upper bound on the number of channel blocks of phase A (and of partial outputs).
MAX_BLOCKS = 16
#: Partial outputs are kept to about this many grid values in total (they stay in cache).
PARTIAL_BUDGET = 2 ** 19


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


@_intrinsic
def _prefetch_l2(typingctx, arr, start):
    """Hint the CPU to bring the cache line of ``arr.flat[start]`` into L2 (no effect on results).

    One channel of a 1-D signal is a page or a few: the hardware prefetchers stop at page
    boundaries, so the next channel's weights and mask would otherwise arrive from L3 on demand.
    """
    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        i8p = _ir.IntType(8).as_pointer()
        i32 = _ir.IntType(32)
        fn = _cgutils.get_or_insert_function(
            builder.module, _ir.FunctionType(_ir.VoidType(), [i8p, i32, i32, i32]),
            "llvm.prefetch.p0i8")
        # read access, locality 2 (L2), data cache
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), i8p),
                          i32(0), i32(2), i32(1)])
        return context.get_dummy_value()
    return numba.types.void(arr, start), codegen


if numba.config.DISABLE_JIT:        # an intrinsic has no Python body; a hint can be skipped
    def _prefetch_l2(arr, start):
        """No-op stand-in of the prefetch hint when the kernels run as Python."""


#: Bytes of the next channel's weights prefetched while a channel runs (a few 1-D rows).
PREFETCH_BYTES = 2 ** 16


@_jit()
def _prefetch_channel(C, mask, j):
    """Prefetch the start of channel j's weights and mask (when j exists)."""
    if j >= C.shape[0]:
        return
    cj, mj = C[j].ravel(), mask[j].ravel()
    n = min(cj.size, PREFETCH_BYTES // cj.itemsize)
    for i in range(0, n, 64 // cj.itemsize):
        _prefetch_l2(cj, i)
    for i in range(0, min(mj.size, n), 64):
        _prefetch_l2(mj, i)


# --------------------------------------------------------------------------------------------
# Row kernels.  Every loop runs over a contiguous row and vectorizes.  Stores never use an offset
# index (``x[h + i]``): Numba's negative-index wraparound would then keep LLVM from vectorizing,
# so offset rows are passed as views.

@_jit()
def _pass_size(remaining):
    """Taps per pass: 8 while 16 or more remain, then two balanced passes (9 -> 5 + 4), or all.

    Every pass loads and stores its output row once, so few passes save memory traffic.
    """
    if remaining >= 16:
        return 8
    if remaining > 8:
        return (remaining + 1) // 2
    return remaining


@_jit(**_FAST)
def _correlate_row(out, orow, x, xrow, w, wrow, n, accumulate):
    """``out[orow, i] (+)= sum_t w[wrow, t] x[xrow, i + t]`` for i < n.

    The taps are summed in order, in passes of :func:`_pass_size` taps.  Each branch advances
    ``t`` by a constant, so LLVM sees ``i + t >= 0`` and needs no negative-index wraparound,
    which would prevent vectorization.
    """
    T = w.shape[1]
    t = 0
    while t < T:
        add = accumulate or t > 0
        size = _pass_size(T - t)
        if size == 8:
            w0, w1, w2, w3 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2], w[wrow, t + 3]
            w4, w5, w6, w7 = w[wrow, t + 4], w[wrow, t + 5], w[wrow, t + 6], w[wrow, t + 7]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2]
                       + w3 * x[xrow, b + 3] + w4 * x[xrow, b + 4] + w5 * x[xrow, b + 5]
                       + w6 * x[xrow, b + 6] + w7 * x[xrow, b + 7])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 8
        elif size == 7:
            w0, w1, w2, w3 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2], w[wrow, t + 3]
            w4, w5, w6 = w[wrow, t + 4], w[wrow, t + 5], w[wrow, t + 6]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2]
                       + w3 * x[xrow, b + 3] + w4 * x[xrow, b + 4] + w5 * x[xrow, b + 5]
                       + w6 * x[xrow, b + 6])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 7
        elif size == 6:
            w0, w1, w2, w3 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2], w[wrow, t + 3]
            w4, w5 = w[wrow, t + 4], w[wrow, t + 5]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2]
                       + w3 * x[xrow, b + 3] + w4 * x[xrow, b + 4] + w5 * x[xrow, b + 5])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 6
        elif size == 5:
            w0, w1, w2, w3 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2], w[wrow, t + 3]
            w4 = w[wrow, t + 4]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2]
                       + w3 * x[xrow, b + 3] + w4 * x[xrow, b + 4])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 5
        elif size == 4:
            w0, w1, w2, w3 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2], w[wrow, t + 3]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2]
                       + w3 * x[xrow, b + 3])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 4
        elif size == 3:
            w0, w1, w2 = w[wrow, t], w[wrow, t + 1], w[wrow, t + 2]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1] + w2 * x[xrow, b + 2])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 3
        elif size == 2:
            w0, w1 = w[wrow, t], w[wrow, t + 1]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b] + w1 * x[xrow, b + 1])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 2
        else:
            w0 = w[wrow, t]
            for i in range(n):
                b = i + t
                acc = (w0 * x[xrow, b])
                out[orow, i] = out[orow, i] + acc if add else acc
            t += 1


#: Bytes of one vector register of the compile target: 64 with AVX-512, else 32.
VECTOR_BYTES = 64 if "+avx512f" in (numba.config.CPU_FEATURES
                                    or _ll.get_host_cpu_features().flatten()).split(",") else 32
#: Output rows of one slow-axis block: each loaded input vector serves up to this many of them.
STACKED_ROWS = 4


@_intrinsic(prefer_literal=True)
def _stacked_block(typingctx, out, o, ostride, x, i, xstride, taps, count):
    """``out[o + q ostride + l] = sum_t taps[t] x[i + (q + t) xstride + l]`` for q < count and
    the V = VECTOR_BYTES / itemsize lanes l, as explicit vector code.

    ``taps`` is a tuple and ``count`` a literal integer: the code is unrolled for both.  Input
    vector m is loaded once and added to every output row q = m - t that uses it (register
    blocking: count + T - 1 loads for count T multiply-adds, where a row at a time needs T per
    row).  Each output sums its taps in tap order, as the scalar columns of :func:`_combine_rows`
    do, so the blocking changes no result.
    """
    if not isinstance(count, numba.types.IntegerLiteral):
        raise numba.core.errors.RequireLiteralValue("count must be a literal integer")
    rows, n_taps, dtype = count.literal_value, len(taps), x.dtype
    align = np.dtype(str(dtype)).itemsize
    lanes = VECTOR_BYTES // align

    def codegen(context, builder, sig, args):
        out_a, o_v, os_v, x_a, i_v, xs_v, taps_v, _ = args
        vty = _ir.VectorType(context.get_value_type(dtype), lanes)
        i32 = _ir.IntType(32)

        def pointer(array_type, array, index):
            data = context.make_array(array_type)(context, builder, array).data
            return builder.bitcast(builder.gep(data, [index]), vty.as_pointer())

        def broadcast(value):
            vec = _ir.Constant(vty, _ir.Undefined)
            for lane in range(lanes):
                vec = builder.insert_element(vec, value, i32(lane))
            return vec

        w = [broadcast(builder.extract_value(taps_v, t)) for t in range(n_taps)]
        acc = [None] * rows
        for m in range(rows + n_taps - 1):
            index = builder.add(i_v, builder.mul(xs_v, xs_v.type(m)))
            xv = builder.load(pointer(sig.args[3], x_a, index), align=align)
            for q in range(max(0, m - n_taps + 1), min(rows, m + 1)):
                term = builder.fmul(w[m - q], xv, flags=("contract",))
                acc[q] = term if acc[q] is None else builder.fadd(acc[q], term,
                                                                  flags=("contract",))
        for q in range(rows):
            index = builder.add(o_v, builder.mul(os_v, os_v.type(q)))
            builder.store(acc[q], pointer(sig.args[0], out_a, index), align=align)
        return context.get_dummy_value()
    return numba.types.void(out, o, ostride, x, i, xstride, taps, count), codegen


if numba.config.DISABLE_JIT:        # an intrinsic has no Python body: the same sums in Python
    def _stacked_block(out, o, ostride, x, i, xstride, taps, count):
        """Python stand-in of the vector block (same sums, same order)."""
        for q in range(count):
            for lane in range(VECTOR_BYTES // x.itemsize):
                acc = taps[0] * x[i + q * xstride + lane]
                for t in range(1, len(taps)):
                    acc = acc + taps[t] * x[i + (q + t) * xstride + lane]
                out[o + q * ostride + lane] = acc


@_jit(**_FAST)
def _combine_rows(out, o, ostride, X, r0, taps, rows, n):
    """``out.flat[o + q ostride + i] = sum_s taps[s] X[r0 + q + s, i]`` for q < rows, i < n:
    a filter along the slow axis (``taps`` a tuple), on blocks of STACKED_ROWS rows by one
    vector (:func:`_stacked_block`); the columns beyond the last full vector one at a time.

    ``out`` and ``X`` are C-contiguous 2-D arrays (their rows may be longer than n).
    """
    lanes = VECTOR_BYTES // X.itemsize
    end = n - n % lanes
    of, xf, xs = out.ravel(), X.ravel(), X.shape[1]
    full = rows - rows % STACKED_ROWS
    for q in range(0, full, STACKED_ROWS):
        for i in range(0, end, lanes):
            _stacked_block(of, o + q * ostride + i, ostride, xf, (r0 + q) * xs + i, xs, taps,
                           STACKED_ROWS)
    for q in range(full, rows):
        for i in range(0, end, lanes):
            _stacked_block(of, o + q * ostride + i, ostride, xf, (r0 + q) * xs + i, xs, taps, 1)
    for q in range(rows):
        for i in range(end, n):
            acc = taps[0] * X[r0 + q, i]
            for s in range(1, len(taps)):
                acc += taps[s] * X[r0 + q + s, i]
            of[o + q * ostride + i] = acc


@_jit()
def _wrap_row(X, row, h, n):
    """Fill the periodic halos of a padded row ``X[row, h:h+n]``."""
    for i in range(h):
        X[row, i] = X[row, n + i]
        X[row, h + n + i] = X[row, h + i]


@_jit()
def _wrap_rows(X, h, n):
    """Fill the periodic halo rows of a padded array ``X[h:h+n]``."""
    W = X.shape[1]
    for i in range(h):
        for i1 in range(W):
            X[i, i1] = X[n + i, i1]
            X[h + n + i, i1] = X[h + i, i1]


@_jit(**_FAST)
def _activate_row(h, hrow, mask, part, i0, vj, n, first):
    """Keep the mask 1[h > 0] (ReLU'(0) = 0) and add ``v_j ReLU(h)`` to the partial output (E3)."""
    for i in range(n):
        hv = h[hrow, i]
        m = hv > 0
        mask[i0, i] = m
        a = vj * (hv * m)
        part[i0, i] = a if first else part[i0, i] + a


# --------------------------------------------------------------------------------------------
# One channel.  Rows are padded by the filter's half-widths; the buffers belong to the block.
# rows[0]: padded backward input, rows[1]: padded new c, rows[2]: g; ``stack`` holds
# STACKED_ROWS rows of the slow-axis pass: padded backward inputs, or rows of U c.

@_jit(**_FAST)
def _channel_separable(c, mask, r, part, grad, vj, eta, a, af, b, bf, bs,
                       qp, sp, rows, stack, backward, write_grad, do_forward, first):
    """Backward / update / forward of one channel for the filter ``outer(a, b)``.

    ``a``, ``af`` are tuples (the slow-axis factor and its flip), ``bf`` the flipped fast-axis
    factor (shape (1, T)): convolution (E1) is correlation with the flipped filter.  With one
    row of taps (``len(a) == 1``, e.g. a 1-D signal) the slow-axis passes reduce to a scaling
    and are skipped.  The slow-axis passes run STACKED_ROWS rows at a time
    (:func:`_combine_rows`).  The update (E6) is the last backward pass itself: its taps
    ``bs = -eta v_j b`` accumulate into the rows of c_j, which saves storing g and reading it
    back.
    """
    H, W = c.shape
    h0, h1 = len(a) // 2, b.shape[1] // 2
    S, P = stack.shape
    ev = eta * vj
    q_row, c_row = rows[0, h1:h1 + W], rows[1, h1:h1 + W]
    if backward:
        for t in range(b.shape[1]):
            bs[0, t] = -ev * b[0, t]
        if h0 > 0:
            for i0 in range(H):
                for i1 in range(W):
                    qp[h0 + i0, i1] = r[i0, i1] * mask[i0, i1]
            _wrap_rows(qp, h0, H)
        for i0 in range(H):
            if h0 > 0:
                q, src = i0 % S, stack
                if q == 0:
                    _combine_rows(stack, h1, P, qp, i0, a, min(S, H - i0), W)
                _wrap_row(stack, q, h1, W)
            else:
                q, src = 0, rows
                a0 = a[0]
                for i1 in range(W):
                    q_row[i1] = a0 * (r[i0, i1] * mask[i0, i1])
                _wrap_row(rows, 0, h1, W)
            if write_grad:
                _correlate_row(rows, 2, src, q, b, 0, W, False)       # g = U^T(mask * r)
                for i1 in range(W):
                    grad[i0, i1] = vj * rows[2, i1]
            else:
                _correlate_row(c, i0, src, q, bs, 0, W, True)         # c_j -= eta v_j g (E6)
                if do_forward:
                    for i1 in range(W):
                        c_row[i1] = c[i0, i1]
                    _wrap_row(rows, 1, h1, W)
                    _correlate_row(sp, h0 + i0, rows, 1, bf, 0, W, False)
    if not do_forward:
        return
    if not backward:
        for i0 in range(H):
            for i1 in range(W):
                c_row[i1] = c[i0, i1]
            _wrap_row(rows, 1, h1, W)
            _correlate_row(sp, h0 + i0, rows, 1, bf, 0, W, False)
    if h0 > 0:
        _wrap_rows(sp, h0, H)
        for i0 in range(0, H, S):
            n = min(S, H - i0)
            _combine_rows(stack, 0, P, sp, i0, af, n, W)                  # h = U c_j
            for q in range(n):
                _activate_row(stack, q, mask, part, i0 + q, vj, W, first)
    else:
        for i0 in range(H):
            _activate_row(sp, i0, mask, part, i0, vj, W, first)


@_jit(**_FAST)
def _fill_padded(X, src, msk, h0, h1, use_mask):
    """``X[h0:h0+H, h1:h1+W] = src (* msk)`` with periodic halos on both axes."""
    H, W = src.shape
    for i0 in range(H):
        row = X[h0 + i0, h1:h1 + W]
        if use_mask:
            for i1 in range(W):
                row[i1] = src[i0, i1] * msk[i0, i1]
        else:
            for i1 in range(W):
                row[i1] = src[i0, i1]
        _wrap_row(X, h0 + i0, h1, W)
    _wrap_rows(X, h0, H)


@_jit(**_FAST)
def _channel_direct(c, mask, r, part, grad, vj, eta, w, wf, pad, rows,
                    backward, write_grad, do_forward, first):
    """Backward / update / forward of one channel for a general 2-D filter ``w``."""
    H, W = c.shape
    h0, h1 = w.shape[0] // 2, w.shape[1] // 2
    ev = eta * vj
    if backward:
        _fill_padded(pad, r, mask, h0, h1, True)
        for i0 in range(H):
            for t0 in range(w.shape[0]):
                _correlate_row(rows, 2, pad, i0 + t0, w, t0, W, t0 > 0)  # g = U^T(mask * r)
            if write_grad:
                for i1 in range(W):
                    grad[i0, i1] = vj * rows[2, i1]
            else:
                for i1 in range(W):
                    c[i0, i1] -= ev * rows[2, i1]                      # E6
    if not do_forward:
        return
    _fill_padded(pad, c, mask, h0, h1, False)
    for i0 in range(H):
        for t0 in range(wf.shape[0]):
            _correlate_row(rows, 3, pad, i0 + t0, wf, t0, W, t0 > 0)  # h = U c_j
        _activate_row(rows, 3, mask, part, i0, vj, W, first)


# --------------------------------------------------------------------------------------------
# The two phases.

@_jit(parallel=True, **_FAST)
def _phase_a_separable(C, mask, r, parts, grad, v, eta, a, af, b, bf, bs, qp, sp, rows, stack,
                       backward, write_grad, do_forward):
    """Run every channel; block ``blk`` owns channels ``blk*k//nb .. (blk+1)*k//nb - 1``."""
    k = C.shape[0]
    nb = parts.shape[0]
    for blk in numba.prange(nb):
        for j in range(blk * k // nb, (blk + 1) * k // nb):
            _prefetch_channel(C, mask, j + 1)
            _channel_separable(C[j], mask[j], r, parts[blk], grad[j], v[j], eta,
                               a, af, b, bf, bs[blk], qp[blk], sp[blk], rows[blk],
                               stack[blk], backward, write_grad, do_forward, j == blk * k // nb)


@_jit(parallel=True, **_FAST)
def _phase_a_direct(C, mask, r, parts, grad, v, eta, w, wf, pad, rows,
                    backward, write_grad, do_forward):
    """As :func:`_phase_a_separable`, for a general 2-D filter (compiled only when used)."""
    k = C.shape[0]
    nb = parts.shape[0]
    for blk in numba.prange(nb):
        for j in range(blk * k // nb, (blk + 1) * k // nb):
            _prefetch_channel(C, mask, j + 1)
            _channel_direct(C[j], mask[j], r, parts[blk], grad[j], v[j], eta, w, wf,
                            pad[blk], rows[blk], backward, write_grad, do_forward,
                            j == blk * k // nb)


@_jit(**_FAST)
def _phase_b(parts, y, out, r):
    """``out = sum_b parts[b]`` in block order, ``r = out - y``; returns 1/2 ||r||^2 (E4).

    Serial: it is a small fraction of the step, and a second parallel region per step would
    add a barrier (costly when the cores are shared).
    """
    nb, N = parts.shape
    for i in range(N):
        out[i] = parts[0, i]
    for blk in range(1, nb):
        for i in range(N):
            out[i] += parts[blk, i]
    total = 0.0
    for i in range(N):
        ri = out[i] - y[i]
        r[i] = ri
        total += np.float64(ri) * np.float64(ri)
    return 0.5 * total


@_jit(parallel=True)
def parallel_copy(dst, src):
    """``dst[:] = src`` over all threads (the copy bandwidth of the benchmark's roofline)."""
    dst[:] = src


# --------------------------------------------------------------------------------------------
# Python side.

class _Plan:
    """Filter factors, scratch buffers and block layout for one problem (taps, shape, k, dtype).

    Built from the numbers that define the computation, not from a model object, so any model
    with a two-layer convolutional part can use the kernels.
    """

    def __init__(self, taps, shape, channels, dtype):
        dt = np.dtype(dtype)
        self.dtype = dt
        self.shape = tuple(shape)
        self.grid = (1,) + self.shape if len(self.shape) == 1 else self.shape   # (H, W)
        H, W = self.grid
        k = self.channels = int(channels)
        N = H * W
        self.blocks = max(1, min(k, MAX_BLOCKS, PARTIAL_BUDGET // N))
        self.v = np.ascontiguousarray(output_weights(k, dt))
        taps = taps.reshape(1, -1) if taps.ndim == 1 else taps
        factors = ((np.ones(1), taps[0]) if taps.shape[0] == 1
                   else _filters.separable_factors(taps))
        nb = self.blocks
        self.separable = factors is not None
        if self.separable:
            a, b = factors
            h0, h1 = len(a) // 2, len(b) // 2
            self.qp = np.zeros((nb, H + 2 * h0, W), dt)
            self.sp = np.zeros((nb, H + 2 * h0, W), dt)
            self.a, self.af = (tuple(dt.type(t) for t in x) for x in (a, a[::-1]))
            self.b, self.bf = (np.ascontiguousarray(x, dtype=dt).reshape(1, -1)
                               for x in (b, b[::-1]))
            self.bs = np.zeros((nb, 1, len(b)), dt)
            self.stack = np.zeros((nb, STACKED_ROWS, W + 2 * h1), dt)
        else:
            h0, h1 = taps.shape[0] // 2, taps.shape[1] // 2
            self.w = np.ascontiguousarray(taps, dtype=dt)
            self.wf = np.ascontiguousarray(taps[::-1, ::-1], dtype=dt)
            self.pad = np.zeros((nb, H + 2 * h0, W + 2 * h1), dt)
        self.rows = np.zeros((nb, 4, W + 2 * h1), dt)
        self.parts = np.zeros((nb, H, W), dt)
        self.no_grad = np.zeros((k, 1, 1), dt)

    @classmethod
    def for_weights(cls, taps, C):
        """The plan of weights C of shape (k, *shape)."""
        return cls(taps, C.shape[1:], C.shape[0], C.dtype)

    def as_grid(self, X):
        """View (..., *shape) as (..., H, W)."""
        return X.reshape(X.shape[: X.ndim - len(self.shape)] + self.grid)

    def new_mask(self):
        return np.empty((self.channels,) + self.grid, np.uint8)

    def phase_a(self, C, mask, r, eta, *, backward, write_grad=False, do_forward=True,
                grad=None):
        args = (self.as_grid(C), mask, r, self.parts, self.no_grad if grad is None else grad,
                self.v, self.dtype.type(eta))
        if self.separable:
            _phase_a_separable(*args, self.a, self.af, self.b, self.bf, self.bs, self.qp, self.sp,
                               self.rows, self.stack, backward, write_grad, do_forward)
        else:
            _phase_a_direct(*args, self.w, self.wf, self.pad, self.rows, backward, write_grad,
                            do_forward)

    def phase_b(self, y, r):
        """Return ``(loss, output)`` from the partial outputs; fills r (H, W) with G - y."""
        out = np.empty(self.shape, self.dtype)
        nb = self.blocks
        loss = _phase_b(self.parts.reshape(nb, -1), y.reshape(-1), out.reshape(-1),
                        r.reshape(-1))
        return float(loss), out

    def residual(self, objective, r):
        """``(loss, output)`` with r (H, W) set to dL/dG of ``objective``.

        Without a forward operator phase B forms r = G - y itself; otherwise the objective
        maps the output to its loss and its gradient A^T (A G - y) (E21).
        """
        if objective.operator is None:
            return self.phase_b(self.as_grid(objective.target_as(self.dtype)), r)
        _, out = self.phase_b(self._zeros(), r)
        loss, grad_output = objective(out)
        r[...] = self.as_grid(np.asarray(grad_output, self.dtype))
        return loss, out

    def _zeros(self):
        if not hasattr(self, "_zero_grid"):
            self._zero_grid = np.zeros(self.grid, self.dtype)
        return self._zero_grid


def forward(taps, C) -> np.ndarray:
    """(E3) G(C) for checked weights C of shape (k, *shape) (their dtype is the plan's)."""
    plan = _Plan.for_weights(taps, C)
    r = np.empty(plan.grid, plan.dtype)
    plan.phase_a(C, plan.new_mask(), r, 0.0, backward=False)
    return plan.phase_b(plan._zeros(), r)[1]


def loss_and_grad(taps, C, objective):
    """``(loss, grad, output)`` of ``objective`` (e.g. 1/2 ||G(C) - y||^2, E4) and E5's gradient."""
    plan = _Plan.for_weights(taps, C)
    mask = plan.new_mask()
    r = np.empty(plan.grid, plan.dtype)
    plan.phase_a(C, mask, r, 0.0, backward=False)
    loss, output = plan.residual(objective, r)
    grad = np.empty_like(C)
    plan.phase_a(C, mask, r, 0.0, backward=True, write_grad=True, do_forward=False,
                 grad=plan.as_grid(grad))
    return loss, grad, output


class Stepper:
    """Fused gradient descent C <- C - eta dL/dC (E6) on ``weights``, which it owns and updates.

    ``evaluate()`` returns ``(loss, output)`` at the current weights; ``step()`` takes one
    gradient step and returns ``(loss, output)`` at the new weights, reusing the mask and the
    residual of the previous evaluation.  Each call returns a new output array.
    ``objective`` forms the loss and dL/dG from the output (:class:`minidip.fitting.Objective`).
    """

    def __init__(self, taps, C, objective, step_size):
        self._plan = _Plan.for_weights(taps, C)
        self.weights = np.ascontiguousarray(C)
        self.objective = objective
        self.step_size = float(step_size)
        self._mask = self._plan.new_mask()
        self._r = np.empty(self._plan.grid, self._plan.dtype)
        self._fresh = False                    # mask and r describe the current weights

    def evaluate(self):
        self._plan.phase_a(self.weights, self._mask, self._r, 0.0, backward=False)
        self._fresh = True
        return self._plan.residual(self.objective, self._r)

    def step(self):
        if not self._fresh:
            self.evaluate()
        self._plan.phase_a(self.weights, self._mask, self._r, self.step_size, backward=True)
        return self._plan.residual(self.objective, self._r)
