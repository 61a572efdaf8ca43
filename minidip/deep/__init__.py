"""The deep generator: a deep decoder with fixed interpolating upsampling (E15, E16).

``DeepDecoder`` is the model (NumPy reference and a fast path); see :mod:`minidip.deep.model`.
"""
from .model import DeepDecoder

__all__ = ["DeepDecoder"]
