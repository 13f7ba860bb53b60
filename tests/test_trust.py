"""Tests of saltmap.trust.intervals: conformal intervals, dissimilarity index, AOA, block core.

Science tests use the real Odisha samples and the real Patagonia Sentinel-2 cut;
the few synthetic arrays are named so and only test mechanics.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.model_selection import RepeatedKFold

from saltmap.errors import ConfigError, SampleDataError
from saltmap.io.samples import odisha
from saltmap.models.building import make_model
from saltmap.trust.aoa import AreaOfApplicability
from saltmap.trust.calibration import coverage_summary, evaluate_coverage, interval_coverage
from saltmap.trust.conformal import conformal_quantile, fold_ids
from saltmap.trust.intervals import ConformalIntervals
from saltmap.trust.maps import AOA_NODATA, TrustSummary, fit_trust, trust_block
from saltmap.validation.splits import materialise_splits

# A small, fast forest: the tests are about the intervals, not the model's skill.
FAST = {"n_estimators": 25}


@pytest.fixture(scope="module")
def samples():
    s = odisha()
    return s.reflectance, s.target.to_numpy(float)


@pytest.fixture(scope="module")
def trust(samples):
    X, y = samples
    return fit_trust(make_model("RF", params=FAST, log_target=True), X, y, random_state=0)


@pytest.fixture(scope="module")
def scene_pixels():
    from saltmap.datasets import patagonia_scene
    from saltmap.io.scene import open_scene

    scene = open_scene(patagonia_scene(), scaling="sentinel2-l2a")
    return scene, scene.read()


def pixel_table(scene, refl):
    """The pixels of a (band, row, col) block as a table of samples, one row per pixel."""
    return pd.DataFrame(refl.reshape(len(scene.roles), -1).T, columns=list(scene.roles))


# --------------------------------------------------------------------------- intervals


def test_random_cv_coverage_of_nominal_90_is_within_85_to_95(samples):
    X, y = samples
    splits = materialise_splits(RepeatedKFold(n_splits=5, n_repeats=5, random_state=1), X, y)
    folds = evaluate_coverage(
        make_model("RF", params=FAST), X, y, splits, confidence=0.9, n_splits_per_repeat=5
    )
    summary = coverage_summary(folds)
    assert summary["n_predictions"] == 5 * len(y)
    assert 0.85 <= summary["coverage"] <= 0.95, summary
    assert summary["mean_width"] > 0


def test_base_bounds_equal_mapie_for_both_scores(samples):
    X, y = samples
    for score in ("absolute", "gamma"):
        ci = ConformalIntervals(
            make_model("PLSR", log_target=True), method="base", conformity_score=score, cv=4,
            lower_limit=None,  # MAPIE's raw bounds
        ).fit(X, y)  # fmt: skip
        pred, lower, upper = ci.predict_interval(X)
        mapie_pred, bounds = ci.mapie_.predict_interval(X, aggregate_point_predictions=None)
        np.testing.assert_allclose(pred, mapie_pred)
        np.testing.assert_allclose(lower, bounds[:, 0, 0])
        np.testing.assert_allclose(upper, bounds[:, 1, 0])
        # Bounds from a given prediction need no model and give the same numbers.
        lo2, up2 = ci.bounds_from_prediction(pred)
        np.testing.assert_array_equal(lo2, lower)
        np.testing.assert_array_equal(up2, upper)


def test_plus_method_gives_intervals_around_fold_predictions(samples):
    X, y = samples
    ci = ConformalIntervals(make_model("PLSR"), method="plus", cv=5).fit(X, y)
    pred, lower, upper = ci.predict_interval(X.iloc[:10])
    assert np.all(lower <= upper)
    assert len(ci.fold_estimators_) == 5
    with pytest.raises(ConfigError, match="fold models"):
        ci.bounds_from_prediction(pred)


def test_conformal_quantile_is_the_ceil_rank_and_refuses_too_few():
    scores = np.arange(1.0, 20.0)  # synthetic: 19 scores 1..19
    # ceil(0.9 * 20) = 18th smallest
    assert conformal_quantile(scores, 0.9) == 18.0
    with pytest.raises(SampleDataError, match="too few"):
        conformal_quantile(scores[:5], 0.9)


def test_interval_coverage_counts_bounds_as_inside():
    assert interval_coverage([1, 2, 3, 4], [1, 0, 3.5, 0], [1, 1, 4, 5]) == 0.5


def test_fold_ids_rejects_repeated_splitters(samples):
    X, y = samples
    with pytest.raises(ConfigError, match="exactly once"):
        fold_ids(RepeatedKFold(n_splits=3, n_repeats=2), X, y)


# ----------------------------------------------------------------------------- AOA


def test_training_row_has_di_zero(trust, samples):
    X, _ = samples
    features = trust.features(X[list(trust.bands)].to_numpy()[:5])
    np.testing.assert_allclose(trust.aoa.dissimilarity(features), 0.0, atol=1e-12)
    assert trust.aoa.inside(features).all()


def test_di_unchanged_when_all_predictors_are_scaled(trust, samples, scene_pixels):
    X, _ = samples
    train = trust.features(X[list(trust.bands)].to_numpy())
    scene, refl = scene_pixels
    new = trust.features(pixel_table(scene, refl)[list(trust.bands)].to_numpy()[::97])
    folds = trust.intervals.folds_
    w = trust.aoa.weights_
    base = AreaOfApplicability(weights=w).fit(train, folds=folds)
    scaled = AreaOfApplicability(weights=w).fit(train * 7.5, folds=folds)
    np.testing.assert_allclose(scaled.dissimilarity(new * 7.5), base.dissimilarity(new))
    assert scaled.threshold_ == pytest.approx(base.threshold_)


def test_pixel_far_outside_training_range_is_outside_aoa(trust, samples):
    X, _ = samples
    far = X[list(trust.bands)].to_numpy()[:1].copy()
    far[0, list(trust.bands).index("S1")] = 0.9  # very bright SWIR with dark NIR
    far[0, list(trust.bands).index("N")] = 0.02
    features = trust.features(far)
    assert np.isfinite(features).all()
    assert trust.aoa.dissimilarity(features)[0] > trust.aoa.threshold_
    assert not trust.aoa.inside(features)[0]


def test_cv_di_and_threshold_match_a_brute_force_cast_computation(trust, samples):
    X, _ = samples
    aoa = trust.aoa
    F = trust.features(X[list(trust.bands)].to_numpy())
    ok = np.isfinite(F).all(axis=1)
    folds = trust.intervals.folds_[ok]
    Z = (F[ok] - F[ok].mean(0)) / F[ok].std(0, ddof=1) * aoa.weights_
    D = cdist(Z, Z)
    n = len(Z)
    mean_dist = D[~np.eye(n, dtype=bool)].mean()
    D_other = np.where(folds[:, None] != folds[None, :], D, np.inf)
    train_di = D_other.min(axis=1) / mean_dist
    np.testing.assert_allclose(aoa.mean_distance_, mean_dist)
    np.testing.assert_allclose(aoa.train_di_, train_di)
    q1, q3 = np.percentile(train_di, [25, 75])
    assert aoa.threshold_ == pytest.approx(min(q3 + 1.5 * (q3 - q1), train_di.max()))


def test_without_folds_training_di_uses_the_nearest_other_row(trust, samples):
    X, _ = samples
    F = trust.features(X[list(trust.bands)].to_numpy())
    F = F[np.isfinite(F).all(axis=1)]
    aoa = AreaOfApplicability(cv=None).fit(F)
    Z = (F - F.mean(0)) / F.std(0, ddof=1)
    D = cdist(Z, Z)
    np.fill_diagonal(D, np.inf)
    np.testing.assert_allclose(aoa.train_di_, D.min(axis=1) / aoa.mean_distance_)


def test_aoa_rejects_all_zero_weights():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="zero"):
        AreaOfApplicability(weights=[0, -1]).fit(rng.normal(size=(20, 2)))  # synthetic


# ----------------------------------------------------------------------- block core


def test_trust_block_on_real_scene_equals_direct_call(trust, scene_pixels):
    scene, refl = scene_pixels
    roles = scene.roles
    # Blockwise, as mapping does, with a small chunk to exercise the chunk loop.
    maps = {k: np.empty(refl.shape[1:], np.float32) for k in ("lower", "upper", "di")}
    aoa = np.empty(refl.shape[1:], np.uint8)
    for w in scene.block_windows(64):
        rows = slice(w.row_off, w.row_off + w.height)
        cols = slice(w.col_off, w.col_off + w.width)
        got = trust_block(trust, refl[:, rows, cols], roles, chunk_rows=1000)
        for k in maps:
            maps[k][rows, cols] = got[k]
        aoa[rows, cols] = got["aoa"]
    # Direct: the same pixels as a table of samples.
    table = pixel_table(scene, refl)
    _, lower, upper = trust.intervals.predict_interval(table[list(trust.bands)])
    di = trust.aoa.dissimilarity(trust.features(table[list(trust.bands)].to_numpy()))
    np.testing.assert_allclose(maps["lower"].ravel(), lower, rtol=1e-5)
    np.testing.assert_allclose(maps["upper"].ravel(), upper, rtol=1e-5)
    np.testing.assert_allclose(maps["di"].ravel(), di, rtol=1e-4, equal_nan=True)
    expected_aoa = np.where(np.isnan(di), AOA_NODATA, di <= trust.aoa.threshold_)
    np.testing.assert_array_equal(aoa.ravel(), expected_aoa)


def test_trust_block_uses_the_map_prediction_and_marks_no_data(trust, scene_pixels):
    scene, refl = scene_pixels
    block = refl[:, :40, :50].copy()
    block[:, 0, :10] = np.nan  # no data
    pred = trust.intervals.predict(pixel_table(scene, block)).reshape(40, 50)
    got = trust_block(trust, block, scene.roles, prediction=pred)
    assert np.all(got["aoa"][0, :10] == AOA_NODATA)
    assert np.isnan(got["lower"][0, :10]).all() and np.isnan(got["di"][0, :10]).all()
    ok = np.isfinite(got["lower"])
    pixels = block.reshape(len(scene.roles), -1).T[ok.ravel()]
    features = trust.features(pixels[:, [scene.roles.index(b) for b in trust.bands]])
    lo, up = trust.intervals.bounds_from_prediction(pred[ok], features)
    np.testing.assert_allclose(got["lower"][ok], lo, rtol=1e-6)
    np.testing.assert_allclose(got["width"][ok], (up - lo), rtol=1e-5)


def test_base_method_gives_one_width_free_of_float32_rounding(samples, scene_pixels):
    X, y = samples
    scene, refl = scene_pixels
    base = fit_trust(make_model("RF", params=FAST), X, y, method="base", weights=None)
    block = refl[:, :40, :50]
    pred = base.intervals.predict(pixel_table(scene, block)).reshape(40, 50)
    got = trust_block(base, block, scene.roles, prediction=pred)
    # Where the lower bound is not raised to 0, one width everywhere.
    q_low, q_up = base.intervals.quantiles_
    unclipped = np.isfinite(got["lower"]) & (got["lower"] > 0)
    assert unclipped.sum() > 100
    assert np.all(got["width"][unclipped] == np.float32(q_up - q_low))


def test_trust_model_pickles_and_summary_counts(trust, scene_pixels):
    scene, refl = scene_pixels
    again = pickle.loads(pickle.dumps(trust))
    block = refl[:, :30, :30]
    a, b = trust_block(trust, block, scene.roles), trust_block(again, block, scene.roles)
    np.testing.assert_array_equal(a["di"], b["di"])
    summary = TrustSummary()
    summary.add(a)
    summary.add(b)
    assert summary.n_valid == 2 * int(np.sum(a["aoa"] != AOA_NODATA))
    assert summary.share_inside_aoa == pytest.approx(np.mean(a["aoa"][a["aoa"] != AOA_NODATA]))
    assert summary.median_width == pytest.approx(np.nanmedian(a["width"]), rel=2e-3)
    for q in (0.05, 0.95):
        expected = np.nanquantile(a["width"], q, method="inverted_cdf")
        assert summary.width_quantile(q) == pytest.approx(expected, rel=3e-3)
    by_di = summary.width_by_di()
    assert by_di["pixels"].sum() == 2 * int(np.isfinite(a["width"]).sum())
    assert (by_di["width_p05"] <= by_di["median_width"]).all()
    assert (by_di["median_width"] <= by_di["width_p95"]).all()


def test_trust_model_round_trips_through_skops_with_listed_types(trust, samples):
    import skops.io as sio

    X, _ = samples
    data = sio.dumps(trust)
    untrusted = set(sio.get_untrusted_types(data=data))
    ours = {
        "saltmap.trust.aoa.AreaOfApplicability",
        "saltmap.trust.intervals.ConformalIntervals",
        "saltmap.trust.maps.TrustModel",
        "saltmap.trust.spread.ResidualSpread",
    }
    assert ours <= untrusted
    back = sio.loads(data, trusted=sorted(untrusted))
    pixels = X[list(trust.bands)].to_numpy()
    np.testing.assert_array_equal(
        back.aoa.dissimilarity(back.features(pixels)),
        trust.aoa.dissimilarity(trust.features(pixels)),
    )
    np.testing.assert_array_equal(
        back.intervals.predict_interval(X)[1], trust.intervals.predict_interval(X)[1]
    )
    # "normalized" keeps only the full model and its spread: no fold models, no MAPIE object.
    assert back.intervals.fold_estimators_ == [] and back.intervals.mapie_ is None


def test_trust_map_figure_draws_the_four_panels(trust, scene_pixels):
    import matplotlib.pyplot as plt

    from saltmap.map_figures import trust_map_figure

    scene, refl = scene_pixels
    got = trust_block(trust, refl[:, :60, :80], scene.roles, classify=fao_classes())
    fig = trust_map_figure(
        got["di"], got["aoa"], got["width"], (0, 800, 0, 600), threshold=trust.aoa.threshold_,
        class_confidence=got["class_confidence"],
    )  # fmt: skip
    titles = [ax.get_title() for ax in fig.axes]
    assert "area of applicability" in titles and "dissimilarity index" in titles
    assert any(t.startswith("class confidence") for t in titles)
    plt.close(fig)


def test_gamma_score_with_non_positive_predictions_says_what_to_do(samples):
    X, y = samples
    with pytest.raises(ConfigError, match="log_target"):
        # Subtracting a large constant makes the real target partly negative.
        ConformalIntervals(make_model("PLSR"), method="base", conformity_score="gamma").fit(
            X, y - 5000
        )


def fao_classes():
    """The FAO EC classes (µS/cm) as mapping classes a prediction."""
    from functools import partial

    from saltmap.mapping.blocks import ToSchemeUnit, classify_block
    from saltmap.salinity.classes import get_scheme

    convert = ToSchemeUnit("µS/cm", "dS/m")
    return partial(classify_block, scheme=get_scheme("fao-ec"), to_scheme_unit=convert)


# ------------------------------------------------------------------ models with covariates

COVARIATES_BOTH = {"numeric": ["Dist_Sea"], "categorical": ["Land_cover"]}


def _covariate_model_and_table(numeric=("Dist_Sea",), categorical=()):
    from saltmap.features.covariates import Covariates, predictor_table

    s = odisha()
    cov = Covariates(numeric=list(numeric), categorical=list(categorical))
    model = make_model("RF", params={"n_estimators": 20}, covariates=cov)
    return model, predictor_table(s, cov), s.target.to_numpy(float)


@pytest.fixture(scope="module")
def cov_trust():
    """Trust of an RF reading Odisha's Dist_Sea (numeric) and Land_cover (categorical)."""
    model, X, y = _covariate_model_and_table(categorical=["Land_cover"])
    return fit_trust(model, X, y, random_state=0), X, y


