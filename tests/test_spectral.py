"""Tests for minidip.spectral (E7-E14) against dense matrices, exact arithmetic and Monte-Carlo."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import minidip as md
from minidip import filters, spectral
from reference import dense_conv_matrix

F = filters


# --------------------------------------------------------------------------------------------
# Independent dense references, built from the definitions with explicit loops over the taps

def dense_sigma(u, shape):
    """Sigma of E8 from U U^T (U from the index definition of E1) and arccos, no FFT."""
    U = dense_conv_matrix(F.as_taps(u, len(shape)), shape)
    A = U @ U.T
    a0 = np.diag(A)[:, None]
    return 0.5 * A * (1 - np.arccos(np.clip(A / a0, -1, 1)) / np.pi), U


def dense_step(Sigma):
    return 1.0 / np.linalg.eigvalsh(Sigma).max()


def powers(B, taus):
    return {t: np.linalg.matrix_power(B, int(t)) for t in taus}


CASES = [
    (F.gaussian(1.5), (16,)),
    (F.gaussian(1.0), (7,)),                       # the filter wraps around the grid
    (F.random(5, seed=1), (11,)),                  # asymmetric
    (F.random(5, seed=2), (5,)),                   # asymmetric, filter as large as the grid
    (F.upsampling("nearest"), (9,)),               # even filter, centred by as_taps
    (F.triangle(3), (12,)),
    (F.gaussian(8.0, size=25), (40,)),             # smooth: a(d)/a(0) near 1
    (F.gaussian(1.0, ndim=2), (9, 10)),
    (F.random(3, seed=3, ndim=2), (5, 7)),         # asymmetric 2-D, odd sizes
    (F.random(4, seed=4, ndim=2), (6, 5)),         # even 2-D filter
    (F.upsampling("bilinear"), (8, 8)),
]


# --------------------------------------------------------------------------------------------
# E8, E9: dual kernel and its spectrum

@pytest.mark.parametrize("u,shape", CASES)
def test_eigenvalues_equal_dense_eigh(u, shape):
    Sigma, _ = dense_sigma(u, shape)
    dense = np.linalg.eigvalsh(Sigma)
    lam = spectral.eigenvalues(u, shape)
    assert lam.shape == shape and lam.dtype == np.float64
    scale = np.abs(dense).max()
    assert np.abs(np.sort(lam.ravel()) - dense).max() <= 1e-7 * scale
    assert np.abs(np.fft.fftn(spectral.kernel_row(u, shape)).imag).max() <= 1e-12 * scale


@pytest.mark.parametrize("u,shape", CASES)
def test_kernel_row_is_dense_first_column(u, shape):
    Sigma, U = dense_sigma(u, shape)
    row = spectral.kernel_row(u, shape)
    assert row.shape == shape
    assert np.abs(row.ravel() - Sigma[:, 0]).max() <= 1e-7 * np.abs(Sigma).max()
    a = spectral.autocorrelation(u, shape)
    assert np.allclose(a.ravel(), (U @ U.T)[:, 0], rtol=0, atol=1e-14)
    assert np.allclose(spectral.dense_kernel(u, shape), Sigma, rtol=0, atol=1e-7 * Sigma.max())


def test_kernel_row_is_symmetric_in_the_lag():
    u, shape = F.random(3, seed=7, ndim=2), (6, 7)
    s = spectral.kernel_row(u, shape)
    flipped = np.roll(np.flip(s, axis=(0, 1)), 1, axis=(0, 1))          # s(-d)
    assert np.array_equal(s == 0, flipped == 0)
    assert np.allclose(s, flipped, rtol=1e-14, atol=0)


def test_lags_near_one_keep_precision():
    # A filter that fills its grid with nearly equal taps: a(d)/a(0) = 1 - O(1e-12) at every lag,
    # so every eigenvalue but lambda_0 comes from the tiny angles arccos(a(d)/a(0)).  Reference:
    # e = 1 - a(d)/a(0) in exact rational arithmetic, then theta = 2 asin(sqrt(e/2)).
    n = 7
    taps = 1.0 + 1e-6 * np.random.default_rng(0).standard_normal(n)
    exact = [Fraction(float(t)) for t in taps]
    centre = n // 2
    g = [exact[(m + centre) % n] for m in range(n)]                     # grid[m] = u[m]
    a = [sum(g[m] * g[(m + d) % n] for m in range(n)) for d in range(n)]
    s = []
    for d in range(n):
        e = float(1 - a[d] / a[0])
        theta = 2 * math.asin(math.sqrt(e / 2))
        s.append(0.5 * float(a[d]) * (1 - theta / math.pi))
    ref = np.fft.fft(np.array(s)).real
    lam = spectral.eigenvalues(taps, (n,))
    assert abs(lam[0] - ref[0]) <= 1e-14 * ref[0]
    # The small eigenvalues are ~1e-7 of lambda_0; a naive arccos(a/a0) gets them ~1e-3 wrong.
    small = np.abs(ref[1:]).max()
    assert small < 1e-5 * ref[0]
    assert np.abs(lam[1:] - ref[1:]).max() <= 1e-6 * small


def test_sigma_equals_monte_carlo_expectation():
    # E8: Sigma = E[J J^T] with J = [v_j D_j U]; J J^T = (U U^T) * (M^T diag(v^2) M) with the
    # masks M[j, i] = 1[(U c_j)_i > 0].  k = 65536, n = 32, v_j^2 = 1/k.
    n, k = 32, 65536
    u = F.gaussian(2.0)
    Sigma, U = dense_sigma(u, (n,))
    C = np.random.default_rng(11).standard_normal((k, n))
    M = (C @ U.T > 0).astype(np.float64)
    K = (U @ U.T) * (M.T @ M) / k
    rel = np.linalg.norm(K - Sigma) / np.linalg.norm(Sigma)
    assert rel <= 0.02


# --------------------------------------------------------------------------------------------
# E7: the finite-width kernel as an operator

def dense_jacobian_kernel(gen, C):
    U = dense_conv_matrix(gen.taps, gen.shape)
    N = gen.size
    J = np.zeros((N, gen.channels * N))
    for j in range(gen.channels):
        h = U @ C[j].ravel()
        J[:, j * N:(j + 1) * N] = gen.v[j] * (h > 0)[:, None] * U
    return J @ J.T


@pytest.mark.parametrize("u,shape", [(F.gaussian(1.0), (12,)), (F.random(5, seed=5), (6,)),
                                     (F.random(3, seed=6, ndim=2), (5, 6))])
def test_empirical_kernel_operator_dense_and_concentration(u, shape):
    gen = md.Generator(u, shape, 8, seed=3, dtype=np.float64, backend="numpy")
    C = gen.init_weights()
    K = dense_jacobian_kernel(gen, C)
    r = np.random.default_rng(1).standard_normal(shape)
    assert np.allclose(spectral.apply_empirical_kernel(gen, C, r).ravel(), K @ r.ravel(),
                       rtol=0, atol=1e-12 * np.abs(K).max() * np.abs(r).sum())
    assert np.allclose(spectral.dense_empirical_kernel(gen, C), K, rtol=0, atol=1e-13)
    Sigma, _ = dense_sigma(u, shape)
    expected = np.linalg.norm(K - Sigma) / np.linalg.norm(Sigma)
    assert spectral.kernel_concentration(gen, C) == pytest.approx(expected, rel=1e-9)


def test_finite_width_residuals_iterate_the_dense_kernel():
    gen = md.Generator(F.gaussian(1.0), (10,), 6, seed=2, dtype=np.float64, backend="numpy")
    C = gen.init_weights()
    K = dense_jacobian_kernel(gen, C)
    eta = 0.7 * spectral.default_step_size(gen.taps, gen.shape)
    r0 = np.random.default_rng(3).standard_normal(10)
    got = spectral.predict_residuals_finite_width(gen, C, r0, [4, 0, 9], step_size=eta)
    B = np.eye(10) - eta * K
    for row, t in zip(got, [4, 0, 9]):
        assert np.allclose(row, np.linalg.matrix_power(B, t) @ r0, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------------------------
# E10: linearized dynamics

@pytest.mark.parametrize("u,shape", [(F.gaussian(1.5), (16,)), (F.random(5, seed=8), (9,)),
                                     (F.random(3, seed=9, ndim=2), (5, 6))])
@pytest.mark.parametrize("fraction", [None, 1.8])
def test_predicted_residuals_match_dense_iteration(u, shape, fraction):
    Sigma, _ = dense_sigma(u, shape)
    eta = dense_step(Sigma) * (1.0 if fraction is None else fraction)
    N = Sigma.shape[0]
    rng = np.random.default_rng(4)
    r0 = rng.standard_normal(shape)
    taus = [17, 0, 5, 40, 1]
    step = None if fraction is None else eta
    got = spectral.predict_residuals(u, shape, r0, taus, step_size=step)
    assert got.shape == (len(taus),) + shape
    B = np.eye(N) - eta * Sigma
    r, want = r0.ravel(), {}
    for t in range(max(taus) + 1):
        want[t] = r
        r = B @ r
    for row, t in zip(got, taus):
        assert np.allclose(row.ravel(), want[t], rtol=0, atol=1e-9 * np.linalg.norm(r0))
    spectra = spectral.predict_residual_spectra(u, shape, r0, taus, step_size=step)
    assert np.allclose(np.linalg.norm(spectra.reshape(len(taus), -1), axis=1),
                       np.linalg.norm(got.reshape(len(taus), -1), axis=1), rtol=1e-12)
    y = rng.standard_normal(shape)
    g0 = rng.standard_normal(shape)
    outputs = spectral.predict_outputs(u, shape, y, g0, taus, step_size=step)
    for row, t in zip(outputs, taus):
        expected = y.ravel() + np.linalg.matrix_power(B, t) @ (g0 - y).ravel()
        assert np.allclose(row.ravel(), expected, rtol=0, atol=1e-9 * np.linalg.norm(y - g0))


def test_default_step_size_is_inverse_lambda_max():
    Sigma, _ = dense_sigma(F.gaussian(1.5), (16,))
    assert spectral.default_step_size(F.gaussian(1.5), (16,)) == pytest.approx(dense_step(Sigma),
                                                                                rel=1e-12)


# --------------------------------------------------------------------------------------------
# E12: predicted risk and tau*

def test_predicted_risk_equals_monte_carlo_and_tau_star_is_argmin():
    n, sigma, draws = 32, 0.5, 4000
    u = F.gaussian(2.0)
    Sigma, _ = dense_sigma(u, (n,))
    eta = dense_step(Sigma)
    x = md.data.bandlimited((n,), p=4, seed=2)
    taus = [0, 2, 10, 50, 200]
    B = np.eye(n) - eta * Sigma
    Z = sigma * np.random.default_rng(5).standard_normal((draws, n))
    risk = spectral.predicted_risk(u, (n,), taus, x=x, noise_std=sigma)
    for t, r in zip(taus, risk):
        P = np.linalg.matrix_power(B, t)
        err = -(P @ x) + Z @ (np.eye(n) - P).T                          # G_tau - x, G_0 = 0
        sq = np.sum(err**2, axis=1)
        se = sq.std(ddof=1) / math.sqrt(draws)
        assert abs(sq.mean() - r) <= 4 * se + 1e-9 * r
    # Exact expectation from the dense matrices: ||B^t x||^2 + sigma^2 ||I - B^t||_F^2.
    max_steps = 150
    exact, P = [], np.eye(n)
    for _ in range(max_steps + 1):
        exact.append(np.sum((P @ x) ** 2) + sigma**2 * np.sum((np.eye(n) - P) ** 2))
        P = B @ P
    exact = np.array(exact)
    full = spectral.predicted_risk(u, (n,), np.arange(max_steps + 1), x=x, noise_std=sigma)
    assert np.allclose(full, exact, rtol=1e-9)
    tau = spectral.optimal_stop(u, (n,), max_steps, x=x, noise_std=sigma)
    assert tau == int(np.argmin(exact)) and 0 < tau < max_steps


def test_predicted_risk_unitary_normalization_and_estimate_from_y():
    n, sigma = 24, 0.3
    u = F.gaussian(1.5)
    x = md.data.bandlimited((n,), p=4, seed=3)
    # R(0) = ||x||^2 and, since every lambda_f > 0, R(tau) -> N sigma^2 (all noise fitted).
    r = spectral.predicted_risk(u, (n,), [0, 100000], x=x, noise_std=sigma)
    assert r[0] == pytest.approx(np.sum(x**2), rel=1e-12)
    assert r[1] == pytest.approx(n * sigma**2, rel=1e-9)
    # With y: |xhat_f|^2 is replaced by max(|yhat_f|^2 - sigma^2, 0), written out with the
    # explicit unitary DFT matrix.
    y = x + sigma * np.random.default_rng(6).standard_normal(n)
    W = np.exp(-2j * np.pi * np.outer(np.arange(n), np.arange(n)) / n) / math.sqrt(n)
    yhat = W @ y
    power = np.maximum(np.abs(yhat) ** 2 - sigma**2, 0)
    x_est = (W.conj().T @ (np.sqrt(power) * np.exp(1j * np.angle(yhat)))).real
    taus = [0, 3, 30]
    assert np.allclose(spectral.predicted_risk(u, (n,), taus, y=y, noise_std=sigma),
                       spectral.predicted_risk(u, (n,), taus, x=x_est, noise_std=sigma), rtol=1e-10)
    assert spectral.optimal_stop(u, (n,), 200, y=y, noise_std=sigma) == int(np.argmin(
        spectral.predicted_risk(u, (n,), np.arange(201), y=y, noise_std=sigma)))


# --------------------------------------------------------------------------------------------
# E11: the bound and the measured eps

def test_denoising_bound_exact_linear_term_and_top_p_form():
    n, sigma = 32, 0.4
    u = F.gaussian(2.0)
    Sigma, _ = dense_sigma(u, (n,))
    eta = dense_step(Sigma)
    B = np.eye(n) - eta * Sigma
    rng = np.random.default_rng(7)
    z = sigma * rng.standard_normal(n)
    x = rng.standard_normal(n)
    taus = [0, 1, 7, 60]
    got = spectral.denoising_bound(u, (n,), x, z, taus)
    for t, b in zip(taus, got):
        P = np.linalg.matrix_power(B, t)
        assert b == pytest.approx(np.linalg.norm(P @ x) + np.linalg.norm((np.eye(n) - P) @ z),
                                  rel=1e-9)
        # The linear model's error obeys the bound with eps = 0 (triangle inequality).
        assert np.linalg.norm(-(P @ x) + (np.eye(n) - P) @ z) <= b * (1 + 1e-12)
    # x in the span of the p top modes: linear term (1 - eta lambda_(p))^tau ||x||.
    p = 5
    mask = spectral.top_modes(u, (n,), p)
    lam_sorted = np.sort(np.linalg.eigvalsh(Sigma))[::-1]
    assert mask.sum() == p and np.all(spectral.eigenvalues(u, (n,))[mask] >= lam_sorted[p - 1]
                                      - 1e-12)
    coef = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    spec = np.where(mask, coef, 0)
    x_top = np.fft.ifft(0.5 * (spec + np.conj(np.roll(spec[::-1], 1)))).real
    got_p = spectral.denoising_bound(u, (n,), x_top, z, taus, p=p)
    for t, b in zip(taus, got_p):
        P = np.linalg.matrix_power(B, t)
        expected = (1 - eta * lam_sorted[p - 1]) ** t * np.linalg.norm(x_top) \
            + np.linalg.norm((np.eye(n) - P) @ z)
        assert b == pytest.approx(expected, rel=1e-9)
    assert np.all(got_p >= spectral.denoising_bound(u, (n,), x_top, z, taus) * (1 - 1e-12))
    with pytest.raises(ValueError, match="span of the top p"):
        spectral.denoising_bound(u, (n,), x, z, taus, p=p)


def test_top_modes_refuses_to_split_equal_eigenvalues():
    with pytest.raises(ValueError, match="splits a group"):
        spectral.top_modes(F.gaussian(2.0), (32,), 2)                   # lambda_1 = lambda_-1


def test_measured_eps():
    assert spectral.measured_eps([1.0, 2.0, 3.0], [1.5, 1.5, 2.0], 2.0) == pytest.approx(0.5)
    assert spectral.measured_eps([1.0, 1.0], [1.5, 1.5], 2.0) == 0.0
    with pytest.raises(ValueError, match="same non-zero length"):
        spectral.measured_eps([1.0, 2.0], [1.0], 1.0)
    with pytest.raises(ValueError, match="y_norm"):
        spectral.measured_eps([1.0], [1.0], 0.0)


# --------------------------------------------------------------------------------------------
# E13: the Gaussian process at initialization

@pytest.mark.parametrize("u,shape,k", [(F.gaussian(1.5), (20,), 16),
                                       (F.random(3, seed=10, ndim=2), (5, 6), 4)])
def test_init_covariance_matches_seeds(u, shape, k):
    # Error model: the sample covariance with the known mean 0, S = mean_s G_s G_s^T, has entries
    # with standard error std_s(G_i G_l) / sqrt(seeds); every entry must lie within 4.5 of them
    # (N(N+1)/2 <= 465 entries, so a correct formula fails with probability < 0.5%).
    seeds, omega = 2000, 0.7
    outputs = np.array([_init_output(u, shape, k, omega, s) for s in range(seeds)])
    products = outputs[:, :, None] * outputs[:, None, :]
    S = products.mean(axis=0)
    se = products.std(axis=0, ddof=1) / math.sqrt(seeds)
    row = spectral.init_covariance_row(u, shape, omega)
    N = row.size
    coords = np.indices(shape).reshape(len(shape), -1)
    lag = (coords[:, :, None] - coords[:, None, :]) % np.array(shape)[:, None, None]
    Cov = row[tuple(lag)]
    assert np.max(np.abs(S - Cov) / se) <= 4.5
    # Pooled over the N pairs at each lag (stationarity), per seed: a much smaller error bar.
    axes = tuple(range(1, len(shape) + 1))
    grids = outputs.reshape((seeds,) + shape)
    for flat in range(N):
        d = np.unravel_index(flat, shape)
        pooled = np.mean(grids * np.roll(grids, d, axis=axes), axis=axes)   # per seed
        pooled_se = pooled.std(ddof=1) / math.sqrt(seeds)
        assert abs(pooled.mean() - row[d]) <= 4.5 * pooled_se
    mean_se = outputs.std(axis=0, ddof=1) / math.sqrt(seeds)
    assert np.max(np.abs(outputs.mean(axis=0)) / mean_se) <= 4.5
    # E||G(C_0)||^2 = omega^2 a(0) N (1/2 - 1/(2 pi)) (E6); the spectrum is Cov's eigenvalues.
    a0 = np.sum(F.as_taps(u, len(shape)) ** 2)
    assert N * row.flat[0] == pytest.approx(omega**2 * a0 * N * (0.5 - 0.5 / np.pi), rel=1e-12)
    power = spectral.init_power_spectrum(u, shape, omega)
    assert np.allclose(np.sort(power.ravel()), np.linalg.eigvalsh(Cov),
                       rtol=0, atol=1e-12 * row.flat[0])


def _init_output(u, shape, k, omega, seed):
    gen = md.Generator(u, shape, k, init_std=omega, seed=seed, dtype=np.float64, backend="numpy",
                       init="iid")
    return gen.forward(gen.init_weights()).ravel()


# --------------------------------------------------------------------------------------------
# E14: frequency bands

def test_band_labels_by_hand():
    # n = 8: |f| = 0, 1/8, 2/8, 3/8, 4/8 normalized by 4/8 -> rho = 0, .25, .5, .75, 1.
    assert spectral.band_labels((8,), 2).tolist() == [0, 0, 1, 1, 1, 1, 1, 0]
    # 6 x 6: max |f| = |(1/2, 1/2)|; rho(0, 1) = 0.24, rho(1, 2) = 0.53, rho(0, 3) = 0.71.
    labels = spectral.band_labels((6, 6), 3)
    assert [labels[0, 0], labels[0, 1], labels[1, 2], labels[0, 3], labels[3, 3]] == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError, match="fewer bands"):
        spectral.band_labels((8,), 6)


def test_predicted_band_measure_rises_and_orders_bands():
    u, shape = F.gaussian(1.5, ndim=2), (32, 32)
    taus = [0, 1, 2, 5, 10, 30, 100]
    H = spectral.predicted_band_measure(u, shape, taus, 4)
    assert H.shape == (len(taus), 4)
    assert np.all(H[0] == 0)
    assert np.all(np.diff(H, axis=0) > 0)
    assert np.all(np.diff(H[1:], axis=1) < 0)                           # low band fitted first


def test_band_measure_of_linear_model_equals_prediction():
    n, bands = 32, 4
    u = F.gaussian(2.0)
    Sigma, _ = dense_sigma(u, (n,))
    B = np.eye(n) - dense_step(Sigma) * Sigma
    y = np.random.default_rng(8).standard_normal(n)                    # non-zero spectrum
    taus = [0, 1, 4, 20, 80]
    outputs = np.array([y - np.linalg.matrix_power(B, t) @ y for t in taus])     # G_0 = 0
    measured = spectral.band_measure(outputs, y, bands)
    assert np.allclose(measured, spectral.predicted_band_measure(u, (n,), taus, bands),
                       rtol=0, atol=1e-9)
    assert np.allclose(spectral.band_measure(outputs[2], y, bands), measured[2])
    # 2-D through the closed form of E10.
    u2, shape = F.gaussian(1.0, ndim=2), (12, 10)
    y2 = np.random.default_rng(9).standard_normal(shape)
    out2 = spectral.predict_outputs(u2, shape, y2, np.zeros(shape), taus)
    assert np.allclose(spectral.band_measure(out2, y2, 3),
                       spectral.predicted_band_measure(u2, shape, taus, 3), rtol=0, atol=1e-9)


def test_band_measure_skips_frequencies_missing_from_y():
    y = np.cos(2 * np.pi * np.arange(16) / 16)                         # only |f| = 1/16
    H = spectral.band_measure(y[None] * 0.5, y, 2)
    assert H[0, 0] == pytest.approx(0.5) and np.isnan(H[0, 1])


# --------------------------------------------------------------------------------------------
# Lazy regime: fit follows the prediction (E10)

LAZY_N = 128
#: 300 steps at eta = 1/lambda_max: every mode with lambda >= 0.1 lambda_max (the signal's and
#: most of the noise's) is fitted to 1e-13, the slowest (lambda_min ~ 0.01 lambda_max) to ~5%.
LAZY_STEPS = 300


def lazy_deviation(k):
    u = F.gaussian(2.0)
    rng = np.random.default_rng(12)
    y = md.data.bandlimited((LAZY_N,), p=6, seed=1) + 0.5 * rng.standard_normal(LAZY_N)
    backend = None                     # numba when available; it agrees with the NumPy reference
    gen = md.Generator(u, (LAZY_N,), k, init_std=md.init_std_for(u, y, 1.0), seed=0, init="iid",
                       dtype=np.float64, backend=backend)
    C0 = gen.init_weights()
    g0 = gen.forward(C0)
    res = md.fit(gen, y, steps=LAZY_STEPS, weights=C0)
    measured = np.sqrt(2 * res.history["loss"])
    predicted = np.linalg.norm(
        spectral.predict_residuals(u, (LAZY_N,), g0 - y, res.history["iteration"]), axis=1)
    return np.max(np.abs(measured - predicted)) / np.linalg.norm(y)


@pytest.mark.slow
def test_lazy_regime_fit_follows_prediction():
    narrow, wide = lazy_deviation(512), lazy_deviation(8192)
    assert wide <= 0.05
    assert wide <= 0.5 * narrow


# --------------------------------------------------------------------------------------------
# Errors

@pytest.mark.parametrize("shape", [(), (0,), (2, 3, 4), (3.5,), (-4,), (True,)])
def test_bad_shapes(shape):
    with pytest.raises(ValueError, match="shape"):
        spectral.eigenvalues(F.delta(), shape)


def test_filter_larger_than_grid():
    with pytest.raises(ValueError, match="larger than the signal"):
        spectral.kernel_row(F.gaussian(2.0), (8,))
    with pytest.raises(ValueError, match="larger than the signal"):
        spectral.eigenvalues(F.random(4, ndim=2), (4, 8))              # even: padded to 5
    with pytest.raises(ValueError, match="axes"):
        spectral.eigenvalues(F.gaussian(1.0), (8, 8))


@pytest.mark.parametrize("sigma", [0, -1.0, np.nan, np.inf])
def test_non_positive_noise_std(sigma):
    x = np.ones(16)
    with pytest.raises(ValueError, match="noise_std"):
        spectral.predicted_risk(F.gaussian(1.0), (16,), [0, 1], x=x, noise_std=sigma)
    with pytest.raises(ValueError, match="noise_std"):
        spectral.optimal_stop(F.gaussian(1.0), (16,), 5, y=x, noise_std=sigma)


def test_sigma_is_the_former_name_of_noise_std():
    u, x = F.gaussian(1.0), np.cos(np.arange(16))
    assert np.array_equal(spectral.predicted_risk(u, (16,), [0, 3], x=x, sigma=0.3),
                          spectral.predicted_risk(u, (16,), [0, 3], x=x, noise_std=0.3))
    with pytest.raises(ValueError, match="noise_std"):
        spectral.optimal_stop(u, (16,), 5, x=x, noise_std=0.3, sigma=0.3)


def test_step_size_out_of_range():
    u, shape = F.gaussian(1.0), (16,)
    limit = 2 * spectral.default_step_size(u, shape)
    r0 = np.ones(16)
    for eta in [0.0, -0.1, limit, 1.01 * limit, np.nan]:
        with pytest.raises(ValueError, match="step_size must lie in"):
            spectral.predict_residuals(u, shape, r0, [1], step_size=eta)
    with pytest.raises(ValueError, match="step_size must lie in"):
        spectral.predicted_band_measure(u, shape, [1], 2, step_size=limit)


def test_other_bad_input():
    u, shape = F.gaussian(1.0), (16,)
    x = np.ones(16)
    with pytest.raises(ValueError, match="exactly one of x"):
        spectral.predicted_risk(u, shape, [0], noise_std=1.0)
    with pytest.raises(ValueError, match="exactly one of x"):
        spectral.predicted_risk(u, shape, [0], x=x, y=x, noise_std=1.0)
    with pytest.raises(ValueError, match="non-negative integers"):
        spectral.predict_residuals(u, shape, x, [1, -2])
    with pytest.raises(ValueError, match="non-negative integers"):
        spectral.predict_residuals(u, shape, x, [0.5])
    with pytest.raises(ValueError, match="r0 has shape"):
        spectral.predict_residuals(u, shape, np.ones(15), [1])
    with pytest.raises(ValueError, match="NaN"):
        spectral.predict_residuals(u, shape, np.full(16, np.nan), [1])
    with pytest.raises(ValueError, match="steps"):
        spectral.optimal_stop(u, shape, -1, x=x, noise_std=1.0)
    with pytest.raises(ValueError, match="init_std"):
        spectral.init_covariance_row(u, shape, 0.0)
    with pytest.raises(ValueError, match="N = 4225"):
        spectral.dense_kernel(u, (65, 65))
    gen = md.Generator(u, shape, 4, dtype=np.float64, backend="numpy")
    with pytest.raises(ValueError, match="weights have shape"):
        spectral.apply_empirical_kernel(gen, np.ones((2, 16)), x)
    with pytest.raises(ValueError, match="outputs must have shape"):
        spectral.band_measure(np.ones((2, 3, 16)), x, 2)
