"""``study run --workers N``: N local processes run the sweep's loop on one study.

The storage coordinates them; there is no queue or scheduler of our own. This process (the
parent) first makes everything once (:func:`study.sweep.startup.setup`: the stored study, the MLflow
schema and experiment, the parent run), then starts each worker as
``python -m study.sweep.workers`` in its own session, handing it the config, the experiment id and
the parent run id on stdin. Each worker runs :func:`study.sweep.loop.loop` until the study holds
``n_trials`` complete trials. Meanwhile the parent polls the storage for one combined
progress bar, relays the workers' error lines, and forwards SIGINT/SIGTERM (the first halts the
workers' running trials and stops them once their finished trials are told, the second stops
them at once, a third kills them). At the end
it writes one summary, closes the parent run (FINISHED, KILLED when interrupted, FAILED when a
worker failed) and exits non-zero if a worker failed.

Workers started in their own session do not receive the terminal's Ctrl-C directly, so every
signal reaches them exactly once, through the parent; a worker whose parent has died stops
after its batch.

On several machines, run the same ``study run`` (with or without ``--workers``) on each,
against one PostgreSQL storage and one MLflow tracking server (README, "Scale-out").
"""

from __future__ import annotations

import io
import math
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import IO, Any

import optuna
from optuna.trial import TrialState

from study.errors import StudyError
from study.sweep.loop import Batch, finish, run_loop, store_errors
from study.sweep.reaper import Heartbeat
from study.sweep.signals import SignalScope
from study.sweep.startup import Setup, attach, n_complete, setup, start_parent
from study.sweep.summary import SweepSummary, counts_text, progress_bar

