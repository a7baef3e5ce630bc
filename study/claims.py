"""The tutorials' setups and claims (../shared/SEEDS.md), each re-run and judged.

One function per entry of docs/reproductions.md; its name starts with the entry's id
(``a1_…`` is A1). Each runs the engine and the theory on the data of its setup and returns a
:class:`study.reproduce.Entry`: the numbers it prints and a verdict derived from them (no
verdict is typed in by hand). A ``study fit`` command quoted by an entry carries the values it
prints (:class:`FitCheck`), and the tests run it.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np

from study import engine as E
from study import questions as Q
from study import theory as T
from study.data import load_problem
from study.problem import Problem
from study.reproduce import ARTICLE_CSV, DATA_DIR, Entry, FitCheck, Section, fit_command

# The article repository's published output (Python 2 prints floats with 12 digits).
PUBLISHED = {"start_error": "5565.10783448", "b": "0.0889365199374", "m": "1.47774408519",
             "error": "112.614810116"}
READERS_POLYFIT = (1.3224, 7.991)  # what readers report Excel / numpy.polyfit gives
MSE = E.Settings()


class Sources:
    """The problems the entries run on, loaded once (and the article's iterations answer)."""

    def __init__(self, data_dir: Path, article_csv: Path) -> None:
        self.data_dir, self.article_csv = data_dir, article_csv

    @cached_property
    def article(self) -> Problem:
        return load_problem(self.article_csv)

    def project(self, name: str) -> Problem:
        return load_problem(self.data_dir / name)

    @cached_property
    def answer(self) -> Q.Answer:
        return Q.iterations(self.article)


def _g(x: float, digits: int = 6) -> str:
    return f"{x:.{digits}g}"


def _n(x: int | None) -> str:
    return Q.epochs_text(x)


def _run(problem: Problem, lr: float, epochs: int, init, settings: E.Settings = MSE,
         **changes) -> E.Result:
    s = replace(settings, **changes)
    return E.run_one(problem, E.Trial(lr, epochs, tuple(map(float, init)), s))


def _fit(data: str, *flags: str, result: E.Result) -> FitCheck:
    return FitCheck(("fit", "--data", data, *flags),
                    {"m": float(result.theta[0]), "b": float(result.theta[1]),
                     "status": result.status})


# ── A: the article ──────────────────────────────────────────────────────────────────────────


def article_loop(points: np.ndarray, m: float, b: float, lr: float, epochs: int
                 ) -> tuple[float, float, float]:
    """The article's own algorithm, a Python loop over the points each epoch (its
    ``step_gradient``), as an independent reference: returns (m, b, error)."""
    n = float(len(points))
    pts = [(float(x), float(y)) for x, y in points]
    for _ in range(epochs):
        b_grad = m_grad = 0.0
        for x, y in pts:
            b_grad += -(2 / n) * (y - (m * x + b))
            m_grad += -(2 / n) * x * (y - (m * x + b))
        b, m = b - lr * b_grad, m - lr * m_grad
    error = sum((y - (m * x + b)) ** 2 for x, y in pts) / n
    return m, b, error


def a1_published(src: Sources) -> Entry:
    p = src.article
    r = _run(p, 1e-4, 1000, (0, 0))
    loop_m, loop_b, loop_err = article_loop(np.column_stack([p.X[:, 0], p.y]), 0.0, 0.0,
                                            1e-4, 1000)
    ours = {"start_error": r.initial_cost, "b": r.theta[1], "m": r.theta[0], "error": r.cost}
    loop = {"start_error": float(p.cost(np.zeros(2))), "b": loop_b, "m": loop_m,
            "error": loop_err}
    rel = max(abs(ours[k] / float(PUBLISHED[k]) - 1.0) for k in PUBLISHED)
    same = [k for k in PUBLISHED if f"{ours[k]:.12g}" == PUBLISHED[k]]
    out = [f"{'':<12}{'engine':>18}{'article loop':>18}{'published':>18}"]
    out += [f"{k:<12}{ours[k]:>18.12g}{loop[k]:>18.12g}{PUBLISHED[k]:>18}" for k in PUBLISHED]
    out.append(f"largest relative difference, engine vs published: {rel:.0e}")
    flags = ("--lr", "1e-4", "--epochs", "1000")
    return Entry(
        "A1", "The repository's published output after 1000 iterations",
        "lr 0.0001, start m = 0, b = 0, 1000 iterations, simultaneous update, mean squared error",
        f"\"Starting gradient descent at b = 0, m = 0, error = {PUBLISHED['start_error']}; after "
        f"1000 iterations b = {PUBLISHED['b']}, m = {PUBLISHED['m']}, error = "
        f"{PUBLISHED['error']}\"",
        ("study reproduce --only A1", fit_command(("fit", "--data", ARTICLE_CSV, *flags))),
        tuple(out), "holds" if rel < 1e-10 else "does not hold",
        ("All published numbers agree in all 12 printed digits" if len(same) == len(PUBLISHED)
         else f"{len(same)} of the {len(PUBLISHED)} published numbers agree in all 12 printed "
         f"digits, the rest within a relative {rel:.0e}")
        + ("; the article's loop re-run here reproduces the published digits exactly" if
           all(f"{loop[k]:.12g}" == PUBLISHED[k] for k in PUBLISHED) else "")
        + ". The engine computes each epoch from the data's sufficient "
        "statistics rather than by looping over the points, so its floating-point sums "
        "differ in the last bits.",
        (_fit(ARTICLE_CSV, *flags, result=r),))


def a2_text_settings(src: Sources) -> Entry:
    p = src.article
    lr, init = Q.ARTICLE_TEXT_LR, Q.ARTICLE_TEXT_START
    r = _run(p, lr, Q.ARTICLE_TEXT_EPOCHS, init)
    sp = T.spectrum(p)
    factor = 1.0 - lr * sp.lam_max
    decades = Q.ARTICLE_TEXT_EPOCHS * np.log10(abs(factor))
    out = [f"lr_max = 2/λ_max = {_g(T.lr_max(p))}; lr / lr_max = {lr / T.lr_max(p):.3f}",
           f"per-epoch factor along the steep direction 1 − lr·λ_max = {factor:.4f}",
           f"status: {r.status} at epoch {r.diverged_at} (cost {_g(r.cost)} > 10 × its start "
           f"{_g(r.initial_cost)})",
           f"{Q.ARTICLE_TEXT_EPOCHS} epochs would multiply the error by 10^{decades:.0f}: beyond "
           "floating point"]
    flags = ("--lr", "5e-4", "--epochs", "2000", "--init-m", "-1")
    diverged = r.status == "diverged"
    return Entry(
        "A2", "The article's text settings: lr 0.0005, 2000 iterations, start m = −1, b = 0",
        "the article's data, lr 0.0005, 2000 iterations from m = −1, b = 0",
        "the settings the article's text names fit the line on the article's data",
        ("study reproduce --only A2", fit_command(("fit", "--data", ARTICLE_CSV, *flags))),
        tuple(out), "does not hold" if diverged else "holds",
        (f"On this data lr 0.0005 is above the edge of stability lr_max = {_g(T.lr_max(p))}: the "
         f"error along the steep direction is multiplied by {factor:.3f} every epoch, and the "
         f"run blows up at epoch {r.diverged_at}. The code's lr 0.0001 (A3) converges."
         if diverged else "The run converges."),
        (_fit(ARTICLE_CSV, *flags, result=r),))


def a3_readers_2000(src: Sources) -> Entry:
    p = src.article
    poly = np.polyfit(p.X[:, 0], p.y, 1)
    runs = [(init, _run(p, 1e-4, 2000, init)) for init in ((0, 0), (-1, 0))]
    out = [f"start {Q.start_text(i)}: after 2000 epochs m = {r.theta[0]:.4f}, b = "
           f"{r.theta[1]:.4f}, ‖θ − θ*‖ = {r.dist_to_ols:.3f}" for i, r in runs]
    out += [f"numpy.polyfit: m = {poly[0]:.4f}, b = {poly[1]:.4f}; OLS θ*: m = "
            f"{p.ols_theta[0]:.4f}, b = {p.ols_theta[1]:.4f}"]
    ms = [r.theta[0] for _, r in runs]
    bs = [r.theta[1] for _, r in runs]
    holds = (all(abs(m - 1.48) < 0.01 for m in ms) and all(0.06 <= b <= 0.17 for b in bs)
             and np.allclose(poly, READERS_POLYFIT, atol=1e-3))
    checks = tuple(_fit(ARTICLE_CSV, "--lr", "1e-4", "--epochs", "2000", "--init-m", str(i[0]),
                        result=r) for i, r in runs)
    return Entry(
        "A3", "A reader's 2000 iterations versus polyfit",
        "lr 0.0001 (the article's code), 2000 iterations from (0, 0) and from (−1, 0)",
        "\"I ran 2000 iterations and got m ≈ 1.48, b ≈ 0.06-0.17, but Excel/polyfit gives "
        "m ≈ 1.32, b ≈ 7.99\"",
        ("study reproduce --only A3", fit_command(checks[1].argv)), tuple(out),
        "holds" if holds else "does not hold",
        "Both numbers are right: 2000 epochs land where the reader says, and polyfit's line is "
        "the least-squares optimum θ*. The gap between them is the subject of A4.", checks)


def a4_why(src: Sources) -> Entry:
    a = src.answer
    w = a.why
    gd = next(r for r in a.runs if r.method.name == "gd" and r.init == (0.0, 0.0))
    tc = w["time_constants"][0]["epochs"]
    rows = [f"λ_min = {_g(a.lam_min)}, λ_max = {_g(a.lam_max)}, condition number κ = "
            f"{a.condition_number:,.0f}",
            f"slow direction (Δm, Δb) ∝ ({w['slow_direction'][0]:+.4f}, "
            f"{w['slow_direction'][1]:+.4f}); time constant at lr 1e-4: 1/(lr·λ_min) = "
            f"{tc:,.0f} epochs",
            f"  {'from (0, 0), first epoch with':<28}{'measured':>12}{'predicted':>12}"]
    for t in gd.targets:
        label = Q.criterion_text(t.criterion, t.tol)
        rows.append(f"  {label:<28}{_n(t.measured_epochs):>12}{_n(t.predicted_epochs):>12}")
    exact = all(t.measured_epochs == t.predicted_epochs for t in gd.targets)
    ex = w["example"]
    return Entry(
        "A4", "Why: not enough iterations, a long flat valley",
        "lr 0.0001 from (0, 0), run until ‖θ − θ*‖ ≤ 0.001 (cap 5,000,000 epochs)",
        "the author's answer: \"not enough iterations; the error surface has a long, flat "
        "valley\"",
        ("study reproduce --only A4",
         f"study iterations --data {ARTICLE_CSV} --start 0,0"), tuple(rows),
        "holds",
        f"The Hessian's condition number is {a.condition_number:,.0f}: along the slow direction "
        f"(mostly b, with m·x̄ + b nearly fixed) the error shrinks by (1 − lr·λ_min) per epoch, "
        f"a time constant of {tc:,.0f} epochs. Theory predicts every first epoch "
        f"{'exactly' if exact else 'within a few epochs'}. The cost is close long before (m, b) "
        f"is: (J − J*)/J* ≤ {ex['cost_tol']:g} at epoch {_n(ex['cost_epoch'])}, where ‖θ − θ*‖ "
        f"is still {ex['dist_at_cost_epoch']:.3g}.")


def a5_million(src: Sources) -> Entry:
    p = src.article
    r = _run(p, 1e-4, Q.READER_EPOCHS, (0, 0))
    gd = next(x for x in src.answer.runs if x.method.name == "gd" and x.init == (0.0, 0.0))
    out = [f"after 1,000,000 epochs from (0, 0): m = {r.theta[0]:.5f}, b = {r.theta[1]:.5f}, "
           f"‖θ − θ*‖ = {r.dist_to_ols:.2g}, (J − J*)/J* = {r.rel_cost_gap:.2g}",
           f"OLS θ*: m = {p.ols_theta[0]:.5f}, b = {p.ols_theta[1]:.5f}",
           f"‖θ − θ*‖ ≤ 0.01 first at epoch {_n(gd.target('param', 0.01).measured_epochs)}, "
           f"≤ 0.001 at {_n(gd.target('param', 0.001).measured_epochs)}"]
    holds = r.dist_to_ols < 0.01
    flags = ("--lr", "1e-4", "--epochs", "1000000")
    return Entry(
        "A5", "A reader's 1,000,000 iterations",
        "lr 0.0001 from (0, 0), 1,000,000 iterations",
        "\"1,000,000 iterations and more gave the right line\"",
        ("study reproduce --only A5", fit_command(("fit", "--data", ARTICLE_CSV, *flags))),
        tuple(out), "holds" if holds else "does not hold",
        f"After 10⁶ epochs (m, b) is {r.dist_to_ols:.2g} from the least-squares line: the "
        "right line to three or four digits. Tighter agreement takes longer (‖θ − θ*‖ ≤ 0.001 "
        f"at {_n(gd.target('param', 0.001).measured_epochs)} epochs).",
        (_fit(ARTICLE_CSV, *flags, result=r),))


def a6_start_2_8(src: Sources) -> Entry:
    p = src.article
    r = _run(p, 1e-4, 2000, (2, 8))
    gd = next(x for x in src.answer.runs if x.method.name == "gd" and x.init == (2.0, 8.0))
    slow = next(s for s in src.answer.why["starts"] if s["init"] == [2.0, 8.0])
    hits = {t: gd.target("param", t).measured_epochs for t in (0.01, 0.001)}
    out = [f"after 2000 epochs from (2, 8): m = {r.theta[0]:.5f}, b = {r.theta[1]:.5f}, "
           f"‖θ − θ*‖ = {r.dist_to_ols:.2g}",
           f"‖θ − θ*‖ ≤ 0.01 first at epoch {_n(hits[0.01])}; ≤ 0.001 at {_n(hits[0.001])}",
           f"(2, 8) − θ* along the slow direction: {abs(slow['slow_component']):.2g}; along the "
           f"fast one: {abs(slow['fast_component']):.2g}"]
    flags = ("--lr", "1e-4", "--epochs", "2000", "--init-m", "2", "--init-b", "8")
    holds = r.dist_to_ols < 0.01
    return Entry(
        "A6", "A reader's start m = 2, b = 8",
        "lr 0.0001, 2000 iterations from m = 2, b = 8",
        "\"got it in 2000 iterations by starting at m = 2, b = 8\"",
        ("study reproduce --only A6", fit_command(("fit", "--data", ARTICLE_CSV, *flags))),
        tuple(out), "holds" if holds else "does not hold",
        f"(2, 8) sits almost on the valley floor near θ*: only {abs(slow['slow_component']):.2g} "
        "of its error lies along the slow direction, so the fast direction is done in a few "
        f"epochs (‖θ − θ*‖ ≤ 0.01 at epoch {_n(hits[0.01])}). The slow direction still rules "
        f"tighter targets: ‖θ − θ*‖ ≤ 0.001 takes {_n(hits[0.001])} epochs.",
        (_fit(ARTICLE_CSV, *flags, result=r),))


def a7_edge(src: Sources) -> Entry:
    p = src.article
    edge = T.lr_max(p)
    rows, ok = [], True
    for k in (0.25, 0.999, 1.001, 5e-4 / edge):
        r = _run(p, k * edge, 200_000, (0, 0))
        stable = r.status != "diverged"
        ok &= stable == (k < 1.0)
        at = f"diverged at epoch {r.diverged_at}" if not stable else \
            f"stable, ‖θ − θ*‖ = {r.dist_to_ols:.3g} after 200,000 epochs"
        rows.append(f"lr = {k:.3f}·lr_max = {_g(k * edge, 5)}: {at}")
    return Entry(
        "A7", "The edge between converging and diverging",
        "the article's data, start (0, 0), learning rates around lr_max = 2/λ_max, 200,000 "
        "epochs each",
        "\"use a smaller learning rate (0.0001)\" — where exactly is the edge, and does 0.0005 "
        "converge?",
        ("study reproduce --only A7",
         f"study iterations --data {ARTICLE_CSV} --lr 1e-4 --lr 5e-4 --start 0,0"),
        (f"lr_max = 2/λ_max = {_g(edge)}", *rows),
        "holds" if ok else "does not hold",
        f"The edge is lr_max = {_g(edge)}, measured on both sides: 0.999·lr_max converges, "
        f"1.001·lr_max diverges. The code's 0.0001 is {1e-4 / edge:.2f}·lr_max and converges; "
        f"the text's 0.0005 is {5e-4 / edge:.2f}·lr_max and diverges.")


def a8_convergence_tests(src: Sources) -> Entry:
    p = src.article
    lam_min = T.spectrum(p).lam_min
    rows, stops = [], {}
    for key, label, change in (("cost", "|ΔJ| ≤ 1e-3 per epoch", {"tol_cost_change": 1e-3}),
                               ("cost", "|ΔJ| ≤ 1e-6 per epoch", {"tol_cost_change": 1e-6}),
                               ("grad", "‖∇J‖ ≤ 1e-2", {"tol_grad": 1e-2}),
                               ("grad", "‖∇J‖ ≤ 1e-3", {"tol_grad": 1e-3}),
                               ("dist", "‖θ − θ*‖ ≤ 0.01", {"tol_param": 0.01})):
        r = _run(p, 1e-4, Q.DEFAULT_MAX_EPOCHS, (0, 0), **change)
        stops[label] = (key, next(iter(change.values())), r)
        rows.append(f"  {label:<24}{_n(r.epochs_run):>12}{r.dist_to_ols:>14.3g}")
    check = _fit(ARTICLE_CSV, "--lr", "1e-4", "--epochs", "5000000", "--tol-param", "0.01",
                 result=r)  # the last test's run
    cost_far = min(r.dist_to_ols for k, _, r in stops.values() if k == "cost")
    # for a quadratic cost ∇J = H(θ − θ*), so ‖θ − θ*‖ ≤ ‖∇J‖/λ_min: the gradient test's bound
    grad_ok = all(r.dist_to_ols <= tol / lam_min * (1 + 1e-9)
                  for k, tol, r in stops.values() if k == "grad")
    verdict = ("holds only for the gradient and distance tests" if cost_far > 0.1 and grad_ok
               else "holds" if grad_ok else "does not hold")
    return Entry(
        "A8", "How do I know I'm stuck or done?",
        "lr 0.0001 from (0, 0) on the article's data; stop at the first epoch a test passes",
        "convergence tests: a small change of the cost, a small gradient, or the distance to "
        "the known least-squares optimum tell when GD is done",
        ("study reproduce --only A8", fit_command(check.argv)),
        (f"  {'test':<24}{'stops at':>12}{'‖θ − θ*‖':>14}", *rows), verdict,
        "A small cost change stops too early on this data: the cost is nearly flat along the "
        f"valley, so even |ΔJ| ≤ 1e-6 stops {cost_far:.3g} away from θ*. A small gradient is a "
        f"real test: for this quadratic cost ‖θ − θ*‖ ≤ ‖∇J‖/λ_min (λ_min = {_g(lam_min, 4)}), "
        f"so ‖∇J‖ ≤ 1e-3 guarantees ≤ {1e-3 / lam_min:.2g}. The distance test needs θ*, which "
        "for linear regression is one least-squares solve.", (check,))


def a9_start(src: Sources) -> Entry:
    st = src.answer.claims["start"]
    rows = []
    for e in st["epochs"]:
        rows.append(f"from {Q.start_text(e['init']):<9} ‖θ − θ*‖ ≤ 0.1 / 0.01 / 0.001 at epochs "
                    + " / ".join(_n(e["param_epochs"][t]) for t in (0.1, 0.01, 0.001)))
    return Entry(
        "A9", "Does the starting point matter? Is the result the true minimum?",
        "lr 0.0001 from (0, 0), (−1, 0) and (2, 8), each run until ‖θ − θ*‖ ≤ 0.001",
        "the cost is convex: every start reaches the least-squares line eventually; the time "
        "depends on the start",
        ("study reproduce --only A9", f"study iterations --data {ARTICLE_CSV}"), tuple(rows),
        "holds" if st["all_converged"] else "does not hold",
        "The mean squared error of a line is a convex quadratic with one minimum (λ_min > 0), "
        "so every start ends at the same θ*. The time is set by the start's distance along the "
        "slow direction: " + ", ".join(
            f"{Q.start_text(w['init'])} is {abs(w['slow_component']):.2g} away along it"
            for w in src.answer.why["starts"]) + ".")


def a10_line_search(src: Sources) -> Entry:
    claim = src.answer.claims["line_search"]
    rows = [f"  {'worst of the three starts':<26}" + "".join(
        f"{m['method'].split('_')[0][:9]:>12}" for m in claim["methods"])]
    for i, c in enumerate(claim["methods"][0]["criteria"]):
        label = Q.criterion_text(c["criterion"], c["tol"])
        rows.append(f"  {label:<26}" + "".join(
            f"{_n(m['criteria'][i]['worst_epochs']):>12}" for m in claim["methods"]))
    ws = claim["worst_start"]
    rows.append(f"exact line search from ({ws['init'][0]:.4f}, {ws['init'][1]:.4f}): "
                f"‖θ − θ*‖ ≤ 0.01 at epoch {_n(ws['param_epoch'])}")
    holds = {m["method"]: m["holds_under"] for m in claim["methods"]}
    n_criteria = len(claim["methods"][0]["criteria"])
    exact_all = len(holds["exact_line_search"]) == n_criteria
    crawls = ws["param_epoch"] is None or ws["param_epoch"] > claim["threshold_epochs"]
    bt = holds["backtracking_line_search"]
    exact = ("holds only with exact line search" + (" from these starts" if crawls else "")
             if exact_all else "exact line search: " + (
                 f"holds only for {', '.join(holds['exact_line_search'])}"
                 if holds["exact_line_search"] else "does not hold"))
    best = next(r for r in src.answer.runs if r.method.name == "best_lr"
                and r.init == src.answer.starts[0])
    return Entry(
        "A10", "Line search: \"from several thousand to around 50\" iterations",
        "the article's data from (0, 0), (−1, 0), (2, 8); exact line search (t = gᵀg/gᵀHg) "
        f"and backtracking (initial step {Q.BACKTRACKING_STEP:g}, Armijo constant "
        f"{E.Settings().armijo:g}, shrink {E.Settings().shrink:g}); plain GD at lr 0.0001 for "
        f"comparison; \"about 50\" read as ≤ {claim['threshold_epochs']} epochs",
        "line search cuts the iterations \"from several thousand to around 50\"",
        ("study reproduce --only A10", f"study iterations --data {ARTICLE_CSV}"), tuple(rows),
        f"{exact}; backtracking: " + (f"holds only for {', '.join(bt)}" if bt else
                                      "does not hold"),
        ". ".join(v[0].upper() + v[1:] for v in Q.line_search_verdicts(claim))
        + ". Exact steps finish here because the first gradient points almost exactly along "
        "the steep direction, and in 2-D the next is then almost exactly the slow one. From "
        "the worst start the zigzag is as slow as the best constant lr (which needs "
        f"{_n(best.target('param', 0.01).measured_epochs)} epochs for ‖θ − θ*‖ ≤ 0.01 from "
        f"{Q.start_text(best.init)}).")


# ── B: the sequential update ────────────────────────────────────────────────────────────────


def b1_sequential(src: Sources) -> Entry:
    p = src.project("tutorial_b.csv")
    rows, results, rates, edges = [], {}, [], []
    for update in ("sequential", "simultaneous"):
        s = replace(MSE, update=update)
        r = _run(p, 1e-3, 10_000, (0, 0), s)
        results[update] = r
        rates.append(T.spectral_radius(p, s, 1e-3))
        edges.append(T.lr_max(p, s))
        rows.append(f"{update:<13} m = {r.theta[0]:.6f}, b = {r.theta[1]:.6f}, ‖θ − θ*‖ = "
                    f"{r.dist_to_ols:.2g}; rate per epoch {T.spectral_radius(p, s, 1e-3):.7f}, "
                    f"lr_max {T.lr_max(p, s):.4f}")
    gap = float(np.linalg.norm(results["sequential"].theta - results["simultaneous"].theta))
    rows.append(f"OLS θ*        m = {p.ols_theta[0]:.6f}, b = {p.ols_theta[1]:.6f}; the two "
                f"updates end {gap:.1g} apart")
    flags = ("--lr", "0.001", "--epochs", "10000", "--update", "sequential")
    data = f"{DATA_DIR}/tutorial_b.csv"
    holds = results["sequential"].dist_to_ols < 1e-3
    return Entry(
        "B1", "Sequential update: m first, then b from the new m",
        f"`{data}`, mean squared error, lr 0.001, 10,000 epochs from (0, 0)",
        "the sequential update fits the line in 10,000 epochs",
        ("study reproduce --only B1", fit_command(("fit", "--data", data, *flags))),
        tuple(rows), "holds" if holds else "does not hold",
        "Sequential and simultaneous updates differ by O(lr²) per epoch: at lr 0.001 their "
        f"per-epoch rates differ by {abs(rates[0] - rates[1]):.0e} and their results by "
        f"{gap:.0e}. The order matters only near the edge of stability, where the "
        f"{'sequential' if edges[0] > edges[1] else 'simultaneous'} update tolerates a slightly "
        "larger lr.",
        (_fit(data, *flags, result=results["sequential"]),))


def b2_slower(src: Sources) -> Entry:
    p = src.project("tutorial_b.csv")
    s = replace(MSE, update="sequential")
    epochs = [1000 * k for k in range(0, 11)]
    path = T.trajectory(p, s, 1e-3, (0, 0), epochs)
    after = T.trajectory(p, s, 1e-3, (0, 0), [e + 1 for e in epochs])
    dist = np.linalg.norm(path - p.ols_theta, axis=1)
    step = np.linalg.norm(after - path, axis=1)
    rho = T.spectral_radius(p, s, 1e-3)
    rows = [f"{'epoch':>6}{'step ‖θₙ₊₁ − θₙ‖':>20}{'‖θ − θ*‖':>12}{'ratio to 1000 before':>24}"]
    for i, e in enumerate(epochs):
        ratio = f"{dist[i] / dist[i - 1]:.4f}" if i else ""
        rows.append(f"{e:>6}{step[i]:>20.3g}{dist[i]:>12.3g}{ratio:>24}")
    rows.append(f"theory: ratio per 1000 epochs = ρ¹⁰⁰⁰ = {rho ** 1000:.4f} (ρ = {rho:.7f})")
    ratios = dist[2:] / dist[1:-1]
    constant = bool(np.all(np.abs(ratios / rho ** 1000 - 1.0) < 0.01))
    return Entry(
        "B2", "\"Slower and slower\" near the optimum",
        f"`{DATA_DIR}/tutorial_b.csv`, sequential update, lr 0.001 from (0, 0); the exact "
        "trajectory (checked against the engine by the tests)",
        "\"parameters converge slower and slower as they approach their optimal values\"",
        ("study reproduce --only B2",), tuple(rows),
        "holds only for the step size" if constant else "holds",
        "Each step is proportional to the remaining distance, so steps shrink steadily; but the "
        "distance shrinks by the same factor every epoch (linear convergence), "
        f"×{rho ** 1000:.3f} per 1000 epochs at any distance: the progress does not slow down in "
        "relative terms." if constant else "The ratio per 1000 epochs grows.")


# ── C: the constant factor of the cost ─────────────────────────────────────────────────────

C_START = (0.48, 0.75)


def c1_after_1000(src: Sources) -> Entry:
    p = src.project("tutorial_c.csv")
    rows, last = [], None
    for n in (10, 100, 1000):
        last = _run(p, 0.01, n, C_START, cost="half_mse")
        rows.append(f"after {n:>5} steps: m = {last.theta[0]:.5f}, b = {last.theta[1]:.5f}, "
                    f"‖θ − θ*‖ = {last.dist_to_ols:.3g}")
    rows.append(f"least squares:     m = {p.ols_theta[0]:.5f}, b = {p.ols_theta[1]:.5f}")
    data = f"{DATA_DIR}/tutorial_c.csv"
    flags = ("--cost", "half_mse", "--lr", "0.01", "--epochs", "1000", "--init-m", "0.48",
             "--init-b", "0.75")
    return Entry(
        "C1", "The GD line after 1000 steps",
        f"`{data}` (X = 1..5, Y = 1, 3, 3, 3, 5), J = ½·mean squared error, alpha 0.01, start "
        "θ = (m, b) = (0.48, 0.75)",
        "the GD line after 1000 steps differs from the least-squares line",
        ("study reproduce --only C1", fit_command(("fit", "--data", data, *flags))),
        tuple(rows), "holds" if last.dist_to_ols > 1e-3 else "does not hold",
        f"After 1000 steps at alpha 0.01, b is still {last.theta[1] - p.ols_theta[1]:+.3f} from "
        f"the least-squares value: the time constant here is 1/(alpha·λ_min) = "
        f"{T.time_constant(p, replace(MSE, cost='half_mse'), 0.01):,.0f} steps.",
        (_fit(data, *flags, result=last),))


def c2_constant_factor(src: Sources) -> Entry:
    p = src.project("tutorial_c.csv")
    alpha, n = 0.01, p.n
    pairs = [(("half_mse", 2 * alpha), ("mse", alpha)),
             (("sse", alpha), ("half_mse", 2 * n * alpha))]
    rows = []
    for cost in ("half_mse", "mse", "sse"):
        r = _run(p, alpha, 1000, C_START, cost=cost)
        lim = _run(p, alpha, 1_000_000, C_START, cost=cost, tol_param=1e-12)
        rows.append(f"{cost:<9} alpha {alpha:g}: after 1000 steps (m, b) = ({r.theta[0]:.5f}, "
                    f"{r.theta[1]:.5f}); limit ({lim.theta[0]:.6f}, {lim.theta[1]:.6f}) after "
                    f"{_n(lim.epochs_run)} steps")
    same = True
    for (c1, a1), (c2, a2) in pairs:
        s1 = replace(MSE, cost=c1, record_path=True)
        s2 = replace(MSE, cost=c2, record_path=True)
        r1 = _run(p, a1, 1000, C_START, s1)
        r2 = _run(p, a2, 1000, C_START, s2)
        diff = float(np.max(np.abs(r1.history_theta - r2.history_theta)))
        same &= diff < 1e-12
        rows.append(f"{c1} at alpha {a1:g} vs {c2} at alpha {a2:g}: largest difference of "
                    f"(m, b) over 1000 steps {diff:.1g}")
    data = f"{DATA_DIR}/tutorial_c.csv"
    flags = ("--cost", "sse", "--lr", "0.01", "--epochs", "1000", "--init-m", "0.48",
             "--init-b", "0.75")
    r_sse = _run(p, alpha, 1000, C_START, cost="sse")
    return Entry(
        "C2", "Does the cost's constant factor change the result?",
        f"`{data}`, alpha 0.01 from (0.48, 0.75), with J = ½·mean squared error (half_mse), "
        "mean squared error (mse) and the plain sum of squares (sse)",
        "changing the cost's constant factor changes what GD converges to",
        ("study reproduce --only C2", fit_command(("fit", "--data", data, *flags))),
        tuple(rows), "does not hold" if same else "holds",
        f"All three costs have the same minimiser θ* = ({p.ols_theta[0]:.6g}, "
        f"{p.ols_theta[1]:.6g}): multiplying J by c multiplies "
        "its gradient by c, which is the same as multiplying the learning rate by c. So "
        f"half_mse at 2·alpha is step for step mse at alpha, and sse (= {2 * n}·half_mse for "
        f"N = {n}) at alpha is half_mse at {2 * n}·alpha. What the factor changes is the speed, "
        "hence where a fixed number of steps stops.",
        (_fit(data, *flags, result=r_sse),))


def c3_million(src: Sources) -> Entry:
    p = src.project("tutorial_c.csv")
    rows, hits = [], {}
    tols = (1e-3, 1e-6, 1e-9)
    for cost in ("half_mse", "sse"):
        s = replace(MSE, cost=cost, param_tols=tols, cost_tols=(1e-6,), tol_param=min(tols))
        r = _run(p, 0.01, 1_000_000, C_START, s)
        pred, _ = T.predicted_epochs(p, s, 0.01, C_START, tols, (), 1_000_000)
        end = _run(p, 0.01, 1_000_000, C_START, cost=cost)
        hits[cost] = r.first_param_epoch
        rows.append(f"{cost:<9} ‖θ − θ*‖ ≤ 1e-3 / 1e-6 / 1e-9 at steps "
                    + " / ".join(_n(r.first_param_epoch[t]) for t in tols)
                    + " (predicted " + " / ".join(_n(pred[t]) for t in tols) + "); after "
                    f"10⁶ steps ‖θ − θ*‖ = {end.dist_to_ols:.1g}")
    need = hits["half_mse"][1e-6]
    return Entry(
        "C3", "A million steps",
        f"`{DATA_DIR}/tutorial_c.csv`, alpha 0.01 from (0.48, 0.75), 10⁶ steps",
        "after about 10⁶ steps the GD line matches the least-squares line",
        ("study reproduce --only C3",), tuple(rows),
        "holds" if need is not None else "does not hold",
        f"It matches, but 10⁶ steps are far more than needed: with ½·mean squared error "
        f"{_n(need)} steps already bring (m, b) within 1e-6 of (0.8, 0.6), and with the plain "
        f"squared error {_n(hits['sse'][1e-6])}.")


# ── D: too high, too low ────────────────────────────────────────────────────────────────────


def d1_learning_rate(src: Sources) -> Entry:
    p = src.article
    sp = T.spectrum(p)
    edge = T.lr_max(p)
    rows = [f"{'lr':>11}{'lr/lr_max':>11}{'1 − lr·λ_max':>14}{'measured':>24}"
            f"{'‖θ−θ*‖≤0.01 at':>16}{'predicted':>14}"]
    table = []
    for lr in (1e-6, 1e-5, 1e-4, 3e-4, 0.99 * edge, 1.01 * edge, 5e-4):
        r = _run(p, lr, Q.DEFAULT_MAX_EPOCHS, (0, 0), param_tols=(0.01,), tol_param=0.01)
        pred, _ = T.predicted_epochs(p, MSE, lr, (0, 0), (0.01,), (), 10**10)
        factor = 1.0 - lr * sp.lam_max
        status = (f"diverged at {r.diverged_at}" if r.status == "diverged" else
                  "overshoots, converges" if factor < 0 and r.status == "converged" else
                  "converges" if r.status == "converged" else "too slow for the cap")
        table.append((lr, factor, r.status, pred[0.01]))
        rows.append(f"{_g(lr, 4):>11}{lr / edge:>11.3f}{factor:>14.3f}{status:>24}"
                    f"{_n(r.first_param_epoch[0.01]):>16}{_n(pred[0.01]):>14}")
    high = all(s == "diverged" for lr, _, s, _ in table if lr > edge)
    low = [e for lr, _, _, e in table if lr <= 1e-4]  # predicted: the cap does not hide them
    slow = None not in low and all(a > b for a, b in itertools.pairwise(low))
    return Entry(
        "D1", "Too high overshoots, too low is slow",
        f"the article's data, start (0, 0), cap {Q.DEFAULT_MAX_EPOCHS:,} epochs; lr_max = "
        f"{_g(edge)}",
        "a learning rate too high overshoots; too low is slow",
        ("study reproduce --only D1",
         f"study iterations --data {ARTICLE_CSV} --start 0,0 --lr 1e-5 --lr 1e-4 --lr 3e-4"),
        tuple(rows), "holds" if high and slow else "does not hold",
        f"Two kinds of too high: above 1/λ_max = {_g(1 / sp.lam_max, 4)} each step jumps past "
        "the valley floor (1 − lr·λ_max < 0: the steep error flips sign every epoch) yet still "
        f"converges; above 2/λ_max = {_g(edge, 4)} the jumps grow and GD diverges. Too low: "
        "the epochs needed grow as 1/lr (the slow time constant is 1/(lr·λ_min)); at 1e-6 "
        "the cap is far too small.")


# ── E: several features and the stopping rule ───────────────────────────────────────────────


def e1_stopping_rule(src: Sources) -> Entry:
    p = src.project("multivariate.csv")
    a = src.article
    half = replace(MSE, cost="half_mse")
    init = tuple(np.random.default_rng(0).random(p.d + 1))
    r = _run(p, 0.01, 100, init, half)
    costs = {int(e): c for e, c in zip(r.history_epoch, r.history_cost, strict=True)}
    rows = ["cost every 10 epochs: " + ", ".join(f"{costs[e]:.1f}" for e in range(0, 101, 10)),
            f"κ = {T.spectrum(p, half).condition_number:.3g} here; "
            f"{T.spectrum(a).condition_number:,.0f} on the article's data",
            f"  {'rule':<24}{'data':<12}{'stops at':>10}{'‖θ − θ*‖':>12}{'‖θ*‖':>10}"]
    far = {}
    for label, change in (("|ΔJ| ≤ 1e-6 per epoch", {"tol_cost_change": 1e-6}),
                          ("‖∇J‖ ≤ 1e-3", {"tol_grad": 1e-3})):
        for name, prob, lr, start, s in (("tutorial E", p, 0.01, init, half),
                                         ("article", a, 1e-4, (0.0, 0.0), MSE)):
            res = _run(prob, lr, Q.DEFAULT_MAX_EPOCHS, start, s, **change)
            far[(label, name)] = res.dist_to_ols / np.linalg.norm(prob.ols_theta)
            rows.append(f"  {label:<24}{name:<12}{_n(res.epochs_run):>10}"
                        f"{res.dist_to_ols:>12.3g}{np.linalg.norm(prob.ols_theta):>10.3g}")
    good_here = all(far[(lbl, "tutorial E")] < 1e-3 for lbl, _ in far)
    bad_there = far[("|ΔJ| ≤ 1e-6 per epoch", "article")] > 0.1
    return Entry(
        "E1", "Several features, and when to stop",
        f"`{DATA_DIR}/multivariate.csv` (100 samples × 5 features), J = ½·mean squared error, "
        "gradient (1/n)·Xᵀ(Xw − y), lr 0.01 (our choice), initial weights uniform in [0, 1) "
        "from numpy's generator seeded 0; the same rules on the article's data at lr 0.0001",
        "stop when J stops changing adequately or the gradient is small enough",
        ("study reproduce --only E1",), tuple(rows),
        "holds only on well-conditioned data" if good_here and bad_there else
        ("holds" if good_here else "does not hold"),
        "With standard-normal features the Hessian is well conditioned and both rules stop "
        "close to the least-squares weights. On the article's data the same cost-change rule "
        "stops while (m, b) is still far away, because the cost is nearly flat along the slow "
        "direction; the gradient rule keeps its guarantee ‖θ − θ*‖ ≤ ‖∇J‖/λ_min on both.")


SECTIONS = (
    Section("A", "Nedrich, \"An Introduction to Gradient Descent and Linear Regression\"",
            f"Mean squared error, simultaneous update, the article's 100 points "
            f"(`{ARTICLE_CSV}`).",
            (a1_published, a2_text_settings, a3_readers_2000, a4_why, a5_million,
             a6_start_2_8, a7_edge, a8_convergence_tests, a9_start, a10_line_search)),
    Section("B", "The sequential-update follow-up", "Mean squared error; m is updated first, "
            "then b's gradient is computed with the new m.", (b1_sequential, b2_slower)),
    Section("C", "The notebook \"Linear regression with gradient descent\"",
            "Matrix form θ = (m, b), X with a column of ones, five points.",
            (c1_after_1000, c2_constant_factor, c3_million)),
    Section("D", "The glossary page", "Mean squared error, simultaneous update, any data; run "
            "here on the article's.", (d1_learning_rate,)),
    Section("E", "\"Linear Regression using Gradient Descent in Python\"",
            "½·mean squared error, vectorised, several features.", (e1_stopping_rule,)),
)
