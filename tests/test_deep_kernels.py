"""The deep kernels (E17-E19) against an independent dense reference, Monte-Carlo estimates of
the network, the two-layer kernel (E8) and each other.

Monte-Carlo thresholds: every comparison takes the largest |z| over M entries and passes below
the Bonferroni bound z_M = Phi^-1(1 - ALPHA / (2M)) (Student's t with S - 1 degrees of freedom
where the standard error is itself estimated from S draws): under the theory each check fails
with probability <= ALPHA.  The finite widths add a bias of order 1/k to E[K_L] and E[J J^T] for
L >= 2 (none for L = 1); at the widths used it is below a fifth of the standard error (measured
for the NNGP at k = 16 and 64 with 20000 draws: within 0.5% on the diagonal, consistent with
zero, against a standard error of 3% here).
"""
import math

import numpy as np
import pytest
from scipy import stats

import minidip as md
from minidip.deep import kernels, tangent
from deep_kernel_reference import kernels as reference_kernels, sample_outputs, spatial_matrices

ALPHA = 1e-3

# (shape, layers, upsample, last_filter, input_channels): 1-D and 2-D, L = 1..4, every kind of
# upsampling, random and even taps, a signed last filter, non-square grids.
CONFIGS = [
    ((16,), 1, None, [0.2, -1.0, 0.5], 4),
    ((16,), 2, None, None, 3),
    ((16,), 3, [0.3, -1.2, 2.0, 0.7], None, 5),
    ((32,), 4, "cubic", [0.5, 1.0, 0.5], 4),
    ((8, 8), 2, "nearest", None, 4),
    ((8, 12), 3, None, [0.2, -1.0, 0.5], 3),
    ((6, 10), 1, None, [1.0, 0.4], 6),
    ((16, 8), 3, [1.0, 1.0], None, 2),
]
IDS = ["1d-L1-last", "1d-L2", "1d-L3-random", "1d-L4-cubic", "2d-L2-nearest", "2d-L3-last",
       "2d-L1-even-last", "2d-L3-even"]


def _model(shape, layers, upsample, last, k0, channels=4, **options):
    return md.DeepDecoder(shape, channels=channels, layers=layers, upsample=upsample, norm=False,
                          input_channels=k0, last_filter=last, seed=1, dtype=np.float64,
                          backend="numpy", **options)


def _mats(gen):
    return spatial_matrices(gen.input_shape, gen.layers, gen.upsample, gen.last_filter)


def _gram(B0):
    B = B0.reshape(B0.shape[0], -1).astype(np.float64)
    return B.T @ B / B.shape[0]


def _rel(a, b) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def bonferroni(count, alpha=ALPHA, dof=None) -> float:
    tail = alpha / (2 * count)
    return float(stats.norm.isf(tail) if dof is None else stats.t.isf(tail, dof))


# --------------------------------------------------------------------------------------------
# E17, E18: the dense kernels

@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_dense_kernels_match_independent_reference(config):
    gen = _model(*config)
    mats = _mats(gen)
    n0 = math.prod(gen.input_shape)
    other = np.random.default_rng(5).standard_normal((7,) + gen.input_shape)
    for K0, options in [(_gram(gen.input), {}), (np.eye(n0), {"expected_input": True}),
                        (_gram(other), {"input": other})]:
        nngp, theta, theta_fixed = reference_kernels(K0, mats)
        assert _rel(kernels.nngp(gen, **options), nngp) < 1e-12
        assert _rel(kernels.ntk(gen, **options), theta) < 1e-12
        assert _rel(kernels.ntk(gen, train_output=False, **options), theta_fixed) < 1e-12


def test_standard_parametrisation_nngp_is_a_constant_multiple():
    # sigma^2 = 1/3 per layer: K_l scales by (1/3)/2 per hidden layer, the output by 1/3.
    config = CONFIGS[2]
    gen = _model(*config, parametrization="standard")
    nngp, _, _ = reference_kernels(_gram(gen.input), _mats(gen), 1 / 3, 1 / 3)
    assert _rel(kernels.nngp(gen), nngp) < 1e-12
    with pytest.raises(ValueError, match="grows with the width"):
        kernels.ntk(gen)


