"""The deep decoder (E15, E16): NumPy reference and the :class:`DeepDecoder` model.

The pure functions below are the readable truth of the model; each layer's forward map and its
backward (vector-Jacobian) map sit side by side.  Arrays carry their channels first and their grid
after: ``(k, *S)``.  The fast path (:mod:`minidip.deep._kernels`) is tested against them.

Model (E15), L layers, output grid S, input grid S_0 = S / 2^(L-1) per axis::

    B_0                                  fixed input, (k_0, *S_0), iid N(0, 1)
    Z_l = W_l B_{l-1}                    1x1 convolution, W_l of shape (k_l, k_{l-1})
    U_l = P_l Z_l                        l < L: x2 upsampling per axis (zero insertion, then
                                         circular convolution with h); l = L: convolution with u_L
    A_l = ReLU(U_l)
    B_l = gamma_l (A_l - mean) / sqrt(var + 1e-5) + beta_l      (optional, per channel)
    x   = W_out B_L                      (c_out, *S); optional sigmoid
    loss = 1/2 ||x - y||^2

Filters follow the convention of E1 (:func:`minidip.filters.as_taps`): centred taps, circular
*convolution* ``(h * c)[i] = sum_m h[m] c[i - m]``; an axis of even length L gets a zero tap
appended, so its taps sit at offsets -L/2 .. L/2 - 1.  After zero insertion
(``x_up[2i] = x[i]``, ``x_up[2i + 1] = 0``) the default ``h = [1/2, 1, 1/2]`` gives
``out[2i] = x[i]`` and ``out[2i + 1] = (x[i] + x[i + 1]) / 2``: it keeps the samples and
interpolates linearly between them.  The named kinds of ``upsample``:

- ``"linear"`` (the default): ``[1/2, 1, 1/2]``;
- ``"nearest"``: ``[0, 1, 1]``, i.e. ``out[2i] = out[2i + 1] = x[i]``, as
  ``torch.nn.Upsample(mode="nearest")``.  The even array ``[1, 1]`` is the same interpolation
  with the other tie-break: by the rule above its taps sit at offsets -1, 0, so
  ``out[2i - 1] = out[2i] = x[i]``;
- ``"cubic"``: Keys cubic convolution (a = -1/2) at half-integer offsets,
  ``[-1/16, 0, 9/16, 1, 9/16, 0, -1/16]``; it also keeps the samples.

In 2-D the 1-D taps act along each axis (the 2-D filter is their outer product).
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from .. import filters as _filters
from ..generator import _resolve_backend, convolve, correlate

__all__ = ["DeepDecoder", "upsampling_taps", "conv1x1", "conv1x1_backward", "spatial_map",
           "spatial_map_adjoint", "relu", "relu_backward", "channel_norm",
           "channel_norm_backward", "sigmoid", "sigmoid_backward", "forward", "backward",
           "NORM_EPS"]

#: epsilon of the channel normalisation (E15), as in torch.nn.BatchNorm2d.
NORM_EPS = 1e-5
PARAMETRIZATIONS = ("ntk", "standard")

_KINDS = {
    "linear": np.array([0.5, 1.0, 0.5]),
    "nearest": np.array([0.0, 1.0, 1.0]),
    "cubic": _filters.upsampling("cubic", ndim=1, normalize=False),
}


def upsampling_taps(upsample) -> np.ndarray:
    """The 1-D taps h of the x2 upsampling (E15): a kind name or an array of taps.

    None is ``"linear"``.  Returns odd-sized centred float64 taps (see the module docstring).
    """
    if upsample is None:
        upsample = "linear"
    if isinstance(upsample, str):
        if upsample not in _KINDS:
            raise ValueError(f"unknown upsampling kind {upsample!r}; choose one of "
                             f"{sorted(_KINDS)} or pass a 1-D array of taps")
        return _KINDS[upsample].copy()
    return _filters.as_taps(upsample, 1)


# --------------------------------------------------------------------------------------------
# Layers (E15): forward and backward side by side.  X has shape (k, *grid).

def conv1x1(W: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Z = W B: the same (k_out, k_in) matrix at every pixel of B, (k_in, *grid)."""
    return np.tensordot(W, B, axes=1)


