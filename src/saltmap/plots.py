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
from matplotlib.figure import Figure

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
        fig.savefig(out, dpi=150, bbox_inches="tight")
        written.append(out)
    plt.close(fig)
    return written