def test_colour_model_gives_the_kernel_of_one_channel():
    config = CONFIGS[1]
    grey, colour = _model(*config), _model(*config, out_channels=3)
    assert np.array_equal(kernels.ntk(grey), kernels.ntk(colour))


def _sample_kernel_check(gen, seeds, widths, parametrization="ntk"):
    rng = np.random.default_rng(7)
    x = sample_outputs(gen.input, _mats(gen), widths, seeds, rng, parametrization)
    K = kernels.nngp(gen)
    n = K.shape[0]
    mean = x.mean(axis=0)
    cov = np.cov(x, rowvar=False)
    se = np.sqrt((np.outer(np.diag(K), np.diag(K)) + K**2) / (seeds - 1))
    upper = np.triu_indices(n)
    z_cov = np.max(np.abs(cov - K)[upper] / se[upper])
    z_mean = np.max(np.abs(mean) / np.sqrt(np.diag(K) / seeds))
    return z_cov, z_mean, bonferroni(upper[0].size), bonferroni(n), cov, se


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_nngp_matches_monte_carlo_of_the_network(config):
    """E17 against the sample covariance of x over 2000 independent weight draws (fixed B_0).

    Standard error of a Gaussian sample covariance: sqrt((K_ii K_jj + K_ij^2) / (S - 1)); the
    width k_L = 32 adds an excess kurtosis of order 2.4/k_L, a few percent of that variance.
    """
    gen = _model(*config)
    z_cov, z_mean, bound_cov, bound_mean, cov, se = _sample_kernel_check(
        gen, 2000, [32] * gen.layers)
    assert z_cov <= bound_cov and z_mean <= bound_mean
    # and the check is sharp: E17 with the input averaged (K_0 = I instead of B_0's Gram) or
    # with sigma_w^2 = 1 instead of 2 misses by many standard errors
    wrong = kernels.nngp(gen, expected_input=True)
    assert np.max(np.abs(cov - wrong) / se) > 3 * bound_cov
    halved, _, _ = reference_kernels(_gram(gen.input), _mats(gen), 1.0)
    assert np.max(np.abs(cov - halved) / se) > 3 * bound_cov


def test_nngp_standard_parametrisation_matches_monte_carlo():
    """Uniform weights: E17 is the limit where the pre-activations are Gaussian (CLT over the
    fan-in); with k_0 = 64 input channels the non-Gaussian correction is far below the error."""
    gen = _model((16,), 2, None, None, 64, parametrization="standard")
    z_cov, z_mean, bound_cov, bound_mean, _, _ = _sample_kernel_check(gen, 2000, [32, 32],
                                                                      "standard")
    assert z_cov <= bound_cov and z_mean <= bound_mean


NTK_MC = [CONFIGS[0], CONFIGS[2], ((4, 8), 2, None, None, 3), ((16,), 4, None, None, 4)]


@pytest.mark.parametrize("config", NTK_MC, ids=["1d-L1", "1d-L3", "2d-L2", "1d-L4"])
def test_ntk_is_the_expected_empirical_ntk(config):
    """E18 against the mean of J J^T (E20, the network's own Jacobian) over 30 draws at k = 256:
    the largest |t| over the entries, with the standard error estimated from the draws."""
    gen = _model(*config, channels=256)
    rng = np.random.default_rng(3)
    shapes = gen.weight_shapes()
    draws = np.array([tangent.dense_empirical_ntk(
        gen, {name: rng.standard_normal(shape) for name, shape in shapes.items()})
        for _ in range(30)])
    theta = kernels.ntk(gen)
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    upper = np.triu_indices(theta.shape[0])
    live = se[upper] > 1e-12 * np.abs(theta).max()      # entries that are exactly 0 in both
    z = np.abs(draws.mean(axis=0) - theta)[upper][live] / se[upper][live]
    assert np.max(z) <= bonferroni(live.sum(), dof=len(draws) - 1)
    assert np.all(np.abs(draws.mean(axis=0) - theta)[upper][~live] <= 1e-12 * theta.max())


