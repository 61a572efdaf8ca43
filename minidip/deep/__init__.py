"""The deep generator: a deep decoder with fixed interpolating upsampling (E15, E16), its
closed-form kernels at infinite width (E17-E19) and its finite-width NTK (E20).

``DeepDecoder`` is the model (NumPy reference and a fast path); see :mod:`minidip.deep.model`.
:mod:`minidip.deep.kernels` has the NNGP and NTK (dense, any fixed input) and their structured
spectrum (any N); :mod:`minidip.deep.tangent` has J, J^T and J J^T as operators.
"""
from .kernels import (default_step_size, ntk, ntk_blocks, ntk_eigenvalues, ntk_phase_average,
                      nngp, phase_average, predict_outputs)
from .model import DeepDecoder
from .tangent import (apply_empirical_ntk, dense_empirical_ntk, fourier_rayleigh_quotients, jvp,
                      linearise, vjp)

__all__ = ["DeepDecoder", "nngp", "ntk", "ntk_eigenvalues", "ntk_blocks", "ntk_phase_average",
           "phase_average", "predict_outputs", "default_step_size", "jvp", "vjp", "linearise",
           "apply_empirical_ntk", "dense_empirical_ntk", "fourier_rayleigh_quotients"]
