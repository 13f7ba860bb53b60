"""Tests of saltmap.validation.protocols on real Odisha samples (synthetic only where named)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.cross_decomposition import PLSRegression
from sklearn.metrics import mean_absolute_error, r2_score, root_mean_squared_error
from sklearn.model_selection import KFold, RepeatedKFold, cross_validate
from sklearn.pipeline import Pipeline

from saltmap.errors import SampleDataError
from saltmap.features.indices import IndexFeatures, compute_indices
from saltmap.io.samples import odisha
from saltmap.models.tuning import TunedModel
from saltmap.validation.metrics import (
    bootstrap_draws,
    bootstrap_fold_means,
    paired_difference,
    regression_metrics,
)
from saltmap.validation.protocols import (
    CorrelationSelector,
    SelectIndices,
    cross_validate_model,
    cross_validate_models,
)
from saltmap.validation.splits import (
    SpatialBlockKFold,
    default_block_size,
    materialise_splits,
    spatial_blocks,
    study_split,
    target_strata,
    to_metric_coords,
)


@pytest.fixture(scope="module")
def samples():
    return odisha()


@pytest.fixture(scope="module")
def data(samples):
    return samples.reflectance, samples.target.to_numpy()


def pls(indices="novel"):
    return Pipeline([("indices", IndexFeatures(indices)), ("model", PLSRegression(2))])


# ------------------------------------------------------------------ metrics


def test_metrics_equal_sklearn_on_real_predictions(data):
    X, y = data
    pred = pls().fit(X, y).predict(X).ravel()
    got = regression_metrics(y, pred)
    assert got["R2"] == pytest.approx(r2_score(y, pred), rel=1e-12)
    assert got["RMSE"] == pytest.approx(root_mean_squared_error(y, pred), rel=1e-12)
    assert got["MAE"] == pytest.approx(mean_absolute_error(y, pred), rel=1e-12)
    assert got["bias"] == pytest.approx(np.mean(pred - y), rel=1e-12)
    iqr = np.subtract(*np.percentile(y, [75, 25]))
    assert got["RPIQ"] == pytest.approx(iqr / root_mean_squared_error(y, pred), rel=1e-12)


def test_r2_is_on_the_evaluated_rows_and_can_be_negative(data):
    _, y = data
    cal, val = study_split(y, random_state=0)
    # Three times the calibration mean is worse than the validation rows' own mean.
    pred = np.full(len(val), y[cal].mean() * 3)
    got = regression_metrics(y[val], pred)
    assert got["R2"] < 0
    assert got["R2"] == pytest.approx(r2_score(y[val], pred))


# ------------------------------------------------------------------ study split


def test_study_split_is_seeded_disjoint_and_70_30(data):
    _, y = data
    cal, val = study_split(y, random_state=3)
    cal2, val2 = study_split(y, random_state=3)
    np.testing.assert_array_equal(cal, cal2)
    np.testing.assert_array_equal(val, val2)
    assert not set(cal) & set(val)
    assert sorted([*cal, *val]) == list(range(len(y)))
    assert len(val) == int(np.ceil(0.3 * len(y)))
    other = study_split(y, random_state=4)[1]
    assert not np.array_equal(val, other)


def test_study_split_is_stratified_on_target_quantiles(data):
    _, y = data
    _, val = study_split(y, random_state=0, n_strata=5)
    strata = target_strata(y, 5)
    per_stratum = np.bincount(strata[val], minlength=5)
    sizes = np.bincount(strata)
    # Every quintile of EC gives its share (±1 sample) to validation.
    assert np.all(np.abs(per_stratum - 0.3 * sizes) <= 1.01)


def test_study_split_refuses_too_few_samples():
    with pytest.raises(SampleDataError, match="too few"):
        study_split(np.arange(3.0))


# ------------------------------------------------------------------ spatial blocks


def test_odisha_coordinates_go_to_utm_45n(samples):
    xy, crs = to_metric_coords(samples.coords, samples.crs)
    assert crs == "EPSG:32645"
    # The samples span about 20 km in each direction.
    assert 15_000 < np.ptp(xy[:, 0]) < 30_000
    assert 15_000 < np.ptp(xy[:, 1]) < 30_000


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_spatial_block_is_in_train_and_test_of_a_fold(samples, data, seed):
    X, y = data
    cv = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, random_state=seed)
    splits = materialise_splits(cv, X, y)
    blocks = cv.blocks_
    tested = np.zeros(len(y), dtype=int)
    for train, test in splits:
        assert not set(blocks[train]) & set(blocks[test])
        tested[test] += 1
    assert np.all(tested == 1)  # a partition: every sample tested once
    sizes = [len(test) for _, test in splits]
    assert max(sizes) - min(sizes) <= np.bincount(blocks).max()


def test_spatial_folds_are_seeded(samples, data):
    X, y = data

    def folds(seed):
        cv = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, random_state=seed)
        return [test.tolist() for _, test in cv.split(X, y)]

    assert folds(7) == folds(7)
    assert folds(7) != folds(8)


def test_default_block_size_is_four_sample_spacings(samples):
    xy, _ = to_metric_coords(samples.coords, samples.crs)
    from scipy.spatial import cKDTree

    spacing = np.median(cKDTree(xy).query(xy, k=2)[0][:, 1])
    assert default_block_size(xy) == pytest.approx(4 * spacing)
    cv = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, random_state=0)
    list(cv.split(samples.reflectance))
    assert cv.block_size_ == pytest.approx(4 * spacing)
    # Blocks are squares of that side: two samples in one block are closer than its diagonal.
    blocks = spatial_blocks(xy, cv.block_size_)
    for b in np.unique(blocks):
        pts = xy[blocks == b]
        assert np.all(np.ptp(pts, axis=0) < cv.block_size_)


def test_spatial_cv_plugs_into_cross_validate_and_reads_xy_columns(samples, data):
    X, y = data
    with_xy = X.assign(x=samples.coords[:, 0], y=samples.coords[:, 1])
    cv = SpatialBlockKFold(5, crs=samples.crs, random_state=0)
    a = [t.tolist() for _, t in cv.split(with_xy)]
    b = [t.tolist() for _, t in SpatialBlockKFold(5, crs=samples.crs, random_state=0).split(
        samples.coords)]  # fmt: skip
    assert a == b
    scores = cross_validate(
        pls(), X, y, cv=SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs)
    )
    assert len(scores["test_score"]) == 5


def test_spatial_cv_refuses_blocks_too_large(samples, data):
    X, _ = data
    cv = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, block_size=50_000)
    with pytest.raises(SampleDataError, match="smaller block_size"):
        list(cv.split(X))


# ------------------------------------------------------------------ selection


def test_correlation_selector_keeps_the_top_k_by_abs_pearson(data):
    X, y = data
    features = compute_indices(X, "study")
    sel = CorrelationSelector(k=5).fit(features, y)
    expected = features.corrwith(pd.Series(y, index=features.index)).abs().nlargest(5).index
    assert set(sel.get_feature_names_out()) == set(expected)


def test_select_indices_chooses_on_its_training_rows_only(data):
    X, y = data
    rows = np.arange(50)
    model = SelectIndices(pls("classic"), k=3).fit(X.iloc[rows], y[rows])
    on_rows = compute_indices(X.iloc[rows], "classic")
    r = on_rows.corrwith(pd.Series(y[rows], index=on_rows.index)).abs()
    assert set(model.selected_) == set(r.nlargest(3).index)
    assert model.estimator_.named_steps["indices"].index_names_ == model.selected_
    assert model.predict(X).shape == (len(y),)


# ------------------------------------------------------------------ protocols and bootstrap


def test_bootstrap_with_unit_weights_gives_the_fold_means(data):
    X, y = data
    splits = materialise_splits(KFold(5, shuffle=True, random_state=0), X, y)
    res = cross_validate_model(pls(), X, y, splits)
    ones = np.ones((1, len(y)))
    boot = bootstrap_fold_means(y, res.predictions, ones)
    for m in ("R2", "RMSE", "MAE", "bias"):
        assert boot[m][0] == pytest.approx(res.folds[m].mean(), rel=1e-10)
    summary = res.summary(bootstrap_draws(len(y), 200, 0))
    assert summary["RMSE_ci_low"] < summary["RMSE_mean"] < summary["RMSE_ci_high"]
    assert summary["R2_pooled_ci_low"] < summary["R2_pooled"] < summary["R2_pooled_ci_high"]


def test_joint_and_single_cross_validation_agree(data):
    X, y = data
    splits = materialise_splits(RepeatedKFold(n_splits=5, n_repeats=2, random_state=0), X, y)
    one = cross_validate_model(pls(), X, y, splits, n_splits_per_repeat=5)
    both = cross_validate_models({"a": pls(), "b": pls("classic")}, X, y, splits,
                                 n_splits_per_repeat=5, n_jobs=1)  # fmt: skip
    cols = ["repeat", "fold", "n", "R2", "RMSE", "MAE", "bias", "RPIQ"]
    pd.testing.assert_frame_equal(one.folds[cols], both["a"].folds[cols])
    diff = paired_difference(both["a"], one, bootstrap_draws(len(y), 50, 0))
    assert diff["dRMSE"] == 0 and diff["dRMSE_ci_low"] == 0 == diff["dRMSE_ci_high"]


# ------------------------------------------------------------------ tuning never sees test rows

AUDIT: list[tuple[str, np.ndarray]] = []


def record_inner_fold(trial: int, fit_rows: np.ndarray, scored_rows: np.ndarray) -> None:
    AUDIT.append(("inner", np.concatenate([fit_rows, scored_rows])))


class AuditedTunedModel(TunedModel):
    """TunedModel that logs the rows of every outer fit before tuning on them."""

    def fit(self, X, y):
        AUDIT.append(("outer", X.index.to_numpy()))
        return super().fit(X, y)


@pytest.mark.parametrize("protocol", ["repeated", "spatial", "nested"])
def test_tuning_never_touches_evaluation_rows(samples, data, protocol):
    X, y = data
    if protocol == "spatial":
        cv = SpatialBlockKFold(5, coords=samples.coords, crs=samples.crs, random_state=0)
    else:
        cv = KFold(5, shuffle=True, random_state=0)
    splits = materialise_splits(cv, X, y)
    model = AuditedTunedModel("PLSR", indices="classic", budget="quick", n_trials=2,
                              on_fold=record_inner_fold)  # fmt: skip
    if protocol == "nested":
        model = SelectIndices(model, k=3)
    AUDIT.clear()
    cross_validate_models({"m": model}, X, y, splits, n_jobs=1)
    outer = [i for i, (kind, _) in enumerate(AUDIT) if kind == "outer"]
    assert len(outer) == len(splits)
    ids = X.index.to_numpy()
    for k, (train, test) in enumerate(splits):
        start, end = outer[k], outer[k + 1] if k + 1 < len(outer) else len(AUDIT)
        fitted_on = AUDIT[start][1]
        assert set(fitted_on) == set(ids[train])
        inner = AUDIT[start + 1 : end]
        assert inner, "the tuning objective was not observed"
        for _, rows in inner:
            assert not set(rows) & set(ids[test])
            assert set(rows) <= set(ids[train])
