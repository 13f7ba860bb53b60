"""Old import path of :mod:`saltmap.features.screening`, kept for one release."""

import sys
import warnings

from saltmap.features import screening as _module

warnings.warn(
    "saltmap.screening moved to saltmap.features.screening (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
