"""minidip: why untrained convolutional generators denoise, checked exactly.

The two-layer generator G(C) = ReLU(U C) v with a fixed filter u, fitted by gradient descent,
and the closed-form spectral predictions of its dynamics.  See docs/math.md for the equations.
"""
from . import (baselines, data, deep, denoise, filters, fitting, metrics, observers, operators,
               spectral, stopping, validation)
from .deep import DeepDecoder
from .fitting import FitDivergedError, FitInterrupted, FitResult, fit
from .generator import Generator, init_std_for

__all__ = ["Generator", "DeepDecoder", "fit", "FitResult", "FitDivergedError", "FitInterrupted",
           "init_std_for", "filters", "operators", "spectral", "metrics", "data", "stopping",
           "denoise", "deep", "fitting", "observers", "baselines", "validation"]
__version__ = "0.2.0.dev0"
