"""report.md and report.html: the report as a list of blocks, rendered twice.

A block is ('h1'|'h2'|'p', text), ('ul', items), ('table', frame) or ('img', path, caption);
:func:`report_blocks` lays them out from the tables of :mod:`study.report.regions` and the prose of
:mod:`study.report.text`, :func:`to_markdown` and :func:`to_html` render them.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from study.core.problem import Problem
from study.report.regions import (
    REGIONS,
    agreement,
    best_trials,
    group_columns,
    group_settings,
    init_columns,
    settings_groups,
    theory_facts,
)
from study.report.spec import ReportSpec
from study.report.text import conclusion, fmt

SUMMARY_HEADERS = {"group": "settings", "trials": "trials", "converged": "converged",
                   "not converged": "not converged", "diverged": "diverged",
                   "largest_converged_lr": "largest converging lr",
                   "smallest_diverged_lr": "smallest diverging lr", "lr_max": "theory lr_max",
                   "bracket_holds_lr_max": "bracket holds lr_max",
                   "agreement": "agreement with theory"}
FILES = ["trials.csv and trials.parquet: every complete trial with its region and theory's "
         "prediction", "summary.json: the region table and the theory figures",
         "figures/: the figures as PNG"]

Images = Mapping[str, tuple[Path, str]]  # figure key → (PNG path, caption)


def trial_columns(table: pd.DataFrame, problem: Problem, spec: ReportSpec) -> list[str]:
    """The columns worth showing for a trial in a document table."""
    wanted = ["trial", "lr", "epochs", *init_columns(problem), *group_columns(table),
              "region", "predicted_region", *(f"final_{n}" for n in problem.param_names),
              "dist_to_ols", "predicted_epochs_to_dist_tol",
              *(o.column for o in spec.objectives)]
    return list(dict.fromkeys(c for c in wanted if c in table.columns))


def ols_text(problem: Problem) -> str:
    """The least-squares line (one feature) or fit, in words."""
    theta = problem.ols_theta
    terms = " + ".join(f"{fmt(w)}·{n}" for w, n in zip(theta[:-1], problem.x_names, strict=True))
    return (f"Its least-squares {'line' if problem.d == 1 else 'fit'} is {problem.y_name} = "
            f"{terms} + {fmt(theta[-1])}.").replace("+ -", "− ")


def _figures(images: Images, *keys: str) -> list[tuple]:
    return [("img", *images[k]) for k in keys if k in images]


def _opening(problem: Problem, table: pd.DataFrame, summary: pd.DataFrame, spec: ReportSpec,
             images: Images) -> list[tuple]:
    """Title, what the regions mean, the conclusion, and the data."""
    counts = table["region"].value_counts()
    return [
        ("h1", f"Gradient descent study: {spec.name}"),
        ("p", f"{len(table)} complete trials: " + ", ".join(
            f"{int(counts.get(r, 0))} {r}" for r in REGIONS) + f". A trial is converged when "
            f"its final (m, b) lies within ‖θ − θ*‖ ≤ {fmt(spec.dist_tol)} of the least-squares "
            "(OLS) optimum θ*, diverged when its cost blew up, and not converged when it was "
            "stable but its epoch budget ran out first."),
        ("h2", "Conclusion"), ("ul", conclusion(problem, table, summary, spec)),
        ("h2", "The data and its least-squares line"),
        ("p", f"{problem.n} points from {spec.data or problem.source}; feature(s) "
              f"{', '.join(problem.x_names)}, target {problem.y_name}. " + ols_text(problem)
              + f" Cost J = {spec.settings.cost}; "
              f"J* = {fmt(problem.ols_cost(spec.settings.cost))}."),
        *_figures(images, "data"),
    ]


def _theory(problem: Problem, table: pd.DataFrame, spec: ReportSpec) -> list[tuple]:
    """λ_min, λ_max, κ, lr_max and the best lr per settings group, and the slowest direction
    of the group with the largest κ."""
    facts, worst = [], (-1.0, "", "")
    for label, part in settings_groups(table):
        f = theory_facts(problem, group_settings(part, spec.settings))
        facts.append({"settings": label, "λ_min": f["lam_min"], "λ_max": f["lam_max"],
                      "condition number κ": f["condition_number"], "lr_max": f["lr_max"],
                      "best constant lr 2/(λ_min+λ_max)": f["best_lr"],
                      "epochs per e-fold at best lr": f["time_constant_at_best_lr"]})
        if label == "all trials" or f["condition_number"] >= worst[0]:
            worst = (f["condition_number"], f["slow_direction"],
                     "" if label == "all trials" else f" (for {label}, the largest κ)")
    return [("h2", "What theory says"), ("table", pd.DataFrame(facts)),
            ("p", f"Slowest direction of the cost surface{worst[2]}: {worst[1]}. Plain GD is "
                  "stable only for lr < lr_max, and along the slowest direction the error "
                  "shrinks by (1 − lr·λ_min) per epoch: with a large κ, any lr small enough for "
                  "the steep direction is tiny for the flat one.")]


def _regions(summary: pd.DataFrame, images: Images) -> list[tuple]:
    shown = summary[list(SUMMARY_HEADERS)].assign(agreement=summary["agreement"].map(
        lambda a: "—" if a is None or pd.isna(a) else f"{a:.0%}"))
    return [("h2", "Regions: where gradient descent converges, runs out of epochs, or diverges"),
            ("table", shown.rename(columns=SUMMARY_HEADERS)),
            *_figures(images, "regions", "distance")]


def _measured_against_predicted(problem: Problem, table: pd.DataFrame, spec: ReportSpec,
                                frontier_table: pd.DataFrame) -> list[tuple]:
    out = [("h2", "Measured against predicted"),
           ("p", "Theory's frontier: the epochs needed to reach ‖θ − θ*‖ ≤ "
                 f"{fmt(spec.dist_tol)}, by lr (from the start(s) shown)."),
           ("table", frontier_table)]
    rate, differ = agreement(table)
    if rate is not None:
        out.append(("p", f"Measured and predicted regions agree for {rate:.1%} of the trials; "
                         f"{len(differ)} differ" + (":" if len(differ) else ".")))
        if len(differ):
            out.append(("table", differ[trial_columns(table, problem, spec)].head(30)))
    return out


def report_blocks(problem: Problem, table: pd.DataFrame, summary: pd.DataFrame,
                  spec: ReportSpec, images: Images, frontier_table: pd.DataFrame) -> list[tuple]:
    """The whole document as blocks, rendered by :func:`to_markdown` and :func:`to_html`."""
    out = [*_opening(problem, table, summary, spec, images), *_theory(problem, table, spec),
           *_regions(summary, images),
           *_measured_against_predicted(problem, table, spec, frontier_table),
           ("h2", "Cost curves and the error surface"), *_figures(images, "cost", "contour")]
    if "axes" in images or "pareto" in images:
        out += [("h2", "Each swept setting against the objective"),
                *_figures(images, "axes", "pareto")]
    out.append(("h2", "Best trials (diverged trials are never best)"))
    for title, best in best_trials(table, spec).items():
        out += [("p", f"By {title}:"), ("table", best[trial_columns(table, problem, spec)])]
    return [*out, ("h2", "Files"), ("ul", FILES)]


def _cell(value: Any) -> str:
    return fmt(value) if not isinstance(value, str) else value


def _md_table(frame: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "---|" * len(frame.columns)
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |"
            for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows])


def to_markdown(blocks: Sequence[tuple], folder: Path) -> str:
    """Markdown with images linked relative to ``folder``."""
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            out.append(("# " if kind == "h1" else "## ") + rest[0])
        elif kind == "p":
            out.append(rest[0])
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]))
        elif kind == "table":
            out.append(_md_table(rest[0]))
        elif kind == "img":
            out.append(f"![{rest[1]}]({rest[0].relative_to(folder).as_posix()})\n\n*{rest[1]}*")
    return "\n\n".join(out) + "\n"


_CSS = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;"
        "line-height:1.45}table{border-collapse:collapse;margin:.5em 0;font-size:90%}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f3f3f3}"
        "img{max-width:100%}figure{margin:1em 0}figcaption{color:#444;font-size:90%}")


def _html_table(frame: pd.DataFrame) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(str(c))}</th>" for c in frame.columns)
    rows = "".join("<tr>" + "".join(f"<td>{esc(_cell(v))}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    return f"<table><tr>{head}</tr>{rows}</table>"


def to_html(blocks: Sequence[tuple], title: str) -> str:
    """One self-contained HTML page: images embedded as base64 data URIs."""
    esc = html.escape
    body = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2", "p"):
            body.append(f"<{kind}>{esc(rest[0])}</{kind}>")
        elif kind == "ul":
            body.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            body.append(_html_table(rest[0]))
        elif kind == "img":
            data = base64.b64encode(rest[0].read_bytes()).decode("ascii")
            body.append(f'<figure><img alt="{esc(rest[1])}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{esc(rest[1])}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}'
            f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(body)
            + "\n</body></html>\n")
