"""Speed of one Adam step of the deep decoder: the fast path against a PyTorch CPU twin.

One step is the forward pass, the loss 1/2 ||x - y||^2, the backward pass to every trained array
and an element-wise Adam update (first and second moments, bias correction) of each of them.
Both sides run the same model in float32 on the same shapes (SPEC section 9, E15; issue 11):
2-D 128x128 with k = 64 and 5 layers, 2-D 256x256 with k = 128 and 6 layers, channel
normalisation, the default upsampling [1/2, 1, 1/2], "ntk" parametrisation.  Before timing,
the twin's loss and gradients are checked against ours.  Times are medians over paired runs that
alternate between the two implementations in one process, so both see the same machine load.

The roofline of a step is its matrix-product flops at the sgemm rate measured in the same run
(NumPy float32 matmul); the fraction reached is that time over the measured step.

:func:`main` runs Numba's kernels on its "workqueue" threading layer unless NUMBA_THREADING_LAYER
says otherwise.  With OpenMP's layer, whose idle threads spin, the kernels and BLAS's own threads
take turns badly when the cores are shared: measured at 128x128 on 2 cores that other jobs kept
busy (load average 5), a step took 416 ms (median 624) with OpenMP, 120 ms with
OMP_WAIT_POLICY=passive, and 14 ms (median 17) with workqueue.
"""
from __future__ import annotations

import math
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from .._numba import _FAST, _jit
from .model import DeepDecoder

__all__ = ["Case", "SHAPES", "Adam", "matmul_flops", "torch_twin", "check_twin", "compare",
           "prefer_workqueue", "main"]


@dataclass(frozen=True)
class Case:
    name: str
    shape: tuple
    channels: int
    layers: int

    def model(self, dtype=np.float32, backend=None) -> DeepDecoder:
        return DeepDecoder(self.shape, channels=self.channels, layers=self.layers, dtype=dtype,
                           backend=backend)


SHAPES = {
    "128": Case("2-D 128x128, k = 64, 5 layers", (128, 128), 64, 5),
    "256": Case("2-D 256x256, k = 128, 6 layers", (256, 256), 128, 6),
}


def matmul_flops(gen: DeepDecoder) -> float:
    """Flops of the 1x1 convolutions of one forward and backward pass.

    Each layer's product W_l B_{l-1} costs 2 k_l k_{l-1} N_{l-1}; the backward pass forms
    dW_l = dZ_l B_{l-1}^T and (except for l = 1) dB_{l-1} = W_l^T dZ_l at the same cost each.
    The output layer's three products cost 2 c_out k_L N each.
    """
    widths = (gen.input_channels,) + gen.channels
    pixels = math.prod(gen.input_shape)
    total = 0.0
    for l in range(1, gen.layers + 1):
        products = 2 if l == 1 else 3
        total += products * 2.0 * widths[l] * widths[l - 1] * pixels
        if l < gen.layers:
            pixels *= 2 ** len(gen.shape)
    return total + 3 * 2.0 * gen.out_channels * widths[-1] * gen.size


class Adam:
    """Element-wise Adam on a dict of arrays, in place (Kingma & Ba, with bias correction).

    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
    p -= lr / (1 - b1^t) m / (sqrt(v / (1 - b2^t)) + eps).
    One fused Numba pass per array (PyTorch's twin uses its fused Adam).
    """

    def __init__(self, params: dict, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = {n: np.zeros(v.size, v.dtype) for n, v in params.items()}
        self.v = {n: np.zeros(v.size, v.dtype) for n, v in params.items()}
        self.t = 0

    def update(self, params: dict, grads: dict) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for name, p in params.items():
            _adam(p.reshape(-1), np.ascontiguousarray(grads[name], p.dtype).reshape(-1),
                  self.m[name], self.v[name], self.lr / c1, 1 / c2, self.b1, self.b2, self.eps)


@_jit(**_FAST)
def _adam(p, g, m, v, step, inv_c2, b1, b2, eps):
    for i in range(p.size):
        m[i] = b1 * m[i] + (1 - b1) * g[i]
        v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i]
        p[i] -= step * m[i] / (math.sqrt(v[i] * inv_c2) + eps)


