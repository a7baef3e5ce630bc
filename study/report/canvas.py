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
from matplotlib.ticker import FuncFormatter, NullLocator

from study.core.theory import NO_EDGE

COLORS = {"converged": "#1b9e4b", "not converged": "#3b75af", "diverged": "#d62728"}
MARKERS = {"converged": "o", "not converged": "o", "diverged": "x"}


# A fixed layout, in inches, from the lines of text around the panels: measuring every text
# (constrained layout) took most of the report's time, and these sizes do not change.
TITLE_LINE, PANEL_LINE, LEGEND_ROW = 0.25, 0.19, 0.2  # suptitle (12 pt), panel title, legend
XAXIS, YAXIS, EDGE = 0.6, 0.95, 0.15  # tick labels + axis label below and left; outer margin
COLORBAR = 1.35  # colour bar, its tick labels and a two-line label


def new_figure(n_panels: int, width: float = 7.0, height: float = 4.8, ncols: int = 2
               ) -> tuple[Figure, list]:
    """An Agg figure with ``n_panels`` axes of about width × height inches each, ``ncols`` a
    row; the spare axes of the last row are hidden. Lay it out with :func:`arrange`."""
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    if n_panels == 1:  # room for the titles and the legend below
        width, height = width * 1.4, height * 1.2
    fig = Figure(figsize=(width * ncols, height * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes[:n_panels])


def _lines(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def arrange(fig: Figure, axes: list, title: str = "", legend_ncols: int = 0,
            colorbar: bool = False) -> Any:
    """Lay the figure out once: ``title`` on top, the panels, one legend of every panel's
    labelled artists below them in ``legend_ncols`` columns (none when 0), a colour bar axis at
    the right when ``colorbar`` (returned, else None). The figure grows by the legend's height
    so the panels keep theirs."""
    handles = figure_handles(axes) if legend_ncols else {}
    rows = math.ceil(len(handles) / legend_ncols) if handles else 0
    legend = rows * LEGEND_ROW + (0.1 if rows else 0.0)
    width, height = fig.get_size_inches()
    height += legend
    fig.set_size_inches(width, height)
    grid = axes[0].get_subplotspec().get_gridspec()
    nrows, ncols = grid.get_geometry()
    head = max(_lines(ax.get_title()) for ax in axes) * PANEL_LINE + 0.1
    top = EDGE + (_lines(title) * TITLE_LINE if title else 0.0) + head
    bottom, left = EDGE + legend + XAXIS, YAXIS
    right = EDGE + 0.15 + (COLORBAR if colorbar else 0.0)
    panel_w = (width - left - right - (ncols - 1) * (YAXIS + 0.15)) / ncols
    panel_h = (height - top - bottom - (nrows - 1) * (XAXIS + head)) / nrows
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height,
                        top=1 - top / height, wspace=(YAXIS + 0.15) / panel_w,
                        hspace=(XAXIS + head) / panel_h)
    for ax in axes:
        _settle(ax)
    if title:
        fig.suptitle(title, y=1 - EDGE / height, va="top")
    if handles:
        legend = fig.legend(list(handles.values()), list(handles), loc="lower center",
                            bbox_to_anchor=(0.5, EDGE / height),
                            ncols=min(legend_ncols, len(handles)), fontsize=8, frameon=False)
        for handle in legend.legend_handles:  # markers shrunk for crowded panels read as dots
            if hasattr(handle, "set_sizes") and len(handle.get_sizes()):
                handle.set_sizes([max(float(handle.get_sizes()[0]), 30.0)])
    if not colorbar:
        return None
    tall = 1 - (top + bottom) / height
    return fig.add_axes((1 - (right - 0.15) / width, bottom / height + 0.1 * tall,
                         0.18 / width, 0.8 * tall))


def edge_line(ax, edge: float) -> None:
    """Theory's edge of stability as a dashed vertical line, its value in the panel title
    (written on the plot it sat on the points nearest the edge); call after the x limits are
    set. An edge off the plot is only named in the title."""
    lo, hi = ax.get_xlim()
    if not math.isfinite(edge):
        ax.set_title(ax.get_title() + f"\n(no edge: {NO_EDGE})", fontsize=9)
    elif not lo < edge < hi:
        ax.set_title(ax.get_title() + f"\n(lr_max = {edge:.4g}, off the plot)", fontsize=9)
    else:
        ax.axvline(edge, color="black", linestyle="--", linewidth=1.2,
                   label="theory: edge of stability lr_max (dashed)")
        ax.set_title(ax.get_title() + f"\nlr_max = {edge:.4g} (dashed)", fontsize=9)


def wrap(title: str, width: int = 48) -> str:
    """A panel title in lines of at most ``width`` characters."""
    return textwrap.fill(title, width, break_on_hyphens=False)


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def power_of_ten(value: float, _pos: Any = None) -> str:
    """A log-axis tick label as plain text (10³, 10⁻⁴; 2×10³ between decades), without
    mathtext, whose parsing was a tenth of the report's time."""
    if not (value > 0 and math.isfinite(value)):
        return ""
    exponent = math.floor(math.log10(value) + 1e-9)
    lead = round(value / 10.0 ** exponent, 6)
    power = "10" + str(exponent).translate(_SUPERSCRIPT)
    return power if lead == 1 else f"{lead:g}×{power}"


def _minor_label(value: float, _pos: Any = None) -> str:
    """Labels at 2 and 5 of each decade on a log axis spanning less than two decades."""
    if not (value > 0 and math.isfinite(value)):
        return ""
    lead = round(value / 10.0 ** math.floor(math.log10(value) + 1e-9), 6)
    if lead not in (2, 5):
        return ""
    return f"{value:g}" if 1e-2 <= value < 1e4 else power_of_ten(value)


def _settle(ax) -> None:
    """What the layout would measure for each draw, fixed once: the title sits at the top of the
    panel (no search for tick labels above it), log axes spanning two decades or more keep
    their major ticks only, and log tick labels are plain text."""
    ax.set_title(ax.get_title(), y=1.0, fontsize=ax.title.get_fontsize())
    for axis, (lo, hi) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if axis.get_scale() != "log":
            continue
        if not (lo > 0 and hi > 0):  # nothing positive drawn (every run diverged at once)
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("linear")
            continue
        axis.set_major_formatter(FuncFormatter(power_of_ten))
        if lo > 0 and hi > 0 and abs(math.log10(hi / lo)) >= 2:
            axis.set_minor_locator(NullLocator())
        else:
            axis.set_minor_formatter(FuncFormatter(_minor_label))


def figure_handles(axes: list) -> dict[str, Any]:
    """{label: handle} of the labelled artists of every panel, first seen first."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(label, handle)
    return seen


def legend_columns(fig: Figure) -> int:
    """Columns of a legend below the panels: 3 on a wide figure, else 2."""
    return 3 if fig.get_figwidth() >= 11 else 2


def crowd(n_points: int, most: int = 400) -> float:
    """Marker area factor for a panel of ``n_points``: 1 up to ``most``, then shrinking as
    √(most/n) (at least 0.3), so thousands of trials stay points rather than a blot."""
    return max(0.3, min(1.0, math.sqrt(most / max(n_points, 1))))


def stacking(regions: Any) -> dict[str, float]:
    """zorder per region: the rarest on top, so a few converged trials among thousands of
    others stay visible."""
    counts = pd.Series(regions).value_counts()
    return {r: 2.0 + i * 0.1 for i, r in enumerate(counts.index)}


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
    """One epoch range for all panels: the budgets, and up to the fewest epochs theory says
    convergence needs when every budget falls short of it (at most 1000× the largest budget).
    A frontier dipping below the smallest budget is cut: reaching down to it would leave most
    of each panel empty."""
    pts = pd.concat([p["points"] for p in panels])
    low, high = float(pts["epochs"].min()), float(pts["epochs"].max())
    fewest = [float(p["frontier"]["epochs_needed"].min()) for p in panels
              if p["frontier"]["epochs_needed"].notna().any()]
    if fewest and min(fewest) > high:
        high = min(1.5 * min(fewest), 1000 * high)
    return low / 2, high * 2
