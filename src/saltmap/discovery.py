"""Old import path of :mod:`saltmap.features.discovery`, kept for one release."""

import sys
import warnings

from saltmap.features import discovery as _module

warnings.warn(
    "saltmap.discovery moved to saltmap.features.discovery (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
