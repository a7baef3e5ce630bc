"""Optuna drives the sweep: storage, samplers, the batched ask-and-tell loop, the trials table.
This is the only module that imports optuna.

The loop (``run_sweep``): count COMPLETE trials; while fewer than ``search.n_trials``, ask
``min(batch_size, remaining)`` trials, turn their parameters (plus the constants of the space)
into engine trials, run them as one :func:`study.engine.run` call, log each as an MLflow child
run (:mod:`study.tracking`), store its result as user attributes and tell Optuna its objective
values. ``n_trials`` is the *total* wanted: re-running resumes, raising it adds the difference.

User attributes of a told trial: ``status`` (converged | max_epochs | diverged),
``mlflow_run_id``, and ``result``, a dict of ``final_<param>``, ``final_cost``,
``initial_cost``, ``dist_to_ols``, ``cost_gap``, ``rel_cost_gap``, ``grad_norm``,
``epochs_run``, ``diverged_at``, ``epochs_to_param_tol_<t>``, ``epochs_to_cost_tol_<t>`` (None
when unreached) and the minibatch ``seed``; ``worker`` (host:pid) is set when it is asked.
:func:`trials_frame` flattens them into one tidy row per trial.

Objective values. A converged or max_epochs trial reports its metric (final_cost, dist_to_ols,
cost_gap, rel_cost_gap, epochs_to_param_tol / epochs_to_cost_tol at the objective's ``tol``).
Never NaN or ±inf, because Optuna turns NaN into FAIL and TPE learns nothing from failed trials:

- a **diverged** trial reports ``DIVERGED_VALUE = 1e300`` (−1e300 for a maximised objective):
  finite, worse than any real value, and flagged by the user attribute ``status='diverged'``;
- an epochs-to-tolerance objective whose tolerance was not reached reports
  ``UNREACHED_VALUE = 1e299`` (worse than any reached one, better than diverging).

:func:`best_trials` filters on ``status`` so a diverged trial is never "best".

Storages: a path (the default ``optuna.journal``) is a ``JournalStorage`` on a local file (the
sweep's writes cost about 3.5 ms per trial here, against about 30 ms on sqlite; see
benchmarks/RESULTS.md); ``sqlite:///`` is an ``RDBStorage`` waiting up to 30 s on a lock; any
other URL (``postgresql://…``) is passed to Optuna. The study stores the config hash and
fingerprint; resuming with another config is refused naming the changed fields, unless
``fresh=True``. A journal with a torn last line (a writer killed mid-write) is refused with the
exact command that repairs it.

Samplers are seeded from ``search.seed``: grid (values, or ranges with a step; the loop stops at
the end of the grid and re-queues failed points, which GridSampler would never revisit), random,
qmc (scrambled Sobol), tpe (``constant_liar`` so a pending batch is spread out), nsga2. Trial
``n`` shuffles minibatches with a seed drawn from (search.seed, algorithm.seed, n).

Workers: any number of processes may run the same config against a shared storage; each counts
before it asks, and asks beyond the first ``n_trials`` live trials are failed unrun
(``surplus=True``), so the study ends with exactly ``n_trials`` complete trials.

Interrupts: SIGINT and SIGTERM ask the loop to stop once the current batch is logged and told;
a second signal stops at once (the open MLflow run becomes KILLED, trials asked but not told are
told FAIL and queued again with the same parameters). Trials left RUNNING by a dead process on
this host are failed and queued again at start-up.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from study import engine, tracking
from study.errors import ConfigError, StorageError

DIVERGED_VALUE = 1e300
UNREACHED_VALUE = 1e299
INT_KEYS = {"epochs"} | {f.name for f in fields(engine.Settings) if f.type in ("int", int)}
SETTING_KEYS = {f.name for f in fields(engine.Settings)}


# ── search space ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Space:
    """The config's search space for one problem: what Optuna samples, what stays constant."""

    distributions: dict[str, BaseDistribution]
    constants: dict[str, Any]
    grid: dict[str, list] | None  # values per swept name, for the grid sampler

    @property
    def names(self) -> list[str]:
        return [*self.distributions, *self.constants]


def _init_names(d: int) -> list[str]:
    return ["init_m", "init_b"] if d == 1 else [*(f"init_w{j + 1}" for j in range(d)), "init_b"]


def _distribution(name: str, spec: Any) -> BaseDistribution:
    if spec.kind == "values":
        return CategoricalDistribution(list(spec.values))
    step = getattr(spec, "step", None)
    log = bool(getattr(spec, "log", False))
    if name in INT_KEYS:
        return IntDistribution(int(spec.low), int(spec.high), log=log, step=int(step or 1))
    return FloatDistribution(float(spec.low), float(spec.high), log=log,
                             step=None if step is None else float(step))


