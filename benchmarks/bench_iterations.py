"""Speed of ``study iterations``, as a ratio against the article's per-point loop run here.

    python benchmarks/bench_iterations.py [--data ../shared/data/nedrich/data.csv]

Prints: the whole command on the article's data (defaults: three starts, every cure, tolerances
down to 0.001, cap 5,000,000 epochs) as a fresh process, without and with the figure, best of
three; the same question in this process; the article's per-point Python loop per epoch (timed
here on 2,000 epochs); the epochs the question iterates and what the loop would need for them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

# the same baseline as the engine benchmark (benchmarks/ is on sys.path when run as a script)
from bench_engine import best_of, seed_style_epoch

from study.core import engine as E
from study.core.data import load_problem
from study.questions import answer as Q

ROOT = Path(__file__).resolve().parents[1]


def loop(points: np.ndarray, epochs: int) -> None:
    m = b = 0.0
    for _ in range(epochs):
        m, b = seed_style_epoch(points, m, b, 1e-4)


def counting_epochs() -> list[int]:
    """Count every epoch the engine iterates from now on (all runs, the claims' included)."""
    counts: list[int] = []
    inner = E.run_batch

    def run_batch(*args, **kwargs):
        results = inner(*args, **kwargs)
        counts.extend(r.epochs_run for r in results)
        return results

    E.run_batch = run_batch
    return counts


def command(argv: list[str]) -> float:
    """Wall time of one fresh ``study`` process (imports and cached compiled code included)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "study", *argv], check=True, capture_output=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/nedrich/data.csv"))
    args = ap.parse_args()
    problem = load_problem(args.data)
    points = np.column_stack([problem.X[:, 0], problem.y])

    Q.iterations(problem)  # warm: compiled code loaded once
    text = best_of(lambda: command(["iterations", "--data", args.data]))
    fig_path = ROOT / "benchmarks" / ".iterations.png"
    figure = best_of(lambda: command(["iterations", "--data", args.data, "--figure",
                                      str(fig_path)]))
    fig_path.unlink(missing_ok=True)
    answer = None

    def in_process():
        nonlocal answer
        answer = Q.iterations(problem)

    inside = best_of(in_process)
    counts = counting_epochs()
    in_process()
    epochs = sum(counts)
    loop_epochs = 2_000
    per_epoch = best_of(lambda: loop(points, loop_epochs)) / loop_epochs
    print(f"study iterations, whole command (fresh process):  {text:6.2f} s")
    print(f"  with --figure:                                   {figure:6.2f} s")
    print(f"the same question in this process:                {inside:6.2f} s")
    print(f"the article's per-point loop:                     {per_epoch * 1e6:6.1f} µs per "
          f"epoch (timed on {loop_epochs:,} epochs)")
    print(f"epochs the question iterates: {epochs:,} in {len(counts)} runs "
          f"({sum(r.epochs_run for r in answer.runs):,} for the table's {len(answer.runs)} runs)")
    print(f"the per-point loop would need {epochs * per_epoch / 60:,.1f} min for them: "
          f"{epochs * per_epoch / inside:,.0f}× the whole question in this process, "
          f"{epochs * per_epoch / text:,.0f}× the whole command")

if __name__ == "__main__":
    main()
