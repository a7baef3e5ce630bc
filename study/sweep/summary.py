"""What a sweep reports: the end-of-run summary, the progress bar's counts, and the tidy table of
complete trials (:func:`trials_frame`)."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import pandas as pd
from optuna.trial import FrozenTrial
from tqdm import tqdm

from study.core import engine, theory
from study.sweep.objectives import best_trials, complete_trials, legacy_trials, objective_key
from study.sweep.sampling import SETTING_KEYS, build_space, init_names
from study.sweep.storage import load_study
from study.tracking.uri import ui_command, ui_text

if TYPE_CHECKING:  # reading the trials (study report) does not import MLflow
    from study.sweep.startup import Setup

FLOAT_COLUMNS = ("final_cost", "initial_cost", "dist_to_ols", "cost_gap", "rel_cost_gap",
                 "grad_norm")


@dataclass
class SweepSummary:
    """What a ``study run`` did; :func:`format_summary` prints it."""

    study: str
    n_trials: int  # target of complete trials
    n_complete: int
    n_new: int
    seconds: float
    counts: dict[str, int]  # by status, over all complete trials
    best: list[dict[str, Any]]  # number, values, params, status
    brackets: list[dict[str, Any]]  # per swept-settings group: settings, lr_converged, …
    storage: str
    mlflow_uri: str
    experiment_id: str
    parent_run_id: str | None
    ui_command: list[str]
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None
    workers: int = 1
    failed_workers: list[str] = field(default_factory=list)  # one line per failed worker
    exit_code: int = 0  # for `study run`: 2 when every failed worker met a StudyError, else 1
    objectives: list[str] = field(default_factory=list)  # names of the values in ``best``


def status_counts(trials: Sequence[FrozenTrial]) -> dict[str, int]:
    """Complete trials by status, every status present."""
    counts = {s: 0 for s in engine.STATUSES}
    counts.update(Counter(t.user_attrs.get("status") for t in trials
                          if t.user_attrs.get("status") in counts))
    return counts


def counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{s}={counts.get(s, 0)}" for s in engine.STATUSES)


class _Bar(tqdm):
    # no monitor thread: it only tunes how often a lagging bar redraws, and a thread left
    # running keeps the report from forking its painters (study.report.painters)
    monitor_interval = 0


def progress_bar(progress: bool, total: int, initial: int, counts: Mapping[str, int]) -> Any:
    """A tqdm bar on stderr (disabled when ``progress`` is False) with the status counts."""
    bar = _Bar(total=total, initial=initial, file=sys.stderr,
               disable=not progress, unit="trial", dynamic_ncols=True, desc="trials")
    bar.set_postfix_str(counts_text(counts), refresh=False)
    return bar


def brackets(trials: Sequence[FrozenTrial], problem: Any, base: engine.Settings
             ) -> list[dict[str, Any]]:
    """Per combination of swept settings: the largest converged and smallest diverged lr next
    to theory's lr_max for those settings."""
    groups: dict[tuple, list[FrozenTrial]] = {}
    for t in trials:
        key = tuple(sorted((k, v) for k, v in t.params.items() if k in SETTING_KEYS))
        groups.setdefault(key, []).append(t)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        settings = replace(base, **dict(key)) if key else base

        def lrs(status: str, members: list[FrozenTrial] = members) -> list[float]:
            return [float(t.params["lr"]) for t in members
                    if t.user_attrs.get("status") == status and "lr" in t.params]

        conv, div = lrs("converged"), lrs("diverged")
        out.append({"settings": dict(key), "lr_converged": max(conv) if conv else None,
                    "lr_diverged": min(div) if div else None,
                    "lr_max": theory.lr_max(problem, settings)})
    return out


