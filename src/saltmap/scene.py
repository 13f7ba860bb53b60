"""Old import path of :mod:`saltmap.io.scene`, kept for one release."""

import sys
import warnings

from saltmap.io import scene as _module

warnings.warn(
    "saltmap.scene moved to saltmap.io.scene (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