def our_step(gen: DeepDecoder, params: dict, y: np.ndarray):
    """A closure that takes one Adam step of ``gen`` on ``params`` (in place); returns the loss."""
    from ..fitting import Objective
    objective, adam = Objective(gen.check_target(y)), Adam(params)

    def step():
        loss, grads, _ = gen.objective_grad(params, objective)
        adam.update(params, grads)
        return loss
    return step


def torch_twin(gen: DeepDecoder, params: dict, y: np.ndarray):
    """The same model in PyTorch: ``(step, loss_and_grads)``.

    Layout (channels, pixels) with ``torch.matmul`` for the 1x1 convolutions, upsampling by a
    depthwise transposed convolution (zero insertion and the filter in one op) with circular
    wrap-around, ``batch_norm`` in training mode, autograd, and ``torch.optim.Adam`` (fused when
    available).  ``step()`` takes one Adam step; ``loss_and_grads()`` evaluates without stepping.
    """
    import torch
    F = torch.nn.functional
    if len(gen.shape) != 2 or gen.last_filter is not None:
        raise ValueError("the PyTorch twin covers 2-D models without a last filter")
    dtype = {np.float32: torch.float32, np.float64: torch.float64}[gen.dtype.type]
    scales = gen.weight_scales()
    P = {n: torch.tensor(v, dtype=dtype, requires_grad=True) for n, v in params.items()}
    B0 = torch.tensor(gen.input.reshape(gen.input_channels, -1), dtype=dtype)
    target = torch.tensor(np.asarray(y).reshape(gen.out_channels, -1), dtype=dtype)
    taps = torch.tensor(gen.upsample, dtype=dtype)
    T = len(gen.upsample)
    lo = (T // 2 + 1) // 2 + 1                  # coarse pixels of wrap-around on each side
    kernels = {}

    def upsample(Z, grid):
        """Zero insertion and circular convolution with h along both axes (E15)."""
        k, (h, w) = Z.shape[0], grid
        if k not in kernels:
            kernels[k] = torch.outer(taps, taps).expand(k, 1, T, T).contiguous()
        x = F.pad(Z.reshape(1, k, h, w), (lo, lo, lo, lo), mode="circular")
        full = F.conv_transpose2d(x, kernels[k], stride=2, groups=k)
        # full[j] = sum_i x[i] h_idx[j - 2i]; output pixel j of the grid sits at 2 lo + c + j
        start = 2 * lo + T // 2
        return full[0, :, start:start + 2 * h, start:start + 2 * w].reshape(k, -1)

    def loss_fn():
        B, grid = B0, gen.input_shape
        for l in range(1, gen.layers + 1):
            Z = torch.matmul(scales[f"W{l}"] * P[f"W{l}"], B)
            if l < gen.layers:
                Z = upsample(Z, grid)
                grid = (2 * grid[0], 2 * grid[1])
            A = torch.relu(Z)
            if gen.norm:
                A = F.batch_norm(A[None], None, None, P[f"gamma{l}"], P[f"beta{l}"],
                                 training=True, eps=1e-5)[0]
            B = A
        x = torch.matmul(scales["Wout"] * P["Wout"], B)
        if gen.sigmoid:
            x = torch.sigmoid(x)
        return 0.5 * torch.sum((x - target) ** 2)

    try:
        optimizer = torch.optim.Adam(P.values(), lr=1e-3, fused=True)
    except (RuntimeError, TypeError):
        optimizer = torch.optim.Adam(P.values(), lr=1e-3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def loss_and_grads():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        return float(loss.detach()), {n: v.grad.detach().numpy().copy() for n, v in P.items()}

    return step, loss_and_grads


def sgemm_rate(size: int = 1024, repeats: int = 7) -> float:
    """float32 matmul rate of NumPy's BLAS, flop/s (best of ``repeats``)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size)).astype(np.float32)
    b = rng.standard_normal((size, size)).astype(np.float32)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2.0 * size ** 3 / best


#: The twin must agree with us to this relative l2 distance (per gradient array).  float32
#: runs of the 256x256 case differ from float64 by up to 8e-4 (both implementations: the
#: normalisation's backward pass through six layers amplifies rounding); a different model
#: differs at order 1.
TWIN_TOLERANCE = 1e-2


def check_twin(gen: DeepDecoder, params: dict, y: np.ndarray) -> float:
    """Largest relative difference (l2, per array) between the twin's gradients and ours.

    Raises RuntimeError when it exceeds :data:`TWIN_TOLERANCE` (the twin is not our model).
    """
    _, grads_t = torch_twin(gen, params, y)[1]()
    _, grads = gen.loss_and_grad(params, y)
    worst = max(float(np.linalg.norm(grads[n] - grads_t[n]) / np.linalg.norm(grads[n]))
                for n in grads)
    if not worst <= TWIN_TOLERANCE:
        raise RuntimeError(f"the PyTorch twin's gradients differ from ours by {worst:.3g} "
                           f"(relative); it does not compute the same model")
    return worst


def compare(case: Case, rounds: int = 15, threads: int = 2) -> dict:
    """Paired timing of one Adam step, ours against the twin, in float32.

    Returns the medians (seconds), the median of the paired ratios, the matmul flops, the sgemm
    rate and the roofline fraction, the twin's gradient agreement and the threading layer.
    Without PyTorch only our step is timed (``torch``, ``speedup`` and ``gradient_agreement``
    are None).
    """
    import numba
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    gen = case.model()
    y = np.random.default_rng(1).random(gen.output_shape).astype(np.float32)
    steps = {"ours": our_step(gen, gen.init_weights(), y)}
    agreement = None
    if torch is not None:
        agreement = check_twin(gen, gen.init_weights(), y)
        steps["torch"] = torch_twin(gen, gen.init_weights(), y)[0]
    for _ in range(2):                              # warm-up: compile, allocate, caches
        for fn in steps.values():
            fn()
    times = {name: [] for name in steps}
    order = list(steps.items())
    for r in range(rounds):
        for name, fn in (order if r % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    rate = sgemm_rate()
    flops = matmul_flops(gen)
    ours_s = statistics.median(times["ours"])
    torch_s = speedup = None
    if torch is not None:
        torch_s = statistics.median(times["torch"])
        speedup = statistics.median(b / a for a, b in zip(times["ours"], times["torch"]))
    return dict(case=case.name, ours=ours_s, torch=torch_s, speedup=speedup,
                flops=flops, sgemm=rate, roofline=flops / rate / ours_s,
                gradient_agreement=agreement, threading_layer=numba.threading_layer())


def prefer_workqueue() -> str:
    """Use Numba's workqueue threading layer unless the user chose one or it is already fixed.

    Returns the layer that will run (or runs) the kernels.
    """
    import numba
    try:
        return numba.threading_layer()            # already fixed by an earlier parallel call
    except ValueError:
        pass
    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    return numba.config.THREADING_LAYER


def main(names=None, rounds: int = 15) -> list:
    """Print and return :func:`compare` for every case (default all)."""
    print(f"Numba threading layer: {prefer_workqueue()}")
    rows = []
    for name in names or SHAPES:
        row = compare(SHAPES[name], rounds)
        rows.append(row)
        twin = ("PyTorch absent" if row["torch"] is None else
                f"PyTorch {row['torch'] * 1e3:.1f} ms, speed-up {row['speedup']:.2f}x, twin "
                f"gradients within {row['gradient_agreement']:.1e}")
        print(f"{row['case']}: ours {row['ours'] * 1e3:.1f} ms, {twin}; matmul "
              f"{row['flops'] / 1e9:.2f} GFLOP at {row['sgemm'] / 1e9:.0f} GFLOP/s = "
              f"{row['roofline']:.0%} of the step", flush=True)
    return rows


if __name__ == "__main__":
    main()
