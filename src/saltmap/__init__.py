"""saltmap: soil salinity maps from field samples and Sentinel-2 or Landsat imagery."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saltmap")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