def _grid_values(name: str, spec: Any, dist: BaseDistribution) -> list:
    if spec.kind == "values":
        return list(spec.values)
    if getattr(spec, "step", None) is None:
        raise ConfigError(f"search.space.{name}: the grid sampler needs `values` or a range with "
                          f"`step`; got a continuous range [{spec.low}, {spec.high}]")
    n = math.floor((dist.high - dist.low) / dist.step + 1e-9) + 1
    values = [dist.low + i * dist.step for i in range(n)]
    return [int(v) for v in values] if name in INT_KEYS else [float(v) for v in values]


def build_space(cfg: Any, d: int) -> Space:
    """The config's space for ``d`` features: starts from ``cfg.init_space(d)`` (``init_w``
    expanded to ``init_w1…init_wd``, missing starts 0), then lr, epochs and settings."""
    specs: dict[str, Any] = {k: v for k, v in cfg.search.space.items()
                             if not k.startswith("init_")}
    specs.update(cfg.init_space(d))
    for name in ("lr", "epochs"):
        if name not in specs:
            raise ConfigError(f"search.space.{name} is required")
    distributions, constants = {}, {n: 0.0 for n in _init_names(d)}
    for name, spec in specs.items():
        if spec.kind == "const":
            constants[name] = spec.value
        else:
            constants.pop(name, None)
            distributions[name] = _distribution(name, spec)
    grid = None
    if cfg.search.sampler == "grid":
        grid = {n: _grid_values(n, specs[n], dist) for n, dist in distributions.items()}
    return Space(distributions, constants, grid)


def _engine_trial(values: Mapping[str, Any], base: engine.Settings, d: int, seed: int
                  ) -> engine.Trial:
    """An engine trial from a full set of space values; swept settings override ``base``."""
    changes = {k: v for k, v in values.items() if k in SETTING_KEYS}
    settings = replace(base, **changes) if changes else base
    init = tuple(float(values[n]) for n in _init_names(d))
    return engine.Trial(lr=float(values["lr"]), epochs=int(values["epochs"]), init=init,
                        settings=settings, seed=seed)


