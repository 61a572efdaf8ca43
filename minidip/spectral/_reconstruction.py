"""Closed-form predictions of gradient descent through a forward operator A (E22, E23).

Fitting the generator to measurements y = A x + z minimises 1/2 ||A G(C) - y||^2 (E21).  In the
linearised regime the measurement residual evolves with the kernel A Sigma A^T instead of Sigma
(E10 becomes E22), and the output converges to the minimum Sigma^{-1}-norm interpolant of the
measurements (E23).

Everything here is matrix-free: Sigma is circulant (E9) and applied by FFT with the eigenvalues
of :func:`eigenvalues`; A is applied through its ``forward`` and ``adjoint``.
No N x N matrix is formed.  Conventions are those of :mod:`minidip.spectral` (``np.fft`` order,
grid ``shape`` equal to ``A.input_shape``); results are float64.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from .. import operators as _operators
from .. import validation as _check
from ._dynamics import resolve_step_size
from ._kernels import eigenvalues

__all__ = ["normal_lambda_max", "predict_reconstruction", "interpolant", "RCOND"]

#: Frequencies of a blur with |a_f|^2 lambda_f <= RCOND * max_f |a_f|^2 lambda_f are not
#: recovered by E23.  The FFT gives these rates with an absolute error of about 1e-16 of the
#: largest, so below RCOND they are known to no better than 0.1%.
RCOND = 1e-13
#: Defaults of the power iteration of :func:`normal_lambda_max` (also behind the default step).
POWER_RTOL, POWER_MAXITER = 1e-9, 20000


def _inner(a: np.ndarray, b: np.ndarray) -> float:
    """<a, b> without BLAS: after a Numba fit, BLAS's idle threads contend with Numba's, and a
    level-1 call (vdot, norm) of a few thousand entries then costs milliseconds."""
    return float(np.sum(a * b))


def _circulant_apply(lam: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The circulant matrix with eigenvalues ``lam`` (np.fft order) applied to x by FFT."""
    return np.fft.ifftn(lam * np.fft.fftn(x)).real


def _problem(u, shape, A):
    """Check that A is an operator on the grid ``shape``; return (shape, lambda of Sigma)."""
    if not isinstance(A, _operators.Operator):
        raise ValueError("A must be an operator from minidip.operators (Mask, Blur, Downsample, "
                         f"Gaussian or a composition), got {type(A).__name__}")
    shape = _check.shape(shape)
    if A.input_shape != shape:
        raise ValueError(f"the operator acts on images of shape {A.input_shape} but the grid is "
                         f"{shape}; build the operator for the generator's shape")
    return shape, eigenvalues(u, shape)


def _normal_apply(lam, A, r):
    """(Sigma A^T r, A Sigma A^T r): one adjoint, one FFT pair, one forward."""
    q = _circulant_apply(lam, A._adjoint(r))
    return q, A._forward(q)


def _lambda_max(lam, A, rtol, maxiter, seed) -> float:
    v = np.random.default_rng(seed).standard_normal(A.output_shape)
    v /= math.sqrt(_inner(v, v))
    theta = 0.0
    for _ in range(maxiter):
        w = _normal_apply(lam, A, v)[1]
        previous, theta = theta, _inner(v, w)
        norm = math.sqrt(_inner(w, w))
        if norm == 0.0:
            raise ValueError("A Sigma A^T is zero: the operator measures nothing the generator "
                             "can produce")
        v = w / norm
        if theta - previous <= rtol * theta:
            return theta
    warnings.warn(f"power iteration for lambda_max(A Sigma A^T) did not settle in {maxiter} "
                  f"iterations (last estimate {theta:.6g}); pass a larger maxiter",
                  RuntimeWarning, stacklevel=3)
    return theta


