"""What the report's figures share: region colours, an Agg figure with panels, theory's edge
line, one legend below all panels, and lr and epoch ranges common to all panels."""

from __future__ import annotations

import math
import textwrap
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLORS = {"converged": "#1b9e4b", "not converged": "#3b75af", "diverged": "#d62728"}
MARKERS = {"converged": "o", "not converged": "o", "diverged": "x"}


def new_figure(n_panels: int, width: float = 7.0, height: float = 4.8, ncols: int = 2
               ) -> tuple[Figure, list]:
    """An Agg figure with ``n_panels`` axes of width × height inches each, ``ncols`` a row;
    the spare axes of the last row are hidden."""
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    if n_panels == 1:  # room for the titles and the legend below
        width, height = width * 1.4, height * 1.2
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def edge_line(ax, edge: float) -> None:
    """Theory's edge of stability as a dashed vertical line, its value written along it (call
    after the x limits are set; an edge off the plot is only named in the title)."""
    lo, hi = ax.get_xlim()
    if not math.isfinite(edge):
        ax.set_title(ax.get_title() + "\n(no edge: line search picks its own step)", fontsize=9)
    elif not lo < edge < hi:
        ax.set_title(ax.get_title() + f"\n(lr_max = {edge:.4g}, off the plot)", fontsize=9)
    else:
        ax.axvline(edge, color="black", linestyle="--", linewidth=1.2,
                   label="theory: edge of stability lr_max")
        ax.annotate(f"lr_max = {edge:.4g}", xy=(edge, 0.97), xycoords=ax.get_xaxis_transform(),
                    xytext=(-4, 0), textcoords="offset points", rotation=90, ha="right",
                    va="top", fontsize=8, bbox={"facecolor": "white", "edgecolor": "none",
                                                "alpha": 0.8, "pad": 1})


def wrap(title: str, width: int = 48) -> str:
    """A panel title in lines of at most ``width`` characters."""
    return textwrap.fill(title, width, break_on_hyphens=False)


def figure_legend(fig: Figure, axes: list) -> None:
    """One legend below all panels, from the labelled artists of every panel."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    if seen:
        wide = fig.get_figwidth() >= 11
        fig.legend(list(seen.values()), list(seen), loc="outside lower center",
                   ncols=min(3 if wide else 2, len(seen)), fontsize=8, frameon=False)


def _padded(lo: float, hi: float, log: bool, pad: float = 0.08) -> tuple[float, float]:
    """(lo, hi) widened by ``pad`` of the span on each side (of the log10 span when ``log``)."""
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or (abs(hi) or 1.0)
    lo, hi = lo - pad * span, hi + pad * span
    return (10 ** lo, 10 ** hi) if log else (lo, hi)


def lr_limits(panels: list[dict]) -> tuple[float, float]:
    """One lr range for all panels: every lr tried, and lr_max when it is near them."""
    lrs = np.concatenate([p["points"]["lr"].to_numpy(float) for p in panels])
    lo, hi = float(lrs.min()), float(lrs.max())
    for edge in (p["lr_max"] for p in panels):
        if math.isfinite(edge) and lo / 10 < edge < hi * 10:
            lo, hi = min(lo, edge), max(hi, edge)
    return _padded(lo, hi, True)


def epoch_limits(panels: list[dict]) -> tuple[float, float]:
    """One epoch range for all panels: the budgets, and down/up to the fewest epochs theory
    says convergence needs (at most 1000× the largest budget)."""
    pts = pd.concat([p["points"] for p in panels])
    low, high = float(pts["epochs"].min()), float(pts["epochs"].max())
    fewest = [float(p["frontier"]["epochs_needed"].min()) for p in panels
              if p["frontier"]["epochs_needed"].notna().any()]
    if fewest:
        low = min(low, max(min(fewest), 1.0))
        high = max(high, min(4 * max(fewest), 1000 * high))
    return low / 2, high * 2
