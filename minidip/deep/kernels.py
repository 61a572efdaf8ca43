"""Closed-form kernels of the deep decoder at infinite width (E17-E19, and E10 with them).

Conventions (every function of this module):

- The model is the deep decoder of E15 without channel normalisation (``norm=False``), without
  the output sigmoid, under the "ntk" parametrisation of E16.  ``sigma_w^2`` is the variance of
  an effective weight times its fan-in at initialisation: 2 for the hidden layers W_1..W_L and
  ``sigma_o^2 = 1`` for W_out (read from the model's :meth:`DeepDecoder.weight_scales`).
- ``K_0 = B_0^T B_0 / k_0`` is the pixel Gram matrix of the fixed input, N_0 x N_0 on the input
  grid S_0 (``B_0`` of shape (k_0, *S_0) flattened to (k_0, N_0)).  ``expected_input=True``
  replaces it by its expectation over the iid N(0, 1) input, ``E[K_0] = I``.
- ``P_l`` is the fixed spatial map of layer l as a matrix, (N_l x N_{l-1}): for l < L zero
  insertion (x_up[2i] = x[i], x_up[2i+1] = 0 per axis) then circular convolution with the
  upsampling taps h along every axis, ``P[i, j] = prod_axes h[i_a - 2 j_a]`` (offsets of h centred
  as in E1, indices periodic on the fine grid); for l = L circular convolution with the last
  filter u_L, ``P[i, j] = prod_axes u_L[i_a - j_a]`` (the identity when u_L is None).  It acts on
  the pre-activations after the 1x1 convolution: U_l = P_l W_l B_{l-1}.
- Grid points are flattened in row-major order; every dense kernel is N x N with N = prod(S).
- ``c_out = 3``: the output channels are independent, identically distributed copies, so the
  full (3N x 3N) kernel is ``I_3 (x) K`` (channel-major flattening); the functions return the
  N x N block K.
- The NTK is taken with respect to every trained array Omega of E16 (W_out included);
  ``train_output=False`` keeps W_out fixed, which drops the ``sigma_o^2 K_L`` term of E18.

The arc-cosine maps k0, k1 are :func:`minidip.spectral.arccos_maps`, the helper of E8 and E13,
with the angle from :func:`minidip.spectral.angle_from_gap`.
"""
from __future__ import annotations

import functools
import itertools
import math

import numpy as np

from .. import validation as _check
from ..spectral import MAX_DENSE_SIZE, angle_from_gap, arccos_maps, resolve_step_size
from .model import DeepDecoder, spatial_map

__all__ = ["nngp", "ntk", "ntk_eigenvalues", "ntk_blocks", "ntk_phase_average",
           "phase_average", "cyclostationary_rows", "predict_outputs", "default_step_size",
           "weight_variances", "MAX_DENSE_SIZE"]

#: Variance times fan-in of PyTorch's default init, uniform on +-1/sqrt(fan_in) ("standard").
STANDARD_VARIANCE = 1.0 / 3.0
#: 1 - cos(theta) within this of 0 is rounding: the angle is taken as exactly 0 (see
#: :func:`_relu_kernels`).
SNAP_GAP = 16 * np.finfo(np.float64).eps


# --------------------------------------------------------------------------------------------
# Checks

def _check_model(gen, what: str, *, allow_standard: bool = False) -> None:
    if not isinstance(gen, DeepDecoder):
        raise ValueError(f"{what} needs a minidip.DeepDecoder, got {type(gen).__name__}")
    if gen.norm:
        raise ValueError(
            f"{what} has no closed form with channel normalisation (E20); build the model with "
            "norm=False, or measure the normalised network's finite-width NTK with "
            "md.deep.apply_empirical_ntk / md.deep.fourier_rayleigh_quotients")
    if gen.sigmoid:
        raise ValueError(f"{what} describes the linear output x = W_out B_L; build the model "
                         "with sigmoid=False")
    if gen.parametrization != "ntk" and not allow_standard:
        raise ValueError(
            f"{what} needs parametrization='ntk' (E16): under 'standard' the gradient of layer l "
            "scales with its fan-in k_{l-1}, so the NTK grows with the width and has no "
            "width-independent limit; use md.deep.apply_empirical_ntk for its finite-width NTK")