@pytest.mark.parametrize("layers", [1, 3])
def test_empirical_ntk_concentrates_like_inverse_square_root_width(layers):
    """D(k) = E||J J^T - Theta||_F^2 / ||Theta||_F^2 at k = 32, 128, 512 (16 draws each).

    L = 1: J J^T is an average of k iid channel terms with mean Theta, so D = c/k exactly.
    L = 3: D = c1/k + c2/k^2 (fluctuations and the squared 1/k bias); with the relative NTK
    variance ~ exp(5 L / k) - 1 of deep ReLU networks (Hanin and Nica 2019) the second term
    moves the slope of log D over this range by less than 0.1.  Tolerance: that, plus 3
    standard errors of the fitted slope (from the spread of the draws)."""
    widths = np.array([32, 128, 512])
    means, errors = [], []
    for k in widths:
        gen = _model((16,), layers, None, None, 4, channels=int(k))
        theta = kernels.ntk(gen)
        rng = np.random.default_rng(int(k) + layers)
        d2 = [np.linalg.norm(tangent.dense_empirical_ntk(gen, {
            name: rng.standard_normal(shape) for name, shape in gen.weight_shapes().items()})
            - theta) ** 2 / np.linalg.norm(theta) ** 2 for _ in range(16)]
        means.append(np.mean(d2))
        errors.append(np.std(d2, ddof=1) / np.sqrt(len(d2)) / np.mean(d2))   # se of log D
    x = np.log(widths) - np.log(widths).mean()
    slope = float(np.sum(x * np.log(means)) / np.sum(x**2))
    slope_se = float(np.sqrt(np.sum(x**2 * np.array(errors) ** 2)) / np.sum(x**2))
    allowance = 0.0 if layers == 1 else 0.1
    assert abs(slope + 1) <= allowance + 3 * slope_se
    assert slope_se < 0.25                               # the check has power


# --------------------------------------------------------------------------------------------
# The two-layer generator is the case L = 1, B_0 = identity, W_out fixed (E18 -> E8)

@pytest.mark.parametrize("shape, u", [((16,), md.filters.gaussian(1.5)),
                                      ((12,), [0.3, -1.0, 0.6, 0.2, 0.1]),
                                      ((6, 8), np.array([0.2, 1.0, -0.4]))])
def test_one_layer_with_identity_input_is_the_two_layer_kernel(shape, u):
    """Theta = (sigma_w^2 / k_0) Sigma = (2/N) Sigma: the two-layer weights are
    C = W_1 = sqrt(2/N) Omega_1 when B_0 = I (k_0 = N), and J J^T scales with the square."""
    n = math.prod(shape)
    u = np.asarray(u, np.float64)
    u2 = u if len(shape) == 1 else np.outer(u, u)          # the deep filter acts per axis
    gen = md.DeepDecoder(shape, channels=8, layers=1, norm=False, input_channels=n,
                         last_filter=u, dtype=np.float64, backend="numpy")
    identity = np.eye(n).reshape((n,) + shape)
    theta = kernels.ntk(gen, input=identity, train_output=False)
    sigma = md.spectral.dense_kernel(u2, shape)
    assert _rel(theta, 2 / n * sigma) < 1e-12
    # with the input averaged instead (K_0 = I, i.e. B_0 = sqrt(N) I) the factor is 2
    assert _rel(kernels.ntk(gen, expected_input=True, train_output=False), 2 * sigma) < 1e-12

    # the networks themselves: deep (L = 1, B_0 = I, W_out = v) and two-layer (C = W_1)
    k = 8
    two = md.Generator(u2, shape, k, dtype=np.float64, backend="numpy", init="iid", seed=4)
    C = two.init_weights()
    W = {"W1": C.reshape(k, n), "Wout": md.generator.output_weights(k)[None]}
    deep, _ = md.deep.model.forward(W, identity, gen.spatial, False, False)
    assert _rel(deep.reshape(shape), two.forward(C)) < 1e-13

    # and numerically: the mean of the two-layer J J^T over draws of Omega_1 (C = sqrt(2/N)
    # Omega_1) at width 2048 is Theta, within 5 standard errors per entry
    wide = [md.Generator(u2, shape, 2048, init_std=math.sqrt(2 / n), dtype=np.float64,
                         backend="numpy", init="iid", seed=s) for s in range(8)]
    draws = np.array([2 / n * md.spectral.dense_empirical_kernel(g, g.init_weights())
                      for g in wide])
    se = draws.std(axis=0, ddof=1) / np.sqrt(len(draws))
    live = se > 0
    z = np.abs(draws.mean(axis=0) - theta)[live] / se[live]
    assert np.max(z) <= bonferroni(live.sum(), dof=len(draws) - 1)


