"""How long the report takes and how much memory it needs, from trials tables made by the engine.

Three cases, each built in a fresh subprocess (so its peak resident memory is its own):

- ``quickstart``: data/blog_like.csv, ~120 trials shaped like configs/quickstart.yaml's space;
- ``trials10k``: the same data and space, 10,000 trials;
- ``rows2m``: a generated data set of 2,000,000 rows, 120 trials.

Each prints the time of ``build_report`` (trials table, figures, documents), the time of every
figure's draw and save, peak resident memory, and ratios against a baseline run in the same
process (saving one empty Agg figure, and one fixed numpy sum), since the machine is noisy.

``--command`` times the command a user types, ``study report configs/quickstart.yaml`` in a
fresh process on a real quickstart study (swept once, ``--no-report``), alternately with a
yardstick in a fresh process (Python importing pandas and matplotlib and saving one empty
figure: what any report must pay), and prints the best and the median of each and their ratio.

    python benchmarks/bench_report.py            # all cases
    python benchmarks/bench_report.py --case quickstart --profile 25
    python benchmarks/bench_report.py --command --repeat 7
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {"quickstart": (None, 120), "trials10k": (None, 10_000), "rows2m": (2_000_000, 120)}


def _trials(problem, n_trials: int, seed: int = 0):
    """A trials table over the quickstart space (lr log-uniform around the edge, budgets a decade
    apart, uniform starts), made by one engine run, with the sweep's columns."""
    import pandas as pd

    from study.core import engine

    rng = np.random.default_rng(seed)
    lrs = _edge(problem) * np.exp(rng.uniform(np.log(0.01), np.log(3.0), n_trials))
    budgets = rng.choice([100, 1000, 10_000, 100_000], n_trials)
    starts = np.column_stack([rng.uniform(-2, 4, n_trials), rng.uniform(-10, 20, n_trials)])
    settings = engine.Settings(tol_param=0.01, divergence_factor=10)
    trials = [engine.Trial(float(lr), int(e), (float(s[0]), float(s[1])), settings)
              for lr, e, s in zip(lrs, budgets, starts, strict=True)]
    rows = []
    for i, (t, r) in enumerate(zip(trials, engine.run(problem, trials), strict=True)):
        rows.append({"trial": i, "lr": t.lr, "epochs": t.epochs, "init_m": t.init[0],
                     "init_b": t.init[1], "status": r.status, "final_cost": r.cost,
                     "dist_to_ols": r.dist_to_ols, "cost_gap": r.cost_gap,
                     "rel_cost_gap": r.rel_cost_gap, "epochs_run": r.epochs_run,
                     "diverged_at": r.diverged_at, "final_m": r.theta[0],
                     "final_b": r.theta[1]})
    return pd.DataFrame(rows)


def _edge(problem) -> float:
    from study.core import theory

    return float(theory.lr_max(problem))


def _problem(rows: int | None):
    from study.core.data import load_problem
    from study.core.problem import Problem

    if rows is None:
        return load_problem(ROOT / "data" / "blog_like.csv", None, None)
    rng = np.random.default_rng(1)
    x = rng.uniform(20.0, 70.0, rows)
    return Problem(x[:, None], 1.3 * x + 8.0 + rng.normal(0.0, 10.0, rows), source="generated")


def _baseline() -> dict[str, float]:
    """Same-process yardsticks: one empty 7×5 in figure saved as PNG, one numpy sum."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        for _ in range(5):
            fig = Figure(figsize=(7, 5))
            FigureCanvasAgg(fig)
            fig.add_subplot()
            fig.savefig(Path(tmp) / "empty.png", dpi=100)
        savefig = (time.perf_counter() - t) / 5
    a = np.random.default_rng(0).random(10_000_000)
    t = time.perf_counter()
    for _ in range(5):
        float(np.sum(a * a))
    return {"savefig": savefig, "numpy": (time.perf_counter() - t) / 5}


def run_case(name: str, profile: int = 0, keep: str | None = None) -> dict:
    """Build one case's report in this process; returns its timings and peak memory."""
    from study.report import drawing
    from study.report.build import build_report
    from study.report.spec import Objective, ReportSpec

    rows, n_trials = CASES[name]
    problem = _problem(rows)
    table = _trials(problem, n_trials)
    spec = ReportSpec(name=name, objectives=(Objective("dist_to_ols"),),
                      swept=("lr", "epochs", "init_m", "init_b"),
                      log_scaled=frozenset({"lr", "epochs"}))
    base = _baseline()
    per_figure: dict[str, float] = {}
    save = getattr(drawing, "save_figure", None)

    def timed(key, fig, folder):
        t = time.perf_counter()
        out = save(key, fig, folder)
        per_figure[key] = time.perf_counter() - t
        return out

    if save is not None:  # older reports had no per-figure hook: time the whole only
        drawing.save_figure = timed
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with tempfile.TemporaryDirectory() as scratch:
        tmp = keep or scratch
        if profile:
            import cProfile
            import pstats

            prof = cProfile.Profile()
            t, cpu = time.perf_counter(), time.process_time()
            prof.runcall(build_report, spec, problem, table, tmp)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            pstats.Stats(prof).sort_stats("cumulative").print_stats(profile)
        else:
            t, cpu = time.perf_counter(), time.process_time()
            build_report(spec, problem, table, tmp)
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"case": name, "rows": problem.n, "trials": len(table), "seconds": seconds, "cpu": cpu,
            "figures": per_figure, "peak_rss_mb": resource.getrusage(
                resource.RUSAGE_SELF).ru_maxrss / 1024, "rss_before_mb": rss_before / 1024,
            **{f"base_{k}": v for k, v in base.items()}}


