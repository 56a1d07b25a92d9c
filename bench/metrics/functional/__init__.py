"""Distribution metrics as plain functions on feature arrays (or uint8 images
for SWD). Inputs may be numpy arrays or torch tensors; computation runs on the
input tensor's device unless ``device=`` is given; results are Python floats
or small dicts of floats.
"""

from ._stats import FeatureStats
from .alpha_precision import alpha_precision_beta_recall
from .authenticity import authenticity
from .data_copying import data_copying, data_copying_detail, mann_whitney_z
from .fid import FrechetReference, fid_from_features, frechet_distance
from .inception_score import inception_score
from .kid import kid, mmd2_polynomial
from .prdc import density_coverage, prdc, precision_recall
from .swd import laplacian_pyramid, sliced_wasserstein

__all__ = [
    "FeatureStats",
    "FrechetReference",
    "alpha_precision_beta_recall",
    "authenticity",
    "data_copying",
    "data_copying_detail",
    "density_coverage",
    "fid_from_features",
    "frechet_distance",
    "inception_score",
    "kid",
    "laplacian_pyramid",
    "mann_whitney_z",
    "mmd2_polynomial",
    "prdc",
    "precision_recall",
    "sliced_wasserstein",
]
