"""The catalogue of salinity indices, as data, and their vectorised computation.

Each :class:`SpectralIndex` carries its name, long name, formula text, the band
roles it reads, a reference, its group (``classic``, ``novel`` or ``other``) and
a note on where it is undefined. Its computation is plain arithmetic on the
band arrays, so it works alike on numpy arrays, pandas Series, xarray
DataArrays and dask arrays; no string is ever evaluated.

Domain rule
-----------
Where an index is undefined — a zero denominator, the square root of a
negative number, or an undefined input — its value is NaN, never ±inf, and no
RuntimeWarning is raised: denominators of zero and negative radicands are
turned into NaN *before* the operation.

The classic indices are written exactly as Table 2 of the study writes them,
even where the study departs from the source it cites; the source's own form
is kept beside it under a distinct name.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025. Table 2.
.. [2] Khan, N. M., Rastoskuev, V. V., Shalina, E. V., Sato, Y. (2001). Mapping
   salt-affected soils using remote sensing indicators: a simple approach with
   the use of GIS IDRISI. 22nd Asian Conference on Remote Sensing.
.. [3] Douaoui, A. E. K., Nicolas, H., Walter, C. (2006). Detecting salinity
   hazards within a semiarid context by means of combining soil and remote-sensing
   data. Geoderma 134, 217–230.
.. [4] Abbas, A., Khan, S., Hussain, N., Hanjra, M. A., Akbar, S. (2013).
   Characterizing soil salinity in irrigated agriculture using a remote sensing
   approach. Physics and Chemistry of the Earth 55–57, 43–52.
.. [5] Bannari, A., Guedon, A. M., El-Harti, A., Cherkaoui, F. Z., El-Ghmari, A.
   (2008). Characterization of slightly and moderately saline and sodic soils in
   irrigated agricultural land using simulated data of advanced land imaging
   (EO-1) sensor. Communications in Soil Science and Plant Analysis 39, 2795–2811.
.. [6] Scudiero, E., Skaggs, T. H., Corwin, D. L. (2014). Regional scale soil
   salinity evaluation using Landsat 7, western San Joaquin Valley, California,
   USA. Geoderma Regional 2–3, 82–90.
.. [7] Rouse, J. W., Haas, R. H., Schell, J. A., Deering, D. W. (1974).
   Monitoring vegetation systems in the Great Plains with ERTS. NASA SP-351.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from saltmap.bands import ROLES, check_roles
from saltmap.errors import UnknownIndexError

Bands = Mapping[str, Any]
GROUPS = ("classic", "novel", "other")


def undefined_to_nan(values: Any, defined: Any) -> Any:
    """Return ``values`` with NaN wherever ``defined`` is False, keeping the array type.

    pandas and xarray objects keep their labels through their own ``where``;
    numpy and dask arrays go through :func:`numpy.where`, which dask implements.
    """
    if hasattr(values, "where") and not isinstance(values, np.ndarray):
        return values.where(defined)
    return np.where(defined, values, np.nan)


def safe_divide(numerator: Any, denominator: Any) -> Any:
    """``numerator / denominator`` with NaN, not ±inf, where the denominator is 0."""
    return numerator / undefined_to_nan(denominator, denominator != 0)


def safe_sqrt(radicand: Any) -> Any:
    """Square root with NaN, not a warning, where the radicand is negative."""
    return np.sqrt(undefined_to_nan(radicand, radicand >= 0))


@dataclass(frozen=True)
class SpectralIndex:
    """One spectral index: its description as data and its computation.

    Parameters
    ----------
    name : str
        Short name, as in the study (``"SAI"``).
    long_name : str
        Descriptive name.
    formula : str
        The formula in band roles, for people to read; never evaluated.
    bands : tuple of str
        Band roles the formula reads.
    reference : str
        Where the formula comes from.
    group : {"classic", "novel", "other"}
        The study's 17 classic indices, its 4 novel ones, or others.
    undefined : str
        Where the index is undefined (and saltmap returns NaN).
    compute : callable
        ``compute(bands) -> array``, ``bands`` a mapping from role to array.
    definition : mapping or None
        Plain data the index can be rebuilt from in another process or session
        (a discovered index's template, bands, transform and weight), else None.
    """

    name: str
    long_name: str
    formula: str
    bands: tuple[str, ...]
    reference: str
    group: str
    undefined: str
    compute: Callable[[Bands], Any] = field(repr=False, compare=False)
    definition: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def __call__(self, bands: Bands) -> Any:
        check_roles(self.bands, bands.keys(), f"index {self.name}")
        return self.compute(bands)


def _ndvi(b: Bands) -> Any:
    return safe_divide(b["N"] - b["R"], b["N"] + b["R"])


STUDY = "ACRS 2025 study, Table 2"
_CATALOGUE: tuple[SpectralIndex, ...] = (
    # The study's 17 classic indices, as its Table 2 writes them.
    SpectralIndex("SI", "salinity index", "√(G·R)", ("G", "R"),
                  f"Khan et al. 2001; {STUDY}", "classic", "G·R < 0",
                  lambda b: safe_sqrt(b["G"] * b["R"])),
    SpectralIndex("SI1", "salinity index 1", "√(G+R)", ("G", "R"),
                  f"Douaoui et al. 2006; {STUDY}", "classic", "G+R < 0",
                  lambda b: safe_sqrt(b["G"] + b["R"])),
    SpectralIndex("SI2", "salinity index 2", "√(N²+G²+R²)", ("G", "R", "N"),
                  f"Douaoui et al. 2006; {STUDY}", "classic", "never (NaN input only)",
                  lambda b: safe_sqrt(b["N"] ** 2 + b["G"] ** 2 + b["R"] ** 2)),
    SpectralIndex("SI3", "salinity index 3", "√(G²+R²)", ("G", "R"),
                  f"Douaoui et al. 2006; {STUDY}", "classic", "never (NaN input only)",
                  lambda b: safe_sqrt(b["G"] ** 2 + b["R"] ** 2)),
    SpectralIndex("SI4", "salinity index 4", "S1/N", ("N", "S1"),
                  STUDY, "classic", "N = 0",
                  lambda b: safe_divide(b["S1"], b["N"])),
    SpectralIndex("S1", "salinity index S1", "B/R", ("B", "R"),
                  f"Abbas et al. 2013; {STUDY}", "classic", "R = 0",
                  lambda b: safe_divide(b["B"], b["R"])),
    SpectralIndex("S2", "salinity index S2", "(B−R)/(B+R)", ("B", "R"),
                  f"Abbas et al. 2013; {STUDY}", "classic", "B+R = 0",
                  lambda b: safe_divide(b["B"] - b["R"], b["B"] + b["R"])),
    SpectralIndex("S3", "salinity index S3", "G·R/B", ("B", "G", "R"),
                  f"Abbas et al. 2013; {STUDY}", "classic", "B = 0",
                  lambda b: safe_divide(b["G"] * b["R"], b["B"])),
    SpectralIndex("S5", "salinity index S5", "B·R/G", ("B", "G", "R"),
                  f"Abbas et al. 2013; {STUDY}", "classic", "G = 0",
                  lambda b: safe_divide(b["B"] * b["R"], b["G"])),
    SpectralIndex("S6", "salinity index S6", "R·N/G", ("G", "R", "N"),
                  f"Abbas et al. 2013; {STUDY}", "classic", "G = 0",
                  lambda b: safe_divide(b["R"] * b["N"], b["G"])),
    SpectralIndex("S8", "salinity index S8", "(G+R)/2", ("G", "R"),
                  STUDY, "classic", "never (NaN input only)",
                  lambda b: (b["G"] + b["R"]) / 2),
    SpectralIndex("S9", "salinity index S9", "(G+R+N)/2", ("G", "R", "N"),
                  STUDY, "classic", "never (NaN input only)",
                  lambda b: (b["G"] + b["R"] + b["N"]) / 2),
    SpectralIndex("SSSI-1", "soil salinity and sodicity index 1 (study's form)", "R−N",
                  ("R", "N"), f"{STUDY}; Bannari et al. 2008 define it on SWIR (SSSI-1-SWIR)",
                  "classic", "never (NaN input only)",
                  lambda b: b["R"] - b["N"]),
    SpectralIndex("SSSI-2", "soil salinity and sodicity index 2 (study's form)", "(R·N−N²)/R",
                  ("R", "N"), f"{STUDY}; Bannari et al. 2008 define it on SWIR (SSSI-2-SWIR)",
                  "classic", "R = 0",
                  lambda b: safe_divide(b["R"] * b["N"] - b["N"] ** 2, b["R"])),
    SpectralIndex("NDSI", "normalised difference salinity index (study's form)", "(N−S1)/(N+S1)",
                  ("N", "S1"), STUDY, "classic", "N+S1 = 0",
                  lambda b: safe_divide(b["N"] - b["S1"], b["N"] + b["S1"])),
    SpectralIndex("CRSI", "canopy response salinity index", "√((N·R−G·B)/(N·R+G·B))",
                  ("B", "G", "R", "N"), f"Scudiero et al. 2014; {STUDY}", "classic",
                  "N·R+G·B = 0, or the ratio < 0",
                  lambda b: safe_sqrt(safe_divide(b["N"] * b["R"] - b["G"] * b["B"],
                                                  b["N"] * b["R"] + b["G"] * b["B"]))),
    SpectralIndex("SRSI", "soil-related salinity index", "√((NDVI−1)² + SI²), SI = √(G·R)",
                  ("G", "R", "N"), STUDY, "classic", "N+R = 0, or G·R < 0",
                  lambda b: safe_sqrt((_ndvi(b) - 1) ** 2 + safe_sqrt(b["G"] * b["R"]) ** 2)),
    # The study's four novel three-band indices.
    SpectralIndex("SAI", "salinity adjusted index", "(G²−N²+S1²)/(G·N·S1)", ("G", "N", "S1"),
                  STUDY, "novel", "G·N·S1 = 0",
                  lambda b: safe_divide(b["G"] ** 2 - b["N"] ** 2 + b["S1"] ** 2,
                                        b["G"] * b["N"] * b["S1"])),
    SpectralIndex("TRSI", "three-band ratio salinity index", "(S1−N+B)/(S1+N−B)", ("B", "N", "S1"),
                  STUDY, "novel", "S1+N−B = 0",
                  lambda b: safe_divide(b["S1"] - b["N"] + b["B"], b["S1"] + b["N"] - b["B"])),
    SpectralIndex("SBCI", "SWIR brightness contrast index", "S1/√(R²+G²)", ("G", "R", "S1"),
                  STUDY, "novel", "R = G = 0",
                  lambda b: safe_divide(b["S1"], safe_sqrt(b["R"] ** 2 + b["G"] ** 2))),
    SpectralIndex("GOSI", "green-offset salinity index", "R − 0.5·N − 0.5·S1", ("R", "N", "S1"),
                  STUDY, "novel", "never (NaN input only)",
                  lambda b: b["R"] - 0.5 * b["N"] - 0.5 * b["S1"]),
    # Others: NDVI and the source forms the study departs from.
    SpectralIndex("NDVI", "normalised difference vegetation index", "(N−R)/(N+R)", ("R", "N"),
                  "Rouse et al. 1974", "other", "N+R = 0", _ndvi),
    SpectralIndex("SSSI-1-SWIR", "soil salinity and sodicity index 1 (source form)", "S1−S2",
                  ("S1", "S2"), "Bannari et al. 2008", "other", "never (NaN input only)",
                  lambda b: b["S1"] - b["S2"]),
    SpectralIndex("SSSI-2-SWIR", "soil salinity and sodicity index 2 (source form)",
                  "(S1·S2−S2²)/S1", ("S1", "S2"), "Bannari et al. 2008", "other", "S1 = 0",
                  lambda b: safe_divide(b["S1"] * b["S2"] - b["S2"] ** 2, b["S1"])),
)  # fmt: skip

CATALOGUE: dict[str, SpectralIndex] = {ix.name: ix for ix in _CATALOGUE}
CLASSIC: tuple[str, ...] = tuple(n for n, ix in CATALOGUE.items() if ix.group == "classic")
NOVEL: tuple[str, ...] = tuple(n for n, ix in CATALOGUE.items() if ix.group == "novel")
STUDY_SETS: dict[str, tuple[str, ...]] = {
    "classic": CLASSIC,
    "SI": CLASSIC,
    "novel": NOVEL,
    "N-SI": NOVEL,
    "study": CLASSIC + NOVEL,
    "all": tuple(CATALOGUE),
}

# An index as a model or a selection carries it: a name (of the catalogue or a registered
# index), the index itself, or the plain-data definition of a discovered index
# (``{"name": "D1", "template": "ratio", "bands": ["G", "N"], ...}``). Definitions travel
# to worker processes and into model files, where a registry of this session does not.
IndexItem = str | SpectralIndex | Mapping[str, Any]

# Indices that users register by name in this session (:func:`register`). Nothing that
# runs in another process depends on it: a registered index with a definition is
# carried as that definition (:func:`resolve_items`).
_EXTRA: dict[str, SpectralIndex] = {}

# Index sets whose members are only known at run time, by prefix: ``"discovered:5"``
# is expanded by ``SET_RESOLVERS["discovered"]("discovered:5")`` into index items.
# Later stages register here, so this module never imports them at import time.
SET_RESOLVERS: dict[str, Callable[[str], list[IndexItem]]] = {}

# Builders of an index from its plain-data definition, by the prefix of its kind.
DEFINITION_READERS: dict[str, Callable[[Mapping[str, Any]], SpectralIndex]] = {}

# Run-time sets whose resolver lives in a later stage, by prefix, with the module that
# registers it. :func:`resolve` imports that module on first use, so
# ``screen(samples, "discovered:PATH:3")`` works in a fresh session; importing it here
# at the top would be an import cycle (the module imports this one).
LAZY_SET_MODULES: dict[str, str] = {"discovered": "saltmap.features.discovered"}


def register(index: SpectralIndex) -> None:
    """Add an index (for example a discovered one) so it can be chosen by name in this session.

    Passing the index itself (or its definition) where indices are chosen needs no
    registration and also works in worker processes.
    """
    if index.name in CATALOGUE:
        raise ValueError(f"{index.name!r} is a catalogue index; give the new index another name")
    _EXTRA[index.name] = index


def get_index(name: str) -> SpectralIndex:
    """Return the index called ``name`` (catalogue first, then registered ones)."""
    found = CATALOGUE.get(name) or _EXTRA.get(name)
    if found is None:
        raise UnknownIndexError(
            f"unknown index {name!r}; known indices: {', '.join([*CATALOGUE, *_EXTRA])} "
            f"(or a set: {', '.join(STUDY_SETS)}). Run `saltmap indices` to list them."
        )
    return found


def _lazy_stage(prefix: str) -> None:
    """Import the stage that registers the ``prefix`` resolver and reader, if not yet."""
    if prefix not in SET_RESOLVERS and prefix in LAZY_SET_MODULES:
        import importlib

        importlib.import_module(LAZY_SET_MODULES[prefix])


def _set_resolver(prefix: str) -> Callable[[str], list[IndexItem]] | None:
    """The resolver of a run-time set, importing the stage that registers it if need be."""
    _lazy_stage(prefix)
    return SET_RESOLVERS.get(prefix)


def item_name(item: IndexItem) -> str:
    """The name of an index item (a name, an index or a definition)."""
    if isinstance(item, SpectralIndex):
        return item.name
    if isinstance(item, Mapping):
        return str(item["name"])
    return item


def index_of(item: IndexItem) -> SpectralIndex:
    """The index an item stands for; a definition is rebuilt, with no registry involved."""
    if isinstance(item, SpectralIndex):
        return item
    if isinstance(item, Mapping):
        _lazy_stage("discovered")
        return DEFINITION_READERS["discovered"](item)
    return get_index(item)


def _carried(name: str) -> IndexItem:
    """A registered index as a selection carries it: its definition when it has one."""
    extra = _EXTRA.get(name) if name not in CATALOGUE else None
    return dict(extra.definition) if extra is not None and extra.definition else name


def _expand(item: str) -> list[IndexItem]:
    resolver = _set_resolver(item.partition(":")[0].lower())
    if resolver is not None:
        return resolver(item)
    expanded = STUDY_SETS.get(item) or STUDY_SETS.get(item.lower()) or (get_index(item).name,)
    return [_carried(n) for n in expanded]


def resolve_items(names: str | Iterable[IndexItem]) -> list[IndexItem]:
    """Expand a selection into index items that compute without this session's registry.

    Set names and commas are expanded as by :func:`resolve`; catalogue indices stay
    names, discovered ones (from a file, or registered with a definition) become their
    plain-data definitions, and indices or definitions given as such are kept.
    """
    items = names.split(",") if isinstance(names, str) else list(names)
    out: list[IndexItem] = []
    seen: set[str] = set()
    for item in items:
        if isinstance(item, str):
            item = item.strip()
            if not item:
                continue
            expanded = _expand(item)
        else:
            expanded = [item]
        for one in expanded:
            if item_name(one) not in seen:
                seen.add(item_name(one))
                out.append(one)
    return out


def resolve(names: str | Iterable[IndexItem]) -> list[str]:
    """Expand set names (``classic``, ``novel``, ``study``, ``all``) and commas into index names.

    Examples
    --------
    >>> resolve("novel")
    ['SAI', 'TRSI', 'SBCI', 'GOSI']
    >>> resolve("SAI,NDVI")
    ['SAI', 'NDVI']
    """
    return [item_name(item) for item in resolve_items(names)]


def required_bands(names: Iterable[IndexItem]) -> tuple[str, ...]:
    """Band roles that the given indices read, in the order of :data:`~saltmap.bands.ROLES`."""
    needed = {role for n in names for role in index_of(n).bands}
    return tuple(r for r in ROLES if r in needed)


def compute_indices(
    bands: Bands | pd.DataFrame, names: str | Iterable[IndexItem] = "study"
) -> pd.DataFrame | dict:
    """Compute several indices.

    Parameters
    ----------
    bands : mapping or DataFrame
        Reflectance by band role (``"B"``, ``"G"``, ...). A DataFrame gives a
        DataFrame back with the same index; any other mapping (of numpy, xarray
        or dask arrays) gives a dict of arrays.
    names : str or iterable of index items
        Index names or sets, see :func:`resolve`, or indices and definitions
        (see :func:`resolve_items`).
    """
    chosen = [index_of(item) for item in resolve_items(names)]
    check_roles(required_bands(chosen), bands.keys(), "the reflectance given")
    if isinstance(bands, pd.DataFrame):
        cols = {r: bands[r].astype(float) for r in bands.columns if r in ROLES}
        return pd.DataFrame({ix.name: ix.compute(cols) for ix in chosen}, index=bands.index)
    return {ix.name: ix.compute(bands) for ix in chosen}


def catalogue_table() -> pd.DataFrame:
    """The catalogue (and registered indices) as a table, one row per index."""
    rows = [
        {
            "name": ix.name,
            "group": ix.group,
            "formula": ix.formula,
            "bands": " ".join(ix.bands),
            "long_name": ix.long_name,
            "reference": ix.reference,
            "undefined_where": ix.undefined,
        }
        for ix in [*CATALOGUE.values(), *_EXTRA.values()]
    ]
    return pd.DataFrame(rows)


class IndexFeatures(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from band reflectance to salinity indices.

    Its input is reflectance with one column per band role (a DataFrame with
    columns such as ``"G"``, ``"N"``, ``"S1"``, or an array whose columns follow
    ``bands``); its output is one column per index. Putting it first in a
    pipeline makes a model whose input is reflectance, so the same fitted model
    serves samples and scene pixels.

    Parameters
    ----------
    indices : str or list of index items, default="novel"
        Index names or sets, see :func:`resolve`; indices or definitions of
        discovered indices may be given as such (see :func:`resolve_items`).
    bands : tuple of str or None, default=None
        Column order of array input; ``None`` means the roles the indices need.

    Attributes
    ----------
    index_items_ : list
        The indices as the fitted transformer carries them: catalogue names and
        definitions of discovered indices, so a worker process or a new session
        computes them without a registry.
    index_names_ : list of str
    bands_ : tuple of str
    """

    def __init__(
        self, indices: str | list[IndexItem] = "novel", bands: tuple[str, ...] | None = None
    ):
        self.indices = indices
        self.bands = bands

    def fit(self, X: Any, y: Any = None) -> IndexFeatures:
        self.index_items_ = resolve_items(self.indices)
        self.index_names_ = [item_name(item) for item in self.index_items_]
        needed = required_bands(self.index_items_)
        if isinstance(X, pd.DataFrame):
            # Columns are found by role name, so a samples table with more columns is fine.
            check_roles(needed, X.columns, "the training table")
            self.bands_ = tuple(r for r in ROLES if r in needed)
            self.n_features_in_ = X.shape[1]
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            return self
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype=np.float64)
        self.bands_ = tuple(self.bands) if self.bands is not None else needed
        check_roles(needed, self.bands_, "IndexFeatures(bands=...)")
        self._check_width(X)
        return self

    def _check_width(self, X: np.ndarray) -> None:
        if X.shape[1] != len(self.bands_):
            raise ValueError(
                f"IndexFeatures expects {len(self.bands_)} columns ({', '.join(self.bands_)}), "
                f"got an array of shape {X.shape}; pass a table with band-role columns or "
                "set bands= to the array's column order"
            )

    def _band_columns(self, X: Any) -> dict[str, np.ndarray]:
        if isinstance(X, pd.DataFrame):
            check_roles(self.bands_, X.columns, "the reflectance given")
            return {r: X[r].to_numpy(dtype=float) for r in self.bands_}
        # A model fitted on a samples table predicts scene pixels given as an array in
        # bands_ order, so the width is checked against bands_, not n_features_in_.
        X = check_array(X, ensure_all_finite="allow-nan", dtype=np.float64)
        self._check_width(X)
        return {r: X[:, i] for i, r in enumerate(self.bands_)}

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "index_names_")
        cols = self._band_columns(X)
        # Models saved before index_items_ existed carry names only.
        items = getattr(self, "index_items_", self.index_names_)
        return np.column_stack([index_of(item).compute(cols) for item in items])

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        # Undefined reflectance (nodata) gives undefined indices: NaN in, NaN out.
        tags.input_tags.allow_nan = True
        return tags

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "index_names_")
        return np.asarray(self.index_names_, dtype=object)
