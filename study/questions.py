"""The 1,000,000-iteration question: how many epochs gradient descent needs, measured and
predicted, why, and what cures it.

For each learning rate and start θ₀, the engine iterates until every target is answered (or
the cap), recording the first epoch with ‖θ_n − θ*‖ ≤ t (``param`` targets) and
(J_n − J*)/J* ≤ t (``cost`` targets); :func:`study.theory.predicted_epochs` predicts the same
epochs from the modal form θ_n − θ* = (I − lr·H)ⁿ(θ₀ − θ*). The *why* is the spectrum of the
Hessian H: the slow direction shrinks by (1 − lr·λ_min) per epoch, and since

    J − J* = ½ δᵀHδ ≥ ½ λ_min ‖δ‖²   (δ = θ − θ* along the slow direction: equality),

a cost within a relative t of J* still allows ‖δ‖ up to √(2 t J*/λ_min): the cost is close long
before (m, b) is. The cures are run the same way (see :func:`cures`), and the article's claims
are checked on the same data (see :func:`check_claims`).

Everything here is computation returning plain data; :func:`to_json` and :func:`format_answer`
turn it into the command's output. No I/O.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from study import engine as E
from study import theory as T
from study.problem import Problem

DEFAULT_LRS = (1e-4,)
DEFAULT_STARTS = ((0.0, 0.0), (-1.0, 0.0), (2.0, 8.0))
DEFAULT_PARAM_TOLS = (0.1, 0.01, 0.001)
DEFAULT_COST_TOLS = (1e-2, 1e-3, 1e-4)
DEFAULT_MAX_EPOCHS = 5_000_000
HISTORY_POINTS = 240

# The article: lr 0.0001 in its code, 0.0005 / 2000 iterations / start (-1, 0) in its text.
ARTICLE_CODE_LR = 1e-4
ARTICLE_TEXT_LR = 5e-4
ARTICLE_TEXT_EPOCHS = 2000
ARTICLE_TEXT_START = (-1.0, 0.0)
READER_EPOCHS = 1_000_000
# Line search is said to need "around 50" iterations; "about 50" is read generously as ≤ 100.
LINE_SEARCH_CLAIM_EPOCHS = 100
CLAIM_PARAM_TOLS = (1.0, 0.1, 0.01, 0.001)
CLAIM_COST_TOLS = (0.1, 0.01, 1e-3, 1e-4)
BACKTRACKING_STEP = 1.0  # initial step tried each epoch (the engine's armijo/shrink defaults)


@dataclass(frozen=True)
class Method:
    """A way to run GD: ``name`` (JSON), a human ``label``, its lr and settings."""

    name: str
    label: str
    lr: float
    settings: E.Settings
    prediction: str  # "exact" | "upper bound" | "none"


@dataclass(frozen=True)
class Target:
    criterion: str  # "param" | "cost"
    tol: float
    measured_epochs: int | None
    predicted_epochs: int | None


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


# ── methods ─────────────────────────────────────────────────────────────────────────────────


def plain(lr: float, settings: E.Settings) -> Method:
    return Method("gd", f"plain GD, lr {lr:.6g}", lr, settings, "exact")


def cures(problem: Problem, settings: E.Settings) -> list[Method]:
    """The cures of slow convergence, each with the lr theory picks for it:

    - ``largest_stable_lr``: 0.99·lr_max, lr_max = 2/λ_max (just under the edge);
    - ``best_lr``: 2/(λ_min + λ_max), the constant lr with the best worst-case rate;
    - ``standardized``: GD on z-scored x at the standardized problem's own best lr;
    - ``momentum``: heavy ball with (lr, β) = (4/(√λ_max + √λ_min)², ((√κ − 1)/(√κ + 1))²);
    - ``exact_line_search``: t = gᵀg / gᵀHg each epoch (no lr);
    - ``backtracking_line_search``: Armijo from the initial step 1 each epoch.
    """
    gd = replace(settings, optimizer="gd", standardize=False)
    std = replace(gd, standardize=True)
    lr_m, beta = T.tuned_momentum(problem, gd)
    ls = replace(gd, optimizer="line_search")
    lr_edge, lr_best, lr_std = 0.99 * T.lr_max(problem, gd), T.best_lr(problem, gd), \
        T.best_lr(problem, std)
    return [
        Method("largest_stable_lr", f"largest stable lr 0.99·lr_max = {lr_edge:.4g}", lr_edge,
               gd, "exact"),
        Method("best_lr", f"best constant lr 2/(λmin+λmax) = {lr_best:.4g}", lr_best, gd,
               "exact"),
        Method("standardized", f"standardized x, its best lr {lr_std:.4g}", lr_std, std,
               "exact"),
        Method("momentum", f"momentum β = {beta:.4f}, lr {lr_m:.4g} (tuned)", lr_m,
               replace(gd, optimizer="momentum", momentum=beta), "exact"),
        Method("exact_line_search", "exact line search t = gᵀg/gᵀHg", 1.0,
               replace(ls, line_search="exact"), "upper bound"),
        Method("backtracking_line_search",
               f"backtracking from step {BACKTRACKING_STEP:g}, Armijo {settings.armijo:g}, "
               f"shrink {settings.shrink:g}", BACKTRACKING_STEP,
               replace(ls, line_search="backtracking"), "none"),
    ]


# ── measuring ───────────────────────────────────────────────────────────────────────────────


def stop_tolerance(problem: Problem, settings: E.Settings, param_tols: Sequence[float],
                   cost_tols: Sequence[float]) -> float:
    """A distance at which every target is surely reached, so long runs may stop there:
    the smallest param tol, and √(2 t J*/λ_max) for each cost tol t (J − J* ≤ ½λ_max‖δ‖²)."""
    lam_max = T.spectrum(problem, replace(settings, standardize=False)).lam_max
    j_star = problem.ols_cost(settings.cost)
    den = j_star if j_star > 0 else 1.0
    dists = [*param_tols, *(np.sqrt(2.0 * t * den / lam_max) for t in cost_tols)]
    return float(min(dists))


def measure(problem: Problem, methods: Sequence[Method], starts: Sequence[Sequence[float]],
            param_tols: Sequence[float], cost_tols: Sequence[float], max_epochs: int,
            predict: bool = True) -> list[Run]:
    """Every method from every start, run by the engine (one batch per distinct settings) up
    to ``max_epochs`` and predicted by theory; results in the order method-major."""
    param_tols, cost_tols = tuple(map(float, param_tols)), tuple(map(float, cost_tols))
    pairs = [(m, tuple(map(float, s))) for m in methods for s in starts]
    trials = []
    for method, init in pairs:
        s = replace(method.settings, param_tols=param_tols, cost_tols=cost_tols,
                    tol_param=stop_tolerance(problem, method.settings, param_tols, cost_tols),
                    tol_cost_change=None, tol_grad=None, record_path=True,
                    history_points=HISTORY_POINTS)
        trials.append(E.Trial(method.lr, max_epochs, init, s))
    results = E.run(problem, trials)
    return [_run(problem, m, init, r, param_tols, cost_tols, max_epochs, predict)
            for (m, init), r in zip(pairs, results, strict=True)]


def _run(problem: Problem, method: Method, init: tuple[float, ...], r: E.Result,
         param_tols: tuple[float, ...], cost_tols: tuple[float, ...], max_epochs: int,
         predict: bool) -> Run:
    if predict:
        pred_p, pred_c = T.predicted_epochs(problem, method.settings, method.lr, init,
                                            param_tols, cost_tols, max_epochs)
    else:
        pred_p, pred_c = dict.fromkeys(param_tols), dict.fromkeys(cost_tols)
    targets = [Target("param", t, r.first_param_epoch[t], pred_p[t]) for t in param_tols]
    targets += [Target("cost", t, r.first_cost_epoch[t], pred_c[t]) for t in cost_tols]
    j_star = problem.ols_cost(method.settings.cost)
    den = j_star if j_star > 0 else 1.0
    dist = np.linalg.norm(r.history_theta - problem.ols_theta, axis=1)
    return Run(method, init, r.status, r.epochs_run, r.diverged_at, r.theta, r.dist_to_ols,
               r.rel_cost_gap, targets, r.history_epoch, dist,
               (r.history_cost - j_star) / den)


def final_state(problem: Problem, lr: float, epochs: int, init: Sequence[float],
                settings: E.Settings) -> E.Result:
    """Plain GD for exactly ``epochs`` epochs (no early stop), as a reader would run it."""
    s = replace(settings, optimizer="gd", standardize=False, tol_param=None,
                tol_cost_change=None, tol_grad=None)
    return E.run_one(problem, E.Trial(lr, epochs, tuple(map(float, init)), s))


# ── the question ────────────────────────────────────────────────────────────────────────────


def iterations(problem: Problem, lrs: Sequence[float] = DEFAULT_LRS,
               starts: Sequence[Sequence[float]] | None = None,
               param_tols: Sequence[float] = DEFAULT_PARAM_TOLS,
               cost_tols: Sequence[float] = DEFAULT_COST_TOLS,
               max_epochs: int = DEFAULT_MAX_EPOCHS,
               settings: E.Settings | None = None) -> Answer:
    """Measured and predicted first epochs of plain GD (each lr × start) and of every cure
    (each start), with the why and the article's claims. ``settings`` gives the cost
    convention and the line-search constants (default: mse, the engine's defaults)."""
    base = replace(settings or E.Settings(), optimizer="gd", standardize=False,
                   update="simultaneous")
    p = problem.d + 1
    if starts is None:
        starts = DEFAULT_STARTS if p == 2 else (tuple([0.0] * p),)
    starts = tuple(tuple(map(float, s)) for s in starts)
    for s in starts:
        if len(s) != p:
            raise ValueError(f"a start needs {p} numbers ({', '.join(problem.param_names)}); "
                             f"got {len(s)}")
    param_tols = tuple(sorted(map(float, param_tols), reverse=True))
    cost_tols = tuple(sorted(map(float, cost_tols), reverse=True))
    methods = [plain(float(lr), base) for lr in lrs] + cures(problem, base)
    runs = measure(problem, methods, starts, param_tols, cost_tols, max_epochs)
    runs.sort(key=lambda r: starts.index(r.init))  # grouped by start, methods in order
    sp = T.spectrum(problem, base)
    answer = Answer(
        source=problem.source, n=problem.n, cost=base.cost, param_names=problem.param_names,
        ols_theta=problem.ols_theta, ols_cost=problem.ols_cost(base.cost),
        lam_min=sp.lam_min, lam_max=sp.lam_max, condition_number=sp.condition_number,
        lr_max=T.lr_max(problem, base), lrs=tuple(map(float, lrs)), starts=starts,
        param_tols=param_tols, cost_tols=cost_tols, max_epochs=int(max_epochs), runs=runs,
        why={},
    )
    answer = replace(answer, why=explain(problem, base, answer))
    if p == 2:
        answer = replace(answer, claims=check_claims(problem, base, answer))
    return answer


def explain(problem: Problem, settings: E.Settings, answer: Answer) -> dict:
    """Why it takes so long: spectrum, slow direction, time constants, and cost-close versus
    parameters-close with the numbers of the first plain-GD run."""
    sp = T.spectrum(problem, settings)
    slow, fast = sp.vectors[:, 0], sp.vectors[:, -1]
    j_star = answer.ols_cost if answer.ols_cost > 0 else 1.0
    t = min(answer.cost_tols)
    why = {
        "slow_direction": [float(v) for v in slow],
        "slow_direction_text": T.slow_direction_text(problem, settings),
        "time_constants": [{"lr": lr, "epochs": (1.0 / (lr * sp.lam_min)
                                                 if lr < answer.lr_max else None)}
                           for lr in answer.lrs],
        "cost_tol": t,
        "dist_allowed_at_cost_tol": float(np.sqrt(2.0 * t * j_star / sp.lam_min)),
        "starts": [{"init": list(s),
                    "slow_component": float(slow @ (np.array(s) - problem.ols_theta)),
                    "fast_component": float(fast @ (np.array(s) - problem.ols_theta))}
                   for s in answer.starts],
    }
    gd = [r for r in answer.runs if r.method.name == "gd" and r.status != "diverged"]
    if gd:
        r = gd[0]
        cost_hit = r.target("cost", t).measured_epochs
        tp = min(answer.param_tols)
        example = {"lr": r.method.lr, "init": list(r.init), "cost_tol": t,
                   "cost_epoch": cost_hit, "param_tol": tp,
                   "param_epoch": r.target("param", tp).measured_epochs}
        if cost_hit is not None:
            theta = T.trajectory(problem, settings, r.method.lr, r.init, [cost_hit])[0]
            example["dist_at_cost_epoch"] = float(np.linalg.norm(theta - problem.ols_theta))
        why["example"] = example
    return why



# ── the article's claims ────────────────────────────────────────────────────────────────────


def worst_start(problem: Problem, settings: E.Settings, radius: float) -> tuple[float, ...]:
    """The start at distance ``radius`` from θ* that is worst for steepest descent with exact
    steps (Kantorovich): its gradient H·δ₀ has equal parts along the slowest and the fastest
    eigenvectors, δ₀ ∝ v_min/λ_min + v_max/λ_max, and every epoch then shrinks J − J* by
    exactly ((κ − 1)/(κ + 1))²."""
    sp = T.spectrum(problem, replace(settings, standardize=False))
    delta = sp.vectors[:, 0] / sp.lam_min + sp.vectors[:, -1] / sp.lam_max
    return tuple(map(float, problem.ols_theta + radius * delta / np.linalg.norm(delta)))


def check_claims(problem: Problem, settings: E.Settings, answer: Answer) -> dict:
    """The article's claims on this data (one feature): its text's lr, its text's 2000 epochs,
    a reader's 10⁶ epochs, the role of the start, and line search's "about 50"."""
    text = final_state(problem, ARTICLE_TEXT_LR, ARTICLE_TEXT_EPOCHS, ARTICLE_TEXT_START,
                       settings)
    short = final_state(problem, ARTICLE_CODE_LR, ARTICLE_TEXT_EPOCHS, ARTICLE_TEXT_START,
                        settings)
    long = final_state(problem, ARTICLE_CODE_LR, READER_EPOCHS, (0.0, 0.0), settings)
    growth = float(np.max(np.abs(1.0 - ARTICLE_TEXT_LR * np.array([answer.lam_min,
                                                                    answer.lam_max]))))
    return {
        "text_lr": {"lr": ARTICLE_TEXT_LR, "init": list(ARTICLE_TEXT_START),
                    "epochs": ARTICLE_TEXT_EPOCHS, "status": text.status,
                    "diverged_at": text.diverged_at, "lr_max": answer.lr_max,
                    "growth_per_epoch": growth, "converges": text.status != "diverged"},
        "text_2000": _state(problem, short, ARTICLE_CODE_LR, ARTICLE_TEXT_START,
                            ARTICLE_TEXT_EPOCHS),
        "million": _state(problem, long, ARTICLE_CODE_LR, (0.0, 0.0), READER_EPOCHS),
        "start": _start_claim(answer),
        "line_search": line_search_claim(problem, settings, answer.starts, answer.max_epochs),
    }


def _state(problem: Problem, r: E.Result, lr: float, init, epochs: int) -> dict:
    return {"lr": lr, "init": list(init), "epochs": epochs, "status": r.status,
            "m": float(r.theta[0]), "b": float(r.theta[1]), "cost": r.cost,
            "dist_to_ols": r.dist_to_ols, "rel_cost_gap": r.rel_cost_gap}


def _start_claim(answer: Answer) -> dict:
    """Same limit from every start (convexity), different times: from the plain-GD runs at
    the first learning rate."""
    lr = answer.lrs[0]
    runs = [r for r in answer.runs if r.method.name == "gd" and r.method.lr == lr]
    tp = min(answer.param_tols)
    return {"lr": lr, "param_tol": tp,
            "all_converged": all(r.status == "converged" for r in runs),
            "epochs": [{"init": list(r.init),
                        "param_epochs": {t: r.target("param", t).measured_epochs
                                         for t in answer.param_tols}} for r in runs]}


def criterion_text(kind: str, tol: float) -> str:
    return f"‖θ − θ*‖ ≤ {tol:g}" if kind == "param" else f"(J − J*)/J* ≤ {tol:g}"


def line_search_claim(problem: Problem, settings: E.Settings,
                      starts: Sequence[Sequence[float]], max_epochs: int) -> dict:
    """Epochs of exact and backtracking line search, and of plain GD at the article's lr for
    comparison, for a ladder of criteria from loose to tight; the claim "about 50 iterations"
    holds under a criterion when every start meets it within LINE_SEARCH_CLAIM_EPOCHS."""
    line = [m for m in cures(problem, settings) if m.name.endswith("line_search")]
    methods = [plain(ARTICLE_CODE_LR, replace(settings, optimizer="gd")), *line]
    runs = measure(problem, methods, starts, CLAIM_PARAM_TOLS, CLAIM_COST_TOLS, max_epochs,
                   predict=False)
    criteria = [("cost", t) for t in CLAIM_COST_TOLS] + [("param", t) for t in CLAIM_PARAM_TOLS]
    out: dict = {"threshold_epochs": LINE_SEARCH_CLAIM_EPOCHS, "methods": []}
    for method in methods:
        mine = [r for r in runs if r.method is method]
        worst = []
        for kind, tol in criteria:
            hits = [r.target(kind, tol).measured_epochs for r in mine]
            worst.append({"criterion": kind, "tol": tol,
                          "worst_epochs": None if None in hits else max(hits)})
        holds = [w for w in worst if w["worst_epochs"] is not None
                 and w["worst_epochs"] <= LINE_SEARCH_CLAIM_EPOCHS]
        out["methods"].append({"method": method.name, "label": method.label, "lr": method.lr,
                               "criteria": worst,
                               "holds_under": [criterion_text(w["criterion"], w["tol"])
                                               for w in holds]})
    radius = float(np.linalg.norm(np.asarray(starts[0]) - problem.ols_theta))
    bad = worst_start(problem, settings, radius)
    exact = next(m for m in line if m.name == "exact_line_search")
    [r] = measure(problem, [exact], [bad], (0.01,), (1e-2,), max_epochs)
    out["worst_start"] = {"init": list(bad), "radius": radius,
                          "param_epoch": r.target("param", 0.01).measured_epochs,
                          "param_bound": r.target("param", 0.01).predicted_epochs,
                          "cost_epoch": r.target("cost", 1e-2).measured_epochs}
    return out


# ── output ──────────────────────────────────────────────────────────────────────────────────


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


def _params(names: Sequence[str], theta: Sequence[float], prefix: str = "") -> dict:
    if len(names) == 2:
        return {f"{prefix}m": float(theta[0]), f"{prefix}b": float(theta[1])}
    return {f"{prefix}w": [float(v) for v in theta[:-1]], f"{prefix}b": float(theta[-1])}


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
            "status": r.status, "epochs_run": r.epochs_run, "diverged_at": r.diverged_at,
            "final": _params(a.param_names, r.theta), "dist_to_ols": r.dist_to_ols,
            "rel_cost_gap": r.rel_cost_gap,
            "targets": [{"criterion": t.criterion, "tol": t.tol,
                         "measured_epochs": t.measured_epochs,
                         "predicted_epochs": t.predicted_epochs, "ratio": _ratio(t)}
                        for t in r.targets],
        })
    return _clean({
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


def epochs_text(value: int | None) -> str:
    return "—" if value is None else f"{value:,}"


def start_text(s: Sequence[float]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in s) + ")"


def _table(a: Answer) -> list[str]:
    targets = [("param", t) for t in a.param_tols] + [("cost", t) for t in a.cost_tols]
    w, left = 10, 34
    lines = [" " * left + "‖θ − θ*‖ ≤".center(w * len(a.param_tols))
             + "(J − J*)/J* ≤".center(w * len(a.cost_tols)) + f"{'stopped':>12}",
             f"{'start':<10}{'method':<14}{'':<10}" + "".join(f"{t:>{w}g}" for _, t in targets)
             + f"{'at epoch':>12}"]
    for start in a.starts:
        first = True
        for r in (r for r in a.runs if r.init == start):
            name = (f"gd lr {r.method.lr:g}" if r.method.name == "gd"
                    else SHORT_NAMES[r.method.name])
            stop = (f"diverged {r.diverged_at:,}" if r.status == "diverged" else
                    "cap" if r.status == "max_epochs" else f"{r.epochs_run:,}")
            cells = [r.target(k, t) for k, t in targets]
            lines.append(f"{start_text(start) if first else '':<10}{name:<14}{'measured':<10}"
                         + "".join(f"{epochs_text(c.measured_epochs):>{w}}" for c in cells)
                         + f"{stop:>12}")
            first = False
            if r.status == "diverged" and r.method.lr >= a.lr_max:
                lines.append(" " * 24 + f"{'predicted':<10}diverges: lr ≥ lr_max")
                continue
            if r.method.prediction == "none":
                continue
            label = "bound ≤" if r.method.prediction == "upper bound" else "predicted"
            lines.append(" " * 24 + f"{label:<10}"
                         + "".join(f"{epochs_text(c.predicted_epochs):>{w}}" for c in cells))
            if r.method.prediction == "exact":
                ratios = [_ratio(c) for c in cells]
                lines.append(" " * 24 + f"{'ratio':<10}" + "".join(
                    f"{'—' if q is None else f'{q:.4f}':>{w}}" for q in ratios))
    return lines


def _legend(a: Answer) -> list[str]:
    seen, out = set(), []
    for r in a.runs:
        if r.method.name != "gd" and r.method.name not in seen:
            seen.add(r.method.name)
            out.append(f"  {SHORT_NAMES[r.method.name]:<14}{r.method.label}")
    out.append("  measured: first epoch reached by iterating the engine; predicted: theory's "
               "exact modal form;")
    out.append("  bound: Kantorovich upper bound (exact line search); backtracking has no "
               "prediction. — = not reached by the cap.")
    return out


def _why(a: Answer) -> list[str]:
    w = a.why
    out = ["Why it takes so long",
           f"  Hessian of J: λ_min = {a.lam_min:.6g}, λ_max = {a.lam_max:.6g}, condition number "
           f"κ = λ_max/λ_min = {a.condition_number:,.0f}",
           f"  lr_max = 2/λ_max = {a.lr_max:.6g}: any larger learning rate diverges",
           f"  slow direction {w['slow_direction_text']}"]
    for tc in w["time_constants"]:
        if tc["epochs"] is None:
            out.append(f"  lr {tc['lr']:g} ≥ lr_max: no time constant, the steep direction "
                       "grows")
        else:
            out.append(f"  at lr {tc['lr']:g} the slow direction shrinks by (1 − lr·λ_min) per "
                       f"epoch: time constant 1/(lr·λ_min) = {tc['epochs']:,.0f} epochs per "
                       "factor e")
    comps = ", ".join(f"{start_text(s['init'])}: {abs(s['slow_component']):.3g}"
                      for s in w["starts"])
    out.append(f"  each start's distance along the slow direction sets the time: {comps}")
    ex = w.get("example")
    out.append(f"  cost-close is not parameters-close: (J − J*)/J* ≤ {w['cost_tol']:g} still "
               f"allows ‖θ − θ*‖ = {w['dist_allowed_at_cost_tol']:.3g} along the slow "
               f"direction (½·λ_min·δ² = {w['cost_tol']:g}·J*)")
    if ex and ex["cost_epoch"] is not None:
        out.append(f"  e.g. lr {ex['lr']:g} from {start_text(ex['init'])}: (J − J*)/J* ≤ "
                   f"{ex['cost_tol']:g} at epoch {epochs_text(ex['cost_epoch'])}, where "
                   f"‖θ − θ*‖ is still {ex['dist_at_cost_epoch']:.3g}; ‖θ − θ*‖ ≤ "
                   f"{ex['param_tol']:g} only at epoch {epochs_text(ex['param_epoch'])}")
    return out


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
        def worst(method: dict, c: dict) -> str:
            hit = next(x for x in method["criteria"]
                       if (x["criterion"], x["tol"]) == (c["criterion"], c["tol"]))
            return epochs_text(hit["worst_epochs"])

        shown = [min((c for c in fails if c["criterion"] == kind), default=None,
                     key=lambda c: -c["tol"]) for kind in ("cost", "param")]
        parts = [f"{criterion_text(c['criterion'], c['tol'])} needs {worst(m, c)} epochs (plain GD "
                 f"at lr {gd['lr']:g}: {worst(gd, c)})" for c in shown if c is not None]
        if holds:
            loosest = next(c for c in m["criteria"]
                           if criterion_text(c["criterion"], c["tol"]) == holds[0])
            head = (f"holds only for {', '.join(holds)} (at most {worst(m, loosest)} epochs "
                    f"from every start; plain GD: {worst(gd, loosest)})")
        else:
            head = "does not hold for any criterion checked"
        out.append(f"{name}: {head}; " + "; ".join(parts))
    ws = claim["worst_start"]
    out.append(f"exact line search is this fast only from these starts: in 2-D its zigzag "
               f"speed depends on the start, and from {start_text(round(v, 4) for v in ws['init'])}"
               f" (as far from θ* as the first start) ‖θ − θ*‖ ≤ 0.01 takes "
               f"{epochs_text(ws['param_epoch'])} epochs")
    return out


def _claims(a: Answer) -> list[str]:
    c = a.claims
    if not c:
        return []
    t, s2, mil, st = c["text_lr"], c["text_2000"], c["million"], c["start"]
    verdict = "converges" if t["converges"] else (
        f"does NOT converge: lr_max = {t['lr_max']:.6g} < {t['lr']:g}; the steep direction "
        f"grows ×{t['growth_per_epoch']:.3f} per epoch; diverged at epoch {t['diverged_at']}")
    out = ["The article's claims, checked on this data",
           f"  lr {t['lr']:g} (the text's) from {start_text(t['init'])}: {verdict}",
           f"  {s2['epochs']:,} epochs at lr {s2['lr']:g} from {start_text(s2['init'])}: "
           f"m = {s2['m']:.5f}, b = {s2['b']:.5f}, ‖θ − θ*‖ = {s2['dist_to_ols']:.4g}, "
           f"(J − J*)/J* = {s2['rel_cost_gap']:.3g}",
           f"  {mil['epochs']:,} epochs at lr {mil['lr']:g} from {start_text(mil['init'])}: "
           f"m = {mil['m']:.5f}, b = {mil['b']:.5f}, ‖θ − θ*‖ = {mil['dist_to_ols']:.3g}"]
    if st["all_converged"]:
        tols = sorted(st["epochs"][0]["param_epochs"], reverse=True)[-2:]
        times = "; ".join(" / ".join(epochs_text(e["param_epochs"][t]) for t in tols)
                          + (" epochs" if i == 0 else "") + f" from {start_text(e['init'])}"
                          for i, e in enumerate(st["epochs"]))
        out.append(f"  the start does not change the limit (the cost is convex with one "
                   f"minimum): from every start GD ends within {st['param_tol']:g} of the same "
                   f"θ*; it changes the time: ‖θ − θ*‖ ≤ {' / '.join(f'{t:g}' for t in tols)} "
                   f"after {times}")
    out.append(f"  line search \"about 50 iterations instead of thousands\" (read as ≤ "
               f"{c['line_search']['threshold_epochs']} epochs):")
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
    ols = ", ".join(f"{n}* = {v:.6g}" for n, v in zip(names, a.ols_theta, strict=True))
    out = [f"How many epochs gradient descent needs on {a.source} ({a.n} points, cost "
           f"{a.cost})",
           f"OLS optimum θ*: {ols}; J* = {a.ols_cost:.6g}", ""]
    out += [*_wrap(_why(a)), ""]
    out.append(f"First epoch at which each target is reached (cap {a.max_epochs:,} epochs)")
    out += [*_table(a), *_legend(a), ""]
    out += _wrap(_claims(a))
    return "\n".join(out).rstrip() + "\n"


# ── inputs and figure data ──────────────────────────────────────────────────────────────────


def question_from_config(cfg, d: int, label: str) -> dict:
    """lrs, starts (every combination of the init_* entries), tolerances, cap and settings
    from a study config whose space entries are constants or ``{values: [...]}``."""
    from study.errors import ConfigError

    def values(key: str, spec) -> list:
        if spec.kind == "const":
            return [spec.value]
        if spec.kind == "values":
            return list(spec.values)
        raise ConfigError(f"{label}: search.space.{key} is a range; study iterations needs a "
                          "constant or {values: [...]}")

    space = cfg.search.space
    init = cfg.init_space(d)
    settings = cfg.settings()
    starts = [tuple(float(v) for v in combo) for combo in
              itertools.product(*(values(k, s) for k, s in init.items()))]
    return {"lrs": [float(v) for v in values("lr", space["lr"])], "starts": starts,
            "param_tols": settings.param_tols, "cost_tols": settings.cost_tols,
            "max_epochs": int(max(values("epochs", space["epochs"]))), "settings": settings}


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
        name = f"GD lr {r.method.lr:g}" if r.method.name == "gd" else \
            SHORT_NAMES[r.method.name]
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
                "text": f"GD lr {ex['lr']:g} from {start_text(ex['init'])}: (J − J*)/J* ≤ "
                        f"{ex['cost_tol']:g} at epoch {epochs_text(ex['cost_epoch'])},"
                        f"\nyet (m, b) is still {ex['dist_at_cost_epoch']:.2g} from θ* there"}
    return {"series": series, "param_tols": a.param_tols, "cost_tols": a.cost_tols,
            "max_epochs": a.max_epochs, "source": a.source, "note": note}
