"""Old import path of :mod:`saltmap.features.covariates`, kept for one release."""

import sys
import warnings

from saltmap.features import covariates as _module

warnings.warn(
    "saltmap.covariates moved to saltmap.features.covariates (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