def _print(r: dict) -> None:
    print(f"{r['case']:<11} {r['rows']:>9,} rows {r['trials']:>6,} trials: report "
          f"{r['seconds']:6.2f} s (CPU {r.get('cpu', float('nan')):.2f} s) = "
          f"{r['seconds'] / r['base_savefig']:4.0f}× an empty savefig "
          f"({r['base_savefig'] * 1e3:.0f} ms), {r['seconds'] / r['base_numpy']:6.0f}× the numpy "
          f"yardstick; peak RSS {r['peak_rss_mb']:,.0f} MB (before the report "
          f"{r['rss_before_mb']:,.0f} MB)")
    print("            per figure (draw is in save): " + ", ".join(
        f"{k} {v:.2f}s" for k, v in r["figures"].items()))


YARDSTICK = """
import os, matplotlib.figure, pandas
from matplotlib.backends.backend_agg import FigureCanvasAgg
fig = matplotlib.figure.Figure(figsize=(7, 5)); FigureCanvasAgg(fig); fig.add_subplot()
fig.savefig(os.devnull, format="png", dpi=100)
"""


def _env() -> dict[str, str]:
    """This checkout first; bytecode cached as an installed package has it (a machine that sets
    PYTHONDONTWRITEBYTECODE compiles the project's modules at every start: ~0.1 s)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(ROOT)}


def _wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=_env())
    return time.perf_counter() - start


def command(repeat: int) -> None:
    """``study report`` on a real quickstart study against the yardstick, fresh processes."""
    import shutil

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(ROOT / "configs", folder / "configs")
        shutil.copytree(ROOT / "data", folder / "data")
        subprocess.run([sys.executable, "-m", "study", "run", "configs/quickstart.yaml",
                        "--no-progress", "--no-report"], cwd=folder, check=True,
                       stdout=subprocess.DEVNULL, env=_env())
        report = [sys.executable, "-m", "study", "report", "configs/quickstart.yaml"]
        _wall(report, folder)  # the first report creates the run's artifact folders
        runs, sticks = [], []
        for _ in range(repeat):
            runs.append(_wall(report, folder))
            sticks.append(_wall([sys.executable, "-c", YARDSTICK], folder))
    best, stick = min(runs), min(sticks)
    print(f"study report configs/quickstart.yaml (120 trials), fresh processes, best of {repeat}")
    print(f"  study report   {best:5.2f} s (median {np.median(runs):.2f} s; all "
          f"{', '.join(f'{t:.2f}' for t in runs)})")
    print(f"  yardstick      {stick:5.2f} s (median {np.median(sticks):.2f} s): python, import "
          f"pandas + matplotlib, save an empty figure")
    medians = np.median(runs) / np.median(sticks)
    print(f"  ratio          {best / stick:5.2f} (medians {medians:.2f}); target: study report "
          f"<= 2 s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", choices=sorted(CASES))
    parser.add_argument("--profile", type=int, default=0, help="print the top N of cProfile")
    parser.add_argument("--json", action="store_true", help="print one JSON line (internal)")
    parser.add_argument("--keep", metavar="DIR", help="write the case's report to DIR to look at")
    parser.add_argument("--command", action="store_true",
                        help="time `study report` on a real quickstart study (fresh processes)")
    parser.add_argument("--repeat", type=int, default=5, help="--command: runs of each")
    args = parser.parse_args(argv)
    if args.command:
        command(args.repeat)
        return 0
    if args.case:
        result = run_case(args.case, args.profile, args.keep)
        print(json.dumps(result) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            _print(result)
        return 0
    for name in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", name, "--json"], check=True,
                             capture_output=True, text=True).stdout.strip().splitlines()[-1]
        _print(json.loads(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
