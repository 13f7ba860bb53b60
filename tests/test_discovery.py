"""Tests of index discovery on the real Odisha reflectances.

Targets built from a known formula are SYNTHETIC (named so below); the
reflectances they are built from are the real samples.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.model_selection import RepeatedKFold

from saltmap.errors import ConfigError
from saltmap.features import discovered, discovery
from saltmap.features.discovery import (
    correlate_columns,
    discover_cv,
    enumerate_candidates,
    evaluate_candidates,
    save_discovered,
    search_indices,
)
from saltmap.features.formulas import TEMPLATES, Candidate
from saltmap.features.indices import IndexFeatures, index_of, resolve
from saltmap.io.samples import odisha


@pytest.fixture(scope="module")
def real():
    """The real Odisha samples: reflectance by role and EC (µS/cm)."""
    s = odisha()
    return s.reflectance, s.target


def _values(cand, reflectance):
    return np.asarray(cand.compute(reflectance.to_dict("series")), dtype=float)


PLANTED = [
    Candidate("salinity_adjusted", ("G", "N", "S1")),  # the study's SAI
    Candidate("three_band_ratio", ("S1", "N", "B")),  # the study's TRSI
    Candidate("weighted_offset", ("R", "N", "S1"), weight=0.5),  # the study's GOSI
    Candidate("brightness_contrast", ("S1", "R", "G"), transform="reciprocal"),
]


@pytest.mark.parametrize("planted", PLANTED, ids=lambda c: c.formula)
def test_planted_index_is_found_first(real, planted):
    reflectance, _ = real
    truth = _values(planted, reflectance)
    rng = np.random.default_rng(7)
    synthetic_target = truth + rng.normal(0, 0.2 * truth.std(), len(truth))
    found = search_indices(reflectance, synthetic_target)
    top = _values(found.best, reflectance)
    # The winner must be the planted formula or one algebraically equal to it.
    assert abs(np.corrcoef(top, truth)[0, 1]) > 1 - 1e-9, found.table.head(3)


def test_swapped_slots_give_the_same_index_up_to_sign(real):
    reflectance, _ = real
    for tmpl in TEMPLATES.values():
        if tmpl.swap is None:
            continue
        bands = ["G", "N", "S1"][: tmpl.arity]
        i, j = tmpl.swap
        swapped = list(bands)
        swapped[i], swapped[j] = bands[j], bands[i]
        w, w_swapped = (0.3, 0.7) if tmpl.weighted else (None, None)
        one = _values(Candidate(tmpl.name, tuple(bands), "identity", w), reflectance)
        two = _values(Candidate(tmpl.name, tuple(swapped), "identity", w_swapped), reflectance)
        np.testing.assert_allclose(np.abs(one), np.abs(two), rtol=1e-12, err_msg=tmpl.name)


def test_search_matrix_matches_candidate_by_candidate(real):
    reflectance, _ = real
    cands = enumerate_candidates()[::97]
    matrix = evaluate_candidates(reflectance, cands)
    for j, cand in enumerate(cands):
        np.testing.assert_allclose(matrix[:, j], _values(cand, reflectance), equal_nan=True)


def test_vectorised_pearson_equals_scipy(real):
    reflectance, ec = real
    cands = [PLANTED[0], Candidate("ratio", ("S1", "N")), Candidate("band", ("B",), "log")]
    x = evaluate_candidates(reflectance, cands)
    x[[3, 10, 50], 1] = np.nan  # a column with undefined rows uses its own rows only
    got = correlate_columns(x, ec.to_numpy())
    for j in range(x.shape[1]):
        ok = np.isfinite(x[:, j])
        ref = stats.pearsonr(x[ok, j], ec.to_numpy()[ok])
        ci = ref.confidence_interval()
        assert got.loc[j, "n"] == ok.sum()
        np.testing.assert_allclose(got.loc[j, "r"], ref.statistic, rtol=1e-10)
        np.testing.assert_allclose(got.loc[j, "p"], ref.pvalue, rtol=1e-6)
        np.testing.assert_allclose(got.loc[j, ["ci_low", "ci_high"]], [ci.low, ci.high], rtol=1e-6)


def test_vectorised_spearman_equals_scipy(real):
    reflectance, ec = real
    x = evaluate_candidates(reflectance, [PLANTED[1], Candidate("difference", ("G", "R"))])
    x[[0, 5], 0] = np.nan
    got = correlate_columns(x, ec.to_numpy(), method="spearman")
    for j in range(x.shape[1]):
        ok = np.isfinite(x[:, j])
        ref = stats.spearmanr(x[ok, j], ec.to_numpy()[ok])
        np.testing.assert_allclose(got.loc[j, "r"], ref.statistic, rtol=1e-10)
        np.testing.assert_allclose(got.loc[j, "p"], ref.pvalue, rtol=1e-6)


def test_no_inf_and_no_warning_where_formulas_are_undefined(real):
    reflectance, ec = real
    # Synthetic edge rows (zeros, negatives, equal bands) appended to the real ones.
    edges = pd.DataFrame(
        [[0.0] * 6, [-0.01, 0.02, -0.03, 0.0, 0.1, 0.1], [0.1] * 6], columns=reflectance.columns
    )
    refl = pd.concat([reflectance, edges], ignore_index=True)
    target = np.r_[ec.to_numpy(), 1.0, 2.0, 3.0]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = evaluate_candidates(refl, enumerate_candidates())
        found = search_indices(refl, target)
    assert not np.isinf(x).any()
    assert np.isnan(x).any()  # the edge rows do hit undefined points
    numbers = found.table.select_dtypes("number").to_numpy(dtype=float)
    assert not np.isinf(numbers).any()


def test_ranking_is_by_abs_r_without_duplicates(real):
    reflectance, ec = real
    found = search_indices(reflectance, ec)
    abs_r = found.table["r"].abs().to_numpy()
    assert np.all(np.diff(abs_r) <= 1e-12)
    assert found.n_candidates > len(found.table) > 1000
    # (1/a−1/b)/(1/a+1/b) = −(a−b)/(a+b): only one of them stays.
    nd = found.table[(found.table["template"] == "normalised_difference")]
    pairs = nd.groupby(nd["bands"].map(lambda b: " ".join(sorted(b.split())))).size()
    assert pairs.max() <= 4  # identity and reciprocal merged: 5 transforms give at most 4


def test_cross_validated_search_never_sees_the_test_rows(real):
    reflectance, ec = real
    seen: list[pd.Index] = []

    def recording_search(rows, target):
        seen.append(rows.index.copy())
        return search_indices(rows, target)

    report = discover_cv(
        reflectance, ec, n_splits=4, n_repeats=2, random_state=3, search=recording_search
    )
    expected = list(RepeatedKFold(n_splits=4, n_repeats=2, random_state=3).split(reflectance))
    assert len(seen) == 1 + 8  # the in-sample search, then one per fold
    assert seen[0].equals(reflectance.index)
    for k, (train, test) in enumerate(expected):
        fold_rows = seen[k + 1]
        assert fold_rows.intersection(reflectance.index[test]).empty
        assert fold_rows.equals(reflectance.index[train])
        assert report.splits[k][1].equals(reflectance.index[test])


def test_out_of_fold_r_is_the_winner_on_the_test_rows(real):
    reflectance, ec = real
    report = discover_cv(reflectance, ec, n_splits=3, random_state=0)
    for (_, test), row in zip(report.splits, report.folds.itertuples(), strict=True):
        winner = Candidate.from_dict(row._asdict())
        value = _values(winner, reflectance.loc[test])
        np.testing.assert_allclose(row.r_test, stats.pearsonr(value, ec.loc[test]).statistic)
    summary = report.summary().iloc[0]
    np.testing.assert_allclose(summary["optimism"], report.best_abs_r - report.out_of_fold_r)
    assert summary["in_sample_abs_r"] == pytest.approx(abs(report.in_sample.table["r"].iloc[0]))


def test_saved_indices_are_explicit_values_that_serve_models(real, tmp_path):
    # A saved file gives definitions (plain data); an index, a transformer and a
    # selection take them as they are, with no registry of this session involved.
    reflectance, ec = real
    found = search_indices(reflectance, ec)
    path = save_discovered(found, tmp_path / "discovered.toml", k=3, prefix="Dx")
    defs = discovered.read_definitions(path)
    assert [d["name"] for d in defs] == ["Dx1", "Dx2", "Dx3"]
    assert defs[1] == {"name": "Dx2", **found.candidates(2)[1].to_dict()}
    assert index_of(defs[0]).group == "discovered"
    assert index_of(defs[0]).formula == found.table["formula"].iloc[0]
    assert discovered.definitions_of(found.candidates(3), prefix="Dx") == defs
    features = IndexFeatures(indices=defs).fit(reflectance)
    assert features.index_names_ == ["Dx1", "Dx2", "Dx3"] and features.index_items_ == defs
    expected = evaluate_candidates(reflectance, found.candidates(3))
    np.testing.assert_allclose(features.transform(reflectance), expected, equal_nan=True)
    # The selection language picks from the definitions given.
    assert discovered.select_discovered("discovered:1", defs) == defs[:1]
    assert discovered.resolve_selection("SAI,discovered:2,NDVI", defs) == [
        "SAI", defs[0], defs[1], "NDVI"
    ]  # fmt: skip
    assert discovered.select_discovered(f"discovered:{path}:2") == defs[:2]
    assert resolve(["SAI", defs[2]]) == ["SAI", "Dx3"]
    # A worker process computes them from the definitions alone.
    from joblib import Parallel, delayed

    from saltmap.features.indices import compute_indices

    (in_worker,) = Parallel(n_jobs=2)([delayed(compute_indices)(reflectance, defs)])
    np.testing.assert_allclose(in_worker.to_numpy(), expected, equal_nan=True)


def test_the_session_registry_still_resolves_names(real, tmp_path):
    # For one release, loaded and registered discovered indices resolve by name in the
    # session; a fresh interpreter keeps that registry away from every other test.
    import json
    import subprocess
    import sys

    reflectance, ec = real
    found = search_indices(reflectance, ec)
    path = save_discovered(found, tmp_path / "discovered.toml", k=3, prefix="Dtest")
    code = f"""
