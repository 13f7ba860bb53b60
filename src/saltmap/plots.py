"""Figures, drawn from plain tables and arrays.

Each function takes data (a DataFrame or arrays), draws one figure with
matplotlib's object API and returns the :class:`~matplotlib.figure.Figure`;
:func:`save_figure` writes it. Nothing here computes science.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # saltmap draws files, never windows

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patheffects import Normal, Stroke

from saltmap.atomic import atomic_savefig

# The map figures moved to saltmap.map_figures; importable from here for one release.
from saltmap.map_figures import class_map_figure, trust_map_figure, valid_frame

__all__ = [
    "GROUP_COLOURS", "calibration_figure", "class_map_figure", "discovery_figure", "plot_screening",
    "prediction_figure", "salt_conversion_figure", "save_figure", "spectral_response_figure",
    "trust_map_figure", "valid_frame",
]  # fmt: skip

# Colours of the index groups, shared by every figure that shows them.
GROUP_COLOURS = {
    "classic": "#4c72b0",
    "novel": "#dd8452",
    "other": "#8c8c8c",
    "discovered": "#55a868",
}


def save_figure(
    fig: Figure, path: str | Path, *, formats: tuple[str, ...] = ("png",)
) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats``; return the files written."""
    path = Path(path)
    written = []
    for fmt in formats:
        out = path.with_suffix(f".{fmt}")
        atomic_savefig(fig, out, dpi=150, bbox_inches="tight")
        written.append(out)
    plt.close(fig)
    return written


def _significance_mark(q: float) -> str:
    if not q == q:  # NaN
        return ""
    return "**" if q < 0.01 else "*" if q < 0.05 else ""


def plot_screening(table, *, target_label: str = "target", title: str | None = None) -> Figure:
    """Study's figure 4: Pearson r of each index with the target, as sorted bars.

    ``table`` is the output of :func:`saltmap.features.screening.screen_table`. Bars are
    coloured by index group, whiskers show the 95 % CI, and ``*``/``**`` mark
    Benjamini–Hochberg q < 0.05 / q < 0.01 (the p-value when the table has no
    ``q_value``, as tables of older runs).
    """
    data = table.sort_values("r", na_position="first")
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(data) + 1.5))
    colours = [GROUP_COLOURS.get(g, GROUP_COLOURS["other"]) for g in data["group"]]
    ypos = range(len(data))
    err = [data["r"] - data["ci_low"], data["ci_high"] - data["r"]]
    ax.barh(ypos, data["r"], color=colours, xerr=err, error_kw={"lw": 0.8, "ecolor": "#333"})
    ax.set_yticks(list(ypos), data["index"])
    for y, row in enumerate(data.itertuples()):
        mark = _significance_mark(getattr(row, "q_value", row.p_value))
        if mark and row.r == row.r:
            # Beyond the whisker, so the mark never sits on the CI line.
            at = row.ci_high + 0.02 if row.r >= 0 else row.ci_low - 0.02
            ax.text(at, y, mark, va="center", ha="left" if row.r >= 0 else "right", fontsize=9)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel(f"Pearson r with {target_label}")
    groups = [g for g in GROUP_COLOURS if g in set(data["group"])]
    handles = [plt.Rectangle((0, 0), 1, 1, color=GROUP_COLOURS[g]) for g in groups]
    ax.legend(handles, groups, loc="lower right", frameon=False, title="* q<0.05  ** q<0.01 (BH)")
    ax.set_title(title or f"Correlation of salinity indices with {target_label}")
    ax.grid(axis="x", alpha=0.3)
    return fig


def salt_conversion_figure(
    ec,
    salt,
    *,
    slope: float,
    intercept: float,
    ec_unit: str,
    r2: float,
    title: str | None = None,
) -> Figure:
    """Lab EC against salt content with the fitted line, and the residuals.

    ``ec`` and ``salt`` (g/kg) are the pairs the conversion was fitted on; the right
    panel shows ``salt - (slope · EC + intercept)`` so curvature or outliers show.
    """
    ec, salt = np.asarray(ec, dtype=float), np.asarray(salt, dtype=float)
    fig, (ax, res) = plt.subplots(1, 2, figsize=(9, 4))
    ax.scatter(ec, salt, s=10, alpha=0.6, color="#4c72b0", edgecolor="none")
    x = np.linspace(np.nanmin(ec), np.nanmax(ec), 50)
    ax.plot(x, slope * x + intercept, color="#c44e52", lw=1.2)
    ax.text(0.03, 0.97, f"salt = {slope:.3g}·EC {intercept:+.3g}\nr² = {r2:.4f}, n = {len(ec)}",
            transform=ax.transAxes, va="top", fontsize=9)  # fmt: skip
    ax.set_xlabel(f"EC ({ec_unit})")
    ax.set_ylabel("salt content (g/kg)")
    res.scatter(ec, salt - (slope * ec + intercept), s=10, alpha=0.6, color="#4c72b0")
    res.axhline(0, color="#c44e52", lw=1)
    res.set_xlabel(f"EC ({ec_unit})")
    res.set_ylabel("residual (g/kg)")
    for a in (ax, res):
        a.grid(alpha=0.3)
    fig.suptitle(title or "EC to salt content conversion", fontsize=10)
    fig.tight_layout()
    return fig


