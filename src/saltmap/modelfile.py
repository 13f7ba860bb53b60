"""Old import path of :mod:`saltmap.models.persistence`, kept for one release."""

import sys
import warnings

from saltmap.models import persistence as _module

warnings.warn(
    "saltmap.modelfile moved to saltmap.models.persistence (old path kept one release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _module