def trial_seed(cfg: Any, base: engine.Settings, number: int) -> int:
    """Minibatch seed of trial ``number``: from (search.seed, algorithm seed, number)."""
    entropy = [int(cfg.search.seed or 0), int(base.seed), int(number)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# ── objectives ──────────────────────────────────────────────────────────────────────────────


def _objective_key(obj: Any) -> str:
    if obj.metric in ("epochs_to_param_tol", "epochs_to_cost_tol"):
        return tracking.tol_key(obj.metric, float(obj.tol))
    return obj.metric


def objective_values(values: Mapping[str, Any], status: str, objectives: Sequence[Any]
                     ) -> list[float]:
    """Finite objective values of one trial (see the module docstring for the caps)."""
    out = []
    for obj in objectives:
        sign = 1.0 if obj.direction == "minimize" else -1.0
        value = values.get(_objective_key(obj))
        if status == "diverged" or (value is not None and not math.isfinite(value)):
            out.append(sign * DIVERGED_VALUE)
        elif value is None:
            out.append(sign * UNREACHED_VALUE)
        else:
            out.append(float(value))
    return out


def _check_objectives(cfg: Any, base: engine.Settings) -> None:
    for i, obj in enumerate(cfg.search.objectives):
        tols = {"epochs_to_param_tol": base.param_tols,
                "epochs_to_cost_tol": base.cost_tols}.get(obj.metric)
        if tols is not None and float(obj.tol) not in {float(t) for t in tols}:
            kind = "param_tols" if obj.metric == "epochs_to_param_tol" else "cost_tols"
            raise ConfigError(f"search.objectives[{i}].tol must be one of algorithm.{kind} "
                              f"{list(tols)}; got {obj.tol}")


def best_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Best COMPLETE trials that did not diverge: the best one for a single objective, the
    Pareto front for several. Empty when every trial diverged."""
    trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
              if t.user_attrs.get("status") not in (None, "diverged")
              and all(math.isfinite(v) for v in t.values)]
    if not trials:
        return []
    signs = np.array([1.0 if d == optuna.study.StudyDirection.MINIMIZE else -1.0
                      for d in study.directions])
    values = np.array([t.values for t in trials]) * signs
    if values.shape[1] == 1:
        return [trials[int(np.argmin(values[:, 0]))]]
    front = []
    for i, v in enumerate(values):
        dominated = np.any(np.all(values <= v, axis=1) & np.any(values < v, axis=1))
        if not dominated:
            front.append(trials[i])
    return front


# ── storage and study ───────────────────────────────────────────────────────────────────────


def open_storage(url: str) -> optuna.storages.BaseStorage | str:
    """A journal file for a plain path, RDBStorage with a 30 s lock wait for sqlite, else the
    URL itself (Optuna makes the storage)."""
    try:
        if "://" not in url:
            from optuna.storages.journal import JournalFileBackend

            path = Path(url).expanduser()
            path.parent.mkdir(parents=True, exist_ok=True)
            _check_journal(path)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if url.startswith("sqlite:"):
            return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args":
                                                                  {"timeout": 30}})
        return url
    except (OSError, ValueError) as exc:
        raise StorageError(f"cannot open the Optuna storage {url}: {exc}") from exc


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, Mapping):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def changed_fields(old: Mapping, new: Mapping) -> list[str]:
    """Dotted keys whose values differ, as ``key: old → new``."""
    a, b = _flatten(old), _flatten(new)
    return [f"{k}: {a.get(k, '(absent)')!r} → {b.get(k, '(absent)')!r}"
            for k in sorted(set(a) | set(b)) if a.get(k, "(absent)") != b.get(k, "(absent)")]


def _load(name: str, storage: Any) -> optuna.Study | None:
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return None


def open_study(cfg: Any, sampler: optuna.samplers.BaseSampler, fresh: bool = False
               ) -> tuple[optuna.Study, str | None]:
    """Create or load the study ``cfg.name``; returns it and a note of what ``fresh``
    replaced. Refuses (StorageError) a study made from another config."""
    storage = open_storage(cfg.tracking.storage)
    directions = [o.direction for o in cfg.search.objectives]
    where = f"study {cfg.name!r} in {cfg.tracking.storage}"
    replaced = None
    try:
        old = _load(cfg.name, storage)
        if old is not None:
            n_done = len(old.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
            attrs = old.user_attrs
            same = attrs.get("config_hash") == cfg.hash()
            if fresh:
                optuna.delete_study(study_name=cfg.name, storage=storage)
                replaced = (f"--fresh: replaced {where} ({n_done} complete trials, "
                            f"study uid {attrs.get('study_uid')}; its MLflow runs stay "
                            f"in experiment {cfg.name!r})")
            elif not same:
                diff = changed_fields(attrs.get("fingerprint", {}),
                                      cfg.study_fingerprint()) or ["config hash"]
                raise StorageError(f"{where} was made from a different config (changed: "
                                   f"{'; '.join(diff)}); rerun with --fresh to replace its "
                                   f"{n_done} complete trials, or give the study another name")
            else:
                return optuna.load_study(study_name=cfg.name, storage=storage,
                                         sampler=sampler), None
        study = optuna.create_study(storage=storage, sampler=sampler, study_name=cfg.name,
                                    directions=directions, load_if_exists=True)
        if "study_uid" not in study.user_attrs:
            study.set_user_attr("study_uid", uuid.uuid4().hex)
            study.set_user_attr("config_hash", cfg.hash())
            study.set_user_attr("fingerprint", cfg.study_fingerprint())
        return study, replaced
    except StorageError:
        raise
    except Exception as exc:  # storage back-ends raise many types; name the store
        raise StorageError(_storage_message(cfg.tracking.storage, exc)) from exc


def _storage_message(url: str, exc: Exception) -> str:
    damage = _journal_damage(Path(url)) if "://" not in url else None
    if damage:
        return damage
    return f"cannot use the Optuna storage {url}: {type(exc).__name__}: {exc}"


def _journal_damage(path: Path, tail: int = 1 << 20) -> str | None:
    """Explain a journal file whose last ``tail`` bytes hold a torn or unreadable line (where
    a killed writer leaves one), and how to repair it."""
    import json

    if not path.is_file() or path.stat().st_size == 0:
        return None
    size = path.stat().st_size
    with path.open("rb") as f:
        f.seek(max(size - tail, 0))
        data = f.read()
    start = 0 if size <= tail else data.index(b"\n") + 1
    offset = size - len(data) + start
    for line in data[start:].split(b"\n"):
        if line.strip():
            try:
                json.loads(line)
            except ValueError:
                return (f"the Optuna journal {path} has an unreadable line at byte {offset} (a "
                        f"writer was killed mid-write; the trial it was writing is lost): keep "
                        f"a copy and cut the file there, e.g. `cp {path} {path}.bak && "
                        f"truncate -s {offset} {path}`, then run again")
        offset += len(line) + 1
    return None


def _check_journal(path: Path) -> None:
    """Refuse a journal with a torn or unreadable line near its end: appending to it would
    glue the next record onto the torn one, and later reads fail."""
    for _ in range(3):  # a live writer may be mid-append: give it a moment
        damage = _journal_damage(path)
        if damage is None:
            return
        time.sleep(0.2)
    raise StorageError(damage)


def make_sampler(cfg: Any, space: Space) -> optuna.samplers.BaseSampler:
    """The config's sampler, seeded from ``search.seed``."""
    seed, kind = cfg.search.seed, cfg.search.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "grid":
            return _AskTellGridSampler(space.grid, seed=seed)
        if kind == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if kind == "qmc":
            return optuna.samplers.QMCSampler(scramble=True, seed=seed,
                                              warn_independent_sampling=False)
        if kind == "tpe":  # constant_liar: pending trials of a batch count as bad, spreading it
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
    raise ConfigError(f"search.sampler must be one of grid, random, qmc, tpe, nsga2; got {kind!r}")


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose end of grid does not call ``study.stop()`` (which raises outside
    ``optimize``); the loop itself stops asking when every grid point is complete."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


def grid_points(space: Space) -> list[dict[str, Any]]:
    import itertools

    names = sorted(space.grid or {})
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(space.grid[n] for n in names))]


