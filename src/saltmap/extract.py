"""Old import path of :mod:`saltmap.features.extraction`, kept for one release."""

import sys
import warnings

from saltmap.features import extraction as _module

warnings.warn(
    "saltmap.extract moved to saltmap.features.extraction (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