import json
from saltmap.features import discovered, discovery
from saltmap.features.indices import get_index
out = {{"names": discovered.load_discovered({str(path)!r})}}
out["group"], out["formula"] = get_index("Dtest1").group, get_index("Dtest1").formula
out["path2"] = discovered.resolve_discovered({f"discovered:{path}:2"!r})
out["first"] = discovered.resolve_discovered("discovered:1")
out["mixed"] = discovered.resolve_with_discovered("SAI,discovered:2,NDVI")
out["defs"] = discovered.definitions(["SAI", "Dtest2"])
out["again"] = discovered.register_definitions(out["defs"])
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["names"] == ["Dtest1", "Dtest2", "Dtest3"]
    assert out["group"] == "discovered" and out["formula"] == found.table["formula"].iloc[0]
    assert out["path2"] == ["Dtest1", "Dtest2"]
    assert out["first"] == ["Dtest1"]
    assert out["mixed"] == ["SAI", "Dtest1", "Dtest2", "NDVI"]
    # What a saved model would carry, and register again on loading.
    assert out["defs"] == [{"name": "Dtest2", **found.candidates(2)[1].to_dict()}]
    assert out["again"] == ["Dtest2"]


def test_a_file_whose_formula_disagrees_is_refused(tmp_path):
    path = tmp_path / "discovered.toml"
    path.write_text(
        '[[index]]\nname = "X1"\ntemplate = "ratio"\nbands = ["G", "N"]\n'
        'transform = "identity"\nformula = "N/G"\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="N/G"):
        discovered.read_discovered(path)


@pytest.mark.parametrize(
    "bad",
    [
        {"template": "power_tower", "bands": ("G", "N")},
        {"template": "ratio", "bands": ("G", "G")},
        {"template": "ratio", "bands": ("G", "NIR")},
        {"template": "weighted_offset", "bands": ("R", "N", "S1")},
        {"template": "ratio", "bands": ("G", "N"), "transform": "cube"},
    ],
)
def test_bad_candidates_are_refused_with_a_message(bad):
    with pytest.raises(ConfigError):
        Candidate(**bad)


def test_discover_and_spectra_commands_on_odisha(tmp_path):
    from typer.testing import CliRunner

    from saltmap import datasets
    from saltmap.cli import app

    runner = CliRunner()
    odisha_args = ["--target", "EC", "--target-unit", "uS/cm", "--id", "Name",
                   "--scaling", "landsat-c2l2"]  # fmt: skip
    out = tmp_path / "disc"
    args = ["discover", str(datasets.odisha_samples()), *odisha_args, "--out", str(out),
            "--top", "3", "--folds", "3"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    ranked = pd.read_csv(out / "discovery_ranked.csv")
    assert list(ranked.columns) == list(discovery.RANKED_COLUMNS)
    assert ranked["n"].eq(106).all()
    assert len(pd.read_csv(out / "discovery_cv.csv")) == 3
    assert [n for n, _ in discovered.read_discovered(out / "discovered.toml")] == ["D1", "D2", "D3"]
    assert (out / "discovery.png").stat().st_size > 10_000
    assert runner.invoke(app, args).exit_code != 0  # no clobbering without --overwrite
    spectra = runner.invoke(app, ["spectra", str(datasets.odisha_samples()), *odisha_args,
                                  "--out", str(tmp_path / "spec")])  # fmt: skip
    assert spectra.exit_code == 0, spectra.output
    table = pd.read_csv(tmp_path / "spec" / "spectral_response.csv")
    assert table["n"].groupby(table["transform"]).sum().eq(106 * 6).all()


def test_chunked_search_equals_one_block(real):
    reflectance, ec = real
    whole = search_indices(reflectance, ec, method="spearman")
    chunked = search_indices(reflectance, ec, method="spearman", chunk_size=333)
    pd.testing.assert_frame_equal(whole.table, chunked.table)


@pytest.fixture(scope="module")
def saved_top3(real, tmp_path_factory):
    """The best 3 indices found on the real Odisha samples, saved (not registered here)."""
    reflectance, ec = real
    found = search_indices(reflectance, ec)
    path = save_discovered(found, tmp_path_factory.mktemp("disc") / "discovered.toml", k=3)
    return path, found.table.head(3)


def test_discovered_selection_works_in_a_fresh_session(saved_top3):
    # The resolver is registered by saltmap.features.discovery; a fresh interpreter that never
    # imports it must still expand "discovered:PATH:3" (indices.resolve imports it lazily).
    import json
    import subprocess
    import sys

    path, top = saved_top3
    code = (
        "import json, sys, saltmap\n"
        "before = 'saltmap.features.discovery' in sys.modules\n"
        f"table = saltmap.screen(saltmap.odisha(), {f'discovered:{path}:3'!r})\n"
        "print(json.dumps({'before': before, 'r': dict(zip(table['index'], table['r']))}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["before"] is False
    assert set(out["r"]) == {"D1", "D2", "D3"}
    # Screening the saved indices gives back the correlations the search found.
    for i, r in enumerate(top["r"], start=1):
        assert out["r"][f"D{i}"] == pytest.approx(r, rel=1e-9)


ODISHA_ARGS = ["--target", "EC", "--target-unit", "uS/cm", "--id", "Name",
               "--scaling", "landsat-c2l2"]  # fmt: skip


def test_screen_and_train_commands_take_a_discovered_file(saved_top3, tmp_path):
    from typer.testing import CliRunner

    from saltmap import datasets
    from saltmap.cli import app
    from saltmap.models.persistence import load_model

    path, top = saved_top3
    runner = CliRunner()
    samples_file = str(datasets.odisha_samples())
    selection = f"discovered:{path}:3"
    screened = runner.invoke(app, ["screen", samples_file, *ODISHA_ARGS, "--indices", selection,
                                   "--out", str(tmp_path / "screen")])  # fmt: skip
    assert screened.exit_code == 0, screened.output
    table = pd.read_csv(tmp_path / "screen" / "screening.csv")
    assert sorted(table["index"]) == ["D1", "D2", "D3"]
    np.testing.assert_allclose(table.set_index("index").loc[["D1", "D2", "D3"], "r"], top["r"])
    model_file = tmp_path / "model.skops"
    trained = runner.invoke(app, ["train", samples_file, *ODISHA_ARGS, "--indices", selection,
                                  "--model", "RF", "--trials", "0", "--budget", "quick",
                                  "--no-trust", "--out", str(model_file)])  # fmt: skip
    assert trained.exit_code == 0, trained.output
    model, metadata = load_model(model_file)
    assert list(model.named_steps["indices"].index_names_) == ["D1", "D2", "D3"]
    # The model carries the definitions themselves, not names a registry must know.
    assert model.named_steps["indices"].index_items_ == discovered.read_definitions(path)
    assert [d["name"] for d in metadata["discovered_indices"]] == ["D1", "D2", "D3"]


def test_discover_cv_reports_one_step_per_search(real):
    from saltmap.progress import RecordedProgress

    reflectance, ec = real
    few = [Candidate("ratio", ("G", "N")), Candidate("difference", ("R", "S1"))]
    recorded = RecordedProgress()
    report = discover_cv(reflectance, ec, n_splits=3, n_repeats=2, candidates=few,
                         progress=recorded)  # fmt: skip
    assert recorded.ticks["index discovery"] == [(done, 7) for done in range(8)]
    assert len(report.folds) == 6
