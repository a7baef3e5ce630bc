"""Sweep overhead, as a ratio against the MLflow floor measured in this process.

    python benchmarks/bench_sweep.py [--trials 500] [--batch 50] [--sampler random]

1. The sweep: ``run_sweep`` on the blog-like data (lr on a log range across lr_max, epochs and
   start), full logging, new Optuna journal file and new MLflow sqlite store, no report.
2. The floor: a new sqlite store, then the same runs with the same payload (tags, params,
   metrics with the cost history, history.csv, terminal status) created directly through
   ``MlflowClient`` — what any tool logging these runs must pay.
3. Optuna storage cost per trial for the writes the sweep makes (ask with 4 parameters, the
   ``worker`` and 3 result attributes, tell): journal file, sqlite, in memory.

Sweep and floor alternate ``--repeat`` times and the best of each is kept (the machine may be
shared). Prints the ratio sweep / floor (target ≤ 1.3) and the per-trial figures.

    python benchmarks/bench_sweep.py --quickstart [--repeat 2]

The whole quickstart as a new user runs it: ``study run configs/quickstart.yaml`` in a new folder
(a fresh process: imports, new stores, the 120 trials, the report), against the floor for the
same runs in a fresh process (import MLflow, new sqlite store, the 120 runs with their payload);
both timed from outside, wall clock. Target: ratio ≤ 1.5.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
logging.getLogger("mlflow").setLevel(logging.WARNING)


def make_config(folder: Path, trials: int, batch: int, sampler: str, storage: str | None = None):
    from study.config.model import StudyConfig
    from study.core.datasets import blog_like, render_csv

    (folder / "blog.csv").write_text(render_csv(blog_like()))
    raw = {"name": "bench", "data": {"path": "blog.csv"},
           "algorithm": {"tol_param": 1e-3},
           "search": {"sampler": sampler, "seed": 0, "n_trials": trials, "batch_size": batch,
                      "objectives": [{"metric": "dist_to_ols"}],
                      "space": {"lr": {"low": 1e-5, "high": 1e-3, "log": True},
                                "epochs": {"low": 100, "high": 2000},
                                "init_m": {"low": -2.0, "high": 2.0},
                                "init_b": {"low": -10.0, "high": 10.0}}},
           "tracking": {"mlflow_uri": f"sqlite:///{folder / 'mlflow.db'}",
                        "storage": storage or str(folder / "optuna.journal")}}
    return StudyConfig.from_mapping(raw, base_dir=folder)


def time_sweep(cfg) -> float:
    from study import api

    start = time.perf_counter()
    done = api.run_sweep(cfg, progress=False, report=False)
    seconds = time.perf_counter() - start
    assert done.n_complete == cfg.search.n_trials, done
    return seconds


def records(cfg) -> list:
    """The sweep's trials rebuilt as tracking records (outside any timing)."""
    from study.core import engine
    from study.core.data import load_problem
    from study.sweep import sampling, summary
    from study.tracking import runlog as tracking

    problem = load_problem(cfg.data.path)
    frame = summary.trials_frame(cfg)
    base = cfg.settings()
    out = []
    for row in frame.to_dict("records"):
        params = {k: row[k] for k in ("lr", "epochs", "init_m", "init_b")}
        trial = sampling.engine_trial(params, base, 1, int(row["seed"]))
        res = engine.run_one(problem, trial)
        out.append(tracking.TrialRecord("floor", "uid", int(row["trial"]), params, base,
                                        int(row["seed"]), res, problem.param_names))
    return out


def time_floor(folder: Path, recs: list) -> float:
    """New store, then per run: create_run, log_batch, log_text, set_terminated."""
    from mlflow import MlflowClient

    from study.tracking import runlog as tracking

    start = time.perf_counter()
    client = MlflowClient(f"sqlite:///{folder / 'floor.db'}")
    exp = client.create_experiment("floor", artifact_location=(folder / "fl").as_uri())
    parent = client.create_run(exp).info.run_id
    for rec in recs:
        now = int(time.time() * 1000)
        create_tags, metrics, params, tags = tracking.trial_payload(rec, now, parent)
        run_id = client.create_run(exp, start_time=now, tags=create_tags,
                                   run_name=rec.run_name).info.run_id
        tracking.log_batch(client, run_id, metrics, params, tags)
        client.log_text(run_id, tracking.history_csv(rec.result, rec.param_names),
                        "history.csv")
        client.set_terminated(run_id, tracking.STATUS_TO_RUN_STATUS[rec.result.status],
                              end_time=now)
    client.set_terminated(parent)
    return time.perf_counter() - start


def time_storage(storage, n: int = 200, batch: int = 50) -> float:
    """Seconds per trial for the sweep's Optuna writes: ask (4 parameters), the ``worker``
    attribute, the three result attributes, tell."""
    import optuna
    from optuna.distributions import FloatDistribution, IntDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=storage, study_name="s",
                                sampler=optuna.samplers.RandomSampler(seed=0))
    space = {"lr": FloatDistribution(1e-5, 1e-3, log=True), "epochs": IntDistribution(100, 2000),
             "init_m": FloatDistribution(-2, 2), "init_b": FloatDistribution(-10, 10)}
    result = {f"value{k}": 1.0 for k in range(16)}
    start = time.perf_counter()
    for _ in range(n // batch):
        asked = [study.ask(space) for _ in range(batch)]
        for trial in asked:
            trial.set_user_attr("worker", "host:1")
        for trial in asked:
            trial.set_user_attr("status", "converged")
            trial.set_user_attr("result", result)
            trial.set_user_attr("mlflow_run_id", "0" * 32)
            study.tell(trial, 1.0)
    return (time.perf_counter() - start) / n


ROOT = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def quickstart(repeat: int) -> None:
    """The quickstart command in a new folder against the floor of its runs, both in fresh
    processes, alternately; the best of each."""
    from study.config.model import load_config

    runs, floors = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeat):
            folder = Path(tmp) / f"qs{i}"
            shutil.copytree(ROOT / "configs", folder / "configs")
            shutil.copytree(ROOT / "data", folder / "data")
            runs.append(wall([sys.executable, "-m", "study", "run", "configs/quickstart.yaml",
                              "--no-progress"], folder))
            os.chdir(folder)  # the config's stores are in the working directory
            recs = records(load_config(folder / "configs" / "quickstart.yaml"))
            (folder / "recs.pickle").write_bytes(pickle.dumps(recs))
            (folder / "floor").mkdir()
            floors.append(wall([sys.executable, __file__, "--floor", str(folder)], folder))
            os.chdir(ROOT)
    best_run, best_floor = min(runs), min(floors)
    print(f"quickstart: {len(recs)} trials, report included, fresh processes")
    print(f"  study run configs/quickstart.yaml  {best_run:6.2f} s")
    print(f"  MLflow floor (import, new store, the same {len(recs)} runs)  {best_floor:6.2f} s")
    print(f"  ratio quickstart / floor  {best_run / best_floor:5.2f}   (target <= 1.5; best of "
          f"{repeat}: runs {', '.join(f'{t:.1f}' for t in runs)} s, floors "
          f"{', '.join(f'{t:.1f}' for t in floors)} s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--sampler", default="random")
    ap.add_argument("--repeat", type=int, default=2, help="sweep/floor pairs (best kept)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the sqlite-storage sweep")
    ap.add_argument("--quickstart", action="store_true",
                    help="the whole quickstart command against its floor")
    ap.add_argument("--floor", help=argparse.SUPPRESS)  # the floor's own process (quickstart)
    args = ap.parse_args()
    if args.floor:
        folder = Path(args.floor)
        time_floor(folder / "floor", pickle.loads((folder / "recs.pickle").read_bytes()))
        return
    if args.quickstart:
        quickstart(args.repeat)
        return

    from study.core import engine
    from study.core.data import load_problem

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "warm").mkdir()
        warm = make_config(root / "warm", 4, 4, args.sampler)  # load compiled code, imports
        engine.run_one(load_problem(warm.data.path), engine.Trial(1e-4, 10))
        time_sweep(warm)

        # alternate sweep and floor and keep the best of each: this machine is shared
        sweeps, floors = [], []
        for i in range(args.repeat):
            (root / f"sweep{i}").mkdir()
            cfg = make_config(root / f"sweep{i}", args.trials, args.batch, args.sampler)
            sweeps.append(time_sweep(cfg))
            recs = records(cfg)
            (root / f"floor{i}").mkdir()
            floors.append(time_floor(root / f"floor{i}", recs))
        t_sweep, t_floor = min(sweeps), min(floors)
        statuses = {s: sum(r.result.status == s for r in recs) for s in engine.STATUSES}

        t_sweep_sql = None
        if not args.no_sqlite:
            (root / "sqlite").mkdir()
            cfg_sql = make_config(root / "sqlite", args.trials, args.batch, args.sampler,
                                  storage=f"sqlite:///{root / 'sqlite' / 'optuna.db'}")
            t_sweep_sql = time_sweep(cfg_sql)

        import optuna
        from optuna.storages.journal import JournalFileBackend

        journal = optuna.storages.JournalStorage(JournalFileBackend(str(root / "o.journal")))
        sqlite = optuna.storages.RDBStorage(f"sqlite:///{root / 'o.db'}",
                                            engine_kwargs={"connect_args": {"timeout": 30}})
        per = {"journal file": time_storage(journal), "sqlite": time_storage(sqlite),
               "in memory": time_storage(None)}

    n = args.trials
    print(f"sweep: {n} trials ({args.sampler}, batch {args.batch}; {statuses}), full logging")
    print(f"  sweep (journal storage)  {t_sweep:7.2f} s  {1e3 * t_sweep / n:6.1f} ms/trial")
    print(f"  MLflow floor             {t_floor:7.2f} s  {1e3 * t_floor / n:6.1f} ms/run")
    print(f"  ratio sweep / floor      {t_sweep / t_floor:7.2f}   (target <= 1.3; best of "
          f"{args.repeat}: sweeps {', '.join(f'{t:.1f}' for t in sweeps)} s, floors "
          f"{', '.join(f'{t:.1f}' for t in floors)} s)")
    if t_sweep_sql is not None:
        print(f"  sweep (sqlite storage)   {t_sweep_sql:7.2f} s  "
              f"{1e3 * t_sweep_sql / n:6.1f} ms/trial  ratio {t_sweep_sql / t_floor:.2f}")
    print("Optuna storage, the sweep's writes per trial (ask 4 params, 4 user attrs, tell):")
    for name, sec in per.items():
        print(f"  {name:<12} {1e3 * sec:6.2f} ms")


if __name__ == "__main__":
    main()
