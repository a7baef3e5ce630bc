"""What the report needs from a config: the study's name, base settings, tolerance, objectives and
which space entries vary, as one frozen :class:`ReportSpec` (tests build one by hand)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from study.core.engine import Settings

METRIC_LABELS = {"dist_to_ols": "distance to OLS ‖θ − θ*‖", "final_cost": "final cost J",
                 "cost_gap": "cost gap J − J*", "rel_cost_gap": "relative cost gap (J − J*)/J*",
                 "epochs_run": "epochs run"}


def metric_label(column: str) -> str:
    """A reader's name for a metric column (``epochs_to_param_tol_0.01`` → epochs to
    ‖θ − θ*‖ ≤ 0.01)."""
    for prefix, what in (("epochs_to_param_tol_", "‖θ − θ*‖"),
                         ("epochs_to_cost_tol_", "(J − J*)/J*")):
        if column.startswith(prefix):
            return f"epochs to {what} ≤ {column.removeprefix(prefix)}"
    return METRIC_LABELS.get(column, column)


@dataclass(frozen=True)
class Objective:
    """One objective of the sweep as a column of the trials table."""

    column: str
    direction: str = "minimize"  # or "maximize"
    label: str = ""

    @property
    def title(self) -> str:
        return self.label if self.label and self.label != self.column \
            else metric_label(self.column)


@dataclass(frozen=True)
class ReportSpec:
    """What the report needs from a config (see :func:`spec_from_config`)."""

    name: str
    settings: Settings = field(default_factory=Settings)  # the base algorithm settings
    dist_tol: float = 0.01
    objectives: tuple[Objective, ...] = ()
    swept: tuple[str, ...] = ()  # space entries that vary: lr, epochs, init_m, …, settings
    log_scaled: frozenset[str] = frozenset()  # space entries sampled on a log scale
    constants: Mapping[str, Any] = field(default_factory=dict)  # fixed space entries
    data: str = ""  # where the data came from


def spec_from_config(cfg: Any) -> ReportSpec:
    """A :class:`ReportSpec` from a ``study.config.model.StudyConfig``. Objectives are read from the
    metric columns (``dist_to_ols``, ``epochs_to_param_tol_0.01``, …), not from the values told
    to Optuna, which are capped for diverged and unreached trials."""
    space = cfg.search.space
    objectives = tuple(
        Objective(o.metric if o.tol is None else f"{o.metric}_{float(o.tol):g}", o.direction)
        for o in cfg.search.objectives)
    return ReportSpec(
        name=cfg.name, settings=cfg.settings(), dist_tol=float(cfg.report.dist_tol),
        objectives=objectives, swept=tuple(cfg.search.swept),
        log_scaled=frozenset(k for k, v in space.items() if v.kind == "range" and v.log),
        constants={k: v.value for k, v in space.items() if v.kind == "const"},
        data=str(cfg.data.path))
