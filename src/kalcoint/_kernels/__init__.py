"""kalcoint's compiled kernels (numba), in one place.

Every ``@njit`` function of the package lives in a module of this package, and the
pipeline's modules import them from here by the public names below (helpers the kernels
share among themselves stay in their modules). The kernels take and
return plain arrays and numbers (no pandas, no exceptions: a failure is a NaN or a status
code); the modules around them check the input and turn codes into errors. numba's cache
is keyed by a hash of this package's sources (:mod:`kalcoint._numba_cache`)."""

from .linalg import DEGENERATE, NEAR_TIE, OK, householder_r
from .johansen import johansen_kernel
from .adf import FIXED_LAG, adf_design, adf_gram, adf_kernel, choose_lag, lowest_criterion, r_factor
from .filtering import filter_loop, smoother_loop
from .seed import mean_e2_over_q2, seed_passes, seed_passes_arrays, seed_passes_k2
from .screen import adf_pairs, adf_series, johansen_pairs, oos_filter_pairs, tune_pairs
from .mle import loglik_grad, loglik_grad_into, minimise_mle, objective_grad, objective_grad_many, work_columns
from .em import em_loop, em_map, em_squarem
from .nonnegative import NNLS_MAXITER, NNLS_NONFINITE, NNLS_OK, nnls
from .als import (
    PROFILE_BROKE,
    als_equations,
    als_filter_equations,
    als_first_filter_k3,
    als_normal_equations,
    als_profile,
    als_square_root,
)

__all__ = [
    "DEGENERATE",
    "FIXED_LAG",
    "NEAR_TIE",
    "NNLS_MAXITER",
    "NNLS_NONFINITE",
    "NNLS_OK",
    "OK",
    "PROFILE_BROKE",
    "adf_design",
    "adf_gram",
    "adf_kernel",
    "adf_pairs",
    "adf_series",
    "als_equations",
    "als_filter_equations",
    "als_first_filter_k3",
    "als_normal_equations",
    "als_profile",
    "als_square_root",
    "choose_lag",
    "em_loop",
    "em_map",
    "em_squarem",
    "filter_loop",
    "householder_r",
    "johansen_kernel",
    "johansen_pairs",
    "loglik_grad",
    "loglik_grad_into",
    "lowest_criterion",
    "minimise_mle",
    "mean_e2_over_q2",
    "nnls",
    "objective_grad",
    "objective_grad_many",
    "oos_filter_pairs",
    "r_factor",
    "seed_passes",
    "seed_passes_arrays",
    "seed_passes_k2",
    "smoother_loop",
    "tune_pairs",
    "work_columns",
]