def build_summary(cfg: Any, st: Setup, n_new: int, started: float) -> SweepSummary:
    """The summary of the sweep set up as ``st``, from its study as it is stored now;
    ``started`` is the ``time.perf_counter()`` of its start."""
    study, tracker = st.study, st.tracker
    complete = complete_trials(study)
    best = [{"number": t.number, "values": list(t.values), "params": dict(t.params),
             "status": t.user_attrs.get("status")} for t in best_trials(study)]
    notes = list(st.notes)
    old = legacy_trials(complete)
    if old:
        notes.append(f"{old} trial(s) were told before objectives lost their sentinels (1e300 "
                     f"for diverged, 1e299 for unreached): run with --fresh to score them anew")
    return SweepSummary(
        study=cfg.name, n_trials=st.target, n_complete=len(complete), n_new=n_new,
        seconds=time.perf_counter() - started, counts=status_counts(complete), best=best,
        brackets=brackets(complete, st.problem, st.base), storage=cfg.tracking.storage,
        mlflow_uri=tracker.uri, experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id, ui_command=ui_command(tracker.uri),
        notes=notes, objectives=[objective_key(o) for o in cfg.search.objectives])


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlflow ui` serves by default


def runs_url(mlflow_uri: str, experiment_id: str) -> str:
    """The page of the experiment's runs in the MLflow UI. MLflow 3.17 opens an experiment on
    the view of its global GenAI / Model training switch (GenAI until the browser has chosen
    otherwise), whatever the experiment's kind tag; ``workflowType=machine_learning`` in the
    link picks Model training, whose experiment page is its runs."""
    base = mlflow_uri.rstrip("/") if mlflow_uri.startswith(("http://", "https://")) \
        else LOCAL_UI
    return f"{base}/#/experiments/{experiment_id}?workflowType=machine_learning"


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_summary(s: SweepSummary) -> str:
    """The end-of-run text: counts, best trial(s), lr brackets, stores, the UI command."""
    rate = s.n_new / s.seconds if s.seconds > 0 else 0.0
    by = f" by {s.workers} workers" if s.workers > 1 else ""
    lines = [f"study {s.study!r}: {s.n_complete} of {s.n_trials} trials complete "
             f"({s.n_new} new{by} in {s.seconds:.1f} s, {rate:.1f} trials/s)"
             + (" — interrupted" if s.interrupted else ""),
             "  " + " · ".join(f"{k} {v}" for k, v in s.counts.items())]
    lines += [f"  note: {n}" for n in s.notes]
    lines += [f"  failed: {w}" for w in s.failed_workers]
    if not s.best:
        lines.append("  best: none (every complete trial diverged)")
    for b in s.best[:5]:
        names = s.objectives if len(s.objectives) == len(b["values"]) else \
            ["objective"] * len(b["values"])
        values = ", ".join(f"{n} {_fmt(v)}" for n, v in zip(names, b["values"], strict=True))
        params = " ".join(f"{k}={_fmt(v)}" for k, v in b["params"].items())
        lines.append(f"  best trial #{b['number']} ({b['status']}; {values}): {params}")
    for br in s.brackets:
        where = " ".join(f"{k}={v}" for k, v in br["settings"].items())
        edge = (f"theory lr_max {_fmt(br['lr_max'])}" if math.isfinite(br["lr_max"]) else
                f"no edge in theory ({theory.NO_EDGE})")
        lines.append(f"  lr bracket{' [' + where + ']' if where else ''}: largest converged "
                     f"{_fmt(br['lr_converged'])} · smallest diverged {_fmt(br['lr_diverged'])}"
                     f" · {edge}")
    lines += [f"  Optuna storage: {s.storage} (study {s.study!r})",
              f"  MLflow: {s.mlflow_uri} (experiment {s.study!r}, id {s.experiment_id})",
              f"  open the UI: {ui_text(s.mlflow_uri)}",
              f"  its runs: {runs_url(s.mlflow_uri, s.experiment_id)}"]
    if s.report_path:
        lines.append(f"  report: {s.report_path}")
    return "\n".join(lines)


# ── the trials table ────────────────────────────────────────────────────────────────────────


def trials_frame(cfg: Any):
    """One tidy row per COMPLETE trial of ``cfg``, ordered by trial number.

    Columns, in order:

    - ``trial``: Optuna trial number;
    - the space, named as in the config: ``lr``, ``epochs``, ``init_m``, ``init_b`` (or
      ``init_w1…init_wd``, ``init_b``) and every swept or constant algorithm setting;
    - ``status`` (converged | max_epochs | diverged);
    - ``final_m``, ``final_b`` (or ``final_w1…``, ``final_b``): θ at the end, original units
      (the last finite θ for a diverged trial);
    - ``final_cost``, ``initial_cost``, ``dist_to_ols``, ``cost_gap``, ``rel_cost_gap``,
      ``grad_norm`` (floats; NaN where the value was not finite);
    - ``epochs_run`` (int), ``diverged_at`` (Int64, <NA> unless diverged);
    - ``epochs_to_param_tol_<t>``, ``epochs_to_cost_tol_<t>`` (Int64; <NA> when never reached;
      ``<t>`` formatted with ``{:g}``, e.g. ``epochs_to_param_tol_0.01``);
    - ``seed`` (minibatch seed), ``mlflow_run_id``;
    - ``objective_<name>`` per objective: the value told to Optuna (capped for diverged trials).
    """
    study = load_study(cfg)
    complete = sorted(complete_trials(study), key=lambda t: t.number)
    if not complete:
        return pd.DataFrame()
    first = complete[0].user_attrs.get("result", {})
    d = max(sum(1 for k in first if k.startswith("final_") and k != "final_cost") - 1, 1)
    space = build_space(cfg, d)
    consts = space.constants
    space_names = list(dict.fromkeys(["lr", "epochs", *init_names(d), *space.names]))
    rows = []
    for t in complete:
        row = {"trial": t.number}
        row.update({n: t.params.get(n, consts.get(n)) for n in space_names})
        row.update(t.user_attrs.get("result", {}))
        row.update(status=t.user_attrs.get("status"),
                   mlflow_run_id=t.user_attrs.get("mlflow_run_id"))
        row.update({f"objective_{o.name}": v for o, v in zip(cfg.search.objectives, t.values,
                                                              strict=True)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    finals = [f"final_{n}" for n in (["m", "b"] if d == 1 else
                                     [*(f"w{j + 1}" for j in range(d)), "b"])]

    def tols(prefix: str) -> list[str]:
        found = [c for c in frame.columns if c.startswith(prefix)]
        return sorted(found, key=lambda c: -float(c[len(prefix):]))

    order = ["trial", *space_names, "status", *finals, *FLOAT_COLUMNS, "epochs_run",
             "diverged_at", *tols("epochs_to_param_tol_"), *tols("epochs_to_cost_tol_"), "seed",
             "mlflow_run_id", *(f"objective_{o.name}" for o in cfg.search.objectives)]
    frame = frame.reindex(columns=[c for c in order if c in frame.columns])
    for col in frame.columns:
        if col.startswith("epochs_to_") or col == "diverged_at":
            frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
        elif col in FLOAT_COLUMNS or col in finals:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame
