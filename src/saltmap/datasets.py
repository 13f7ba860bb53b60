"""Where the real data lives: ``SALTMAP_DATA_DIR`` or ``../shared/data``.

saltmap never ships or downloads the real data sets; it reads them from a
folder. These helpers find that folder and the files in it.
"""

from __future__ import annotations

import os
from pathlib import Path

from saltmap.errors import DataDirError

ENV_VAR = "SALTMAP_DATA_DIR"
_REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = _REPO_ROOT.parent / "shared" / "data"


def _default_dir() -> Path:
    # Beside the repository for a source checkout; beside the working folder when
    # saltmap is installed elsewhere and run from the repository.
    for candidate in (DEFAULT_DATA_DIR, Path.cwd().parent / "shared" / "data"):
        if candidate.is_dir():
            return candidate
    return DEFAULT_DATA_DIR


def data_dir() -> Path:
    """Return the data folder: ``$SALTMAP_DATA_DIR`` if set, else ``../shared/data``
    beside the repository.

    Raises
    ------
    DataDirError
        If the folder does not exist; the message names both places looked in.
    """
    env = os.environ.get(ENV_VAR)
    path = Path(env).expanduser() if env else _default_dir()
    if not path.is_dir():
        raise DataDirError(
            f"no data folder: {ENV_VAR} is {env!r} and the default {DEFAULT_DATA_DIR} "
            f"{'was not looked at' if env else 'does not exist'}. Point {ENV_VAR} at the folder "
            "holding odisha-2024/, patagonia-s2/, unnao-landsat/ and xinjiang-ec-ssc/ (the "
            "project's shared real data, see its README for the public sources), or place it "
            "at the default."
        )
    return path


def dataset_file(*parts: str) -> Path:
    """Return a file inside the data folder, with a clear error if it is missing."""
    path = data_dir().joinpath(*parts)
    if not path.exists():
        raise DataDirError(f"{path} is missing from the data folder {data_dir()}")
    return path


def odisha_samples() -> Path:
    """The 113 Odisha coastal soil samples (EC in µS/cm, Landsat C2 L2 DN)."""
    return dataset_file("odisha-2024", "samples.csv")


def patagonia_scene() -> Path:
    """The folder of the Patagonia Sentinel-2 cut, one GeoTIFF per band."""
    return dataset_file("patagonia-s2")


def xinjiang_lab_sheet() -> Path:
    """The 322 Xinjiang lab samples pairing EC (mS/cm) with salt content (g/kg)."""
    return dataset_file("xinjiang-ec-ssc", "raw.xlsx")


def unnao_landsat_scene() -> Path:
    """The folder of the Unnao Landsat 8/9 cut: ``Blue.tif`` ... ``SWIR2.tif``, C2 L2 DN."""
    return dataset_file("unnao-landsat")
