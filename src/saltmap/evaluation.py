"""Old import path of :mod:`saltmap.validation.evaluation`, kept for one release."""

import sys
import warnings

from saltmap.validation import evaluation as _module

warnings.warn(
    "saltmap.evaluation moved to saltmap.validation.evaluation (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
