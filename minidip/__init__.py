"""minidip: why untrained convolutional generators denoise, checked exactly.

The two-layer generator G(C) = ReLU(U C) v with a fixed filter u and the deep decoder, fitted by
gradient descent or Adam, and the closed-form spectral predictions of their dynamics.  See
docs/math.md for the equations.
"""
from . import (baselines, data, deep, denoise, filters, fitting, metrics, observers, operators,
               restore, spectral, stopping, validation)
from .deep import DeepDecoder
from .fitting import FitDivergedError, FitInterrupted, FitResult, fit
from .generator import Generator, init_std_for

__all__ = ["Generator", "DeepDecoder", "fit", "FitResult", "FitDivergedError", "FitInterrupted",
           "init_std_for", "filters", "operators", "spectral", "metrics", "data", "stopping",
           "denoise", "restore", "deep", "fitting", "observers", "baselines", "validation"]
__version__ = "0.2.0.dev0"
