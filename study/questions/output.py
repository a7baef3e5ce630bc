"""The answer of ``study iterations`` as output: one JSON object, the plain-text report (the why,
the table of first epochs, the article's claims) and the data the figure draws.

Only formatting: every number comes from the :class:`study.questions.iterations.Answer`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import numpy as np

from study.questions.explain import criterion_text
from study.questions.iterations import Answer, Method, Target, gap_digits

# ── JSON ────────────────────────────────────────────────────────────────────────────────────


def _clean(value):
    """JSON-safe: numpy scalars to Python, non-finite floats to null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def _params(names: Sequence[str], theta: Sequence[float]) -> dict:
    if len(names) == 2:
        return {"m": float(theta[0]), "b": float(theta[1])}
    return {"w": [float(v) for v in theta[:-1]], "b": float(theta[-1])}


def _ratio(t: Target) -> float | None:
    if t.measured_epochs is None or t.predicted_epochs is None:
        return None
    if t.predicted_epochs == 0:
        return 1.0 if t.measured_epochs == 0 else None
    return t.measured_epochs / t.predicted_epochs


def to_json(a: Answer) -> dict:
    """The answer as one JSON-ready object (keys documented in ``study iterations --help``)."""
    runs = []
    for r in a.runs:
        m = r.method
        runs.append({
            "method": m.name, "label": m.label, "lr": m.lr,
            # init_m is the slope (one feature) or the list of weights (several)
            "init_m": r.init[0] if len(r.init) == 2 else list(r.init[:-1]),
            "init_b": r.init[-1],
            **({"beta": m.settings.momentum} if m.settings.optimizer == "momentum" else {}),
            "standardize": m.settings.standardize, "prediction": m.prediction,
            "fit_flags": m.flags,  # what `study fit` needs (besides data, start, tol) to run it
            "status": r.status, "epochs_run": r.epochs_run, "diverged_at": r.diverged_at,
            "final": _params(a.param_names, r.theta), "dist_to_ols": r.dist_to_ols,
            "rel_cost_gap": r.rel_cost_gap,
            "targets": [{"criterion": t.criterion, "tol": t.tol,
                         "measured_epochs": t.measured_epochs,
                         "predicted_epochs": t.predicted_epochs,
                         **({"predicted_reason": t.predicted_reason}
                            if t.predicted_epochs is None and t.predicted_reason else {}),
                         "ratio": _ratio(t)}
                        for t in r.targets],
            "budget": r.budget, **({"note": r.note} if r.note else {}),
        })
    reasons = {f"{k}_reason": "not finite in double precision"
               for k, v in (("lam_min", a.lam_min), ("lam_max", a.lam_max),
                            ("condition_number", a.condition_number), ("lr_max", a.lr_max))
               if not np.isfinite(v)}
    if a.lam_min == 0.0:
        reasons["lam_min_reason"] = "underflows to 0 in double precision (the data's scale)"
    return _clean({
        "gap": a.gap_mode, **reasons,
        "data": a.source, "n": a.n, "cost": a.cost, "lam_min": a.lam_min, "lam_max": a.lam_max,
        "condition_number": a.condition_number, "lr_max": a.lr_max,
        "ols": {**_params(a.param_names, a.ols_theta), "cost": a.ols_cost},
        "max_epochs": a.max_epochs, "param_tols": list(a.param_tols),
        "cost_tols": list(a.cost_tols), "runs": runs, "why": a.why, "claims": a.claims,
    })


# ── text ────────────────────────────────────────────────────────────────────────────────────

SHORT_NAMES = {"largest_stable_lr": "0.99·lr_max", "best_lr": "best lr", "standardized":
               "standardized", "momentum": "momentum", "exact_line_search": "exact LS",
               "backtracking_line_search": "backtrack LS"}


def short_name(method: Method, gd: str = "gd") -> str:
    """A method's name in the table and the legend: ``gd lr 0.0001`` for plain GD."""
    return f"{gd} lr {method.lr:.6g}" if method.name == "gd" else SHORT_NAMES[method.name]