def normal_lambda_max(u, shape, A, *, rtol=POWER_RTOL, maxiter=POWER_MAXITER, seed=0) -> float:
    """lambda_max(A Sigma A^T) by power iteration, matrix-free (E22).

    Gradient descent on 1/2 ||A G - y||^2 is stable in the linearised regime iff the step size
    eta < 2 / lambda_max(A Sigma A^T); the default step is 1 / lambda_max.

    Parameters
    ----------
    u : array_like
        Filter taps of the generator.
    shape : tuple of int
        Image grid, equal to ``A.input_shape``.
    A : minidip.operators.Operator
    rtol : float
        Stop when one more iteration raises the Rayleigh quotient by at most ``rtol`` times
        itself.
    maxiter : int
        At most this many products with A Sigma A^T (a RuntimeWarning if reached).
    seed : int
        Seed of the random start vector (the result is deterministic given the seed).

    Returns
    -------
    float
        The Rayleigh quotient of the last iterate.  It rises monotonically towards lambda_max
        (A Sigma A^T is positive semi-definite), so it is a lower bound; measured on masks,
        blurs, subsampling and Gaussian matrices its relative error is far below the factor 2
        between the default step and the stability limit (see tests/test_reconstruction.py).
    """
    _, lam = _problem(u, shape, A)
    rtol = _check.positive(rtol, "rtol")
    return _lambda_max(lam, A, rtol, _check.positive_int(maxiter, "maxiter"), seed)


def _step_size(lam, A, step_size) -> float:
    """eta by the one step-size policy, with lambda_max(A Sigma A^T) in place of lambda_max."""
    return resolve_step_size(step_size, 2.0 / _lambda_max(lam, A, POWER_RTOL, POWER_MAXITER, 0))


def predict_reconstruction(u, shape, A, y, iterations, step_size=None, g0=None) -> np.ndarray:
    """Predicted outputs of gradient descent on 1/2 ||A G - y||^2 (E22).

    G_tau = G_0 + Sigma A^T (A Sigma A^T)^+ (I - (I - eta A Sigma A^T)^tau) (y - A G_0),
    computed matrix-free by the equivalent recursion on the measurement residual

        r_0 = y - A G_0,   G_{t+1} = G_t + eta Sigma A^T r_t,   r_{t+1} = r_t - eta A Sigma A^T r_t

    (summing the geometric series eta sum_{t<tau} (I - eta M)^t = M^+ (I - (I - eta M)^tau) on
    the range of M = A Sigma A^T; components of r_0 outside that range are never fitted, and
    Sigma A^T maps them to zero).  Cost: max(iterations) products with A Sigma A^T.

    Parameters
    ----------
    u : array_like
        Filter taps of the generator.
    shape : tuple of int
        Image grid ``(n,)`` or ``(h, w)``, equal to ``A.input_shape``.
    A : minidip.operators.Operator
    y : array of ``A.output_shape``
        The measurements.
    iterations : sequence of int
        Iteration numbers tau >= 0, any order.
    step_size : float, optional
        eta; default 1 / lambda_max(A Sigma A^T) (:func:`normal_lambda_max`).  An explicit value
        must lie in (0, 2 / lambda_max(A Sigma A^T)).
    g0 : array of ``shape``, optional
        G(C_0); default zeros (the paired initialisation).

    Returns
    -------
    array (len(iterations), *shape), float64: G_tau in image space.
    """
    shape, lam = _problem(u, shape, A)
    y = _check.signal(y, "y", A.output_shape)
    g0 = np.zeros(shape) if g0 is None else _check.signal(g0, "g0", shape)
    taus = _check.iterations(iterations)
    eta = _step_size(lam, A, step_size)
    out = np.empty((taus.size,) + shape)
    order = np.argsort(taus, kind="stable")
    g, r = g0.copy(), y - A._forward(g0)
    t = 0
    for i in order:
        while t < taus[i]:
            q, Mq = _normal_apply(lam, A, r)
            g += eta * q
            r -= eta * Mq
            t += 1
        out[i] = g
    return out


def _blur_transfer(A):
    """The transfer function of A if A is a Blur or a composition of Blurs only, else None."""
    factors = A.factors if isinstance(A, _operators.Compose) else (A,)
    if not all(isinstance(f, _operators.Blur) for f in factors):
        return None
    return math.prod(f.transfer for f in factors)


