"""Closed-form spectral predictions for gradient descent on the two-layer generator (E7-E14, E22,
E23).

A thin facade over one module per concern: the closed-form kernels (E8, E9, E13) built on one
arc-cosine helper (:func:`arccos_maps`), the linearized dynamics with their denoising risk and
bound (E10-E12) and the one step-size policy, the finite-width kernel (E7) as an operator, the
frequency-band measures (E14), and the reconstructions through a forward operator (E22, E23).

Conventions.  Signals live on a periodic grid of ``shape`` ``(n,)`` or ``(h, w)``; N is the number
of grid points.  Arrays indexed by frequency are in ``np.fft`` order.  A periodic "row" ``s`` is
indexed by the lag ``d`` modulo ``shape`` (``s[0]`` is lag zero), so the circulant matrix it
defines is ``M[i, l] = s[(i - l) mod shape]``.  Spectra of signals use the unitary DFT
(``np.fft.fftn(x, norm="ortho")``): Parseval holds, and white noise of variance sigma^2 per grid
point has ``E|zhat_f|^2 = sigma^2`` at every frequency (N sigma^2 in total).

Every ``step_size=None`` means eta = 1 / lambda_max, the default of :func:`minidip.fit`; an
explicit step size must lie in the stable range (0, 2 / lambda_max) (:func:`resolve_step_size`).
"""
from ._bands import band_labels, band_measure, predicted_band_measure
from ._dynamics import (default_step_size, denoising_bound, measured_eps, optimal_stop,
                        predict_outputs, predict_residual_spectra, predict_residuals,
                        predicted_risk, residual_factors, resolve_step_size,
                        risk_from_eigenvalues, stable_step_limit, top_modes)
from ._finite_width import (apply_empirical_kernel, dense_empirical_kernel, kernel_concentration,
                            predict_residuals_finite_width)
from ._kernels import (MAX_DENSE_SIZE, angle_from_gap, arccos_maps, autocorrelation, dense_kernel,
                       eigenvalues, init_covariance_row, init_power_spectrum, kernel_row)
from ._reconstruction import interpolant, normal_lambda_max, predict_reconstruction

__all__ = [
    "arccos_maps", "angle_from_gap",
    "autocorrelation", "kernel_row", "eigenvalues", "dense_kernel",
    "resolve_step_size", "stable_step_limit", "default_step_size",
    "residual_factors", "predict_residual_spectra", "predict_residuals", "predict_outputs",
    "apply_empirical_kernel", "dense_empirical_kernel", "kernel_concentration",
    "predict_residuals_finite_width",
    "predicted_risk", "risk_from_eigenvalues", "optimal_stop",
    "top_modes", "denoising_bound", "measured_eps",
    "init_covariance_row", "init_power_spectrum",
    "band_labels", "band_measure", "predicted_band_measure",
    "normal_lambda_max", "predict_reconstruction", "interpolant",
    "MAX_DENSE_SIZE",
]