def conv1x1_backward(dZ: np.ndarray, W: np.ndarray, B: np.ndarray):
    """Given dL/dZ, return ``(dL/dW, dL/dB)`` = ``(dZ B^T, W^T dZ)`` summed over the pixels."""
    pixels = tuple(range(1, B.ndim))
    return np.tensordot(dZ, B, axes=(pixels, pixels)), np.tensordot(W.T, dZ, axes=1)


def _every(factor: int, ndim: int):
    """Index of the samples kept by zero insertion: every ``factor``-th along each grid axis."""
    return (slice(None),) + (slice(None, None, factor),) * ndim


def spatial_map(Z: np.ndarray, taps: np.ndarray, factor: int) -> np.ndarray:
    """P Z (E15): zero insertion by ``factor`` per grid axis, then circular convolution (E1).

    ``taps`` are 1-D and act along every grid axis; ``factor`` is 2 (upsampling) or 1.
    (k, *grid) -> (k, *(factor * grid)).
    """
    ndim = Z.ndim - 1
    up = np.zeros(Z.shape[:1] + tuple(factor * n for n in Z.shape[1:]), Z.dtype)
    up[_every(factor, ndim)] = Z                          # x_up[f i] = x[i], zeros between
    return convolve(up, _outer(taps, ndim))


def spatial_map_adjoint(G: np.ndarray, taps: np.ndarray, factor: int) -> np.ndarray:
    """P^T G: circular correlation (the adjoint of E1), then keep every ``factor``-th sample."""
    ndim = G.ndim - 1
    return correlate(G, _outer(taps, ndim))[_every(factor, ndim)]


def _outer(taps: np.ndarray, ndim: int) -> np.ndarray:
    return taps if ndim == 1 else np.outer(taps, taps)


def relu(U: np.ndarray) -> np.ndarray:
    """A = max(U, 0)."""
    return np.maximum(U, 0)


def relu_backward(dA: np.ndarray, A: np.ndarray) -> np.ndarray:
    """dL/dU = dL/dA where U > 0 (A > 0), else 0: ReLU'(0) is taken as 0."""
    return np.where(A > 0, dA, 0)


def channel_norm(A: np.ndarray, gamma: np.ndarray, beta: np.ndarray):
    """B = gamma (A - mean) / sqrt(var + eps) + beta, mean and biased var over each channel's pixels.

    Returns ``(B, (xhat, inv_std))`` with xhat = (A - mean) inv_std, the normalised channels.
    """
    pixels = tuple(range(1, A.ndim))
    mean = A.mean(axis=pixels, keepdims=True)
    inv_std = 1 / np.sqrt(A.var(axis=pixels, keepdims=True) + NORM_EPS)
    xhat = (A - mean) * inv_std
    return _column(gamma, A.ndim) * xhat + _column(beta, A.ndim), (xhat, inv_std)


def channel_norm_backward(dB: np.ndarray, gamma: np.ndarray, xhat: np.ndarray,
                          inv_std: np.ndarray):
    """Given dL/dB, return ``(dL/dA, dL/dgamma, dL/dbeta)``.

    dA = gamma inv_std (dB - mean(dB) - xhat mean(dB xhat)); means over each channel's pixels.
    """
    pixels = tuple(range(1, dB.ndim))
    dgamma = np.sum(dB * xhat, axis=pixels)
    dbeta = np.sum(dB, axis=pixels)
    centred = (dB - dB.mean(axis=pixels, keepdims=True)
               - xhat * (dB * xhat).mean(axis=pixels, keepdims=True))
    return _column(gamma, dB.ndim) * inv_std * centred, dgamma, dbeta