def _key(params: Mapping[str, Any], names: Sequence[str]) -> tuple:
    return tuple(params.get(n) for n in names)


# ── the loop ────────────────────────────────────────────────────────────────────────────────


class _Interrupts:
    """SIGINT/SIGTERM: the first asks the loop to stop after the current batch, the second
    raises KeyboardInterrupt at once. Only the main thread can install handlers."""

    def __init__(self) -> None:
        self.requested = 0
        self._old: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.requested += 1
        if self.requested == 1:
            print(f"\nstudy: {signal.Signals(signum).name}: stopping after this batch "
                  f"(again to stop now)", file=sys.stderr)
        else:
            raise KeyboardInterrupt

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass
class SweepSummary:
    """What a ``study run`` did; :func:`format_summary` prints it."""

    study: str
    n_trials: int  # target of complete trials
    n_complete: int
    n_new: int
    seconds: float
    counts: dict[str, int]  # by status, over all complete trials
    best: list[dict[str, Any]]  # number, values, params, status
    brackets: list[dict[str, Any]]  # per swept-settings group: settings, lr_converged, …
    storage: str
    mlflow_uri: str
    experiment_id: str
    parent_run_id: str | None
    ui_command: list[str]
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    report_path: str | None = None


def _complete(study: optuna.Study) -> list[FrozenTrial]:
    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))


