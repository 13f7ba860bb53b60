"""Old import path of :mod:`saltmap.features.spectra`, kept for one release."""

import sys
import warnings

from saltmap.features import spectra as _module

warnings.warn(
    "saltmap.spectra moved to saltmap.features.spectra (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