def _check_dense(gen) -> None:
    if gen.size > MAX_DENSE_SIZE:
        raise ValueError(
            f"a dense kernel for shape {gen.shape} has N = {gen.size} > {MAX_DENSE_SIZE} rows; "
            "use the structured path md.deep.ntk_eigenvalues / ntk_blocks / ntk_phase_average "
            "(any N, K_0 = I)")


def _input_gram(gen, expected_input: bool, input) -> np.ndarray:
    """K_0 = B_0^T B_0 / k_0 (E17), N_0 x N_0, from gen.input, ``input`` or the identity."""
    if expected_input and input is not None:
        raise ValueError("pass either expected_input=True or input=..., not both")
    n0 = math.prod(gen.input_shape)
    if expected_input:
        return np.eye(n0)
    B = gen.input if input is None else input
    B = np.asarray(B)
    if input is not None:
        if B.ndim != len(gen.input_shape) + 1 or B.shape[1:] != gen.input_shape:
            raise ValueError(f"input must have shape (k_0, *{gen.input_shape}) (channels, then "
                             f"the input grid S_0), got {B.shape}")
        B = _check.signal(B.reshape(B.shape[0], -1), "input", ndims=(2,))
    B = B.reshape(B.shape[0], n0).astype(np.float64)
    return B.T @ B / B.shape[0]


def weight_variances(gen) -> dict:
    """(E16, E17) sigma^2 of every weight matrix: the variance of an effective weight times its
    fan-in at initialisation.

    "ntk": ``s^2 k_{l-1}`` with s from :meth:`DeepDecoder.weight_scales` (sigma_w^2 = 2 for
    "W1".."WL", sigma_o^2 = 1 for "Wout"); "standard": 1/3 for every layer (uniform on
    +-1/sqrt(fan_in)).
    """
    shapes = gen.weight_shapes()
    if gen.parametrization == "standard":
        return {name: STANDARD_VARIANCE for name in shapes if name.startswith("W")}
    return {name: scale**2 * shapes[name][1] for name, scale in gen.weight_scales().items()}


# --------------------------------------------------------------------------------------------
# The arc-cosine maps of one ReLU layer, entrywise (E17, E18)

def _relu_kernels(q, variances, same):
    """``(k0, k1)`` of a ReLU layer entrywise, from the pre-activation covariance.

    ``q``: covariances q_ij; ``variances``: q_ii q_jj; ``same``: where i = j (angle 0 exactly).
    k0 = (pi - t)/(2 pi), k1 = sqrt(q_ii q_jj)/(2 pi) (sin t + (pi - t) cos t) with
    t = arccos(q_ij / sqrt(q_ii q_jj)) (:func:`minidip.spectral.arccos_maps`).  A pixel of zero
    variance has a pre-activation of exactly 0, so both maps vanish there (ReLU'(0) = 0).

    k0 has an infinite slope at cos t = 1: two copies of one pixel ("nearest" upsampling, a
    grid that wraps within the filter's reach) have cos t = 1 up to rounding, and
    arccos(1 - 2 eps) = 2e-8 would move k0 by 3e-9.  So 1 - cos t within SNAP_GAP = 16 eps of
    0 is taken as 0 (and cos t as 1 at i = j), which makes copies exact.
    """
    scale = np.sqrt(variances)
    live = scale > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = np.where(live, 1.0 - q / np.where(live, scale, 1.0), 1.0)
    gap = np.where(same | (np.abs(gap) <= SNAP_GAP), 0.0, gap)
    k0, k1 = arccos_maps(angle_from_gap(gap))
    return np.where(live, k0, 0.0), np.where(live, scale * k1, 0.0)


