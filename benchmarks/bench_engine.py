"""Engine speed, as ratios against the tutorials' per-point Python loop run in this process.

    python benchmarks/bench_engine.py [--data ../shared/data/nedrich/data.csv]

Prints: the seed-style loop's cost per epoch; the engine's cost per trial-epoch (CPU time, best
of 3) for plain GD on the 2-parameter problem (1,000 trials × 100,000 epochs, one core) and for
momentum, line search (100 trials) and minibatch;
one 1,000,000-epoch trajectory with checkpoints and tolerance records; the first call in a fresh
process, compiling into an empty cache directory (plain GD alone, then every update rule) and
loading the compiled code from that cache.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from study.core import engine as E
from study.core.data import load_problem

ROOT = Path(__file__).resolve().parents[1]


def seed_style_epoch(points: np.ndarray, m: float, b: float, lr: float) -> tuple[float, float]:
    """The article's step_gradient: a Python loop over the points."""
    b_grad = m_grad = 0.0
    n = float(len(points))
    for i in range(len(points)):
        x, y = points[i, 0], points[i, 1]
        b_grad += -(2 / n) * (y - (m * x + b))
        m_grad += -(2 / n) * x * (y - (m * x + b))
    return m - lr * m_grad, b - lr * b_grad


def best_of(fn, repeat: int = 3) -> float:
    """Least CPU time of ``repeat`` calls: on shared cores, wall time measures the neighbours."""
    times = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(ROOT.parent / "shared/data/nedrich/data.csv"))
    args = ap.parse_args()
    problem = load_problem(args.data)
    points = np.column_stack([problem.X[:, 0], problem.y])

    def loop():
        m = b = 0.0
        for _ in range(200):
            m, b = seed_style_epoch(points, m, b, 1e-4)

    per_epoch_loop = best_of(loop) / 200
    print(f"seed-style per-point loop:   {per_epoch_loop * 1e6:9.1f} µs per epoch")

    rng = np.random.default_rng(0)
    n_trials, epochs = 1_000, 100_000
    lr = rng.uniform(1e-5, 3.9e-4, n_trials)
    init = np.column_stack([rng.normal(0, 2, n_trials), rng.normal(0, 10, n_trials)])
    E.run_batch(problem, E.Settings(), lr[:2], np.full(2, 10), init[:2])  # compile / load

    rows = []
    for label, settings in [("gd, simultaneous", E.Settings()),
                            ("gd, sequential", E.Settings(update="sequential")),
                            ("momentum 0.9", E.Settings(optimizer="momentum", momentum=0.9)),
                            ("line search, backtracking", E.Settings(optimizer="line_search")),
                            ("line search, exact",
                             E.Settings(optimizer="line_search", line_search="exact"))]:
        E.run_batch(problem, settings, lr[:2], np.full(2, 10), init[:2])
        n = n_trials if settings.optimizer != "line_search" else n_trials // 10
        t = best_of(lambda s=settings, n=n: E.run_batch(problem, s, lr[:n], np.full(n, epochs),
                                                        init[:n]))
        rows.append((label, t / (n * epochs)))
    mb = E.Settings(optimizer="minibatch", batch_size=10)
    E.run_batch(problem, mb, lr[:2], np.full(2, 10), init[:2])
    t = best_of(lambda: E.run_batch(problem, mb, lr[:200], np.full(200, 200), init[:200]))
    rows.append(("minibatch SGD (batch 10)", t / (200 * 200)))
    for label, per in rows:
        print(f"{label:27s}  {per * 1e9:9.2f} ns per trial-epoch = {1 / per / 1e6:8.1f} M/s;"
              f"  {per_epoch_loop / per:12,.0f}× the per-point loop")

    one = E.Trial(1e-4, 1_000_000, (0.0, 0.0))
    t = best_of(lambda: E.run_one(problem, one))
    print(f"one 1,000,000-epoch trajectory: {t * 1e3:7.1f} ms"
          f"  (per-point loop would take {per_epoch_loop * 1e6:,.0f} s: "
          f"{per_epoch_loop * 1e6 / t:,.0f}×)")

    with tempfile.TemporaryDirectory() as gd, tempfile.TemporaryDirectory() as every:
        for label, cache, rules in [("plain GD", gd, "gd"), ("every rule", every, "all"),
                                    ("cached, plain GD", gd, "gd"),
                                    ("cached, every rule", every, "all")]:
            print(f"first call in a fresh process, {label + ':':19s} {fresh(cache, rules):6.2f} s"
                  "  (import + compile, or load from the cache)")


FRESH = """
import time
t = time.perf_counter()
import numpy as np
from study.core import engine as E
from study.core.problem import Problem
problem = Problem(np.arange(5.0), np.arange(5.0))
kinds = [dict()] if "{rules}" == "gd" else [
    dict(), dict(update="sequential"), dict(optimizer="momentum"),
    dict(optimizer="momentum", update="sequential"), dict(optimizer="minibatch"),
    dict(optimizer="minibatch", update="sequential"), dict(optimizer="line_search"),
    dict(optimizer="line_search", line_search="exact")]
for kind in kinds:
    E.run_one(problem, E.Trial(0.01, 10, (0.0, 0.0), E.Settings(**kind)))
print(time.perf_counter() - t)
"""


def fresh(cache_dir: str, rules: str) -> float:
    """Seconds from import to the first results of ``rules`` in a new process whose numba cache
    is ``cache_dir`` (empty: everything compiles; filled by an earlier call: loaded)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": cache_dir}
    out = subprocess.run([sys.executable, "-c", FRESH.format(rules=rules)], capture_output=True,
                         text=True, check=True, env=env)
    return float(out.stdout)


if __name__ == "__main__":
    main()