def _reap_stale(study: optuna.Study, tracker: tracking.Tracker) -> int:
    """Fail RUNNING trials of dead processes on this host and queue their parameters again."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if tracking.worker_is_dead(t.user_attrs.get("worker")):
            study.tell(t.number, state=TrialState.FAIL)
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
            n += 1
    tracker.reap_dead_workers()
    return n


def _grid_todo(study: optuna.Study, space: Space, names: Sequence[str]) -> int:
    """Grid points not yet complete or running; failed ones are queued again (GridSampler
    counts a failed point as visited and would never return to it)."""
    trials = study.get_trials(deepcopy=False)
    done = {_key(t.params, names) for t in trials if t.state == TrialState.COMPLETE}
    busy = {_key(t.params, names) for t in trials
            if t.state in (TrialState.RUNNING, TrialState.WAITING)}
    failed = {_key(t.params, names) for t in trials if t.state == TrialState.FAIL}
    todo = 0
    for point in grid_points(space):
        key = _key(point, names)
        if key in done or key in busy:
            continue
        if key in failed:
            study.enqueue_trial(point)
        todo += 1
    return todo


class _Batch:
    """One ask → engine → log → tell round; remembers what is asked but not yet told."""

    def __init__(self, study: optuna.Study, space: Space) -> None:
        self.study, self.space = study, space
        self.pending: dict[int, optuna.Trial] = {}

    def ask(self, k: int) -> list[optuna.Trial]:
        worker = tracking.worker_id()
        asked = []
        for _ in range(k):
            trial = self.study.ask(fixed_distributions=self.space.distributions)
            self.pending[trial.number] = trial
            trial.set_user_attr("worker", worker)
            asked.append(trial)
        return asked

    def tell(self, trial: optuna.Trial, values: list[float], attrs: Mapping[str, Any]) -> None:
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.study.tell(trial, values, skip_if_finished=True)
        self.pending.pop(trial.number, None)

    def drop_surplus(self, asked: list[optuna.Trial], target: int) -> list[optuna.Trial]:
        """Keep the asked trials that are among the first ``target`` live trials (complete,
        running or queued, by number); tell the others FAIL with ``surplus=True``. Workers
        sharing a study count before they ask, so without this they would overshoot."""
        live = sorted(t.number for t in self.study.get_trials(
            deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)))
        allowed = set(live[:target])
        keep = []
        for trial in asked:
            if trial.number in allowed:
                keep.append(trial)
            else:
                trial.set_user_attr("surplus", True)
                self.study.tell(trial, state=TrialState.FAIL)
                self.pending.pop(trial.number, None)
        return keep

    def abandon(self) -> None:
        """Tell FAIL to what was asked but not told, and queue the same parameters again."""
        for number, trial in list(self.pending.items()):
            self.study.tell(number, state=TrialState.FAIL)
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": number})
            del self.pending[number]


def _user_attrs(values: Mapping[str, Any], run_id: str, seed: int) -> dict[str, Any]:
    """The trial's user attributes: ``status``, ``mlflow_run_id`` and ``result`` (every
    named value, None where not finite or not reached, and the minibatch ``seed``). One
    attribute is one storage write (an fsync'd journal line, an RDB transaction): three
    instead of twenty keep Optuna's share of a trial small (see benchmarks/RESULTS.md)."""
    result = {k: (v if not isinstance(v, float) or math.isfinite(v) else None)
              for k, v in values.items() if k != "status"}
    result["seed"] = seed
    return {"status": values["status"], "result": result, "mlflow_run_id": run_id}


@dataclass
class _Setup:
    problem: Any
    base: engine.Settings
    space: Space
    study: optuna.Study
    tracker: tracking.Tracker
    target: int
    notes: list[str]


def _setup(cfg: Any, fresh: bool) -> _Setup:
    """Everything a sweep needs before its first batch, checked in an order that writes
    nothing until the data, the space and the stored study are known to fit."""
    from study.data import load_problem

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    problem = load_problem(cfg.data.path, cfg.data.x, cfg.data.y)
    base = cfg.settings()
    _check_objectives(cfg, base)
    space = build_space(cfg, problem.d)
    study, replaced = open_study(cfg, make_sampler(cfg, space), fresh=fresh)
    tracker = tracking.Tracker(cfg.tracking.mlflow_uri, cfg.name)
    notes = [replaced] if replaced else []
    reaped = _reap_stale(study, tracker)
    if reaped:
        notes.append(f"{reaped} trial(s) left running by a dead process were failed and queued "
                     f"again")
    target = int(cfg.search.n_trials)
    if space.grid is not None and len(grid_points(space)) < target:
        target = len(grid_points(space))
        notes.append(f"the grid has only {target} points: search.n_trials "
                     f"{cfg.search.n_trials} capped to {target}")
    return _Setup(problem, base, space, study, tracker, target, notes)


def run_sweep(cfg: Any, *, fresh: bool = False, progress: bool = True,
              report: bool | None = None) -> SweepSummary:
    """Run (or resume) the sweep of ``cfg`` until ``search.n_trials`` trials are complete.

    ``fresh`` replaces a stored study of the same name; ``progress`` shows a bar on stderr;
    ``report`` writes the report at the end (None: when :mod:`study.report` is available).
    Ctrl-C/SIGTERM return a summary with ``interrupted=True`` (see the module docstring).
    """
    from study import theory

    started = time.perf_counter()
    st = _setup(cfg, fresh)
    study, tracker, space = st.study, st.tracker, st.space
    tracker.start_parent(f"{cfg.name}-sweep", **_parent_payload(cfg, st.problem, st.base, theory))
    batch, n_new, interrupted = _Batch(study, space), 0, False
    counts = Counter(t.user_attrs.get("status") for t in _complete(study))
    bar = _progress_bar(progress, st.target, len(_complete(study)), counts)
    try:
        with _Interrupts() as stop:
            while not stop.requested:
                running = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
                k = min(int(cfg.search.batch_size), st.target - len(_complete(study)) - running)
                if space.grid is not None:
                    k = min(k, _grid_todo(study, space, sorted(space.distributions)))
                if k <= 0:
                    break
                n_new += _run_batch(cfg, st.problem, st.base, batch, tracker, study, k,
                                    st.target, counts, bar)
            interrupted = bool(stop.requested)
    except KeyboardInterrupt:
        interrupted = True
    except BaseException as exc:
        bar.close()
        _close_after(batch, tracker, "FAILED")
        _raise_storage_error(cfg, exc)
        raise
    bar.close()
    if interrupted:
        _close_after(batch, tracker, "KILLED")
    summary = _summary(cfg, study, st.problem, st.base, tracker, st.target, n_new, started,
                       st.notes)
    summary.interrupted = interrupted
    tracker.end_parent("KILLED" if interrupted else "FINISHED",
                       {"trials_new": n_new, "trials_complete": summary.n_complete,
                        **{f"trials_{k}": v for k, v in summary.counts.items()}})
    if not interrupted and report is not False:
        summary.report_path = _write_report(cfg)
    return summary


def _raise_storage_error(cfg: Any, exc: BaseException) -> None:
    """Raise a one-line StorageError for a damaged journal or a failing Optuna storage."""
    if isinstance(exc, ValueError) and "://" not in cfg.tracking.storage:
        damage = _journal_damage(Path(cfg.tracking.storage))
        if damage:
            raise StorageError(damage) from exc
    if isinstance(exc, Exception) and _raised_in_storage(exc):
        raise StorageError(f"the Optuna storage {cfg.tracking.storage} failed: "
                           f"{type(exc).__name__}: {exc or 'no message'} (the trials told so "
                           f"far are kept; run again to resume)") from exc


def _raised_in_storage(exc: BaseException) -> bool:
    """True when ``exc`` was raised inside Optuna's storage code (a sqlite lock held past the
    timeout surfaces there as a bare AssertionError)."""
    if isinstance(exc, optuna.exceptions.StorageInternalError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if "/optuna/storages/" in tb.tb_frame.f_code.co_filename.replace("\\", "/"):
            return True
        tb = tb.tb_next
    return False


def _close_after(batch: _Batch, tracker: tracking.Tracker, status: str) -> None:
    """After an interrupt or error: untold trials FAIL (and queued again), an open child run
    KILLED, and on error the parent FAILED. Best effort: a store that is down must not hide
    the error that stopped the sweep."""
    steps = [batch.abandon, tracker.kill_open_child]
    if status == "FAILED":
        steps.append(lambda: tracker.end_parent(status))
    for step in steps:
        try:
            step()
        except Exception as exc:
            print(f"study: while stopping: {type(exc).__name__}: {exc}", file=sys.stderr)


def _run_batch(cfg: Any, problem: Any, base: engine.Settings, batch: _Batch,
               tracker: tracking.Tracker, study: optuna.Study, k: int, target: int,
               counts: Counter, bar: Any) -> int:
    """Ask k trials, run them as one engine call, log and tell each.

    MLflow logging runs in one worker thread while this thread tells Optuna: both wait on
    their store's disk writes, so the Optuna writes hide behind the MLflow ones. A trial is
    told only after its run is logged (its run id is a user attribute)."""
    since = int(time.time() * 1000)
    asked = batch.drop_surplus(batch.ask(k), target)
    if not asked:
        return 0
    uid = study.user_attrs["study_uid"]  # re-read: a concurrent creator may have set it last
    values = [{**batch.space.constants, **t.params} for t in asked]
    seeds = [trial_seed(cfg, base, t.number) for t in asked]
    trials = [_engine_trial(v, base, problem.d, s) for v, s in zip(values, seeds, strict=True)]
    results = engine.run(problem, trials)
    existing = tracker.existing_children(uid, since)
    recs = [tracking.TrialRecord(cfg.name, uid, t.number, v, e.settings, s, r,
                                 problem.param_names)
            for t, v, e, r, s in zip(asked, values, trials, results, seeds, strict=True)]
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mlflow")
    futures = [pool.submit(tracker.log_trial, rec, existing.get(rec.number)) for rec in recs]
    told = 0
    try:
        for trial, rec, future in zip(asked, recs, futures, strict=True):
            _tell(batch, cfg, trial, rec, future.result(), counts, bar)
            told += 1
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if told < len(recs):  # interrupted: keep what was logged before the stop
            for trial, rec, future in list(zip(asked, recs, futures, strict=True))[told:]:
                if future.done() and not future.cancelled() and future.exception() is None:
                    _tell(batch, cfg, trial, rec, future.result(), counts, bar)
    return len(asked)


def _tell(batch: _Batch, cfg: Any, trial: optuna.Trial, rec: tracking.TrialRecord,
          run_id: str, counts: Counter, bar: Any) -> None:
    res = rec.result
    named = tracking.result_values(res, rec.param_names)
    named["status"] = res.status
    batch.tell(trial, objective_values(named, res.status, cfg.search.objectives),
               _user_attrs(named, run_id, rec.seed))
    counts[res.status] += 1
    bar.update(1)
    bar.set_postfix_str(_counts_text(counts), refresh=False)


def _counts_text(counts: Mapping[str, int]) -> str:
    return " ".join(f"{s}={counts.get(s, 0)}" for s in engine.STATUSES)


def _progress_bar(progress: bool, total: int, initial: int, counts: Mapping[str, int]) -> Any:
    from tqdm import tqdm

    bar = tqdm(total=total, initial=initial, file=sys.stderr, disable=not progress,
               unit="trial", dynamic_ncols=True, desc="trials")
    bar.set_postfix_str(_counts_text(counts), refresh=False)
    return bar


def _parent_payload(cfg: Any, problem: Any, base: engine.Settings, theory: Any
                    ) -> dict[str, Any]:
    """What the parent run records about the whole sweep."""
    from study.data import file_digest

    path = Path(cfg.data.path)
    spec = theory.spectrum(problem, base)
    metrics = {"n_rows": problem.n, "ols_cost": problem.ols_cost(base.cost),
               "lambda_min": spec.lam_min, "lambda_max": spec.lam_max,
               "condition_number": spec.condition_number, "lr_max": theory.lr_max(problem, base)}
    metrics.update({f"ols_{n}": float(v) for n, v in zip(problem.param_names, problem.ols_theta,
                                                          strict=True)})
    params = {"sampler": cfg.search.sampler, "seed": cfg.search.seed,
              "n_trials": cfg.search.n_trials, "batch_size": cfg.search.batch_size,
              "objectives": ",".join(f"{_objective_key(o)}:{o.direction}"
                                     for o in cfg.search.objectives),
              "storage": cfg.tracking.storage, "data_path": str(path), "n_rows": problem.n,
              "x_columns": ",".join(problem.x_names), "y_column": problem.y_name,
              **{f"algorithm.{f.name}": getattr(base, f.name) for f in fields(engine.Settings)}}
    tags = {f"version.{k}": v for k, v in tracking.package_versions().items()}
    tags["optuna.study"] = cfg.name
    tags["config_hash"] = cfg.hash()
    dataset = tracking.dataset_input(path.stem, str(path), file_digest(path)[:32],
                                     [*problem.x_names, problem.y_name], problem.n,
                                     problem.y_name)
    return {"config_yaml": cfg.to_yaml(), "dataset": dataset, "params": params,
            "metrics": metrics, "tags": tags}


def _brackets(trials: Sequence[FrozenTrial], problem: Any, base: engine.Settings,
              theory: Any) -> list[dict[str, Any]]:
    """Per combination of swept settings: the largest converged and smallest diverged lr next
    to theory's lr_max for those settings."""
    groups: dict[tuple, list[FrozenTrial]] = {}
    for t in trials:
        key = tuple(sorted((k, v) for k, v in t.params.items() if k in SETTING_KEYS))
        groups.setdefault(key, []).append(t)
    out = []
    for key, members in sorted(groups.items(), key=lambda kv: str(kv[0])):
        settings = replace(base, **dict(key)) if key else base

        def lrs(status: str, members: list[FrozenTrial] = members) -> list[float]:
            return [float(t.params["lr"]) for t in members
                    if t.user_attrs.get("status") == status and "lr" in t.params]

        conv, div = lrs("converged"), lrs("diverged")
        out.append({"settings": dict(key), "lr_converged": max(conv) if conv else None,
                    "lr_diverged": min(div) if div else None,
                    "lr_max": theory.lr_max(problem, settings)})
    return out


def _summary(cfg: Any, study: optuna.Study, problem: Any, base: engine.Settings,
             tracker: tracking.Tracker, target: int, n_new: int, started: float,
             notes: list[str]) -> SweepSummary:
    from study import theory

    complete = _complete(study)
    counts = {s: 0 for s in engine.STATUSES}
    counts.update(Counter(t.user_attrs.get("status") for t in complete))
    best = [{"number": t.number, "values": list(t.values), "params": dict(t.params),
             "status": t.user_attrs.get("status")} for t in best_trials(study)]
    return SweepSummary(
        study=cfg.name, n_trials=target, n_complete=len(complete), n_new=n_new,
        seconds=time.perf_counter() - started, counts=counts, best=best,
        brackets=_brackets(complete, problem, base, theory), storage=cfg.tracking.storage,
        mlflow_uri=tracker.uri, experiment_id=tracker.experiment_id,
        parent_run_id=tracker.parent_run_id, ui_command=tracking.ui_command(tracker.uri),
        notes=notes)


def _write_report(cfg: Any) -> str | None:
    """Call ``study.report.write_report(cfg)`` when that module and function exist."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("study.report") is None:
        return None
    write = getattr(importlib.import_module("study.report"), "write_report", None)
    if not callable(write):
        return None
    out = write(cfg)
    return None if out is None else str(out)


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def format_summary(s: SweepSummary) -> str:
    """The end-of-run text: counts, best trial(s), lr brackets, stores, the UI command."""
    rate = s.n_new / s.seconds if s.seconds > 0 else 0.0
    lines = [f"study {s.study!r}: {s.n_complete} of {s.n_trials} trials complete "
             f"({s.n_new} new in {s.seconds:.1f} s, {rate:.1f} trials/s)"
             + (" — interrupted" if s.interrupted else ""),
             "  " + " · ".join(f"{k} {v}" for k, v in s.counts.items())]
    lines += [f"  note: {n}" for n in s.notes]
    if not s.best:
        lines.append("  best: none (every complete trial diverged)")
    for b in s.best[:5]:
        values = ", ".join(_fmt(v) for v in b["values"])
        params = " ".join(f"{k}={_fmt(v)}" for k, v in b["params"].items())
        lines.append(f"  best trial #{b['number']} ({b['status']}; objective {values}): {params}")
    for br in s.brackets:
        where = " ".join(f"{k}={v}" for k, v in br["settings"].items())
        lines.append(f"  lr bracket{' [' + where + ']' if where else ''}: largest converged "
                     f"{_fmt(br['lr_converged'])} · smallest diverged {_fmt(br['lr_diverged'])}"
                     f" · theory lr_max {_fmt(br['lr_max'])}")
    lines += [f"  Optuna storage: {s.storage} (study {s.study!r})",
              f"  MLflow: {s.mlflow_uri} (experiment {s.study!r}, id {s.experiment_id})",
              f"  open the UI: {tracking.ui_text(s.mlflow_uri)}"]
    if s.report_path:
        lines.append(f"  report: {s.report_path}")
    return "\n".join(lines)


# ── the trials table ────────────────────────────────────────────────────────────────────────


def load_study(cfg: Any) -> optuna.Study:
    """The stored study of ``cfg`` (StorageError if there is none)."""
    try:
        study = _load(cfg.name, open_storage(cfg.tracking.storage))
    except StorageError:
        raise
    except Exception as exc:
        raise StorageError(_storage_message(cfg.tracking.storage, exc)) from exc
    if study is None:
        raise StorageError(f"no study {cfg.name!r} in {cfg.tracking.storage}; run "
                           f"`study run` on the config first")
    return study


def trials_frame(cfg: Any):
    """One tidy row per COMPLETE trial of ``cfg``'s study, ordered by trial number.

    Columns, in order:

    - ``trial``: Optuna trial number;
    - the space, named as in the config: ``lr``, ``epochs``, ``init_m``, ``init_b`` (or
      ``init_w1…init_wd``, ``init_b``) and every swept or constant algorithm setting;
    - ``status`` (converged | max_epochs | diverged);
    - ``final_m``, ``final_b`` (or ``final_w1…``, ``final_b``): θ at the end, original units
      (the last finite θ for a diverged trial);
    - ``final_cost``, ``initial_cost``, ``dist_to_ols``, ``cost_gap``, ``rel_cost_gap``,
      ``grad_norm`` (floats; NaN where the value was not finite);
    - ``epochs_run`` (int), ``diverged_at`` (Int64, <NA> unless diverged);
    - ``epochs_to_param_tol_<t>``, ``epochs_to_cost_tol_<t>`` (Int64; <NA> when never reached;
      ``<t>`` formatted with ``{:g}``, e.g. ``epochs_to_param_tol_0.01``);
    - ``seed`` (minibatch seed), ``mlflow_run_id``;
    - ``objective_<name>`` per objective: the value told to Optuna (capped for diverged trials).
    """
    import pandas as pd

    study = load_study(cfg)
    complete = sorted(_complete(study), key=lambda t: t.number)
    if not complete:
        return pd.DataFrame()
    first = complete[0].user_attrs.get("result", {})
    d = max(sum(1 for k in first if k.startswith("final_") and k != "final_cost") - 1, 1)
    space = build_space(cfg, d)
    consts = space.constants
    space_names = list(dict.fromkeys(["lr", "epochs", *_init_names(d), *space.names]))
    rows = []
    for t in complete:
        row = {"trial": t.number}
        row.update({n: t.params.get(n, consts.get(n)) for n in space_names})
        row.update(t.user_attrs.get("result", {}))
        row.update(status=t.user_attrs.get("status"),
                   mlflow_run_id=t.user_attrs.get("mlflow_run_id"))
        row.update({f"objective_{o.name}": v for o, v in zip(cfg.search.objectives, t.values,
                                                              strict=True)})
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    finals = [f"final_{n}" for n in (["m", "b"] if d == 1 else
                                     [*(f"w{j + 1}" for j in range(d)), "b"])]

    def tols(prefix: str) -> list[str]:
        found = [c for c in frame.columns if c.startswith(prefix)]
        return sorted(found, key=lambda c: -float(c[len(prefix):]))

    order = ["trial", *space_names, "status", *finals, *_FLOAT_COLUMNS, "epochs_run",
             "diverged_at", *tols("epochs_to_param_tol_"), *tols("epochs_to_cost_tol_"), "seed",
             "mlflow_run_id", *(f"objective_{o.name}" for o in cfg.search.objectives)]
    frame = frame.reindex(columns=[c for c in order if c in frame.columns])
    for col in frame.columns:
        if col.startswith("epochs_to_") or col == "diverged_at":
            frame[col] = pd.array(frame[col].tolist(), dtype="Int64")
        elif col in _FLOAT_COLUMNS or col in finals:
            frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


_FLOAT_COLUMNS = ("final_cost", "initial_cost", "dist_to_ols", "cost_gap", "rel_cost_gap",
                  "grad_norm")
