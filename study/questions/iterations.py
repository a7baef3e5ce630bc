"""The runs behind the 1,000,000-iteration question: the ways to run GD, their first epochs as
measured by the engine and as predicted by theory, and the :class:`Answer` that holds them.

A target is met at the first epoch with ‖θ_n − θ*‖ ≤ t (``param``) or (J_n − J*)/J* ≤ t
(``cost``). The engine iterates until every target is met (or the cap);
:func:`study.core.prediction.predicted_epochs` gives the same epochs from the modal form
θ_n − θ* = (I − lr·H)ⁿ(θ₀ − θ*). Plain GD is one :class:`Method`; :func:`cures` are the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal

import numpy as np

from study.core import engine as E
from study.core import prediction as P
from study.core import theory as T
from study.core.problem import Problem

HISTORY_POINTS = 240  # points kept of each run's path, for the figure
# Methods without an exact prediction (line searches) first run this many epochs; they go on
# to the cap only if the rate measured over the second half of that run could meet every
# target by the cap.
PROBE_EPOCHS = 20_000
BACKTRACKING_STEP = 1.0  # initial step tried each epoch (the engine's armijo/shrink defaults)


@dataclass(frozen=True)
class Method:
    """A way to run GD: ``name`` (JSON), a human ``label``, its lr and settings, and the
    ``study fit`` flags that run it (every number exactly the float that was run)."""

    name: str
    label: str
    lr: float
    settings: E.Settings
    prediction: str  # "exact" | "upper bound" | "none"
    flags: str = ""


@dataclass(frozen=True)
class Target:
    criterion: str  # "param" | "cost"
    tol: float
    measured_epochs: int | None
    predicted_epochs: int | None
    predicted_reason: str | None = None  # why predicted_epochs is None, in words


@dataclass(frozen=True)
class Run:
    """One method from one start, measured by the engine and predicted by theory."""

    method: Method
    init: tuple[float, ...]
    status: str
    epochs_run: int
    diverged_at: int | None
    theta: np.ndarray
    dist_to_ols: float
    rel_cost_gap: float
    targets: list[Target]
    history_epoch: np.ndarray  # for the figure: epochs, distance and relative cost gap
    history_dist: np.ndarray
    history_rel_gap: np.ndarray
    budget: int = 0  # epochs the engine was allowed (below the cap when theory rules out more)
    note: str | None = None  # why the run stopped before the cap without meeting its targets

    def target(self, criterion: str, tol: float) -> Target:
        return next(t for t in self.targets if t.criterion == criterion and t.tol == tol)


@dataclass(frozen=True)
class Answer:
    """Everything ``study iterations`` shows."""

    source: str
    n: int
    cost: str
    param_names: tuple[str, ...]
    ols_theta: np.ndarray
    ols_cost: float
    lam_min: float
    lam_max: float
    condition_number: float
    lr_max: float
    lrs: tuple[float, ...]
    starts: tuple[tuple[float, ...], ...]
    param_tols: tuple[float, ...]
    cost_tols: tuple[float, ...]
    max_epochs: int
    runs: list[Run]
    why: dict
    claims: dict = field(default_factory=dict)
    gap_mode: str = "relative"  # "relative": (J − J*)/J*; "absolute": J − J* (J* is rounding)


def rel_gap_denominator(problem: Problem, cost: str) -> float:
    """J*, the denominator of the relative cost gap (J − J*)/J*; 1 when J* is at rounding
    level and the gap is read as absolute (:func:`study.core.theory.gap_denominator`)."""
    return T.gap_denominator(problem, cost)[0]


# ── methods ─────────────────────────────────────────────────────────────────────────────────


def plain(lr: float, settings: E.Settings) -> Method:
    return Method("gd", f"plain GD, lr {lr:.6g}", lr, settings, "exact", f"--lr {lr!r}")


# ── values a reader can type back ───────────────────────────────────────────────────────────


def typed(value: float, digits: int, rounding: str = ROUND_FLOOR) -> float:
    """``value`` rounded (down by default) to ``digits`` significant digits: printed with
    ``format(v, f".{digits}g")`` it reads back as exactly this float, so what the text shows
    is what was run. Non-finite values are returned as they are."""
    if not np.isfinite(value) or value == 0.0:
        return float(value)
    return float(Context(prec=digits, rounding=rounding).create_decimal(float(value)))


def gap_digits(kappa: float) -> int:
    """Significant digits that keep a rounded 2/(λ_min + λ_max) within 1 % of its distance
    lr_max/(κ + 1) below lr_max (it sits a fraction 1/(κ + 1) below the edge)."""
    if not np.isfinite(kappa):
        return 17
    return int(min(17, max(4, np.ceil(np.log10(kappa + 1.0)) + 3)))


def typed_momentum(problem: Problem, settings: E.Settings) -> tuple[float, float, str]:
    """Heavy ball as a reader can type it: (lr, β, β's text). The tuned lr
    4/(√λ_max + √λ_min)² lies within about 1/κ of the edge 2(1 + β)/λ_max, so it is rounded
    down to 4 digits; β is then the tuned value for that lr, (1 − √(lr·λ_min))², rounded up
    to the decimals that keep 1 − β within 1 %. Every mode then turns with modulus √β (a
    β rounded down would make the slow mode real and slower, as √ of the error)."""
    lr_tuned, beta_tuned = T.tuned_momentum(problem, settings)
    lr = typed(lr_tuned, 4)
    lam_min = max(T.spectrum(problem, settings).lam_min, 0.0)
    exact = (1.0 - np.sqrt(lr * lam_min)) ** 2
    if not np.isfinite(exact):  # no finite spectrum: theory's values as they are, β < 1
        beta = min(beta_tuned, float(np.nextafter(1.0, 0.0)))
        return lr, beta, repr(beta)
    decimals = int(np.clip(np.ceil(-np.log10(0.01 * max(1.0 - exact, 1e-300))), 2, 16))
    beta = float(Decimal(float(exact)).quantize(Decimal(1).scaleb(-decimals), ROUND_CEILING))
    if beta >= 1.0:  # 1 − β below the printed decimals: the largest float below 1
        beta = float(np.nextafter(1.0, 0.0))
        return lr, beta, repr(beta)
    return lr, beta, f"{beta:.{decimals}f}"


def cures(problem: Problem, settings: E.Settings) -> list[Method]:
    """The cures of slow convergence, each with the lr theory picks for it, rounded so that
    the printed values are the ones run (:func:`typed`):

    - ``largest_stable_lr``: 0.99·lr_max, lr_max = 2/λ_max (just under the edge);
    - ``best_lr``: 2/(λ_min + λ_max) = lr_max·κ/(κ + 1), the constant lr with the best
      worst-case rate (κ − 1)/(κ + 1), a fraction 1/(κ + 1) below lr_max;
    - ``standardized``: GD on z-scored x at the standardized problem's own best lr;
    - ``momentum``: heavy ball with (lr, β) ≈ (4/(√λ_max + √λ_min)², ((√κ − 1)/(√κ + 1))²)
      (:func:`typed_momentum`);
    - ``exact_line_search``: t = gᵀg / gᵀHg each epoch (no lr);
    - ``backtracking_line_search``: Armijo from the initial step 1 each epoch.
    """
    gd = replace(settings, optimizer="gd", standardize=False)
    std = replace(gd, standardize=True)
    n_best = gap_digits(T.spectrum(problem, gd).condition_number)
    n_std = gap_digits(T.spectrum(problem, std).condition_number)
    lr_edge = typed(0.99 * T.lr_max(problem, gd), 4)
    lr_best = typed(T.best_lr(problem, gd), n_best)
    lr_std = typed(T.best_lr(problem, std), n_std)
    lr_m, beta, beta_text = typed_momentum(problem, gd)
    ls = replace(gd, optimizer="line_search")
    step = f"{BACKTRACKING_STEP:g}"
    return [
        Method("largest_stable_lr", f"largest stable lr ≈ 0.99·lr_max = {lr_edge:.4g}", lr_edge,
               gd, "exact", f"--lr {lr_edge:.4g}"),
        Method("best_lr", f"best constant lr 2/(λmin+λmax) = {lr_best:.{n_best}g}", lr_best,
               gd, "exact", f"--lr {lr_best:.{n_best}g}"),
        Method("standardized", f"standardized x, its best lr {lr_std:.{n_std}g}", lr_std, std,
               "exact", f"--standardize --lr {lr_std:.{n_std}g}"),
        Method("momentum", f"momentum β = {beta_text}, lr {lr_m:.4g} (tuned)", lr_m,
               replace(gd, optimizer="momentum", momentum=beta), "exact",
               f"--optimizer momentum --momentum {beta_text} --lr {lr_m:.4g}"),
        Method("exact_line_search", "exact line search t = gᵀg/gᵀHg", 1.0,
               replace(ls, line_search="exact"), "upper bound",
               "--optimizer line_search --line-search exact --lr 1"),
        Method("backtracking_line_search",
               f"backtracking from step {step}, Armijo {settings.armijo:g}, "
               f"shrink {settings.shrink:g}", BACKTRACKING_STEP,
               replace(ls, line_search="backtracking"), "none",
               f"--optimizer line_search --line-search backtracking --lr {step}"),
    ]


# ── measuring ───────────────────────────────────────────────────────────────────────────────


def stop_tolerance(problem: Problem, settings: E.Settings, param_tols: Sequence[float],
                   cost_tols: Sequence[float]) -> float:
    """A distance at which every target is surely reached, so long runs may stop there:
    the smallest param tol, and √(2 t J*/λ_max) for each cost tol t (J − J* ≤ ½λ_max‖δ‖²)."""
    lam_max = T.spectrum(problem, replace(settings, standardize=False)).lam_max
    den = rel_gap_denominator(problem, settings.cost)
    dists = [*param_tols, *(np.sqrt(2.0 * t * den / lam_max) for t in cost_tols)]
    return float(min(dists))


def measure(problem: Problem, methods: Sequence[Method], starts: Sequence[Sequence[float]],
            param_tols: Sequence[float], cost_tols: Sequence[float], max_epochs: int,
            predict: bool = True) -> list[Run]:
    """Every method from every start, run by the engine (one batch per distinct settings) up
    to ``max_epochs`` and predicted by theory; results in the order method-major.

    Theory comes first: where its prediction is exact and says a target is not reached by the
    cap, the engine stops soon after the last target theory does predict (no cap is spent
    iterating what cannot finish)."""
    param_tols, cost_tols = tuple(map(float, param_tols)), tuple(map(float, cost_tols))
    pairs = [(m, tuple(map(float, s))) for m in methods for s in starts]
    den = rel_gap_denominator(problem, methods[0].settings.cost) if methods else 1.0
    j_star = problem.ols_cost(methods[0].settings.cost) if methods else 0.0
    engine_den = j_star if j_star > 0 else 1.0
    engine_cost_tols = tuple(t * den / engine_den for t in cost_tols)
    trials, preds = [], []
    for method, init in pairs:
        if predict:
            pred = P.predictions(problem, method.settings, method.lr, init, param_tols,
                                 cost_tols, max_epochs, gap_den=den)
        else:
            none = P.Prediction(None, None, "not predicted")
            pred = (dict.fromkeys(param_tols, none), dict.fromkeys(cost_tols, none))
        preds.append(pred)
        s = replace(method.settings, param_tols=param_tols, cost_tols=engine_cost_tols,
                    tol_param=stop_tolerance(problem, method.settings, param_tols, cost_tols),
                    tol_cost_change=None, tol_grad=None, record_path=True,
                    history_points=HISTORY_POINTS)
        trials.append(E.Trial(method.lr, _budget(method, pred, max_epochs), init, s))
    results = E.run(problem, trials)
    notes: list[str | None] = [None] * len(trials)
    for i, (trial, r) in enumerate(zip(trials, results, strict=True)):
        if pairs[i][0].prediction == "exact" and trial.epochs < max_epochs \
                and r.status == "max_epochs":
            notes[i] = (f"stopped at epoch {trial.epochs:,}: theory says the remaining targets "
                        f"are not reached by the cap")
    _probe_then_run(problem, trials, results, notes, max_epochs)
    tols = _Tols(param_tols, cost_tols, engine_cost_tols, den)
    return [_run(problem, m, init, r, pred, tols, t.epochs, note)
            for (m, init), r, pred, t, note in zip(pairs, results, preds, trials, notes,
                                                   strict=True)]


def _probe_then_run(problem: Problem, trials: list[E.Trial], results: list[E.Result],
                    notes: list[str | None], max_epochs: int) -> None:
    """Re-run to the cap the probed trials (those with ``epochs == PROBE_EPOCHS`` below the
    cap) whose measured rate could still meet every target by the cap; note the others."""
    again = []
    for i, (trial, r) in enumerate(zip(trials, results, strict=True)):
        if trial.epochs != PROBE_EPOCHS or notes[i] is not None or r.status != "max_epochs":
            continue
        needed = _extrapolate(problem, r, trial.settings.tol_param)
        if needed is not None and r.epochs_run + needed <= max_epochs:
            again.append(i)
        else:
            notes[i] = (f"stopped at epoch {r.epochs_run:,}: at the rate measured over its "
                        "second half it would need "
                        + ("forever" if needed is None else P.beyond_text(r.epochs_run + needed)))
    for i, r in zip(again, E.run(problem, [replace(trials[i], epochs=max_epochs)
                                           for i in again]), strict=True):
        results[i], trials[i] = r, replace(trials[i], epochs=max_epochs)


def _extrapolate(problem: Problem, r: E.Result, tol: float) -> float | None:
    """Epochs still needed to reach ‖θ − θ*‖ ≤ tol at the linear rate the run showed between
    the middle and the end of its history; None when it made no progress."""
    dist = np.linalg.norm(r.history_theta - problem.ols_theta, axis=1)
    n = r.history_epoch
    mid = int(np.searchsorted(n, n[-1] // 2))
    with np.errstate(all="ignore"):
        rate = (np.log(dist[-1]) - np.log(dist[mid])) / max(int(n[-1] - n[mid]), 1)
        if not rate < 0.0 or not np.isfinite(rate):
            return None
        return float(max(0.0, (np.log(tol) - np.log(dist[-1])) / rate))


def _budget(method: Method, pred: tuple[dict, dict], max_epochs: int) -> int:
    """The cap, or — when an exact prediction says some target is out of reach — a little
    more than the last target theory predicts (at least 1,000 epochs, for the path)."""
    if method.prediction != "exact":
        return min(max_epochs, PROBE_EPOCHS)
    values = [*pred[0].values(), *pred[1].values()]
    if all(v.epochs is not None for v in values):
        return max_epochs
    last = max((v.epochs for v in values if v.epochs is not None), default=0)
    return int(min(max_epochs, max(1000, last + last // 100 + 100)))


@dataclass(frozen=True)
class _Tols:
    param: tuple[float, ...]
    cost: tuple[float, ...]
    engine_cost: tuple[float, ...]  # the cost tols as the engine reads them (× its own J*)
    den: float  # what a cost gap is divided by: J*, or 1 when it is read as absolute


def _run(problem: Problem, method: Method, init: tuple[float, ...], r: E.Result,
         pred: tuple[dict, dict], tols: _Tols, budget: int, note: str | None) -> Run:
    pred_p, pred_c = pred
    param_tols, cost_tols, engine_cost_tols, den = tols.param, tols.cost, tols.engine_cost, \
        tols.den
    targets = [Target("param", t, r.first_param_epoch[t], pred_p[t].epochs, pred_p[t].reason)
               for t in param_tols]
    targets += [Target("cost", t, r.first_cost_epoch[te], pred_c[t].epochs, pred_c[t].reason)
                for t, te in zip(cost_tols, engine_cost_tols, strict=True)]
    j_star = problem.ols_cost(method.settings.cost)
    dist = np.linalg.norm(r.history_theta - problem.ols_theta, axis=1)
    with np.errstate(all="ignore"):
        history_gap = (r.history_cost - j_star) / den
    return Run(method, init, r.status, r.epochs_run, r.diverged_at, r.theta, r.dist_to_ols,
               r.cost_gap / den, targets, r.history_epoch, dist, history_gap, budget, note)


def final_state(problem: Problem, lr: float, epochs: int, init: Sequence[float],
                settings: E.Settings) -> E.Result:
    """Plain GD for exactly ``epochs`` epochs (no early stop), as a reader would run it."""
    s = replace(settings, optimizer="gd", standardize=False, tol_param=None,
                tol_cost_change=None, tol_grad=None)
    return E.run_one(problem, E.Trial(lr, epochs, tuple(map(float, init)), s))
