"""Old import path, kept for one release (see :mod:`saltmap._compat`)."""

from saltmap._compat import install

install(__name__)