def test_covariate_di_uses_every_predictor_and_is_zero_on_training_rows(cov_trust):
    trust, X, _ = cov_trust
    levels = sorted(set(X["Land_cover"]))
    assert trust.feature_names[:5] == ("SAI", "TRSI", "SBCI", "GOSI", "Dist_Sea")
    assert len(trust.feature_names) == 5 + len(levels)
    # Each level's 0/1 column carries the covariate's weight (as CAST expands factors).
    level_weights = trust.weights.iloc[5:]
    assert np.all(level_weights == level_weights.iloc[0])
    features = trust.features(X)
    np.testing.assert_allclose(trust.aoa.dissimilarity(features), 0.0, atol=1e-12)
    # Only the covariate moves: a training row 10 distance classes farther from the
    # sea than any sample leaves the AOA, so the DI reads the covariate.
    far = X.iloc[:1].assign(Dist_Sea=X["Dist_Sea"].max() + 10)
    assert trust.aoa.dissimilarity(trust.features(far))[0] > trust.aoa.threshold_
    # Rows whose level their fold's model lacked have no residual, and are counted.
    scores = trust.intervals.conformity_scores_
    assert trust.info["n_unscored"] == int(np.isnan(scores).sum()) > 0
    assert np.isfinite(trust.intervals.quantiles_).all()