def fnum(value: float, spec: str = ".6g") -> str:
    """A float for the text: formatted by ``spec``, or words where it is not finite."""
    if value is None or not np.isfinite(value):
        return "(beyond double precision)"
    return format(float(value), spec)


def gap_text(a: Answer | str) -> str:
    """How the cost gap is read: (J − J*)/J*, or J − J* when J* is at rounding level."""
    mode = a if isinstance(a, str) else a.gap_mode
    return "(J − J*)/J*" if mode == "relative" else "J − J*"


def epochs_text(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def start_text(s: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in s) + ")"


def _table(a: Answer) -> list[str]:
    targets = [("param", t) for t in a.param_tols] + [("cost", t) for t in a.cost_tols]
    w, left = 10, 34
    lines = [" " * left + "‖θ − θ*‖ ≤".center(w * len(a.param_tols))
             + f"{gap_text(a)} ≤".center(w * len(a.cost_tols)) + f"{'stopped':>12}",
             f"{'start':<10}{'method':<24}" + "".join(f"{t:>{w}g}" for _, t in targets)
             + f"{'at epoch':>12}"]
    for start in a.starts:
        for i, r in enumerate(r for r in a.runs if r.init == start):
            lines += _run_rows(a, r, start_text(start) if i == 0 else "", targets)
    return lines


def _run_rows(a: Answer, r, head: str, targets: list) -> list[str]:
    """A run's rows of the table: measured; then only what adds to it — theory's prediction
    where it differs from the measurement, the line-search bound, in words why a prediction
    is missing and why the run stopped before the cap."""
    w = 10
    stop = (f"diverged {r.diverged_at:,}" if r.status == "diverged" else
            f"{r.epochs_run:,}" if r.status != "max_epochs" or r.note else "cap")
    cells = [r.target(k, t) for k, t in targets]
    lines = [f"{head:<10}{short_name(r.method):<24}"
             + "".join(f"{epochs_text(c.measured_epochs):>{w}}" for c in cells) + f"{stop:>12}"]
    if r.status == "diverged" and r.method.lr >= a.lr_max:
        return [*lines, " " * 14 + f"{'predicted':<20}diverges: lr ≥ lr_max"]
    differs = any(c.predicted_epochs != c.measured_epochs for c in cells)
    if r.method.prediction == "upper bound" or (r.method.prediction == "exact" and differs):
        label = "bound ≤" if r.method.prediction == "upper bound" else "predicted"
        lines.append(" " * 14 + f"{label:<20}"
                     + "".join(f"{epochs_text(c.predicted_epochs):>{w}}" for c in cells))
    # one line per kind of reason (the epoch counts in parentheses differ per target)
    reasons = dict.fromkeys(c.predicted_reason.split(" (")[0] for c in cells
                            if c.predicted_epochs is None and c.predicted_reason
                            and r.method.prediction != "none")
    lines += [" " * 14 + f"{'— =':<20}{why}" for why in reasons]
    if r.note:
        lines.append(" " * 14 + f"{'stopped':<20}{r.note}")
    return lines


def agreement(a: Answer) -> tuple[int, int]:
    """(cells where theory's exact prediction equals the measured epoch, cells predicted)."""
    cells = [t for r in a.runs if r.method.prediction == "exact" and r.status != "diverged"
             for t in r.targets if t.predicted_epochs is not None]
    return sum(t.predicted_epochs == t.measured_epochs for t in cells), len(cells)


def _legend(a: Answer) -> list[str]:
    same, total = agreement(a)
    out = [f"  Each row is measured by iterating the engine. Theory's exact prediction equals it "
           f"in {same:,} of {total:,} cells"
           + ("; a 'predicted' row shows it where it differs." if same < total else ".")
           + " — = not reached by the cap (or not predicted; the reason follows).",
           "  exact LS: 'bound ≤' is the Kantorovich upper bound; backtracking has no prediction.",
           "  Each cure as run (type the flags into study fit, with --init-m/--init-b and "
           "--tol-param T, to get its row):"]
    seen = set()
    for r in a.runs:
        if r.method.name != "gd" and r.method.name not in seen:
            seen.add(r.method.name)
            out.append(f"    {SHORT_NAMES[r.method.name]:<14}{r.method.flags}")
    return out


def _why(a: Answer) -> list[str]:
    w = a.why
    out = ["Why it takes so long",
           f"  Hessian of J: λ_min = {fnum(a.lam_min)}, λ_max = {fnum(a.lam_max)}, condition "
           f"number κ = λ_max/λ_min = "
           + (fnum(a.condition_number, ",.0f") if a.condition_number < 1e9
              else fnum(a.condition_number, ".3g")),
           f"  lr_max = 2/λ_max = {fnum(a.lr_max)}: any larger learning rate diverges",
           *_best_lr_text(a),
           f"  slow direction {w['slow_direction_text']}"]
    for tc in w["time_constants"]:
        if tc["epochs"] is None:
            out.append(f"  lr {tc['lr']:g} ≥ lr_max: no time constant, the steep direction "
                       "grows")
        else:
            out.append(f"  at lr {tc['lr']:g} the slow direction shrinks by (1 − lr·λ_min) per "
                       f"epoch: time constant 1/(lr·λ_min) = {_count(tc['epochs'])} epochs per "
                       "factor e")
    comps = ", ".join(f"{start_text(s['init'])}: {abs(s['slow_component']):.3g}"
                      for s in w["starts"])
    out.append(f"  each start's distance along the slow direction sets the time: {comps}")
    ex = w.get("example")
    scale = "·J*" if a.gap_mode == "relative" else ""
    out.append(f"  cost-close is not parameters-close: {gap_text(a)} ≤ {w['cost_tol']:g} still "
               f"allows ‖θ − θ*‖ = {fnum(w['dist_allowed_at_cost_tol'], '.3g')} along the slow "
               f"direction (½·λ_min·δ² = {w['cost_tol']:g}{scale})")
    if ex and ex["cost_epoch"] is not None:
        out.append(f"  e.g. lr {ex['lr']:g} from {start_text(ex['init'])}: {gap_text(a)} ≤ "
                   f"{ex['cost_tol']:g} at epoch {epochs_text(ex['cost_epoch'])}, where "
                   f"‖θ − θ*‖ is still {fnum(ex['dist_at_cost_epoch'], '.3g')}; ‖θ − θ*‖ ≤ "
                   f"{ex['param_tol']:g} only at epoch {epochs_text(ex['param_epoch'])}")
    return out


def _best_lr_text(a: Answer) -> list[str]:
    """The best constant lr beside lr_max, with the digits that tell them apart."""
    best = next((r.method for r in a.runs if r.method.name == "best_lr"), None)
    if best is None or not np.isfinite(a.condition_number):
        return []
    n = gap_digits(a.condition_number)
    return [f"  the best constant lr 2/(λ_min + λ_max) = lr_max·κ/(κ + 1) = {best.lr:.{n}g} is "
            f"a fraction 1/(κ + 1) = {1.0 / (a.condition_number + 1.0):.2g} below lr_max = "
            f"{a.lr_max:.{n}g}: it shrinks the slowest and the steepest direction by the same "
            f"factor (κ − 1)/(κ + 1) per epoch (the steepest flipping sign each time), the best "
            "worst case of any constant lr; along the slow direction it is no faster than lr_max"]


def _count(epochs: float) -> str:
    """An epoch count that may be astronomically large: 132,490 or 1.2e+20."""
    if not np.isfinite(epochs):
        return "(beyond double precision)"
    return f"{epochs:,.0f}" if epochs < 1e9 else f"{epochs:.3g}"


def _worst(method: dict, criterion: dict) -> str:
    """A line-search claim method's worst epochs (over the starts) under one criterion."""
    hit = next(c for c in method["criteria"]
               if (c["criterion"], c["tol"]) == (criterion["criterion"], criterion["tol"]))
    return epochs_text(hit["worst_epochs"])


def line_search_verdicts(claim: dict) -> list[str]:
    """One sentence per line-search method: under which criteria "about 50" holds."""
    gd = claim["methods"][0]
    out = []
    for m in claim["methods"][1:]:
        holds = m["holds_under"]
        fails = [c for c in m["criteria"] if criterion_text(c["criterion"], c["tol"]) not in holds]
        name = m["label"]
        if not fails:
            tight = min(c["tol"] for c in m["criteria"] if c["criterion"] == "param")
            out.append(f"{name}: holds under every criterion checked, down to "
                       f"{criterion_text('param', tight)} (at most "
                       f"{max(c['worst_epochs'] for c in m['criteria'])} epochs from every "
                       "start)")
            continue
        # the loosest criterion of each kind that fails, next to plain GD's epochs for it
        shown = [max((c for c in fails if c["criterion"] == kind), default=None,
                     key=lambda c: c["tol"]) for kind in ("cost", "param")]
        parts = [f"{criterion_text(c['criterion'], c['tol'])} needs {_worst(m, c)} epochs "
                 f"(plain GD at lr {gd['lr']:g}: {_worst(gd, c)})" for c in shown if c is not None]
        if holds:
            loosest = next(c for c in m["criteria"]
                           if criterion_text(c["criterion"], c["tol"]) == holds[0])
            head = (f"holds only for {', '.join(holds)} (at most {_worst(m, loosest)} epochs "
                    f"from every start; plain GD: {_worst(gd, loosest)})")
        else:
            head = "does not hold for any criterion checked"
        out.append(f"{name}: {head}; " + "; ".join(parts))
    ws = claim["worst_start"]
    out.append(f"exact line search is this fast only from these starts: in 2-D its zigzag "
               f"speed depends on the start, and from {start_text(round(v, 4) for v in ws['init'])}"
               f" (as far from θ* as the first start) ‖θ − θ*‖ ≤ 0.01 takes "
               f"{epochs_text(ws['param_epoch'])} epochs")
    return out


def _ended(state: dict) -> str:
    """'diverged at epoch 1 (last finite values): ' for a run that diverged, else ''."""
    if state["status"] != "diverged":
        return ""
    return f"diverged at epoch {state['diverged_at']} (last finite values): "


def _claims(a: Answer) -> list[str]:
    c = a.claims
    if not c:
        return []
    t, s2, mil, st = c["text_lr"], c["text_2000"], c["million"], c["start"]
    verdict = "converges" if t["converges"] else (
        f"does NOT converge: lr_max = {t['lr_max']:.6g} < {t['lr']:g}; the steep direction "
        f"grows ×{fnum(t['growth_per_epoch'], '.4g')} per epoch; diverged at epoch "
        f"{t['diverged_at']}")
    out = ["The article's claims, checked on this data",
           f"  lr {t['lr']:g} (the text's) from {start_text(t['init'])}: {verdict}",
           f"  {s2['epochs']:,} epochs at lr {s2['lr']:g} from {start_text(s2['init'])}: "
           f"{_ended(s2)}m = {s2['m']:.5f}, b = {s2['b']:.5f}, ‖θ − θ*‖ = "
           f"{fnum(s2['dist_to_ols'], '.4g')}, {gap_text(a)} = {fnum(s2['rel_cost_gap'], '.3g')}",
           f"  {mil['epochs']:,} epochs at lr {mil['lr']:g} from {start_text(mil['init'])}: "
           f"{_ended(mil)}m = {mil['m']:.5f}, b = {mil['b']:.5f}, ‖θ − θ*‖ = "
           f"{fnum(mil['dist_to_ols'], '.3g')}"]
    if st["all_converged"]:
        tols = sorted(st["epochs"][0]["param_epochs"], reverse=True)[-2:]
        times = "; ".join(" / ".join(epochs_text(e["param_epochs"][t]) for t in tols)
                          + (" epochs" if i == 0 else "") + f" from {start_text(e['init'])}"
                          for i, e in enumerate(st["epochs"]))
        out.append(f"  the start does not change the limit (the cost is convex with one "
                   f"minimum): from every start GD ends within {st['param_tol']:g} of the same "
                   f"θ*; it changes the time: ‖θ − θ*‖ ≤ {' / '.join(f'{t:g}' for t in tols)} "
                   f"after {times}")
    out.append(f"  line search cuts the iterations \"from several thousand to around 50\" (read "
               f"as ≤ {c['line_search']['threshold_epochs']} epochs):")
    out += [f"    {v}" for v in line_search_verdicts(c["line_search"])]
    return out


def _wrap(lines: list[str], width: int = 100) -> list[str]:
    """Wrap indented prose lines, continuing two spaces deeper."""
    out = []
    for line in lines:
        indent = len(line) - len(line.lstrip(" "))
        out += textwrap.wrap(line.lstrip(" "), width, initial_indent=" " * indent,
                             subsequent_indent=" " * (indent + 2), break_on_hyphens=False,
                             break_long_words=False) or [""]
    return out


def format_answer(a: Answer) -> str:
    """The command's plain-text output."""
    names = a.param_names
    ols = ", ".join(f"{n}* = {fnum(v)}" for n, v in zip(names, a.ols_theta, strict=True))
    out = [f"How many epochs gradient descent needs on {a.source} ({a.n} points, cost "
           f"{a.cost})",
           f"OLS optimum θ*: {ols}; J* = {fnum(a.ols_cost)}"
           + ("" if a.gap_mode == "relative" else " (rounding level: cost gaps below are "
              "absolute, J − J*, not relative to J*)"), ""]
    out += [*_wrap(_why(a)), ""]
    out.append(f"First epoch at which each target is reached (cap {a.max_epochs:,} epochs)")
    out += [*_table(a), *_wrap(_legend(a)), ""]
    out += _wrap(_claims(a))
    return "\n".join(out).rstrip() + "\n"


# ── figure data ─────────────────────────────────────────────────────────────────────────────


def figure_data(a: Answer) -> dict:
    """What the figure draws: plain GD from every start, the cures from the first start, the
    tolerance lines, and the epochs at which runs diverged (epoch 0 cannot sit on a log axis,
    so every series starts at epoch 1)."""
    series = []
    tight = min(a.param_tols)
    for r in a.runs:
        if r.method.name != "gd" and r.init != a.starts[0]:
            continue
        keep = r.history_epoch >= 1
        name = short_name(r.method, gd="GD")
        hit = r.target("param", tight).measured_epochs
        done = (f"diverged at epoch {r.diverged_at}" if r.status == "diverged" else
                f"‖θ − θ*‖ ≤ {tight:g} at epoch {epochs_text(hit)}" if hit is not None else
                f"‖θ − θ*‖ > {tight:g} at epoch {a.max_epochs:,}")
        series.append({"label": f"{name} from {start_text(r.init)}: {done}",
                       "method": r.method.name, "lr": r.method.lr, "init": r.init,
                       "epoch": r.history_epoch[keep], "dist": r.history_dist[keep],
                       "rel_gap": r.history_rel_gap[keep], "diverged_at": r.diverged_at})
    series.sort(key=lambda s: s["method"] != "gd")  # stable: plain GD first, then the cures
    note = None
    ex = a.why.get("example")
    if ex and ex["cost_epoch"] is not None:
        note = {"epoch": ex["cost_epoch"], "rel_gap": ex["cost_tol"],
                "text": f"GD lr {ex['lr']:g} from {start_text(ex['init'])}: {gap_text(a)} ≤ "
                        f"{ex['cost_tol']:g} at epoch {epochs_text(ex['cost_epoch'])},"
                        f"\nyet (m, b) is still {ex['dist_at_cost_epoch']:.2g} from θ* there"}
    return {"series": series, "param_tols": a.param_tols, "cost_tols": a.cost_tols,
            "gap": a.gap_mode,
            "max_epochs": a.max_epochs, "source": a.source, "note": note}
