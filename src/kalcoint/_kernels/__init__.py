"""kalcoint's compiled kernels (numba), in one place.

Every ``@njit`` function of the package lives in a module of this package, and the
pipeline's modules import them from here by these public names. The kernels take and
return plain arrays and numbers (no pandas, no exceptions: a failure is a NaN or a status
code); the modules around them check the input and turn codes into errors. numba's cache
is keyed by a hash of this package's sources (:mod:`kalcoint._numba_cache`)."""

from .linalg import (
    DEGENERATE,
    NEAR_TIE,
    OK,
    cholesky_lower,
    cholesky_r,
    cholesky_upper,
    dot,
    householder_r,
    jacobi_eigh,
    lower_solve,
    outer_gram,
)
from .johansen import johansen_design, johansen_kernel
from .adf import FIXED_LAG, adf_design, adf_gram, adf_kernel, choose_lag, lowest_criterion, r_factor
from .filtering import LOG_2PI, filter_loop, smoother_loop
from .seed import filtered_lag_one, mean_e2_over_q2, reestimate, rel_change, seed_passes
from .mle import loglik_grad, loglik_grad_into, objective_grad, work_columns
from .em import em_loop, em_map, m_step
from .als import als_filter_equations, als_normal_equations, als_square_root

__all__ = [
    "DEGENERATE",
    "FIXED_LAG",
    "LOG_2PI",
    "NEAR_TIE",
    "OK",
    "als_filter_equations",
    "als_normal_equations",
    "als_square_root",
    "adf_design",
    "adf_gram",
    "adf_kernel",
    "cholesky_lower",
    "cholesky_r",
    "cholesky_upper",
    "choose_lag",
    "dot",
    "em_loop",
    "em_map",
    "filter_loop",
    "filtered_lag_one",
    "householder_r",
    "jacobi_eigh",
    "johansen_design",
    "johansen_kernel",
    "loglik_grad",
    "loglik_grad_into",
    "objective_grad",
    "lower_solve",
    "lowest_criterion",
    "m_step",
    "mean_e2_over_q2",
    "outer_gram",
    "r_factor",
    "reestimate",
    "rel_change",
    "seed_passes",
    "smoother_loop",
    "work_columns",
]