def discovery_figure(
    ranked,
    folds=None,
    *,
    top: int = 15,
    in_sample_abs_r: float | None = None,
    target_label: str = "target",
    method: str = "pearson",
    title: str | None = None,
) -> Figure:
    """Index discovery: the best candidates with their 95 % CI, and the search's optimism.

    Parameters
    ----------
    ranked : DataFrame
        :attr:`saltmap.features.discovery.SearchResult.table` (``formula``, ``r``,
        ``ci_low``, ``ci_high``), best first.
    folds : DataFrame, optional
        :attr:`saltmap.features.discovery.CVDiscovery.folds`; adds a panel with each fold
        winner's ``|r|`` on its training rows beside its sign-aligned r on the
        fold's test rows.
    in_sample_abs_r : float, optional
        Best in-sample ``|r|``, drawn as a line in the second panel.
    """
    data = ranked.head(top).iloc[::-1]
    panels = 2 if folds is not None else 1
    fig, axes = plt.subplots(
        1, panels, figsize=(7 + 4 * (panels - 1), 0.32 * len(data) + 1.8),
        gridspec_kw={"width_ratios": [2, 1]} if panels == 2 else None, squeeze=False,
    )  # fmt: skip
    word = "Spearman ρ" if method == "spearman" else "Pearson r"
    _candidate_bars(axes[0, 0], data, f"{word} with {target_label} (in-sample, 95 % CI)")
    if folds is not None:
        _fold_winners(axes[0, 1], folds, in_sample_abs_r, word)
    fig.suptitle(title or f"Index discovery on {target_label}", fontsize=11)
    fig.tight_layout()
    return fig


def _candidate_bars(ax: Axes, data, xlabel: str) -> None:
    """The best candidates' correlations with their 95 % CI, as bars."""
    ypos = np.arange(len(data))
    err = [data["r"] - data["ci_low"], data["ci_high"] - data["r"]]
    ax.barh(ypos, data["r"], color=GROUP_COLOURS["discovered"], xerr=err,
            error_kw={"lw": 0.8, "ecolor": "#333"})  # fmt: skip
    ax.set_yticks(ypos, [f"{row.rank}. {row.formula}" for row in data.itertuples()], fontsize=8)
    ax.axvline(0, color="#333", lw=0.8)
    ax.set_xlim(-1, 1)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Top {len(data)} discovered indices", fontsize=10)


def _fold_winners(cv: Axes, folds, in_sample_abs_r: float | None, word: str) -> None:
    """Each fold winner's |r| on its training rows beside its sign-aligned r on its test rows."""
    train = folds["r_train"].abs().to_numpy()
    test = folds["r_test_aligned"].to_numpy()
    # Each fold is a pair: its winner on the training rows (left), on the test rows (right).
    jitter = np.random.default_rng(0).uniform(-0.06, 0.06, len(folds))
    for j, a, b in zip(jitter, train, test, strict=True):
        cv.plot([0 + j, 1 + j], [a, b], color="#bbb", lw=0.6, zorder=1)
    cv.boxplot([train, test[np.isfinite(test)]], positions=[0, 1], widths=0.35,
               showfliers=False, medianprops={"color": "#333"}, zorder=2)  # fmt: skip
    cv.scatter(jitter, train, s=14, color=GROUP_COLOURS["discovered"], zorder=3,
               label="fold winner |r|, training rows")  # fmt: skip
    cv.scatter(1 + jitter, test, s=14, color="#c44e52", marker="s", zorder=3,
               label="same index r, fold's test rows")  # fmt: skip
    if in_sample_abs_r is not None:
        cv.axhline(in_sample_abs_r, color=GROUP_COLOURS["discovered"], ls="--", lw=1,
                   label=f"in-sample best |r| = {in_sample_abs_r:.3f}")  # fmt: skip
    mean_test = float(np.nanmean(test))
    cv.axhline(mean_test, color="#c44e52", ls=":", lw=1,
               label=f"mean out-of-fold r = {mean_test:.3f}")  # fmt: skip
    repeats = int(folds["repeat"].max()) if "repeat" in folds else 1
    n_splits = int(folds["fold"].max())
    cv.set_xticks([0, 1], ["training rows", "test rows"])
    cv.set_xlim(-0.5, 1.5)
    cv.set_xlabel(f"{n_splits} outer folds" + (f" × {repeats} repeats" if repeats > 1 else ""))
    cv.set_ylabel(f"{word} (sign of training)")
    cv.set_ylim(min(-0.1, float(np.nanmin(test)) - 0.05), 1)
    cv.axhline(0, color="#333", lw=0.6)
    cv.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    cv.grid(axis="y", alpha=0.3)
    cv.set_title("Search inside each fold", fontsize=10)


