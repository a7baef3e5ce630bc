"""Look at a fresh study the way a user does: run a config in an empty folder (twice: part of the
trials, then the rest, as a resumed study), start ``mlflow ui`` and ``optuna-dashboard`` on
127.0.0.1 over its stores, and take screenshots with headless Chromium.

    python scripts/screenshots.py                      # configs/quickstart.yaml → shots/quickstart
    python scripts/screenshots.py configs/nedrich.yaml --out /tmp/shots --first 40

Pages taken (PNG, 1400 wide; run pages 2200 high to show their metrics and params): the MLflow
experiment as it opens (``mlflow-experiment.png``), through the link the summary prints
(``mlflow-experiment-runs.png``), one child run (``mlflow-child-run.png``), the
parent run (``mlflow-parent-run.png``), and optuna-dashboard's study page with its History plot
(``dashboard-history.png``) and its analytics page with the slice and importance plots
(``dashboard-analytics.png``). The servers are stopped and the folder removed at the end
(``--keep`` keeps the folder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 240.0) -> None:
    """Wait until ``url`` answers (a server just started)."""
    end = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > end:
                raise RuntimeError(f"{url} did not answer within {seconds:.0f} s") from None
            time.sleep(0.5)


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def screenshot(url: str, path: Path, wait_ms: int = 12000, height: int = 900) -> None:
    """A 1400-pixel wide PNG of ``url`` once its scripts have run for ``wait_ms`` (virtual
    time)."""
    exe = next((shutil.which(c) for c in CHROMIUM if shutil.which(c)), None)
    if exe is None:
        raise RuntimeError("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={profile}", f"--screenshot={path}",
                        f"--window-size=1400,{height}", f"--virtual-time-budget={wait_ms}", url],
                       check=True, capture_output=True, timeout=300)
    print(f"  {path}  ←  {url}")


def run_study(config: Path, folder: Path, overrides: list[str], report: bool = False) -> None:
    cmd = [sys.executable, "-m", "study", "run", str(config), "--no-progress",
           *([] if report else ["--no-report"])]
    for o in overrides:
        cmd += ["--set", o]
    print("$", " ".join(cmd[1:]))
    out = subprocess.run(cmd, cwd=folder, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    print(out.stdout.rstrip())
    if out.returncode != 0:
        raise SystemExit(f"study run failed ({out.returncode}): {out.stderr.strip()}")


def start(cmd: list[str], folder: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, cwd=folder, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def mlflow_pages(base: str, name: str, out: Path) -> None:
    exp = get_json(f"{base}/api/2.0/mlflow/experiments/get-by-name?"
                   f"experiment_name={urllib.parse.quote(name)}")["experiment"]
    eid = exp["experiment_id"]
    tags = {t["key"]: t["value"] for t in exp.get("tags", [])}
    print(f"  experiment {name!r} id {eid}, mlflow.experimentKind = "
          f"{tags.get('mlflow.experimentKind')!r}")
    runs = post_json(f"{base}/api/2.0/mlflow/runs/search",
                     {"experiment_ids": [eid], "max_results": 1000}).get("runs", [])
    parents = [r for r in runs if not any(t["key"] == "mlflow.parentRunId"
                                          for t in r["data"].get("tags", []))]
    children = [r for r in runs if r not in parents]
    print(f"  {len(parents)} parent run(s), {len(children)} child runs")
    ml = "?workflowType=machine_learning"  # the link the summary prints
    screenshot(f"{base}/#/experiments/{eid}", out / "mlflow-experiment.png")
    screenshot(f"{base}/#/experiments/{eid}{ml}", out / "mlflow-experiment-runs.png")
    if children:
        child = children[0]["info"]["run_id"]
        screenshot(f"{base}/#/experiments/{eid}/runs/{child}{ml}", out / "mlflow-child-run.png",
                   height=2200)
    if parents:
        parent = parents[0]["info"]["run_id"]
        screenshot(f"{base}/#/experiments/{eid}/runs/{parent}{ml}",
                   out / "mlflow-parent-run.png", height=2200)
        listed = get_json(f"{base}/api/2.0/mlflow/artifacts/list?run_id={parent}&path=report")
        print(f"  parent's report/ artifacts: {len(listed.get('files', []))} entries")
        screenshot(f"{base}/#/experiments/{eid}/runs/{parent}/artifacts/report/report.html",
                   out / "mlflow-parent-report.png", height=1400)


def dashboard_pages(base: str, out: Path) -> None:
    studies = get_json(f"{base}/api/studies")["study_summaries"]
    sid = studies[0]["study_id"]
    screenshot(f"{base}/dashboard/studies/{sid}", out / "dashboard-history.png", 20000)
    screenshot(f"{base}/dashboard/studies/{sid}/analytics", out / "dashboard-analytics.png",
               30000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config", nargs="?", default=str(ROOT / "configs" / "quickstart.yaml"))
    p.add_argument("--out", default=None, help="folder of the PNGs (default shots/<config>)")
    p.add_argument("--first", type=int, default=80,
                   help="trials of the first `study run`; the second completes the config's")
    p.add_argument("--keep", action="store_true", help="keep the study's folder")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config override for both runs (e.g. data.path=…)")
    args = p.parse_args(argv)
    config = Path(args.config).resolve()
    out = Path(args.out or ROOT / "shots" / config.stem).resolve()
    out.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"shots-{config.stem}-"))
    procs: list[subprocess.Popen] = []
    try:
        run_study(config, folder, [*args.overrides, f"search.n_trials={args.first}"])
        run_study(config, folder, args.overrides, report=True)  # as a user: with its report
        name = yaml.safe_load(config.read_text())["name"]
        mport, dport = free_port(), free_port()
        procs.append(start(["mlflow", "ui", "--backend-store-uri",
                            f"sqlite:///{folder / 'mlflow.db'}", "--default-artifact-root",
                            (folder / "mlruns").as_uri(), "--host", "127.0.0.1",
                            "--port", str(mport)], folder))
        procs.append(start(["optuna-dashboard", str(folder / "optuna.journal"),
                            "--host", "127.0.0.1", "--port", str(dport)], folder))
        mbase, dbase = f"http://127.0.0.1:{mport}", f"http://127.0.0.1:{dport}"
        wait_http(f"{mbase}/health")
        wait_http(f"{dbase}/api/studies")
        mlflow_pages(mbase, name, out)
        dashboard_pages(dbase, out)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if args.keep:
            print(f"study folder kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