def test_covariate_trust_saves_and_loads_through_the_model_file(cov_trust, tmp_path):
    from saltmap.models.persistence import load_model, load_trust, save_model

    trust, X, _ = cov_trust
    meta = {"target": "EC", "target_unit": "uS/cm", "scaling": "landsat-c2l2"}
    path = save_model(tmp_path / "rf_cov.skops", trust.model, metadata=meta, trust=trust)
    model, _ = load_model(path)
    back = load_trust(path)
    assert back.covariates.keys() == {"Dist_Sea", "Land_cover"}
    np.testing.assert_array_equal(
        back.aoa.dissimilarity(back.features(X)), trust.aoa.dissimilarity(trust.features(X))
    )
    np.testing.assert_array_equal(
        back.intervals.predict_interval(X)[1], trust.intervals.predict_interval(X)[1]
    )
    np.testing.assert_array_equal(model.predict(X), trust.model.predict(X))


def test_base_only_for_categorical_covariates_and_coverage_counts_flagged_rows():
    model, X, y = _covariate_model_and_table(categorical=["Land_cover"])
    with pytest.raises(ConfigError, match="method='normalized' or 'base'"):
        ConformalIntervals(model, method="plus").fit(X, y)
    splits = materialise_splits(RepeatedKFold(n_splits=5, n_repeats=1, random_state=0), X, y)
    folds = evaluate_coverage(model, X, y, splits)
    assert list(folds["n"] + folds["n_flagged"]) == [len(test) for _, test in splits]
    assert coverage_summary(folds)["n_flagged"] == folds["n_flagged"].sum() > 0


