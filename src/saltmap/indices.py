"""Old import path of :mod:`saltmap.features.indices`, kept for one release."""

import sys
import warnings

from saltmap.features import indices as _module

warnings.warn(
    "saltmap.indices moved to saltmap.features.indices (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