# --------------------------------------------------------------------------------------------
# Dense path (E17, E18): N x N matrices, any K_0

def _sandwich(M: np.ndarray, spatial, grid) -> np.ndarray:
    """P M P^T for a symmetric M (N_prev x N_prev) on ``grid``, P the spatial map ``(taps,
    factor)`` of E15 (None: the identity)."""
    if spatial is None:
        return M
    n = M.shape[0]
    MPt = spatial_map(M.reshape((n,) + grid), *spatial).reshape(n, -1)         # M P^T
    return spatial_map(MPt.T.reshape((-1,) + grid), *spatial).reshape(MPt.shape[1], -1)


def _dense_recursion(gen, K0):
    """``(K_L, T_L * K0_L)``: the last layer's NNGP and the hidden layers' NTK term (E17, E18)."""
    variances = weight_variances(gen)
    grid, K, T = gen.input_shape, K0, None
    for l, spatial in enumerate(gen.spatial, start=1):
        s2 = variances[f"W{l}"]
        Q = s2 * _sandwich(K, spatial, grid)
        T = Q if T is None else Q + s2 * _sandwich(T * K0_prev, spatial, grid)
        if spatial is not None:
            grid = tuple(spatial[1] * n for n in grid)
        d = np.diag(Q)
        K0_prev, K = _relu_kernels(Q, np.outer(d, d), np.eye(Q.shape[0], dtype=bool))
    return K, T * K0_prev


def nngp(gen, *, expected_input=False, input=None) -> np.ndarray:
    """(E17) The NNGP kernel of the deep decoder: Cov[x] over the weights at infinite width.

    ``K_0 = B_0^T B_0 / k_0``; ``Q_l = sigma_w^2 P_l K_{l-1} P_l^T``; ``K_l = k1(Q_l)``
    entrywise; ``Cov[x] = sigma_o^2 K_L``.  Exact at every width for L = 1 (given B_0);
    for L >= 2 the limit of k_1..k_{L-1} -> infinity.

    Parameters
    ----------
    gen : DeepDecoder
        norm=False, sigmoid=False.  "standard" is accepted: its weights have variance
        sigma^2 = 1/3 at every layer, so by the positive homogeneity of ReLU its NNGP is
        ``(1/3) (1/6)^L`` times the "ntk" one (the limit where the CLT makes the uniform
        weights' pre-activations Gaussian).
    expected_input : bool
        Use ``K_0 = E[B_0^T B_0 / k_0] = I`` instead of the model's input.
    input : array (k_0', *gen.input_shape), optional
        A fixed input B_0 to use instead of ``gen.input``.

    Returns
    -------
    K : ndarray (N, N), float64, row-major grid order; the covariance of each output channel
        (channels are independent; see the module docstring).

    Raises
    ------
    ValueError for norm=True, sigmoid=True, or N > MAX_DENSE_SIZE.
    """
    _check_model(gen, "the NNGP kernel", allow_standard=True)
    _check_dense(gen)
    K, _ = _dense_recursion(gen, _input_gram(gen, expected_input, input))
    return weight_variances(gen)["Wout"] * K


