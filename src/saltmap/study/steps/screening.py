"""Step 2, screening: the index catalogue (Table 2), the spectral response by salinity class
(figure 3) and each index's correlation with the target (Table 3, figure 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from saltmap.features import (
    SENSOR_NAMES,
    catalogue_table,
    resolve,
    salinity_classes,
    screen,
    sensor_of,
    spectral_response,
)
from saltmap.plots import plot_screening, spectral_response_figure
from saltmap.report import Note

if TYPE_CHECKING:
    from saltmap.features import SalinityClasses
    from saltmap.study.context import RunContext
    from saltmap.study.steps.samples import SampleData


@dataclass(frozen=True)
class Screening:
    """What the screening step measured.

    Attributes
    ----------
    table2 : DataFrame
        The screened indices of the catalogue.
    groups : SalinityClasses
        The salinity classes of the spectral response (labels, colours, description).
    sensor : str
        The sensor whose band centres the response is drawn at.
    response : DataFrame
        Mean reflectance per class and band (figure 3).
    table3 : DataFrame
        Correlation of each index with the target, strongest first.
    """

    table2: pd.DataFrame
    groups: SalinityClasses
    sensor: str
    response: pd.DataFrame
    table3: pd.DataFrame


def screen_indices(ctx: RunContext, data: SampleData) -> Screening:
    """Table 2, the spectral response and Table 3 of the study's screened indices."""
    samples = data.samples
    names = resolve(ctx.cfg.indices.screen)
    catalogue = catalogue_table()
    table2 = catalogue[catalogue["name"].isin(names)].reset_index(drop=True)
    table2 = table2[["name", "group", "formula", "bands", "long_name", "reference"]]
    sp = ctx.cfg.spectra
    groups = salinity_classes(
        samples.target, unit=samples.target_unit, scheme=sp.classes, n_classes=sp.n_classes
    )
    sensor = sensor_of(samples.scaling)
    response = spectral_response(samples.reflectance, groups.labels, sensor=sensor)
    return Screening(table2, groups, sensor, response, screen(samples, names))


def write_indices_section(ctx: RunContext, found: Screening) -> None:
    """Table 2 and figure 3."""
    sec = ctx.section("indices")
    sec.add(
        ctx.save_table(
            "table2_indices",
            found.table2,
            "Table 2. The salinity indices",
            "Band roles: B blue, G green, R red, N near infrared, S1 and S2 shortwave infrared "
            "(Sentinel-2 B2 B3 B4 B8 B11 B12; Landsat 8/9 bands 2–7). Where a formula is "
            "undefined the index is missing (NaN), never infinite.",
        )
    )
    ctx.save_table("figure3_spectral_response", found.response, markdown=False)
    groups = found.groups
    fig = spectral_response_figure(
        found.response,
        colours=groups.colours,
        class_description=groups.description,
        title=f"Spectral response by salinity class ({SENSOR_NAMES[found.sensor]} band centres)",
    )
    sec.add(
        ctx.save_figure(
            "figure3_spectral_response",
            fig,
            "Figure 3. Spectral response by salinity class",
            f"Mean reflectance of each class ({groups.description}) at the band centres, raw "
            "and transformed as the study's novel indices use them; shading is ± 1 standard "
            "error.",
        )
    )


def write_screening_section(ctx: RunContext, data: SampleData, table3: pd.DataFrame) -> None:
    """Table 3, figure 4 and a note on the strongest index."""
    sec = ctx.section("screening")
    sec.add(
        ctx.save_table(
            "table3_screening",
            table3.drop(columns=["abs_r"]),
            f"Table 3. Pearson correlation of each index with {data.label}",
            "p: two-sided; q: Benjamini–Hochberg q-value over the indices screened together "
            "(false discovery rate); 95 % CI by Fisher's z; n_undefined: samples where the "
            "index is undefined. Ranked by |r|.",
            formats={
                "p_value": ".2g",
                "q_value": ".2g",
                "r": ".3f",
                "ci_low": ".3f",
                "ci_high": ".3f",
            },
        )
    )
    fig = plot_screening(table3, target_label=data.label)
    sec.add(
        ctx.save_figure(
            "figure4_screening",
            fig,
            "Figure 4. Correlation of the indices with salinity",
            "Bars: Pearson r with its 95 % CI; * q < 0.05, ** q < 0.01 (Benjamini–Hochberg "
            "q-values, so that screening many indices does not star chance correlations).",
        )
    )
    best = table3.iloc[0]
    sec.add(
        Note(
            f"Strongest: {best['index']} (r = {best['r']:+.3f}, 95 % CI {best['ci_low']:+.2f} "
            f"to {best['ci_high']:+.2f}, n = {best['n']}). With {len(table3)} indices screened "
            f"on {len(data.samples)} samples, the best |r| is partly chance: see index "
            "discovery below."
        )
    )


def run_screening(ctx: RunContext, data: SampleData) -> None:
    """Step 2: screen the indices, then write Tables 2 and 3 and figures 3 and 4."""
    found = screen_indices(ctx, data)
    write_indices_section(ctx, found)
    write_screening_section(ctx, data, found.table3)