# --------------------------------------------------------------------------------------------
# E19: the structured path

STRUCTURED = CONFIGS + [((32, 32), 4, "cubic", None, 2), ((12, 20), 3, None, None, 2),
                        ((24,), 2, [0.1, 0.7, 1.0, 0.6, -0.2], [0.3, 1.0, 0.3], 2)]


@pytest.mark.parametrize("config", STRUCTURED, ids=IDS + ["2d-32x32-L4-cubic", "2d-12x20-L3",
                                                          "1d-L2-random"])
@pytest.mark.parametrize("train_output", [True, False])
def test_structured_eigenvalues_equal_dense(config, train_output):
    gen = _model(*config)
    dense = np.linalg.eigvalsh(kernels.ntk(gen, expected_input=True,
                                           train_output=train_output))[::-1]
    structured = kernels.ntk_eigenvalues(gen, train_output=train_output)
    assert structured.shape == (gen.size,)
    assert np.max(np.abs(structured - dense)) <= 1e-10 * dense[0]


@pytest.mark.parametrize("config", [CONFIGS[3], CONFIGS[5], CONFIGS[7]],
                         ids=[IDS[3], IDS[5], IDS[7]])
def test_fourier_blocks_are_the_kernel_in_the_fourier_basis(config):
    """F Theta F^H (unitary DFT, dense) vanishes off the blocks and equals them on them."""
    gen = _model(*config)
    n, shape = gen.size, gen.shape
    F = np.fft.fftn(np.eye(n).reshape((n,) + shape), axes=tuple(range(1, len(shape) + 1)),
                    norm="ortho").reshape(n, n).T                  # F[f, i]
    dense = F @ kernels.ntk(gen, expected_input=True) @ F.conj().T
    index, blocks = kernels.ntk_blocks(gen)
    P = 2 ** (gen.layers - 1)
    assert index.shape == (n // P ** len(shape), P ** len(shape))
    assert sorted(index.ravel()) == list(range(n))
    placed = np.zeros((n, n), complex)
    for idx, block in zip(index, blocks):
        placed[np.ix_(idx, idx)] = block
    assert np.max(np.abs(placed - dense)) <= 1e-12 * np.abs(dense).max()


@pytest.mark.parametrize("config", [CONFIGS[1], CONFIGS[4], CONFIGS[6]],
                         ids=[IDS[1], IDS[4], IDS[6]])
def test_phase_average_and_the_energy_it_drops(config):
    gen = _model(*config)
    theta = kernels.ntk(gen, expected_input=True)
    average = kernels.phase_average(theta, gen.shape)
    lam, dropped = kernels.ntk_phase_average(gen)
    # the average is circulant: its eigenvalues are the DFT of its row, and they are the
    # Rayleigh quotients of Theta on the Fourier modes
    cos, sin = tangent.fourier_modes(gen.shape, np.arange(gen.size))
    quotients = (np.einsum("fi,ij,fj->f", cos, theta, cos)
                 + np.einsum("fi,ij,fj->f", sin, theta, sin))
    assert np.max(np.abs(lam.ravel() - quotients)) <= 1e-12 * lam.max()
    assert np.max(np.abs(np.sort(np.linalg.eigvalsh(average)) - np.sort(lam.ravel()))) \
        <= 1e-12 * lam.max()
    expected = np.linalg.norm(theta - average) ** 2 / np.linalg.norm(theta) ** 2
    assert dropped == pytest.approx(expected, rel=1e-9, abs=1e-14)
    assert (dropped > 1e-6) == (gen.layers > 1)          # circulant without upsampling


def test_phase_average_of_a_circulant_kernel_drops_nothing():
    gen = _model((16,), 1, None, [0.2, -1.0, 0.5], 3)         # no upsampling: circulant
    lam, dropped = kernels.ntk_phase_average(gen)
    assert dropped <= 1e-14
    dense = np.linalg.eigvalsh(kernels.ntk(gen, expected_input=True))
    assert np.max(np.abs(np.sort(lam) - dense)) <= 1e-12 * dense.max()


@pytest.mark.parametrize("config", [CONFIGS[2], CONFIGS[5]], ids=[IDS[2], IDS[5]])
def test_predicted_outputs_follow_the_linear_recursion(config):
    gen = _model(*config, out_channels=3)
    theta = kernels.ntk(gen, expected_input=True)
    rng = np.random.default_rng(2)
    y, g0 = rng.standard_normal(gen.output_shape), rng.standard_normal(gen.output_shape)
    eta = 0.7 * kernels.default_step_size(gen)
    taus = [0, 1, 5, 17]
    predicted = kernels.predict_outputs(gen, y, g0, taus, eta)
    r = (g0 - y).reshape(3, -1).T
    for t in range(max(taus) + 1):
        if t in taus:
            assert _rel(predicted[taus.index(t)], y + r.T.reshape(gen.output_shape)) < 1e-11
        r = r - eta * theta @ r
    assert kernels.default_step_size(gen) == pytest.approx(
        1 / np.linalg.eigvalsh(theta).max(), rel=1e-12)


# --------------------------------------------------------------------------------------------
# Errors

def test_errors_name_the_problem():
    gen = _model(*CONFIGS[1])
    with pytest.raises(ValueError, match="norm=False"):
        kernels.ntk(md.DeepDecoder((16,), channels=4, layers=2, norm=True))
    with pytest.raises(ValueError, match="sigmoid=False"):
        kernels.nngp(md.DeepDecoder((16,), channels=4, layers=2, norm=False, sigmoid=True))
    with pytest.raises(ValueError, match="ntk_eigenvalues"):
        kernels.ntk(md.DeepDecoder((128, 64), channels=4, layers=2, norm=False))
    with pytest.raises(ValueError, match="not both"):
        kernels.ntk(gen, expected_input=True, input=gen.input)
    with pytest.raises(ValueError, match="input must have shape"):
        kernels.nngp(gen, input=np.ones((3, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        kernels.nngp(gen, input=np.full((3,) + gen.input_shape, np.nan))
    with pytest.raises(ValueError, match="DeepDecoder"):
        kernels.ntk(md.Generator(md.filters.gaussian(1.0), (16,), 4))
    with pytest.raises(ValueError, match="step_size"):
        kernels.predict_outputs(gen, np.zeros(16), np.zeros(16), [1], step_size=1e9)
    with pytest.raises(ValueError, match="shape"):
        kernels.phase_average(np.eye(5), (4,))


def test_model_kernel_eigenvalues_drive_the_spectral_stop_rule():
    """DeepDecoder.kernel_eigenvalues is the phase-averaged E19 spectrum, so the spectral rule
    (E12) runs on a deep decoder fitted by gradient descent; with normalisation it says why not."""
    x = md.data.bandlimited((32,), p=3, seed=0)
    y = x + 0.3 * np.random.default_rng(1).standard_normal(32)
    gen = md.DeepDecoder((32,), channels=64, layers=3, norm=False, dtype=np.float64,
                         backend="numpy")
    lam = gen.kernel_eigenvalues()
    assert np.array_equal(lam, kernels.ntk_phase_average(gen)[0]) and lam.shape == (32,)
    eta = 0.5 * kernels.default_step_size(gen)
    res = md.fit(gen, y, 200, step_size=eta, stop="spectral", noise_std=0.3)
    expected = md.spectral.risk_from_eigenvalues(
        lam, np.arange(201), eta,
        np.maximum(np.abs(np.fft.fft(y - gen.forward(gen.init_weights()), norm="ortho")) ** 2
                   - 0.09, 0.0), 0.3)
    assert res.info["predicted_stop"] == int(np.argmin(expected))
    with pytest.raises(ValueError, match="norm=False"):
        md.fit(md.DeepDecoder((32,), channels=4, layers=3), y, 5, step_size=0.01,
               stop="spectral", noise_std=0.3)
