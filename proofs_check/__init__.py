"""Empirical checks of the theory: one module per claim of the specification (C1-C14).

``python -m proofs_check`` runs them all; ``python -m proofs_check.<module>`` runs one;
``python -m proofs_check.regime`` maps where the theory holds over width x init scale.  Both
run in-process or, with ``--scheduler``, on Dask (``proofs_check._engine``).
"""

CLAIMS = (
    "c1_kernel",
    "c2_concentration",
    "c3_dynamics",
    "c4_structure_first",
    "c5_early_stopping",
    "c6_gaussian_process",
    "c7_spectral_bias",
    "c8_filter_is_cause",
    "c9_deep_gp",
    "c10_deep_ntk",
    "c11_deep_spectral_bias",
    "c12_beyond_the_kernel",
    "c13_inpainting",
    "c14_compressive_sensing",
)