def ntk(gen, *, expected_input=False, input=None, train_output=True) -> np.ndarray:
    """(E18) The neural tangent kernel of the deep decoder at infinite width, w.r.t. all Omega.

    ``T_1 = Q_1``; ``T_{l+1} = Q_{l+1} + sigma_w^2 P_{l+1} (T_l * K0_l) P_{l+1}^T`` with
    ``K0_l = k0(Q_l)`` entrywise; ``Theta = sigma_o^2 (K_L + T_L * K0_L)`` (E17 for Q, K), and
    without the ``K_L`` term when W_out is fixed.  It is ``lim E[J J^T]`` with J the Jacobian of
    the output w.r.t. the trained arrays (under "ntk" these are Omega, W = sigma/sqrt(fan_in)
    Omega).  Exact in expectation at every width for L = 1.

    Parameters
    ----------
    gen : DeepDecoder
        norm=False, sigmoid=False, parametrization="ntk".
    expected_input : bool
        ``K_0 = I``: the kernel whose spectrum :func:`ntk_eigenvalues` computes for any N.
    input : array (k_0', *gen.input_shape), optional
        A fixed input B_0 to use instead of ``gen.input``.
    train_output : bool
        False: W_out fixed (drops sigma_o^2 K_L).

    Returns
    -------
    Theta : ndarray (N, N), float64 (the block of one output channel).

    Notes
    -----
    The two-layer generator of E3 is the case L = 1, B_0 = identity (k_0 = N), u_1 = u, W_out
    fixed to v: then ``Theta = (sigma_w^2 / N) Sigma = (2/N) Sigma`` with Sigma of E8, because
    the two-layer weights are C = W_1 = sqrt(2/N) Omega_1.
    """
    _check_model(gen, "the NTK")
    _check_dense(gen)
    K, TK0 = _dense_recursion(gen, _input_gram(gen, expected_input, input))
    return weight_variances(gen)["Wout"] * ((K if train_output else 0.0) + TK0)


def phase_average(kernel, shape) -> np.ndarray:
    """(E19) The circulant kernel closest to ``kernel`` in Frobenius norm: its phase average.

    ``r(d) = mean_i kernel[i, i + d]`` (lags periodic on ``shape``); returns the dense circulant
    ``C[i, l] = r(l - i)`` (N x N).  For a cyclostationary kernel its eigenvalues are the
    diagonal of the kernel in the Fourier basis (:func:`ntk_phase_average`).
    """
    shape = _check.shape(shape)
    n = math.prod(shape)
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.shape != (n, n):
        raise ValueError(f"kernel must be ({n}, {n}) for shape {shape}, got {kernel.shape}")
    if n > MAX_DENSE_SIZE:
        raise ValueError(f"N = {n} > {MAX_DENSE_SIZE}: use md.deep.ntk_phase_average, which "
                         "averages the cyclostationary rows without an N x N matrix")
    coords = np.indices(shape).reshape(len(shape), -1)
    lag = np.ravel_multi_index(tuple((coords[:, None, :] - coords[:, :, None])
                                     % np.array(shape)[:, None, None]), shape)   # [i, l]: l - i
    row = np.bincount(lag.ravel(), weights=kernel.ravel(), minlength=n) / n
    return row[lag]


# --------------------------------------------------------------------------------------------
# Structured path (E19): cyclostationary rows, K_0 = I

def _phase_lags(period: int, shape):
    """Open index grids (phase c per axis, then lag d per axis) for arrays (p,)*ndim + shape."""
    ndim = len(shape)
    return np.ogrid[tuple(slice(0, period) for _ in range(ndim))
                    + tuple(slice(0, n) for n in shape)]


