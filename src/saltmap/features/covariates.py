"""Covariates beyond the spectrum: sample columns as predictors beside the indices.

Salinity follows more than reflectance: distance to the sea, elevation, land use,
groundwater. The study names these as its future work [1]_; digital soil mapping
always uses them [2]_. This module makes them predictors beside the indices:
:class:`Covariates` names them, :class:`PredictorFeatures` is the model step that
reads them, and the level rules below say how categorical values are compared.
Rasters read on a scene's grid are in :mod:`saltmap.features.covariate_rasters`,
derived layers (distance, terrain) in :mod:`saltmap.features.covariate_layers`,
and what covariates add to a model in :mod:`saltmap.validation.covariates`.

Models
    ``make_model(name, covariates=Covariates(numeric=["Dist_Sea"],
    categorical=["Land_cover"]))`` puts a :class:`PredictorFeatures` step
    (named ``"indices"``, as the plain model's first step, so every consumer
    finds its ``bands_``) before the regressor. It is a
    :class:`~sklearn.compose.ColumnTransformer` of
    :class:`~saltmap.features.indices.IndexFeatures` on the band-role columns, the numeric
    covariates passed through, and a :class:`~sklearn.preprocessing.OneHotEncoder`
    on the categorical ones. A fitted model takes a table of band roles plus the
    covariate columns. Numeric covariates are not rescaled: the trees do not need
    it and the MLP and PLSR standardise their inputs themselves.

Categorical levels never seen in training
    A level is compared as text (``3``, ``3.0`` and ``"3"`` are the same level).
    A level the model was not fitted with has no column to go to, so a value for
    it would be garbage. saltmap decides, explicitly:

    * predicting **samples** (:meth:`PredictorFeatures.transform`) with an unseen
      level raises :class:`UnseenLevelError` naming the covariate, the levels, the
      rows and the known levels;
    * **mapping** (:func:`~saltmap.features.covariate_rasters.assemble_predictors`)
      flags such pixels: they are left out of prediction (NaN in the map) and
      counted, like masked pixels;
    * **cross-validation** (:func:`saltmap.validation.covariates.covariate_gain`,
      and tuning's inner folds) leaves test rows whose level is missing from their
      training fold out of the scores of *every* model compared, and counts them;
    * ``Covariates(..., min_count=k)`` pools levels seen fewer than ``k`` times in
      training into one ``infrequent`` level; unseen levels then join that pool
      (scikit-learn's ``handle_unknown="infrequent_if_exist"``), a choice the
      user makes knowingly. Without a pool they are still refused or flagged.

Mapping hook (the contract)
    Before any output: ``rasters = CovariateRasters.for_model(model, {name: path})``
    (error if the model reads a covariate without a raster) and
    ``rasters.check(scene)`` (error if a raster is unreadable or does not cover
    the scene). ``model_covariates(model)`` is ``{}`` for a model without
    covariates, which keeps the plain path. Per block (window):
    ``blocks = rasters.read(scene, window)`` (a picklable object; it opens its
    files lazily in each worker/thread), then the pure
    :func:`~saltmap.features.covariate_rasters.assemble_predictors` returns a
    :class:`~saltmap.features.covariate_rasters.Predictors`: the table in the model's
    input columns (one row per pixel, row-major), a ``valid`` mask (every band and
    covariate defined, every level known) and the ``unseen`` mask of flagged pixels.

:func:`model_covariates` and :func:`model_columns` read a fitted model's predictor
step; they live here, beside that step, because this stage's mapping hook needs
them and may not import :mod:`saltmap.models`. :mod:`saltmap.models.inspect`
re-exports them with the other questions asked of a fitted model.

References
----------
.. [1] Soil Salt Content Inversion Using Novel Salinity Indices Based on a
   Stacking Model. Asian Conference on Remote Sensing (ACRS), 2025.
.. [2] McBratney, A. B., Mendonça Santos, M. L., Minasny, B. (2003). On digital
   soil mapping. Geoderma 117, 3–52.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from saltmap.bands import ROLES
from saltmap.errors import ConfigError, MissingColumnError, SampleDataError
from saltmap.features.indices import IndexFeatures, item_name, required_bands, resolve_items

NUMERIC = "numeric"
CATEGORICAL = "categorical"
#: Name of the pooled level of rare (and, with a pool, unseen) categorical levels.
INFREQUENT = "infrequent"


class UnseenLevelError(SampleDataError):
    """A categorical covariate has a level the model was not trained with."""


# --------------------------------------------------------------------------- spec


@dataclass(frozen=True)
class Covariates:
    """Which sample columns (or rasters) are covariates, and of which kind.

    Parameters
    ----------
    numeric : sequence of str
        Continuous or ordinal covariates (distance, elevation, a 1–5 class).
    categorical : sequence of str
        Nominal covariates (land cover, soil type), one-hot encoded.
    min_count : int, optional
        Pool categorical levels seen fewer than this many times in training into
        one ``infrequent`` level, which unseen levels then join. ``None`` keeps
        every level and refuses (or flags) unseen ones.
    """

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    min_count: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "numeric", _names(self.numeric))
        object.__setattr__(self, "categorical", _names(self.categorical))
        both = set(self.numeric) & set(self.categorical)
        if both:
            raise ConfigError(
                f"covariate(s) {', '.join(sorted(both))} are both numeric and categorical; "
                "give each once"
            )
        roles = set(self.names) & set(ROLES)
        if roles:
            raise ConfigError(
                f"{', '.join(sorted(roles))} are band roles, not covariates; the model reads "
                "the bands already"
            )
        if self.min_count is not None and int(self.min_count) < 1:
            raise ConfigError(f"min_count must be at least 1, not {self.min_count}")

    @property
    def names(self) -> tuple[str, ...]:
        """All covariates, numeric first: the order of the model's covariate columns."""
        return self.numeric + self.categorical

    @property
    def kinds(self) -> dict[str, str]:
        """``{name: "numeric" | "categorical"}``."""
        return {
            **{n: NUMERIC for n in self.numeric},
            **{n: CATEGORICAL for n in self.categorical},
        }

    def __bool__(self) -> bool:
        return bool(self.names)