def test_covariate_trust_block_on_patagonia_with_a_distance_raster_equals_direct_call(
    scene_pixels, tmp_path
):
    import geopandas as gpd
    from rasterio.warp import transform_bounds
    from rasterio.windows import Window
    from shapely.geometry import LineString

    from saltmap.features.covariate_layers import distance_to_features, write_covariate
    from saltmap.features.covariate_rasters import CovariateRasters
    from saltmap.mapping.blocks import predict_block_with_unseen

    scene, refl = scene_pixels
    # Distance to a synthetic line, as a synthetic 1-5 class a Dist_Sea model reads:
    # mechanics of the block core, not salinity.
    west, south, east, north = transform_bounds(scene.crs, "EPSG:4326", *scene.bounds)
    line = LineString([(west, south + 0.3 * (north - south)), (east, north)])
    vector = tmp_path / "synthetic_line.gpkg"
    gpd.GeoDataFrame(geometry=[line], crs="EPSG:4326").to_file(vector)
    classes = np.clip(1 + distance_to_features(vector, scene) // 300, 1, 5).astype(np.float32)
    raster = write_covariate(tmp_path / "synthetic_dist_class.tif", classes, scene,
                             description="synthetic distance class")  # fmt: skip
    model, X, y = _covariate_model_and_table()
    trust = fit_trust(model, X, y, random_state=0)
    rasters = CovariateRasters.for_model(trust.model, {"Dist_Sea": raster})
    window = Window(100, 40, 120, 90)
    rows, cols = window.toslices()
    block = refl[:, rows, cols].copy()
    block[:, :3, :7] = np.nan  # no data
    covariates = rasters.read(scene, window)
    with pytest.raises(ConfigError, match="Dist_Sea"):
        trust_block(trust, block, scene.roles)
    got = trust_block(trust, block, scene.roles, covariates=covariates, chunk_rows=500)
    # Direct: the same pixels as a table of samples with their covariate.
    table = pixel_table(scene, block).assign(Dist_Sea=covariates["Dist_Sea"].ravel())
    ok = table.notna().all(axis=1).to_numpy()
    _, lower, upper = trust.intervals.predict_interval(table[ok])
    di = trust.aoa.dissimilarity(trust.features(table[ok]))
    np.testing.assert_allclose(got["lower"].ravel()[ok], lower, rtol=1e-5)
    np.testing.assert_allclose(got["upper"].ravel()[ok], upper, rtol=1e-5)
    np.testing.assert_allclose(got["di"].ravel()[ok], di, rtol=1e-4)
    assert np.isnan(got["di"].ravel()[~ok]).all() and (got["aoa"].ravel()[~ok] == AOA_NODATA).all()
    np.testing.assert_array_equal(got["aoa"].ravel()[ok], di <= trust.aoa.threshold_)
    assert len(np.unique(covariates["Dist_Sea"])) > 1  # the covariate varies in the window
    # The map's own prediction gives the same bounds without running the model.
    salinity, _ = predict_block_with_unseen(trust.model, block, scene.roles, covariates)
    again = trust_block(trust, block, scene.roles, prediction=salinity, covariates=covariates)
    np.testing.assert_allclose(again["lower"], got["lower"], rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(again["di"], got["di"])


def test_trust_settings_give_what_the_keywords_give(samples):
    from saltmap.trust.settings import IntervalSettings, TrustSettings

    X, y = samples
    model = make_model("RF", params=FAST, log_target=True)
    keywords = dict(
        confidence=0.8, method="base", conformity_score="gamma", random_state=3, weights=None
    )
    by_keywords = fit_trust(model, X, y, **keywords)
    by_settings = fit_trust(model, X, y, TrustSettings(**keywords))
    beside = fit_trust(
        model, X, y, TrustSettings(**{**keywords, "random_state": 7}), random_state=3
    )
    for got in (by_settings, beside):
        assert got.info == by_keywords.info
        np.testing.assert_array_equal(got.aoa.weights_, by_keywords.aoa.weights_)
        np.testing.assert_array_equal(got.intervals.folds_, by_keywords.intervals.folds_)
        assert got.aoa.threshold_ == by_keywords.aoa.threshold_
        np.testing.assert_array_equal(
            got.intervals.predict_interval(X)[1], by_keywords.intervals.predict_interval(X)[1]
        )
    splits = materialise_splits(RepeatedKFold(n_splits=3, n_repeats=1, random_state=1), X, y)
    pd.testing.assert_frame_equal(
        evaluate_coverage(model, X, y, splits, IntervalSettings(confidence=0.8, cv=3)),
        evaluate_coverage(model, X, y, splits, confidence=0.8, cv=3),
    )


def test_an_unknown_trust_option_is_refused_by_name(samples):
    X, y = samples
    model = make_model("RF", params=FAST)
    with pytest.raises(TypeError, match="confidance"):
        fit_trust(model, X, y, confidance=0.8)
    with pytest.raises(TypeError, match="confidance"):
        evaluate_coverage(model, X, y, [], confidance=0.8)


# ------------------------------------------------- adaptive intervals (normalized scores)


def test_residual_spread_is_a_scikit_learn_estimator():
    from sklearn.utils.estimator_checks import check_estimator

    from saltmap.trust.spread import ResidualSpread

    check_estimator(ResidualSpread(n_estimators=5))


def test_the_spread_forest_predicts_a_scene_by_cell_as_tree_by_tree(samples, scene_pixels):
    """ResidualSpread predicts through models.inference (by cell); the values must be those
    of its own forest's predict, on real Odisha rows and the real Patagonia pixels."""
    from saltmap.features.indices import IndexFeatures
    from saltmap.models.inference import tree_cells
    from saltmap.trust.spread import ResidualSpread

    X, y = samples
    model = make_model("RF", params=FAST).fit(X, y)
    indices = IndexFeatures("novel").fit(X)
    scene, refl = scene_pixels
    pixels = pixel_table(scene, refl)[list(X.columns)].dropna()

    def spread_input(table):
        return np.column_stack([indices.transform(table), model.predict(table)])

    spread = ResidualSpread().fit(spread_input(X), np.abs(y - model.predict(X)))
    Z = spread_input(pixels)
    Z = Z[np.isfinite(Z).all(axis=1)]
    assert len(Z) > 10_000
    expected = np.maximum(spread.forest_.predict(Z), spread.floor_)
    assert tree_cells(spread.forest_).features  # the by-cell path is the one taken
    np.testing.assert_array_equal(spread.predict(Z), expected)


def test_normalized_intervals_are_calibrated_and_vary_on_held_out_real_rows(samples):
    from saltmap.trust.calibration import calibration_curve, calibration_summary, held_out_intervals

    X, y = samples
    splits = materialise_splits(RepeatedKFold(n_splits=5, n_repeats=2, random_state=3), X, y)
    table = held_out_intervals(make_model("RF", params=FAST), X, y, splits, n_splits_per_repeat=5)
    assert len(table) == 2 * len(y)
    summary = calibration_summary(table, 0.9).set_index("method")
    print(summary.T.to_string())  # the measured figures, shown with -s
    adaptive, constant = summary.loc["normalized"], summary.loc["base"]
    assert 0.85 <= adaptive["coverage"] <= 0.95
    # The width varies across the Odisha samples: its interquartile range is a large
    # share of its median (a constant width has 0, up to the bounds raised to 0).
    assert adaptive["width_iqr_share"] > 0.3
    assert adaptive["width_iqr_share"] > 1.5 * constant["width_iqr_share"]
    # Every interval contains its prediction; none goes below 0.
    assert (table["normalized_lower"] <= table["pred"]).all()
    assert (table["pred"] <= table["normalized_upper"]).all()
    assert (table["normalized_lower"] >= 0).all() and (table["base_lower"] >= 0).all()
    # Coverage grows with the nominal level, and follows it within 7 points.
    curve = calibration_curve(table)
    for _, part in curve.groupby("method"):
        assert part["coverage"].is_monotonic_increasing
        assert np.all(np.abs(part["coverage"] - part["nominal"]) <= 0.07)


def test_log_target_interval_contains_its_prediction_and_stays_physical(trust, scene_pixels):
    scene, refl = scene_pixels
    table = pixel_table(scene, refl)[list(trust.bands)]
    ok = np.isfinite(table.to_numpy()).all(axis=1)
    pred, lower, upper = trust.intervals.predict_interval(table[ok])
    assert (lower <= pred).all() and (pred <= upper).all()
    assert (lower >= 0).all()
    # Far from the Odisha samples (nearly all outside the AOA) the spread forest sees
    # no similar sample, so the width varies little there; shown with -s.
    print("Patagonia width 5/50/95 %:", np.percentile(upper - lower, [5, 50, 95]).round())


def test_lower_bound_of_a_linear_model_is_never_negative(samples, scene_pixels):
    X, y = samples
    scene, refl = scene_pixels
    table = pixel_table(scene, refl)
    # The scene's pixels and the Odisha samples, whose low EC values lie closer to 0 than
    # the interval's half width: there the raw lower bound is negative.
    table = pd.concat([table, X[list(table.columns)]], ignore_index=True)
    table = table[np.isfinite(table.to_numpy()).all(axis=1)]
    for method in ("normalized", "base"):
        ci = ConformalIntervals(make_model("PLSR"), method=method).fit(X, y)
        _, lower, upper = ci.predict_interval(table)
        raw = ConformalIntervals(make_model("PLSR"), method=method, lower_limit=None).fit(X, y)
        raw_lower = raw.predict_interval(table)[1]
        assert (lower >= 0).all() and (upper >= lower).all()
        np.testing.assert_allclose(lower, np.maximum(raw_lower, 0.0))
        assert np.sum(raw_lower < 0) > 10, method  # the clipping is exercised
        print(method, "raw lower bound below 0 on", f"{np.mean(raw_lower < 0):.1%}", "of rows")


def test_normalized_is_refused_with_gamma_and_needs_features(samples):
    X, y = samples
    with pytest.raises(ConfigError, match="absolute"):
        ConformalIntervals(make_model("PLSR"), conformity_score="gamma").fit(X, y)
    ci = ConformalIntervals(make_model("PLSR")).fit(X, y)
    with pytest.raises(ConfigError, match="features"):
        ci.bounds_from_prediction(ci.predict(X))


def test_classes_spanned_counts_the_classes_between_the_bounds_synthetic():
    from saltmap.trust.maps import classes_spanned

    classify = fao_classes()  # FAO ECe classes: 2, 4, 8, 16 dS/m = 2000 … 16000 µS/cm
    lower = np.array([[100.0, 2500.0, 100.0, 100.0, np.nan]], np.float32)
    upper = np.array([[1500.0, 7000.0, 5000.0, 30000.0, 10.0]], np.float32)
    got = classes_spanned(lower, upper, classify)
    np.testing.assert_array_equal(got, [[1, 2, 3, 4, AOA_NODATA]])
    assert (classes_spanned(lower, upper, None) == AOA_NODATA).all()


def test_normalized_scores_use_each_rows_own_fold_model(samples):
    X, y = samples
    ci = ConformalIntervals(make_model("PLSR"), cv=4).fit(X, y)
    oof = np.full(len(y), np.nan)
    for k, fold_model in enumerate(ci.fold_estimators_):
        rows = np.flatnonzero(ci.folds_ == k)
        oof[rows] = fold_model.predict(X.iloc[rows]).ravel()
    # The fold models line up with the folds: their residuals are MAPIE's scores.
    np.testing.assert_allclose(np.abs(y - oof), ci.conformity_scores_)
    assert np.isfinite(ci.normalized_scores_).all() and (ci.normalized_scores_ >= 0).all()
    # The quantile is the conformal one of the normalized scores.
    assert ci.normalized_quantile_ == conformal_quantile(ci.normalized_scores_, 0.9)