def spectral_response_figure(
    table,
    *,
    colours: list[str] | None = None,
    class_description: str = "",
    title: str | None = None,
) -> Figure:
    """Study's figure 3: mean reflectance by salinity class, raw and transformed.

    ``table`` is :func:`saltmap.features.spectra.spectral_response` output; one panel per
    transform, one line per class (least saline first, in an ordered colour
    scale), shaded ± one standard error of the mean.
    """
    titles = table.attrs.get("transform_titles", {})
    transforms = list(table["transform"].cat.categories)
    classes = list(table["class"].cat.categories)
    if colours is None:
        cmap = plt.get_cmap("YlOrRd")
        colours = [cmap(x) for x in np.linspace(0.3, 1.0, len(classes))]
    ncols = 2 if len(transforms) > 1 else 1
    nrows = int(np.ceil(len(transforms) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(5 * ncols, 3.6 * nrows), squeeze=False)
    for ax, name in zip(axes.ravel(), transforms, strict=False):
        part = table[table["transform"] == name]
        for cls, colour in zip(classes, colours, strict=True):
            line = part[part["class"] == cls].sort_values("wavelength_nm")
            if line.empty:
                continue
            n = int(line["n"].max())
            # A grey outline keeps pale classes (yellow) visible on white.
            pale = float(np.dot(to_rgb(colour), (0.2126, 0.7152, 0.0722))) > 0.7
            ax.plot(line["wavelength_nm"], line["mean"], marker="o", ms=4, color=colour,
                    mec="#777" if pale else colour, mew=0.6, label=f"{cls} (n={n})",
                    path_effects=[Stroke(linewidth=2.5, foreground="#888"), Normal()] if pale
                    else None)  # fmt: skip
            ax.fill_between(line["wavelength_nm"], line["mean"] - line["sem"],
                            line["mean"] + line["sem"], color=colour, alpha=0.15, lw=0)  # fmt: skip
        first = part.drop_duplicates("role").sort_values("wavelength_nm")
        for wl, role in zip(first["wavelength_nm"], first["role"], strict=True):
            ax.annotate(role, (wl, 1.0), xycoords=("data", "axes fraction"), ha="center",
                        va="bottom", fontsize=7, color="#555")  # fmt: skip
        ax.set_title(titles.get(name, name), fontsize=10, pad=12)
        ax.set_xlabel("wavelength (nm)")
        ax.set_ylabel("mean")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(transforms) :]:
        ax.set_visible(False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    ncol = 2 if len(labels) == 4 else min(len(labels), 3)
    fig.legend(handles, labels, loc="lower center", ncol=ncol, fontsize=8, frameon=False,
               title=class_description or None, title_fontsize=8)  # fmt: skip
    fig.suptitle(title or "Spectral response by salinity class", fontsize=11)
    fig.tight_layout(rect=(0, 0.06 + 0.025 * ((len(labels) - 1) // ncol), 1, 1))
    return fig


def prediction_figure(
    predictions,
    metrics=None,
    *,
    target_label: str = "EC",
    unit: str | None = None,
    log_scale: bool = False,
    title: str | None = None,
) -> Figure:
    """The study's figure 5: predicted against measured, one panel per model.

    Parameters
    ----------
    predictions : DataFrame
        Columns ``feature_set``, ``model``, ``set`` (``calibration`` or
        ``validation``), ``measured``, ``predicted``; one row per sample and model.
    metrics : DataFrame, optional
        Table 4 (columns ``feature_set``, ``model``, ``R2_c``, ``RMSE_c``,
        ``R2_v``, ``RMSE_v``, ...), printed in each panel.
    target_label, unit : str
        Axis labels.
    log_scale : bool, default=False
        Logarithmic axes (salinity spans orders of magnitude).

    Returns
    -------
    Figure
        One row of panels per feature set, one column per model; calibration
        points as open circles, validation points as filled triangles, the 1:1
        line dashed.
    """
    sets = list(dict.fromkeys(predictions["feature_set"]))
    models = list(dict.fromkeys(predictions["model"]))
    fig, axes = plt.subplots(
        len(sets), len(models), figsize=(2.9 * len(models), 2.9 * len(sets)), squeeze=False
    )
    lims = _common_limits(predictions, log_scale)
    axis_unit = f" ({unit})" if unit else ""
    for i, fs in enumerate(sets):
        for j, model in enumerate(models):
            ax = axes[i, j]
            part = predictions[(predictions["feature_set"] == fs) & (predictions["model"] == model)]
            _measured_vs_predicted(ax, part, lims, log_scale)
            ax.set_title(f"{model} · {fs}", fontsize=10)
            if metrics is not None:
                _metrics_box(
                    ax, metrics[(metrics["feature_set"] == fs) & (metrics["model"] == model)]
                )
            if i == len(sets) - 1:
                ax.set_xlabel(f"measured {target_label}{axis_unit}")
            if j == 0:
                ax.set_ylabel(f"predicted {target_label}{axis_unit}")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle(title or f"Predicted against measured {target_label}", fontsize=11)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


# Calibration points as open circles, validation points as filled triangles.
_PREDICTION_MARKS = {
    "calibration": {"marker": "o", "facecolors": "none", "edgecolors": "#4c72b0"},
    "validation": {"marker": "^", "color": "#dd8452", "edgecolors": "#8a4a1c"},
}


def _common_limits(predictions, log_scale: bool) -> tuple[float, float]:
    """Axis limits shared by every panel: all values with a 5 % margin."""
    values = predictions[["measured", "predicted"]].to_numpy(dtype=float)
    positive = values[values > 0]
    low, high = (positive.min(), positive.max()) if log_scale else (values.min(), values.max())
    pad = (high / low) ** 0.05 if log_scale else 0.05 * (high - low)
    return (low / pad, high * pad) if log_scale else (low - pad, high + pad)


def _measured_vs_predicted(ax: Axes, part, lims: tuple[float, float], log_scale: bool) -> None:
    """One model's points of both sets and the dashed 1:1 line."""
    for name, style in _PREDICTION_MARKS.items():
        pts = part[part["set"] == name]
        ax.scatter(pts["measured"], pts["predicted"], s=16, linewidths=0.8,
                   label=f"{name} (n={len(pts)})", **style)  # fmt: skip
    ax.plot(lims, lims, ls="--", color="#444", lw=0.9, label="1:1")
    if log_scale:
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.set_xlim(lims)
    ax.set_ylim(lims)
    ax.set_aspect("equal")
    ax.grid(alpha=0.3)


def _metrics_box(ax: Axes, row) -> None:
    """The panel's Table 4 scores in its upper left corner (nothing when it has none)."""
    if not len(row):
        return
    r = row.iloc[0]
    ax.text(0.03, 0.97,
            f"R²c {r['R2_c']:.2f}  RMSEc {r['RMSE_c']:.0f}\n"
            f"R²v {r['R2_v']:.2f}  RMSEv {r['RMSE_v']:.0f}",
            transform=ax.transAxes, va="top", ha="left", fontsize=7.5,
            bbox={"boxstyle": "round", "fc": "white", "ec": "#ccc", "alpha": 0.85})  # fmt: skip


# ---------------------------------------------------------------- interval calibration

_METHOD_STYLE = {"normalized": {"ls": "-", "marker": "o"}, "base": {"ls": "--", "marker": "s"}}


def calibration_figure(curves, title: str | None = None) -> Figure:
    """Empirical coverage of the intervals against their nominal level, one line per method.

    Parameters
    ----------
    curves : DataFrame or mapping of name -> DataFrame
        :func:`saltmap.trust.calibration.calibration_curve` tables (``method``,
        ``nominal``, ``coverage``); several (e.g. one per protocol) give one panel each.
    title : str, optional
    """
    if not isinstance(curves, dict):
        curves = {"": curves}
    fig, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 4.0), squeeze=False)
    for ax, (name, curve) in zip(axes[0], curves.items(), strict=True):
        ax.plot([0.45, 1.0], [0.45, 1.0], color="#888", lw=0.9, label="ideal")
        for method, part in curve.groupby("method", sort=False):
            label = {"normalized": "normalized (adaptive)", "base": "base (constant width)"}
            ax.plot(part["nominal"], part["coverage"], lw=1.4, ms=4,
                    label=label.get(method, method),
                    **_METHOD_STYLE.get(method, {"marker": "^"}))  # fmt: skip
        ax.set_xlim(0.45, 1.0)
        ax.set_ylim(0.45, 1.0)
        ax.set_aspect("equal")
        ax.grid(alpha=0.3)
        ax.set_xlabel("nominal coverage")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("empirical coverage on held-out samples")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig
