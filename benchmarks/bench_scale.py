"""Scale-out throughput: complete trials per second, with full logging, for 1, 2 and 4 workers
on the embedded default stores and on PostgreSQL + an MLflow tracking server.

    python benchmarks/bench_scale.py [--trials 600] [--batch 50] [--workers 1 2 4]
                                     [--no-server] [--no-embedded]

Every measurement is the real command, ``study run CONFIG --workers N --no-report``, on a new
study with the same config (the blog-like data, lr log-uniform across lr_max, epochs 100-2000,
random start, random sampler), as in ``bench_sweep.py``:

- embedded: an Optuna journal file and an MLflow sqlite store in a new folder;
- server: a new PostgreSQL database for Optuna (RDB storage, heartbeats on) and a new
  experiment on an ``mlflow server`` backed by PostgreSQL. The script uses the services named
  by STUDY_TEST_POSTGRES / STUDY_TEST_MLFLOW_SERVER / STUDY_SERVICES_DIR when set, else starts
  them with ``.ci/services start`` and stops them at the end.

Printed per run: wall time of the whole command (start-up included), trials per second over
the whole command and in steady state (first to last completed trial), the speed-up over one
worker, and where the CPU time went — the study processes (the command and its workers), the
MLflow server and PostgreSQL (sampled from /proc while the run lasts) — in CPU-ms per trial.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")

CONFIG = """\
name: {name}
data: {{path: blog.csv}}
algorithm: {{tol_param: 1.0e-3}}
search:
  sampler: random
  seed: 0
  n_trials: {trials}
  batch_size: {batch}
  objectives: [{{metric: dist_to_ols}}]
  space:
    lr: {{low: 1.0e-5, high: 1.0e-3, log: true}}
    epochs: {{low: 100, high: 2000}}
    init_m: {{low: -2.0, high: 2.0}}
    init_b: {{low: -10.0, high: 10.0}}
tracking:
  storage: {storage}
  mlflow_uri: {mlflow}
"""


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, in seconds (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def service_pids(services_dir: Path | None) -> dict[str, list[int]]:
    """Processes of the MLflow server (its process group) and of PostgreSQL (the postmaster
    and its backends)."""
    if services_dir is None:
        return {}
    groups: dict[str, list[int]] = {"mlflow server": [], "postgresql": []}
    try:
        server_pgid = int((services_dir / "mlflow.pid").read_text())
        postmaster = int((services_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError):
        return {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid, pgid = int(entry.name), int(fields[1]), int(fields[2])
        if pgid == server_pgid:
            groups["mlflow server"].append(pid)
        elif pid == postmaster or ppid == postmaster:
            groups["postgresql"].append(pid)
    return groups


class ServiceCpu:
    """CPU seconds used by the services while a run lasts, sampled every 0.25 s (PostgreSQL
    backends end with their connection, so each one's last sample is kept)."""

    def __init__(self, services_dir: Path | None) -> None:
        self.services_dir = services_dir
        self.start: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group: dict[int, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self, first: bool = False) -> None:
        for name, pids in service_pids(self.services_dir).items():
            for pid in pids:
                used = cpu_seconds(pid)
                self.group[pid] = name
                if first or pid not in self.start:
                    self.start.setdefault(pid, used if first else 0.0)
                self.last[pid] = max(used, self.last.get(pid, 0.0))

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            self._sample()

    def __enter__(self) -> ServiceCpu:
        self._sample(first=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    def used(self) -> dict[str, float]:
        out = {"mlflow server": 0.0, "postgresql": 0.0} if self.services_dir else {}
        for pid, last in self.last.items():
            out[self.group[pid]] += last - self.start.get(pid, 0.0)
        return out


def new_database(pg: str) -> str:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(f"{pg.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return f"{pg.rstrip('/')}/{name}"


def run_one(folder: Path, workers: int, trials: int, batch: int, storage: str, mlflow: str,
            services_dir: Path | None) -> dict:
    from study.config.model import load_config
    from study.core.datasets import blog_like, render_csv
    from study.sweep.storage import load_study

    folder.mkdir(parents=True)
    (folder / "blog.csv").write_text(render_csv(blog_like()))
    name = f"bench-{uuid.uuid4().hex[:8]}"
    path = folder / "study.yaml"
    path.write_text(CONFIG.format(name=name, trials=trials, batch=batch, storage=storage,
                                  mlflow=mlflow))
    cmd = [sys.executable, "-m", "study", "run", str(path), "--no-report", "--no-progress"]
    if workers > 1:
        cmd += ["--workers", str(workers)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with ServiceCpu(services_dir) as service:
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=folder, capture_output=True, text=True,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    study = load_study(load_config(path)).get_trials(deepcopy=False)
    ends = sorted(t.datetime_complete.timestamp() for t in study
                  if t.state.name == "COMPLETE")
    assert len(ends) == trials, (len(ends), trials)
    cpu = {"study": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)}
    cpu.update(service.used())
    return {"wall": wall, "rate": trials / wall,
            "steady": (len(ends) - 1) / (ends[-1] - ends[0]) if ends[-1] > ends[0] else 0.0,
            "cpu": cpu}


def start_services() -> tuple[dict[str, str], bool]:
    """The services' environment, and whether this script started them."""
    keys = ("STUDY_TEST_POSTGRES", "STUDY_TEST_MLFLOW_SERVER")
    if all(os.environ.get(k) for k in keys):
        return {k: os.environ[k] for k in (*keys, "STUDY_SERVICES_DIR") if k in os.environ}, False
    out = subprocess.run([str(ROOT / ".ci" / "services"), "start"], capture_output=True,
                         text=True, check=True).stdout
    env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
               if line.startswith("export "))
    return env, True


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=600)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--no-server", action="store_true", help="skip PostgreSQL + MLflow server")
    ap.add_argument("--no-embedded", action="store_true", help="skip the embedded stores")
    args = ap.parse_args()

    print(f"{args.trials} trials per run (random sampler, batch {args.batch}), full logging; "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    setups = []
    if not args.no_embedded:
        setups.append("embedded")
    env, started = ({}, False) if args.no_server else start_services()
    if not args.no_server:
        setups.append("server")
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        for setup in setups:
            base = None
            print(f"\n{setup}: " + ("journal file + MLflow sqlite store" if setup == "embedded"
                                    else "PostgreSQL (Optuna RDB) + mlflow server (PostgreSQL)"))
            print(f"  {'workers':>7} {'wall s':>7} {'trials/s':>9} {'steady/s':>9} "
                  f"{'speed-up':>8}   CPU-ms per trial")
            for n in args.workers:
                folder = tmp / f"{setup}-{n}"
                if setup == "embedded":
                    storage, mlflow = str(folder / "optuna.journal"), \
                        f"sqlite:///{folder / 'mlflow.db'}"
                    services_dir = None
                else:
                    storage = new_database(env["STUDY_TEST_POSTGRES"])
                    mlflow = env["STUDY_TEST_MLFLOW_SERVER"]
                    services_dir = Path(env["STUDY_SERVICES_DIR"]) \
                        if env.get("STUDY_SERVICES_DIR") else None
                r = run_one(folder, n, args.trials, args.batch, storage, mlflow, services_dir)
                base = base or r["steady"]
                cpu = "  ".join(f"{k} {1e3 * v / args.trials:5.1f}" for k, v in r["cpu"].items())
                print(f"  {n:>7} {r['wall']:>7.1f} {r['rate']:>9.1f} {r['steady']:>9.1f} "
                      f"{r['steady'] / base:>7.2f}x   {cpu}", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if started:
            subprocess.run([str(ROOT / ".ci" / "services"), "stop", env["STUDY_SERVICES_DIR"]],
                           check=False)


if __name__ == "__main__":
    main()