def interpolant(u, shape, A, y, *, tol=1e-10, maxiter=None) -> np.ndarray:
    """The limit of gradient descent from G_0 = 0: x_inf = Sigma A^T (A Sigma A^T)^+ y (E23).

    The minimum Sigma^{-1}-norm least-squares solution of A x = y (for a mask: the Gaussian-
    process / kriging mean with covariance Sigma at the known pixels).

    Blur (or a composition of blurs only), exactly and diagonally in Fourier space: with
    A = F^* diag(a) F and Sigma = F^* diag(lambda) F, A Sigma A^T = F^* diag(|a|^2 lambda) F and

        xhat_f = lambda_f conj(a_f) yhat_f / (|a_f|^2 lambda_f) = yhat_f / a_f

    where |a_f|^2 lambda_f > RCOND * max (frequency f is fitted at the rate eta |a_f|^2 lambda_f),
    and xhat_f = 0 elsewhere: those frequencies are not recovered.  So the limit is the inverse
    filter on the recovered frequencies, whatever the kernel; with noise it amplifies the noise
    by 1 / |a_f|, and only early stopping (E22) regularises.

    Any other operator, matrix-free by conjugate gradients: CGLS on B = A Sigma^{1/2} (CG on the
    normal equations B^T B z = B^T y from z = 0, which lives in the same Krylov spaces as CG on
    A Sigma A^T w = y and converges at the same rate, set by the condition number of
    A Sigma A^T on its range), then x = Sigma^{1/2} z.  From z = 0 the iterates stay in the
    range of B^T and converge to z = B^+ y, hence x = Sigma^{1/2} B^+ y = x_inf, for every y.
    Plain CG on the singular A Sigma A^T would do as well only for consistent y (y in the range
    of A); with an inconsistent y (noise with m > N Gaussian measurements, a masked image whose
    unmeasured pixels are not zero) its quadratic is unbounded below and it breaks down, while
    the pseudo-inverse, and gradient descent, simply ignore the part of y outside the range.

    Parameters
    ----------
    u : array_like
        Filter taps of the generator.
    shape : tuple of int
        Image grid, equal to ``A.input_shape``.
    A : minidip.operators.Operator
    y : array of ``A.output_shape``
    tol : float
        CG stops when the normal-equation residual ||B^T (y - B z)|| is at most ``tol`` times
        ||B^T y||.  The relative error of x is then at most about tol times the condition
        number of A Sigma A^T on its range.
    maxiter : int, optional
        At most this many CG iterations; default 10 times the number of measurements (in exact
        arithmetic CG ends after at most that many).  A RuntimeWarning if reached.

    Returns
    -------
    x_inf : array of ``shape``, float64.
    """
    shape, lam = _problem(u, shape, A)
    y = _check.signal(y, "y", A.output_shape)
    tol = _check.positive(tol, "tol")
    transfer = _blur_transfer(A)
    if transfer is not None:
        rate = np.abs(transfer) ** 2 * lam
        kept = rate > RCOND * rate.max()
        xhat = np.zeros(shape, complex)
        xhat[kept] = np.fft.fftn(y)[kept] / transfer[kept]
        return np.fft.ifftn(xhat).real
    maxiter = _check.positive_int(10 * math.prod(A.output_shape) if maxiter is None else maxiter,
                                  "maxiter")
    root = np.sqrt(np.clip(lam, 0.0, None))                 # Sigma^{1/2}, circulant too
    z = np.zeros(shape)
    s = y.copy()                                            # y - B z
    g = _circulant_apply(root, A._adjoint(s))               # B^T s
    p, gamma = g.copy(), _inner(g, g)
    stop = tol * math.sqrt(gamma)
    for _ in range(maxiter):
        if math.sqrt(gamma) <= stop:
            break
        q = A._forward(_circulant_apply(root, p))
        alpha = gamma / _inner(q, q)
        z += alpha * p
        s -= alpha * q
        g = _circulant_apply(root, A._adjoint(s))
        gamma, previous = _inner(g, g), gamma
        p = g + (gamma / previous) * p
    else:
        if math.sqrt(gamma) > stop:
            warnings.warn(f"conjugate gradients for E23 reached maxiter={maxiter} with relative "
                          f"normal residual {math.sqrt(gamma) / (stop / tol):.3g} > tol={tol:g}; "
                          "pass a larger maxiter or tol", RuntimeWarning, stacklevel=2)
    return _circulant_apply(root, z)
