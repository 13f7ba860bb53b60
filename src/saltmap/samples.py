"""Old import path of :mod:`saltmap.io.samples`, kept for one release."""

import sys
import warnings

from saltmap.io import samples as _module

warnings.warn(
    "saltmap.samples moved to saltmap.io.samples (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
