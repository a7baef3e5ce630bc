"""The figure of ``study iterations``: distance to θ* and relative cost gap against epochs.

Two log-log panels share the epoch axis: ‖θ − θ*‖ (left) and (J − J*)/J* (right). Plain GD from
every start is drawn solid, the cures from the first start dashed; dotted horizontal lines are the
tolerances, and a dot marks where each run first meets the tightest one (so runs that finish in
one epoch stay visible). A red ✕ marks a run that diverged. The data comes from
:func:`study.questions.output.figure_data`; this module only draws.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from study.errors import StudyError
from study.questions.iterations import Answer
from study.questions.output import figure_data

_START_COLORS = ("black", "tab:brown", "tab:pink", "tab:olive", "tab:gray")
_LR_STYLES = ("-", "-.", ":", (0, (5, 1)))
_CURE_COLORS = {"largest_stable_lr": "tab:blue", "best_lr": "tab:cyan",
                "standardized": "tab:green", "momentum": "tab:purple",
                "exact_line_search": "tab:orange", "backtracking_line_search": "tab:red"}
_PANELS = (("dist", "param_tols", "‖θ − θ*‖", "distance of (m, b) to the least-squares line"),
           ("rel_gap", "cost_tols", "(J − J*) / J*", "relative cost gap"))


def build(answer: Answer) -> plt.Figure:
    """The figure as a matplotlib object (tests inspect its axes and artists)."""
    data = figure_data(answer)
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 6.6), sharex=True)
    starts = list(dict.fromkeys(s["init"] for s in data["series"]))
    lrs = list(dict.fromkeys(s["lr"] for s in data["series"] if s["method"] == "gd"))
    for ax, panel in zip(axes, _PANELS, strict=True):
        _draw_panel(ax, data, panel, starts, lrs)
    if data["note"]:
        note = data["note"]
        axes[1].annotate(note["text"], (note["epoch"], note["rel_gap"]),
                         xytext=(0.97, 0.70), textcoords="axes fraction", ha="right",
                         fontsize=8.5, bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"},
                         arrowprops={"arrowstyle": "->", "color": "0.3"})
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8.5, frameon=False,
               bbox_to_anchor=(0.5, 0.035))
    fig.text(0.5, 0.008, "solid: plain GD from each start; dashed: the cures from the first "
             "start; dotted: the tolerances; ● first epoch within the tightest; red ✕: diverged;"
             " each run stops once all its targets are met", ha="center", fontsize=8.5,
             color="0.3")
    fig.suptitle(f"Gradient descent on {Path(data['source']).name}: the cost gets close long "
                 "before (m, b) does — and the cures", fontsize=12)
    fig.tight_layout(rect=(0, 0.17, 1, 0.96))
    return fig


def _style(series: dict, starts: list, lrs: list) -> dict:
    """Plain GD: a colour per start (the first one thick), a dash pattern per lr; a cure: its
    own colour, dashed."""
    if series["method"] != "gd":
        return {"color": _CURE_COLORS[series["method"]], "lw": 1.5, "ls": "--"}
    return {"color": _START_COLORS[starts.index(series["init"]) % len(_START_COLORS)],
            "lw": 3.4 if series["init"] == starts[0] else 1.8,
            "ls": _LR_STYLES[lrs.index(series["lr"]) % len(_LR_STYLES)]}


def _draw_panel(ax: plt.Axes, data: dict, panel: tuple[str, str, str, str], starts: list,
                lrs: list) -> None:
    key, tols_key, ylabel, title = panel
    if key == "rel_gap" and data.get("gap") == "absolute":  # J* is rounding: gaps are absolute
        ylabel, title = "J − J*", "cost gap (absolute: J* is at rounding level)"
    tols = sorted(data[tols_key])
    floor = tols[0] / 100.0
    top = 1.0
    for s in data["series"]:
        style = _style(s, starts, lrs)
        x, y = s["epoch"], s[key]
        if x.size:
            top = max(top, float(np.nanmax(y)))
        ax.plot(x, np.maximum(y, floor * 1e-3), label=s["label"], **style)
        hit = np.flatnonzero(y <= tols[0])
        if hit.size:
            ax.plot(x[hit[0]], tols[0], "o", color=style["color"], ms=6, zorder=5)
        if s["diverged_at"] is not None and x.size:
            ax.plot(x[-1], min(float(y[-1]), top), "x", color="red", ms=11, mew=2.5, zorder=6)
    for t in tols:
        ax.axhline(t, color="0.55", lw=0.9, ls=":")
        ax.annotate(f"{t:g}", (1.0, t), xycoords=("axes fraction", "data"), xytext=(3, 0),
                    textcoords="offset points", va="center", fontsize=8, color="0.35")
    for epoch, text in ((2000, "2,000 epochs\n(the article's text)"),
                        (1_000_000, "10⁶ epochs\n(a reader's fix)")):
        if epoch <= data["max_epochs"]:
            ax.axvline(epoch, color="0.8", lw=1.0, zorder=0)
            ax.annotate(text, (epoch, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -4),
                        textcoords="offset points", va="top", fontsize=8, color="0.4")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(floor, top * 3.0)
    ax.set_xlim(0.8, data["max_epochs"] * 1.5)
    ax.set_title(title, fontsize=11)
    ax.set_ylabel(ylabel + "  (log scale)")
    ax.set_xlabel("epoch (log scale; epoch 0 not shown)")
    ax.grid(True, which="major", color="0.92")


def check_destination(path: str | Path) -> Path:
    """The figure's path, refused at once when its folder does not exist (no folder is made:
    a mistyped path must not create folders anywhere, least of all at the filesystem root)."""
    out = Path(path)
    if out.is_dir():
        raise StudyError(f"--figure {path}: a folder; name the file, e.g. {out / 'iterations.png'}")
    folder = out.absolute().parent
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise StudyError(f"--figure {path}: the folder {folder} {what}")
    return out if out.suffix else out.with_suffix(".png")  # the file matplotlib would write


def draw(answer: Answer, path: str | Path) -> Path:
    """Save the figure as PNG (or any format matplotlib knows by the suffix) into an existing
    folder (:func:`check_destination`)."""
    out = check_destination(path)
    fig = build(answer)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