def _map_rows(R: np.ndarray, period: int, spatial):
    """Rows of P K P^T from the rows R of a cyclostationary K (E19).

    ``K[i, i + d] = R[i mod p, d]``, R of shape (p,)*ndim + grid.  With P[i, j] = h[i - f j]
    (per axis), ``(P K P^T)[i, i + d] = sum_j h[i - f j] (P g_j)[i - f j + d]`` where
    ``g_j = R[j mod p]`` is a row of K seen as an image of the lag.  The new period is f p.
    """
    if spatial is None:
        return R, period
    taps, factor = spatial
    ndim = R.ndim // 2
    up = spatial_map(R.reshape((-1,) + R.shape[ndim:]), taps, factor)
    up = up.reshape(R.shape[:ndim] + up.shape[1:])
    new = factor * period
    out = np.zeros((new,) * ndim + up.shape[ndim:])
    centre = len(taps) // 2
    offsets = [(t - centre, w) for t, w in enumerate(taps) if w != 0]
    for phase in itertools.product(range(new), repeat=ndim):
        for combo in itertools.product(offsets, repeat=ndim):
            m = [o for o, _ in combo]
            if any((c - o) % factor for c, o in zip(phase, m)):
                continue
            source = tuple(((c - o) // factor) % period for c, o in zip(phase, m))
            weight = math.prod(w for _, w in combo)
            out[phase] += weight * np.roll(up[source], tuple(-o for o in m),
                                           axis=tuple(range(ndim)))      # [d] <- [d + m]
    return out, new


def _relu_rows(R: np.ndarray, period: int):
    """``(k0, k1)`` of a ReLU layer on the rows of a cyclostationary covariance (E19)."""
    ndim = R.ndim // 2
    grid = _phase_lags(period, R.shape[ndim:])
    phases, lags = grid[:ndim], grid[ndim:]
    diag = R[(Ellipsis,) + (0,) * ndim]                                 # q at each phase
    other = diag[tuple((c + d) % period for c, d in zip(phases, lags))]  # q at phase c + d
    same = np.logical_and.reduce(np.broadcast_arrays(*[d == 0 for d in lags]))
    return _relu_kernels(R, diag[phases] * other, same)


def cyclostationary_rows(gen, *, train_output=True):
    """(E19) The NNGP and NTK with K_0 = I as cyclostationary rows.

    Both kernels satisfy ``K[i, i + d] = R[i mod p, d]`` with period p = 2^(L-1) per axis (the
    upsampling of layers 1..L-1 doubles it each time); each layer costs a few spatial maps of
    p^ndim rows, O(L p^ndim N taps) in all, with no N x N matrix.  They depend only on the
    architecture and are kept for the last few architectures asked (read-only arrays).

    Returns
    -------
    (period, nngp_rows, ntk_rows) : int and two arrays of shape (p,)*ndim + S, float64.
    """
    _check_model(gen, "the structured NTK")
    return _rows(_architecture(gen), bool(train_output))


def _architecture(gen) -> tuple:
    """What the kernels with K_0 = I depend on, hashable: grids, spatial maps, variances."""
    spatial = tuple(None if P is None else (tuple(P[0].tolist()), P[1]) for P in gen.spatial)
    return gen.input_shape, spatial, tuple(sorted(weight_variances(gen).items()))


def _read_only(*arrays):
    for a in arrays:
        a.flags.writeable = False
    return arrays


@functools.lru_cache(maxsize=8)
def _rows(architecture, train_output):
    input_shape, spatial_maps, variances = architecture
    variances = dict(variances)
    spatial_maps = [None if P is None else (np.array(P[0]), P[1]) for P in spatial_maps]
    ndim = len(input_shape)
    R = np.zeros((1,) * ndim + input_shape)
    R[(0,) * (2 * ndim)] = 1.0                                          # K_0 = I
    period, K, T = 1, R, None
    for l, spatial in enumerate(spatial_maps, start=1):
        s2 = variances[f"W{l}"]
        Q, new = _map_rows(K, period, spatial)
        Q = s2 * Q
        if T is not None:
            T = Q + s2 * _map_rows(T * K0_prev, period, spatial)[0]
        else:
            T = Q
        period = new
        K0_prev, K = _relu_rows(Q, period)
    s_o = variances["Wout"]
    return (period,) + _read_only(s_o * K, s_o * ((K if train_output else 0.0) + T * K0_prev))


@functools.lru_cache(maxsize=8)
def _blocks(architecture, train_output):
    period, _, rows = _rows(architecture, train_output)
    return _read_only(*_fourier_blocks(rows, period))


def _fourier_blocks(rows: np.ndarray, period: int):
    """The Fourier form of a cyclostationary kernel: frequencies and Hermitian blocks (E19).

    With the unitary DFT, (F K F^H)[f, f'] vanishes unless f' = f (mod S/p), and on
    f = f0 + m S/p, f' = f0 + m' S/p it is
    ``(1/p^ndim) sum_c exp(-2 pi i m.c / p) exp(2 pi i m'.c / p) conj(Rhat[c, f'])``, Rhat the
    DFT of the rows over the lag: a DFT over the phases c.  Returns ``(index, blocks)``: flat
    np.fft-order indices (B, p^ndim) of the frequencies of each of the B = N / p^ndim blocks,
    and the blocks (B, p^ndim, p^ndim).
    """
    ndim = rows.ndim // 2
    shape = rows.shape[ndim:]
    M = period**ndim
    base = tuple(n // period for n in shape)
    G = np.conj(np.fft.fftn(rows, axes=tuple(range(ndim, 2 * ndim))))
    # frequency index f_a = m_a n_a/p + f0_a: split each frequency axis into (m_a, f0_a)
    G = G.reshape((period,) * ndim + sum(((period, b) for b in base), ()))
    c_axes = tuple(range(ndim))
    m_axes = tuple(ndim + 2 * a for a in range(ndim))
    f0_axes = tuple(ndim + 1 + 2 * a for a in range(ndim))
    G = G.transpose(f0_axes + c_axes + m_axes)                          # (f0.., c.., m'..)
    phases = np.array(list(itertools.product(range(period), repeat=ndim))).reshape(M, ndim)
    twist = np.exp(2j * np.pi * (phases @ phases.T) / period).reshape((period,) * (2 * ndim))
    blocks = np.fft.fftn(twist * G, axes=tuple(range(ndim, 2 * ndim))) / M   # c -> m
    blocks = blocks.reshape(-1, M, M)
    blocks = 0.5 * (blocks + np.conj(np.swapaxes(blocks, 1, 2)))        # Hermitian to rounding
    f0 = np.array(list(np.ndindex(*base))).reshape(-1, ndim)            # (B, ndim)
    freq = f0[:, None, :] + phases[None, :, :] * np.array(base)        # (B, M, ndim)
    index = np.ravel_multi_index(tuple(np.moveaxis(freq, -1, 0)), shape)
    return index, blocks


def ntk_blocks(gen, *, train_output=True):
    """(E19) The NTK with K_0 = I in the Fourier basis: N / P^ndim Hermitian blocks of P^ndim.

    P = 2^(L-1); frequency f couples only with f + m N/P per axis (cyclostationarity).

    Returns
    -------
    (index, blocks) : index (B, P^ndim) int, the flat np.fft-order indices of each block's
        frequencies (f0 + m S/P); blocks (B, P^ndim, P^ndim) complex, the restriction of
        F Theta F^H (unitary DFT) to them.
    """
    _check_model(gen, "the structured NTK")
    return _blocks(_architecture(gen), bool(train_output))


def ntk_eigenvalues(gen, *, train_output=True) -> np.ndarray:
    """(E19) All N eigenvalues of ``ntk(gen, expected_input=True)``, largest first, any N.

    From the cyclostationary rows (:func:`cyclostationary_rows`) and the Fourier blocks
    (:func:`ntk_blocks`): N / P^ndim Hermitian eigenproblems of size P^ndim, P = 2^(L-1).
    Without upsampling (L = 1) the kernel is circulant and this is one FFT.

    Returns
    -------
    ndarray (N,), float64, descending.
    """
    index, blocks = ntk_blocks(gen, train_output=train_output)
    # F Theta F^H at -f is the conjugate of it at f (Theta is real): the block of the
    # frequencies -f0 - m S/P has the eigenvalues of the block of f0, so one of each pair is
    # enough.  A block is its own partner when f0 = -f0 mod S/P.
    shape = gen.shape
    f0 = np.array(np.unravel_index(index[:, 0], shape)).T              # (B, ndim), m = 0
    partner = np.ravel_multi_index(tuple(((-f0) % (np.array(shape) // _period(gen))).T), shape)
    first = index[:, 0]
    keep = first <= partner
    lam = np.linalg.eigvalsh(blocks[keep])
    copies = np.where(first[keep] == partner[keep], 1, 2)
    return np.sort(np.repeat(lam, copies, axis=0).ravel())[::-1]


def _period(gen) -> int:
    """P = 2^(L-1), the period of the kernels per axis (E19)."""
    return 2 ** (gen.layers - 1)


def ntk_phase_average(gen, *, train_output=True):
    """(E19) The phase-averaged circulant approximation of the NTK (K_0 = I) and what it drops.

    Its eigenvalues are the diagonal of F Theta F^H: ``lam(f)`` = DFT of the phase-averaged row
    ``r(d) = mean_c R[c, d]`` (also the Rayleigh quotient of Theta on the Fourier mode f).
    The off-diagonal part of the blocks is what the approximation drops.

    Returns
    -------
    (lam, dropped) : lam of shape S in np.fft order (float64); dropped =
        ||Theta - Theta_avg||_F^2 / ||Theta||_F^2, the fraction of the kernel's energy
        outside the Fourier diagonal (0 for a circulant kernel).
    """
    period, _, rows = cyclostationary_rows(gen, train_output=train_output)
    ndim = rows.ndim // 2
    lam = np.fft.fftn(rows.mean(axis=tuple(range(ndim))), axes=tuple(range(ndim))).real
    total = float(np.sum(rows**2)) * math.prod(gen.shape) / period**ndim   # ||Theta||_F^2
    return lam, max(0.0, 1.0 - float(np.sum(lam**2)) / total)


# --------------------------------------------------------------------------------------------
# Linearised dynamics with the structured kernel (E10 with E19)

def default_step_size(gen, *, train_output=True) -> float:
    """(E10, E19) eta = 1 / lambda_max of ``ntk(gen, expected_input=True)``."""
    return float(1.0 / ntk_eigenvalues(gen, train_output=train_output)[0])


def predict_outputs(gen, y, g0, iterations, step_size=None, *, train_output=True):
    """(E10 with E19) Outputs of gradient descent linearised with the NTK of K_0 = I.

    ``G_tau = y + (I - eta Theta)^tau (G_0 - y)``, evaluated per Fourier block (each block
    diagonalised once), for any N.  ``step_size=None`` is 1/lambda_max; an explicit one must lie
    in (0, 2/lambda_max).

    Parameters
    ----------
    gen : DeepDecoder (norm=False, sigmoid=False, "ntk")
    y, g0 : arrays of ``gen.output_shape``
        Target and output at initialisation (zeros for the prediction from G_0 = 0).
    iterations : 1-D list of non-negative ints

    Returns
    -------
    array (len(iterations), *gen.output_shape), float64.
    """
    taus = _check.iterations(iterations)
    y = _check.signal(y, "y", gen.output_shape, ndims=(1, 2, 3))
    g0 = _check.signal(g0, "g0", gen.output_shape, ndims=(1, 2, 3))
    index, blocks = ntk_blocks(gen, train_output=train_output)
    lam, V = np.linalg.eigh(blocks)                                   # (B, M), (B, M, M)
    eta = resolve_step_size(step_size, 2.0 / float(lam.max()))
    channels = (g0 - y).reshape((-1,) + gen.shape)
    axes = tuple(range(1, channels.ndim))
    rhat = np.fft.fftn(channels, axes=axes, norm="ortho").reshape(len(channels), -1)
    coeff = np.conj(np.swapaxes(V, 1, 2)) @ rhat[:, index][..., None]  # V^H r per block
    out = np.empty((taus.size, len(channels), gen.size))
    spectrum = np.zeros_like(rhat)
    for t, tau in enumerate(taus):
        spectrum[:, index] = (V @ (((1.0 - eta * lam) ** tau)[..., None] * coeff))[..., 0]
        r = np.fft.ifftn(spectrum.reshape(channels.shape), axes=axes, norm="ortho").real
        out[t] = (y.reshape(channels.shape) + r).reshape(len(channels), -1)
    return out.reshape((taus.size,) + gen.output_shape)