def _column(v: np.ndarray, ndim: int) -> np.ndarray:
    return v.reshape((-1,) + (1,) * (ndim - 1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), without overflow."""
    return expit(x)


def sigmoid_backward(dout: np.ndarray, out: np.ndarray) -> np.ndarray:
    """dL/dx = dL/dout out (1 - out)."""
    return dout * out * (1 - out)


# --------------------------------------------------------------------------------------------
# The network (E15) on effective weights W (E16 maps the trained arrays to them).

def forward(W: dict, B0: np.ndarray, spatial: list, norm: bool, use_sigmoid: bool):
    """(E15) The output x, (c_out, *S), and the tape that :func:`backward` needs.

    ``W``: "W1".."WL", "Wout" and, with ``norm``, "gamma1".., "beta1"..; effective weights.
    ``spatial``: for each layer, ``(taps, factor)`` of its map P_l, or None for the identity.
    """
    tape, B = [], B0
    for l, P in enumerate(spatial, start=1):
        Z = conv1x1(W[f"W{l}"], B)
        A = relu(Z if P is None else spatial_map(Z, *P))
        entry = {"input": B, "A": A}
        if norm:
            B, entry["norm"] = channel_norm(A, W[f"gamma{l}"], W[f"beta{l}"])
        else:
            B = A
        tape.append(entry)
    out = conv1x1(W["Wout"], B)
    if use_sigmoid:
        out = sigmoid(out)
    return out, {"layers": tape, "B": B, "out": out}


def backward(dout: np.ndarray, W: dict, tape: dict, spatial: list, norm: bool,
             use_sigmoid: bool) -> dict:
    """(E15) dL/dW for every effective weight of :func:`forward`, given dL/dx, (c_out, *S)."""
    if use_sigmoid:
        dout = sigmoid_backward(dout, tape["out"])
    grads = {}
    grads["Wout"], dB = conv1x1_backward(dout, W["Wout"], tape["B"])
    for l in range(len(spatial), 0, -1):
        entry, P = tape["layers"][l - 1], spatial[l - 1]
        if norm:
            dA, grads[f"gamma{l}"], grads[f"beta{l}"] = channel_norm_backward(
                dB, W[f"gamma{l}"], *entry["norm"])
        else:
            dA = dB
        dU = relu_backward(dA, entry["A"])
        dZ = dU if P is None else spatial_map_adjoint(dU, *P)
        grads[f"W{l}"], dB = conv1x1_backward(dZ, W[f"W{l}"], entry["input"])
    return grads


# --------------------------------------------------------------------------------------------

class DeepDecoder:
    """The deep decoder of E15 with the parametrisation of E16, on a periodic grid.

    Parameters
    ----------
    shape : int or tuple of int
        Output grid S, ``(n,)`` or ``(h, w)``; divisible by 2^(layers - 1) along every axis.
    channels : int or sequence of int
        Widths k_1..k_L of the hidden layers: one int for all, or one per layer.
    layers : int
        L >= 1; layers 1..L-1 upsample x2 per axis, so the input grid is S / 2^(L-1).
    upsample : None, str or 1-D array
        The upsampling filter h: None or "linear" ([1/2, 1, 1/2]), "nearest", "cubic", or 1-D
        taps (E1 convention, used along every axis); see the module docstring.
    norm : bool
        Channel normalisation after every ReLU (trained gamma_l, beta_l).
    sigmoid : bool
        Apply a sigmoid to the output.
    out_channels : 1 or 3
        c_out; 1 gives an output of shape S, 3 (colour) an output of shape (3, *S).
    input_channels : int, optional
        k_0; default k_1.
    parametrization : "ntk" or "standard"
        (E16) "ntk": the trained arrays are Omega_l, iid N(0, 1) at initialisation, and
        W_l = sigma_w / sqrt(k_{l-1}) Omega_l with sigma_w^2 = 2 for the hidden layers and 1 for
        W_out.  "standard": W_l is trained directly and starts as PyTorch's default for a 1x1
        convolution without bias, uniform on +-1/sqrt(k_{l-1}).  gamma = 1, beta = 0 at init.
    seed : int
        Seeds the fixed input B_0 and the initial weights (two independent streams spawned
        from it).  Draws are made in float64, so float32 and float64 models agree.
    dtype : np.float32 or np.float64
    last_filter : None or 1-D array, keyword-only
        u_L of the last layer (E15), 1-D taps used along every axis; None is the delta.
    backend : "numpy" or "numba", keyword-only
        Default "numba" when numba imports.  "numpy" runs the reference functions of this module.

    Notes
    -----
    The parameters are a dict: "W1".."WL" of shape (k_l, k_{l-1}), "Wout" of shape
    (c_out, k_L), and with ``norm`` "gamma1".."gammaL", "beta1".."betaL" of shape (k_l,).
    Under "ntk" the "W" entries hold Omega.  A model keeps a workspace of buffers between calls
    and is not safe to call from several threads at once.
    """

    def __init__(self, shape, channels=64, layers=4, upsample=None, norm=True, sigmoid=False,
                 out_channels=1, input_channels=None, parametrization="ntk", seed=0,
                 dtype=np.float32, *, last_filter=None, backend=None):
        shape = (shape,) if np.isscalar(shape) else tuple(shape)
        if len(shape) not in (1, 2) or any(int(n) != n or n < 1 for n in shape):
            raise ValueError(f"shape must be (n,) or (h, w) of positive integers, got {shape!r}")
        self._shape = tuple(int(n) for n in shape)
        if isinstance(layers, bool) or int(layers) != layers or layers < 1:
            raise ValueError(f"layers must be a positive integer, got {layers!r}")
        self._layers = int(layers)
        self._channels = _widths(channels, self._layers)
        k0 = self._channels[0] if input_channels is None else input_channels
        self.input_channels = _widths(k0, 1, "input_channels")[0]
        if out_channels not in (1, 3):
            raise ValueError(f"out_channels must be 1 (grey) or 3 (colour), got {out_channels!r}")
        self.out_channels = int(out_channels)
        if parametrization not in PARAMETRIZATIONS:
            raise ValueError(f"parametrization must be one of {PARAMETRIZATIONS}, "
                             f"got {parametrization!r}")
        self.parametrization = parametrization
        if np.dtype(dtype) not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        self._dtype = np.dtype(dtype)
        self.backend = _resolve_backend(backend)
        self.norm, self.sigmoid, self.seed = bool(norm), bool(sigmoid), seed

        factor = 2 ** (self._layers - 1)
        for axis, n in enumerate(self._shape):
            if n % factor:
                raise ValueError(
                    f"shape {self._shape} is not divisible by 2^(layers - 1) = {factor} along "
                    f"axis {axis}; crop or pad the signal to a multiple of {factor}, or use fewer "
                    f"layers")
        self.input_shape = tuple(n // factor for n in self._shape)
        self.upsample = upsampling_taps(upsample)
        self.last_filter = None if last_filter is None else _filters.as_taps(last_filter, 1)
        self.spatial = self._spatial_maps()
        self._shapes, self._scales = self._describe_weights()

        input_rng, self._weight_seed = np.random.SeedSequence(seed).spawn(2)
        draw = np.random.default_rng(input_rng).standard_normal(
            (self.input_channels,) + self.input_shape)
        self.input = draw.astype(self._dtype)
        self.input.flags.writeable = False
        self._fast = None

    def _spatial_maps(self) -> list:
        """(taps, factor) of P_1..P_L, None for the identity; checks each filter fits its grid."""
        maps = [(self.upsample, 2)] * (self._layers - 1)
        maps.append(None if self.last_filter is None else (self.last_filter, 1))
        grid = self.input_shape
        for l, P in enumerate(maps, start=1):
            if P is not None:
                grid = tuple(P[1] * n for n in grid)
                if P[0].size > min(grid):
                    what = "upsampling filter" if P[1] == 2 else "last_filter"
                    raise ValueError(
                        f"the {what} has {P[0].size} taps but layer {l}'s grid {grid} is smaller "
                        f"along some axis; use a larger shape, fewer layers or a shorter filter")
        return maps

    # ---- description --------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        """The output grid S."""
        return self._shape

    @property
    def output_shape(self) -> tuple[int, ...]:
        """S, or (3, *S) for colour."""
        return self._shape if self.out_channels == 1 else (3,) + self._shape

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def layers(self) -> int:
        return self._layers

    @property
    def channels(self) -> tuple[int, ...]:
        """(k_1, ..., k_L)."""
        return self._channels

    @property
    def size(self) -> int:
        """N, the number of grid points of the output."""
        return math.prod(self._shape)

    def __repr__(self):
        widths = self._channels[0] if len(set(self._channels)) == 1 else self._channels
        return (f"DeepDecoder(shape={self._shape}, channels={widths}, layers={self._layers}, "
                f"upsample={self.upsample.tolist()}, norm={self.norm}, sigmoid={self.sigmoid}, "
                f"out_channels={self.out_channels}, input_channels={self.input_channels}, "
                f"parametrization={self.parametrization!r}, seed={self.seed}, "
                f"dtype={self._dtype.name}, backend={self.backend!r})")

    # ---- parameters (E16) ---------------------------------------------------------------

    def weight_shapes(self) -> dict:
        """Name -> shape of every trained array, in the order of :meth:`init_weights`."""
        return dict(self._shapes)

    def weight_scales(self) -> dict:
        """(E16) The factor s with W = s * P[name] for "W1".., "Wout": sigma_w / sqrt(fan_in)
        under "ntk" (sigma_w^2 = 2 hidden, 1 output), 1 under "standard"."""
        return dict(self._scales)

    def _describe_weights(self):
        """The (constant) shapes and E16 scales of the trained arrays."""
        widths = (self.input_channels,) + self._channels
        shapes = {f"W{l}": (widths[l], widths[l - 1]) for l in range(1, self._layers + 1)}
        shapes["Wout"] = (self.out_channels, widths[-1])
        if self.norm:
            shapes.update({f"gamma{l}": (widths[l],) for l in range(1, self._layers + 1)})
            shapes.update({f"beta{l}": (widths[l],) for l in range(1, self._layers + 1)})
        fan_in = {name: shape[1] for name, shape in shapes.items() if name.startswith("W")}
        if self.parametrization == "standard":
            scales = dict.fromkeys(fan_in, 1.0)
        else:
            scales = {name: math.sqrt((1.0 if name == "Wout" else 2.0) / k)
                      for name, k in fan_in.items()}
        return shapes, scales

    def init_weights(self) -> dict:
        """(E16) Initial parameters, drawn in float64 from ``seed`` then cast to ``dtype``.

        "ntk": every W entry (Omega) iid N(0, 1); "standard": uniform on +-1/sqrt(fan_in)
        (PyTorch's default for a convolution).  gamma = 1, beta = 0.
        """
        rng = np.random.default_rng(self._weight_seed)
        params = {}
        for name, shape in self.weight_shapes().items():
            if name.startswith("W"):
                if self.parametrization == "ntk":
                    draw = rng.standard_normal(shape)
                else:
                    bound = 1 / math.sqrt(shape[1])
                    draw = rng.uniform(-bound, bound, shape)
            else:
                draw = np.full(shape, 1.0 if name.startswith("gamma") else 0.0)
            params[name] = draw.astype(self._dtype)
        return params

    def check_weights(self, P) -> dict:
        """Validated parameters: a new dict of C-contiguous arrays in ``dtype``."""
        if not isinstance(P, dict):
            raise ValueError(f"parameters must be a dict of arrays (see init_weights), "
                             f"got {type(P).__name__}")
        shapes = self._shapes
        missing, extra = set(shapes) - set(P), set(P) - set(shapes)
        if missing or extra:
            raise ValueError(f"parameter names do not match the model: missing "
                             f"{sorted(missing)}, unexpected {sorted(extra)}; start from "
                             f"init_weights()")
        checked = {}
        for name, shape in shapes.items():
            value = np.asarray(P[name])
            if value.dtype.kind not in "biuf":
                raise ValueError(f"parameter {name} must be a real numeric array")
            if value.shape != shape:
                raise ValueError(f"parameter {name} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ValueError(f"parameter {name} contains NaN or infinity")
            checked[name] = np.ascontiguousarray(value, dtype=self._dtype)
        return checked

    def check_target(self, y) -> np.ndarray:
        """The target as an array of ``output_shape`` in ``dtype``."""
        y = np.asarray(y)
        if not np.issubdtype(y.dtype, np.number) or np.iscomplexobj(y):
            raise ValueError("target y must be a real numeric array")
        if y.shape != self.output_shape:
            hint = " (colour: channels first)" if self.out_channels == 3 else ""
            raise ValueError(f"target y has shape {y.shape}, expected {self.output_shape}{hint}")
        if not np.all(np.isfinite(y)):
            raise ValueError("target y contains NaN or infinity; clean or mask those values first")
        return np.ascontiguousarray(y, dtype=self._dtype)

    def effective_weights(self, P) -> dict:
        """(E16) The weights of E15: W = s * P[W] (see :meth:`weight_scales`); gamma, beta as is."""
        P = self.check_weights(P)
        return self._effective(P)

    def _effective(self, P: dict) -> dict:
        scales = self._scales
        return {name: (self._dtype.type(scales[name]) * value if name in scales else value)
                for name, value in P.items()}

    # ---- evaluation ---------------------------------------------------------------------

    def forward(self, P) -> np.ndarray:
        """(E15) The output x, an array of ``output_shape``."""
        P = self.check_weights(P)
        if self.backend == "numba":
            out = self._fast_path().forward(self._effective(P))
        else:
            out, _ = forward(self._effective(P), self.input, self.spatial, self.norm,
                             self.sigmoid)
        return out.reshape(self.output_shape)

    def objective_grad(self, P, objective):
        """``(loss, grads, output)`` for a loss of the output given by ``objective``.

        ``objective(output)`` returns ``(loss, dL/doutput)`` for an output of ``output_shape``
        (see :class:`minidip.fitting.Objective`).  ``grads`` has the keys of P: under "ntk" the
        gradient with respect to Omega, s dL/dW (E16).
        """
        P = self.check_weights(P)
        W = self._effective(P)
        if self.backend == "numba":
            fast = self._fast_path()
            out = fast.forward(W)
            loss, dout = objective(out.reshape(self.output_shape))
            grads = fast.backward(np.asarray(dout, self._dtype).reshape(out.shape), W)
        else:
            out, tape = forward(W, self.input, self.spatial, self.norm, self.sigmoid)
            loss, dout = objective(out.reshape(self.output_shape))
            dout = np.asarray(dout, self._dtype).reshape(out.shape)
            grads = backward(dout, W, tape, self.spatial, self.norm, self.sigmoid)
        scales = self._scales
        grads = {name: (self._dtype.type(scales[name]) * grads[name] if name in scales
                        else grads[name]).astype(self._dtype, copy=False) for name in P}
        return loss, grads, out.reshape(self.output_shape)

    def loss_and_grad(self, P, y):
        """``(loss, grads)``: loss = 1/2 ||x - y||^2 (accumulated in float64) and its gradient
        with respect to every trained array (a dict with the keys of P)."""
        from ..fitting import Objective
        loss, grads, _ = self.objective_grad(P, Objective(self.check_target(y)))
        return loss, grads

    def stable_step_limit(self, operator=None):
        """None: gradient descent on the deep decoder has no closed-form stable step size."""
        return None

    def kernel_eigenvalues(self) -> np.ndarray:
        """(E19) Per-frequency eigenvalues for the spectral stop rule: the phase-averaged NTK
        with K_0 = I (:func:`minidip.deep.kernels.ntk_phase_average`), shape S, np.fft order.
        Needs norm=False, sigmoid=False, "ntk"."""
        from .kernels import ntk_phase_average
        return ntk_phase_average(self)[0]

    def _fast_path(self):
        if self._fast is None:
            from ._kernels import FastPath
            self._fast = FastPath(self)
        return self._fast


def _widths(channels, layers: int, name: str = "channels") -> tuple[int, ...]:
    values = [channels] * layers if np.isscalar(channels) else list(channels)
    if len(values) != layers or any(isinstance(k, bool) or int(k) != k or k < 1
                                    for k in values):
        raise ValueError(f"{name} must be a positive integer or a sequence of {layers} positive "
                         f"integers (one per layer), got {channels!r}")
    return tuple(int(k) for k in values)