POLL_SECONDS = 0.5


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker process needs: the validated config and the ids made by the parent."""

    cfg: Any
    experiment_id: str
    parent_run_id: str | None
    heartbeat: int | None
    parent_pid: int
    index: int


@dataclass
class _Worker:
    index: int
    proc: subprocess.Popen
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def describe(self) -> str:
        code = self.proc.returncode
        how = (f"was killed by {signal.Signals(-code).name}" if code < 0 else
               f"exited with code {code}")
        last = next((ln for ln in reversed(self.lines) if ln.strip()), "")
        return f"worker {self.index} (pid {self.proc.pid}) {how}" + (f": {last}" if last else "")


def _relay(worker: _Worker, stream: IO[str], write: Any) -> None:
    for line in stream:
        line = line.rstrip("\n")
        worker.lines.append(line)
        write(f"worker {worker.index}: {line}")


def _start(spec: WorkerSpec, write: Any) -> _Worker:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "study.sweep.workers"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=False,
                            start_new_session=True, env=env)
    proc.stdin.write(pickle.dumps(spec))
    proc.stdin.close()
    worker = _Worker(spec.index, proc)
    stream = io.TextIOWrapper(proc.stderr, encoding="utf-8", errors="replace")
    worker.reader = threading.Thread(target=_relay, args=(worker, stream, write), daemon=True)
    worker.reader.start()
    return worker


class _Forward(SignalScope):
    """Forward SIGINT/SIGTERM to the workers; the third signal kills them."""

    def __init__(self, workers: list[_Worker], write: Any) -> None:
        self.workers, self.write = workers, write
        self.count = 0

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        name = signal.Signals(signum).name
        sig = signal.SIGKILL if self.count >= 3 else signum
        if self.count == 1:
            self.write(f"study: {name}: workers stop; finished trials are kept, unfinished ones "
                       f"run again on resume (again to stop now)")
        elif self.count == 2:
            self.write(f"study: {name}: workers stop now (again to kill them)")
        for w in self.workers:
            if w.proc.poll() is None:
                try:
                    os.kill(w.proc.pid, sig)
                except ProcessLookupError:
                    pass


def _poll_counts(study: optuna.Study) -> Counter | None:
    """Status counts of the complete trials, or None when the storage cannot be read now."""
    try:
        trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    except Exception:
        return None
    return Counter(t.user_attrs.get("status") for t in trials)


def _n_workers(cfg: Any, st: Setup, n_workers: int, before: int) -> int:
    """How many workers to start: no more than batches remain (a note says when fewer)."""
    remaining = st.target - before
    wanted = min(n_workers, max(math.ceil(remaining / int(cfg.search.batch_size)), 0))
    if wanted < n_workers:
        st.notes.append(f"{n_workers} workers asked; {wanted} started for the {remaining} "
                        f"remaining trial(s) at search.batch_size {cfg.search.batch_size}")
    return wanted


def _watch(study: optuna.Study, workers: list[_Worker], bar: Any, shown: int) -> None:
    """Update the bar from the storage until every worker has exited."""
    # poll every worker each time: poll() also reaps a dead one, and a zombie would look alive
    # to the other workers' check of its process id
    while [w for w in workers if w.proc.poll() is None]:
        time.sleep(POLL_SECONDS)
        polled = _poll_counts(study)
        if polled is not None:
            done = sum(polled.values())
            bar.update(max(done - shown, 0))
            shown = max(done, shown)
            bar.set_postfix_str(counts_text(polled), refresh=False)


def _stop(workers: list[_Worker]) -> None:
    """SIGTERM every live worker and wait for all: none is left behind an error."""
    for w in workers:
        if w.proc.poll() is None:
            os.kill(w.proc.pid, signal.SIGTERM)
    for w in workers:
        w.proc.wait()


def _run_workers(cfg: Any, st: Setup, wanted: int, heartbeat: int | None, bar: Any,
                 write: Any, before: int) -> tuple[list[_Worker], bool]:
    """Start ``wanted`` workers and wait for them, the bar counting on from ``before``
    complete trials; returns the workers and whether a signal came."""
    workers: list[_Worker] = []
    with _Forward(workers, write) as forward:
        try:
            for i in range(wanted):
                if forward.count:  # interrupted while starting: start no more
                    break
                spec = WorkerSpec(cfg, st.tracker.experiment_id, st.tracker.parent_run_id,
                                  heartbeat, os.getpid(), i + 1)
                workers.append(_start(spec, write))
            _watch(st.study, workers, bar, before)
        except BaseException:
            _stop(workers)
            raise
        finally:
            for w in workers:
                if w.reader is not None:
                    w.reader.join(timeout=5)
            bar.close()
    return workers, forward.count > 0


def run_with_workers(cfg: Any, n_workers: int, *, fresh: bool = False, progress: bool = True,
                     heartbeat: int | None = None) -> SweepSummary:
    """Run the sweep of ``cfg`` in ``n_workers`` processes; returns a
    :class:`study.sweep.summary.SweepSummary` whose ``failed_workers`` lists failed workers."""
    started = time.perf_counter()
    with store_errors(cfg):
        st = setup(cfg, fresh, heartbeat)
        start_parent(cfg, st)
    before = n_complete(st.study)
    wanted = _n_workers(cfg, st, n_workers, before)
    bar = progress_bar(progress, st.target, before, _poll_counts(st.study) or Counter())
    write = bar.write if progress else (lambda s: print(s, file=sys.stderr, flush=True))
    workers, interrupted = _run_workers(cfg, st, wanted, heartbeat, bar, write, before)
    failed = [w for w in workers if w.proc.returncode not in (0, 130)
              or (w.proc.returncode == 130 and not interrupted)]
    n_new = n_complete(st.study) - before
    summary = finish(cfg, st, n_new, started, interrupted, failed=bool(failed))
    summary.workers = wanted
    summary.failed_workers = [w.describe() for w in failed]
    if failed:
        summary.exit_code = 2 if all(w.proc.returncode == 2 for w in failed) else 1
    return summary


# ── the worker process ──────────────────────────────────────────────────────────────────────


def worker_main(spec: WorkerSpec) -> int:
    """One worker: attach to the study and the experiment, run the loop; 0 when the study is
    complete (or nothing is left for it), 130 when stopped by a signal, 2 on a StudyError."""
    # the parent speaks for the study; a worker's warnings (QMC's note on the pending trials
    # of other workers, for one) would only repeat per worker
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    cfg = spec.cfg
    with store_errors(cfg):
        st = attach(cfg, spec.experiment_id, spec.parent_run_id, spec.heartbeat)
    bar = progress_bar(False, st.target, 0, {})
    with Heartbeat(st.study) as beat:
        batch = Batch(st.study, st.space, beat)
        interrupted = run_loop(cfg, st, batch, Counter(), bar, worker=True,
                               orphaned=lambda: os.getppid() != spec.parent_pid)
    return 130 if interrupted else 0


def _main() -> int:
    spec = pickle.load(sys.stdin.buffer)
    try:
        return worker_main(spec)
    except StudyError as exc:
        print(f"study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(_main())