def _names(values: Any) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str):
        values = [values]
    names = tuple(str(v).strip() for v in values)
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes or "" in names:
        raise ConfigError(f"covariate names must be unique and non-empty, got {list(names)}")
    return names


def level_text(values: Any) -> np.ndarray:
    """Categorical levels as text, so that a raster's ``3.0`` matches a sheet's ``"3"``.

    Missing values (None, NaN, empty text) become None.
    """
    # Each distinct value is converted once: a map block has few levels, many pixels.
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)), sort=False)
    text = _level_text_each(np.asarray(uniques, dtype=object))
    out = np.empty(len(codes), dtype=object)
    present = codes >= 0
    out[present] = text[codes[present]]
    out[~present] = None
    return out


def _level_text_each(values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        if v is None or (isinstance(v, float | np.floating) and not np.isfinite(v)):
            out[i] = None
            continue
        if isinstance(v, int | np.integer | float | np.floating) and not isinstance(v, bool):
            out[i] = str(int(v)) if float(v).is_integer() else repr(float(v))
            continue
        text = str(v).strip()
        try:
            number = float(text)
        except ValueError:
            out[i] = text or None
        else:
            out[i] = str(int(number)) if np.isfinite(number) and number.is_integer() else text
    return out


def numeric_values(values: Any, name: str, where: str = "the table") -> np.ndarray:
    """A numeric covariate as floats (NaN where missing); text that is not a number is an error."""
    series = pd.Series(np.asarray(values, dtype=object))
    blank = series.isna() | series.astype(str).str.strip().isin(["", "nan", "NaN", "None"])
    numbers = pd.to_numeric(series.where(~blank), errors="coerce")
    bad = numbers.isna() & ~blank
    if bad.any():
        shown = ", ".join(repr(v) for v in series[bad].unique()[:5])
        raise SampleDataError(
            f"numeric covariate {name!r} in {where} has value(s) that are not numbers: {shown}; "
            f"fix them, or declare {name!r} categorical"
        )
    return numbers.to_numpy(dtype=float)


# --------------------------------------------------------------------------- transformer


def _refuse_missing_levels(
    table: pd.DataFrame, categorical: Sequence[str], rows: str, fix: str
) -> None:
    # A missing level one-hot encodes as a row of zeros, which would silently read as
    # "none of the levels": refuse it instead.
    for name in categorical:
        missing = table[name].isna()
        if missing.any():
            raise SampleDataError(
                f"categorical covariate {name!r} is missing for {int(missing.sum())} {rows}"
                f"row(s) ({', '.join(map(str, table.index[missing][:5]))}); {fix}"
            )


class PredictorFeatures(TransformerMixin, BaseEstimator):
    """scikit-learn transformer from band reflectance + covariate columns to predictors.

    A :class:`~sklearn.compose.ColumnTransformer` of
    :class:`~saltmap.features.indices.IndexFeatures` (band roles -> indices), the numeric
    covariates as they are, and a one-hot encoding of the categorical ones.

    Parameters
    ----------
    indices : str or list of str, default="novel"
        Index features, see :func:`saltmap.features.indices.resolve`.
    numeric, categorical : tuple of str
        Covariate column names (see :class:`Covariates`).
    min_count : int, optional
        Pool rare categorical levels, see :class:`Covariates`.

    Attributes
    ----------
    index_items_, index_names_, bands_ : as in IndexFeatures
        (``index_items_``: catalogue names, and definitions of discovered indices).
    covariates_ : dict
        ``{name: {"kind": ..., "categories": [...]}}`` (categories for categorical
        covariates: the levels with a column of their own, plus ``infrequent``
        when rare levels are pooled).
    transformer_ : ColumnTransformer
    feature_names_out_ : ndarray of str
        The predictors, in the order the regressor sees them.
    """

    def __init__(
        self,
        indices: str | list[str] = "novel",
        numeric: tuple[str, ...] = (),
        categorical: tuple[str, ...] = (),
        min_count: int | None = None,
    ):
        self.indices = indices
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count

    @property
    def spec(self) -> Covariates:
        return Covariates(self.numeric, self.categorical, self.min_count)

    @property
    def columns_(self) -> list[str]:
        """The input columns the fitted step reads, in order: band roles, then covariates."""
        check_is_fitted(self, "transformer_")
        return [*self.bands_, *self.spec.names]

    def fit(self, X: Any, y: Any = None) -> PredictorFeatures:
        spec = self.spec
        # Resolved once into items: discovered indices become their definitions, so the
        # fitted step computes them in any process and a saved model carries them.
        items = resolve_items(self.indices)
        table = self._frame(X, [*required_bands(items), *spec.names], "training")
        self.index_items_ = items
        self.index_names_ = [item_name(item) for item in items]
        needed = required_bands(items)
        self.bands_ = tuple(r for r in ROLES if r in needed)
        prepared = self.prepare(table, "the training table")
        _refuse_missing_levels(
            prepared, spec.categorical, "training ", "fill it or drop those rows"
        )
        encoder = OneHotEncoder(
            handle_unknown="error" if spec.min_count is None else "infrequent_if_exist",
            min_frequency=spec.min_count,
            sparse_output=False,
            dtype=np.float64,
        )
        parts = [("indices", IndexFeatures(self.index_items_), list(self.bands_))]
        if spec.numeric:
            parts.append((NUMERIC, "passthrough", list(spec.numeric)))
        if spec.categorical:
            parts.append((CATEGORICAL, encoder, list(spec.categorical)))
        self.transformer_ = ColumnTransformer(parts, verbose_feature_names_out=False)
        self.transformer_.fit(prepared)
        self.covariates_ = {n: {"kind": NUMERIC} for n in spec.numeric}
        if spec.categorical:
            fitted = self.transformer_.named_transformers_[CATEGORICAL]
            for i, name in enumerate(spec.categorical):
                infrequent = (
                    fitted.infrequent_categories_[i] if spec.min_count is not None else None
                )
                kept = [
                    c for c in fitted.categories_[i] if infrequent is None or c not in infrequent
                ]
                self.covariates_[name] = {
                    "kind": CATEGORICAL,
                    "categories": [str(c) for c in kept],
                    "pooled": [] if infrequent is None else [str(c) for c in infrequent],
                }
        self.feature_names_out_ = np.asarray(self.transformer_.get_feature_names_out(), object)
        self.n_features_in_ = table.shape[1]
        self.feature_names_in_ = np.asarray(table.columns, dtype=object)
        return self

    def _frame(self, X: Any, columns: list[str], what: str) -> pd.DataFrame:
        if not isinstance(X, pd.DataFrame):
            raise SampleDataError(
                f"this model also reads covariate(s) {', '.join(self.spec.names)}, so its "
                f"{what} input must be a table with columns {', '.join(columns)}, not an array "
                f"of shape {np.shape(X)}; for a scene, give the covariate rasters "
                "(saltmap.features.covariate_rasters.CovariateRasters, assemble_predictors)"
            )
        missing = [c for c in columns if c not in X.columns]
        if missing:
            raise MissingColumnError(
                f"the {what} table lacks column(s) {', '.join(missing)} that the model reads; "
                f"it has {', '.join(map(str, X.columns[:20]))}"
            )
        return X

    def _items(self) -> list[Any]:
        """The index items: the fitted ones, else the selection resolved now (a model saved
        before ``index_items_`` existed resolves its names, discovered ones registered)."""
        items = getattr(self, "index_items_", None)
        return list(items) if items is not None else resolve_items(self.indices)

    def prepare(self, X: pd.DataFrame, where: str) -> pd.DataFrame:
        """Band roles as floats, numeric covariates as floats, categorical ones as level text.

        ``where`` names the table in errors (a numeric covariate with text).
        """
        out = pd.DataFrame(index=X.index)
        for role in required_bands(self._items()):
            out[role] = pd.to_numeric(X[role], errors="coerce").to_numpy(dtype=float)
        for name in self.numeric:
            out[name] = numeric_values(X[name].to_numpy(), name, where)
        for name in self.categorical:
            out[name] = pd.Series(level_text(X[name].to_numpy()), index=X.index, dtype=object)
        return out

    def unseen(self, X: pd.DataFrame) -> pd.DataFrame:
        """Boolean table (rows × categorical covariates): True where a level is unknown.

        A level is unknown when it has no column of its own and no pool of rare
        levels exists to take it. Missing levels are not unknown (they are missing).
        """
        check_is_fitted(self, "transformer_")
        X = self._frame(X, self.columns_, "prediction")
        out = pd.DataFrame(False, index=X.index, columns=list(self.categorical))
        for name in self.categorical:
            info = self.covariates_[name]
            if info["pooled"]:
                continue
            levels = pd.Series(level_text(X[name].to_numpy()), index=X.index)
            out[name] = levels.notna() & ~levels.isin(info["categories"])
        return out

    def seen_rows(self, X: pd.DataFrame) -> np.ndarray:
        """True for rows whose every categorical level the model knows."""
        return ~self.unseen(X).any(axis=1).to_numpy()

    def transform(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        X = self._frame(X, self.columns_, "prediction")
        unseen = self.unseen(X)
        if unseen.any(axis=None):
            raise UnseenLevelError(_unseen_message(self, X, unseen))
        prepared = self.prepare(X, "the prediction table")
        _refuse_missing_levels(prepared, self.categorical, "", "the model cannot predict them")
        return np.asarray(self.transformer_.transform(prepared), dtype=np.float64)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "transformer_")
        return self.feature_names_out_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _unseen_message(step: PredictorFeatures, X: pd.DataFrame, unseen: pd.DataFrame) -> str:
    parts = []
    for name in unseen.columns[unseen.any(axis=0)]:
        rows = unseen[name].to_numpy()
        levels = sorted(set(level_text(X[name].to_numpy()[rows])))
        known = step.covariates_[name]["categories"]
        parts.append(
            f"{name!r} has level(s) {', '.join(map(repr, levels))} in {int(rows.sum())} row(s) "
            f"({', '.join(map(str, X.index[rows][:5]))}) that the model was not trained with "
            f"(known: {', '.join(map(repr, known))})"
        )
    return (
        "; ".join(parts) + ". A level without training rows has no effect the model could "
        "know: drop those rows, recode them to a known level, or retrain with "
        "Covariates(min_count=...) to pool rare and unseen levels"
    )


def model_covariates(model: Any) -> dict[str, dict[str, Any]]:
    """``{name: {"kind", "categories"}}`` of the covariates a fitted model reads ({} if none)."""
    inner = getattr(model, "model_", model)
    steps = getattr(inner, "named_steps", None) or {}
    step = steps.get("indices")
    return dict(getattr(step, "covariates_", {}) or {})


def model_columns(model: Any) -> list[str]:
    """Input columns of a fitted saltmap model: band roles, then covariates."""
    inner = getattr(model, "model_", model)
    step = inner.named_steps["indices"]
    return list(getattr(step, "columns_", None) or step.bands_)


def predictor_table(samples: Any, covariates: Covariates | None) -> pd.DataFrame:
    """Band roles and covariate columns of samples: the input of a model with covariates.

    Raises
    ------
    MissingColumnError
        If a covariate is not a column of the samples (the message lists them).
    """
    reflectance = samples.reflectance
    if not covariates:
        return reflectance
    table = samples.table
    missing = [c for c in covariates.names if c not in table.columns]
    if missing:
        raise MissingColumnError(
            f"{samples.source}: no column {', '.join(map(repr, missing))} for the covariate(s); "
            f"columns are {', '.join(map(str, table.columns))}"
        )
    out = reflectance.copy()
    for name in covariates.numeric:
        out[name] = numeric_values(table[name].to_numpy(), name, str(samples.source))
    for name in covariates.categorical:
        out[name] = pd.Series(level_text(table[name].to_numpy()), index=table.index, dtype=object)
    return out


def check_covariates_defined(table: pd.DataFrame, covariates: Covariates, source: Any) -> None:
    """Refuse training rows where a covariate is missing; filling them would invent data."""
    from saltmap.io.samples import missing_by_sample

    bad = table[list(covariates.names)].isna()
    if bad.any(axis=None):
        n, where = missing_by_sample(bad)
        raise SampleDataError(
            f"{source}: {n} sample(s) lack covariate values ({where}); fill them or remove "
            "those samples"
        )
