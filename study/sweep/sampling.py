"""What Optuna samples: the config's space as Optuna distributions, the seeded samplers, and the
engine trial a set of sampled values becomes.

Samplers are seeded from ``search.seed``:

- ``grid``: values, or ranges with a step; the loop stops at the end of the grid and re-queues
  failed points, which GridSampler would never revisit;
- ``random``: the trial whose point index is ``i`` draws from a generator seeded by
  (search.seed, i), so a resumed or shared study draws what one uninterrupted process would have
  drawn;
- ``qmc``: scrambled Sobol; the trial whose point index is ``i`` takes point ``i`` of the
  sequence, so workers sharing a study never take the same point and a resumed study goes on
  where it stopped;
- ``tpe``: ``constant_liar``, so the pending trials of a batch spread it out;
- ``nsga2``.

Points. A trial's *point index* is the number of trials numbered below it that were sampled (not
queued with fixed parameters); without interruptions it is the trial's number. A trial that dies
before it is told (even right after the storage recorded it, with none of its parameters yet) is
queued again with the point it was meant to evaluate (:func:`trial_point`): the qmc point of its
index, the random draw of its index, its grid cell; the retry carries the index as the user
attribute ``point``. So an interrupted and resumed sweep evaluates the same points as an
uninterrupted one.

Minibatch shuffling of a trial uses a seed drawn from (search.seed, algorithm.seed, point index),
the grid cell's index for the grid sampler: a retry shuffles as the trial it replaces would have.

Constraints: every told trial carries the constraint ``diverged`` (1.0 when it diverged, feasible
0.0 otherwise), set by the loop through ``Trial.set_constraint`` (Optuna 5's replacement of the
samplers' deprecated ``constraints_func``; :mod:`study.sweep.objectives`). TPE and NSGA-II read
it from the trials and rank diverged trials behind every feasible one; the grid, random and qmc
samplers take no feedback.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial

from study.config.constraints import declared, grid_problem
from study.core import engine
from study.errors import ConfigError
from study.sweep._optuna_private import IndexedQMCSampler, reseed_random_sampler

INT_KEYS = {"epochs"} | {f.name for f in fields(engine.Settings) if f.type in ("int", int)}
SETTING_KEYS = {f.name for f in fields(engine.Settings)}


@dataclass(frozen=True)
class Space:
    """The config's search space for one problem: what Optuna samples, what stays constant."""

    distributions: dict[str, BaseDistribution]
    constants: dict[str, Any]
    grid: dict[str, list] | None  # values per swept name, for the grid sampler

    @property
    def names(self) -> list[str]:
        return [*self.distributions, *self.constants]


def init_names(d: int) -> list[str]:
    """Names of the start θ₀ for ``d`` features: ``init_m, init_b`` or ``init_w1…, init_b``."""
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
    if grid_problem(spec) is not None:
        raise ConfigError(f"search.space.{name} {grid_problem(spec)}")
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
    distributions, constants = {}, {n: 0.0 for n in init_names(d)}
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


def engine_trial(values: Mapping[str, Any], base: engine.Settings, d: int, seed: int
                 ) -> engine.Trial:
    """An engine trial from a full set of space values; swept settings override ``base``."""
    changes = {k: v for k, v in values.items() if k in SETTING_KEYS}
    settings = replace(base, **changes) if changes else base
    init = tuple(float(values[n]) for n in init_names(d))
    return engine.Trial(lr=float(values["lr"]), epochs=int(values["epochs"]), init=init,
                        settings=settings, seed=seed)


def trial_seed(cfg: Any, base: engine.Settings, point: int) -> int:
    """Minibatch seed of the trial whose point index is ``point`` (see the module docstring):
    from (search.seed, algorithm seed, point), never from the trial number, which a retry
    shifts."""
    entropy = [int(cfg.search.seed or 0), int(base.seed), int(point)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# ── points ──────────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Point:
    """What a trial was meant to evaluate: its parameters, its point index (the minibatch seed's
    identity) and the system attributes a retry of it carries (the grid cell)."""

    params: dict[str, Any]
    index: int
    system_attrs: dict[str, Any]


def _sampled(trial: FrozenTrial) -> bool:
    return "fixed_params" not in trial.system_attrs


class PointIndex:
    """Point indices of sampled trials, counted once: a trial's index is the number of sampled
    trials numbered below it, and those never change (queued trials carry ``fixed_params``
    from the write that creates them), so the count is kept between calls."""

    def __init__(self) -> None:
        self._upto = 0  # trials numbered below this are counted …
        self._count = 0  # … and this many of them were sampled

    def __call__(self, trials: Sequence[FrozenTrial], number: int) -> int:
        if number < self._upto or len(trials) < number or \
                any(trials[i].number != i for i in {self._upto, number - 1} if 0 <= i < number):
            return sum(1 for t in trials if t.number < number and _sampled(t))
        self._count += sum(1 for t in trials[self._upto:number] if _sampled(t))
        self._upto = number
        return self._count


def _queued_point(trial: FrozenTrial) -> Point:
    """The point of a trial queued with fixed parameters: a retry names its point index; a
    trial queued otherwise (a grid cell queued again, a study of an older version) is its own."""
    attrs = trial.user_attrs
    index = attrs.get("point", attrs.get("retry_of", trial.number))
    extra = {k: trial.system_attrs[k] for k in ("grid_id", "search_space")
             if k in trial.system_attrs}
    return Point(dict(trial.system_attrs["fixed_params"]), int(index), extra)


def trial_point(study: optuna.Study, trial: FrozenTrial,
                trials: Sequence[FrozenTrial] | None = None) -> Point | None:
    """The point ``trial`` was meant to evaluate, whatever it recorded before it stopped; None
    for a grid trial that died before it took a cell (the grid keeps that cell for a later one).

    Queued trials: their fixed parameters. Sampled ones: the sampler's point of their index
    (qmc, random, grid), else (tpe, nsga2, whose points depend on the history) the parameters
    it recorded."""
    if not _sampled(trial):
        return _queued_point(trial)
    sampler = study.sampler
    if isinstance(sampler, _AskTellGridSampler):
        return sampler.point(trial)
    if trials is None:
        trials = study.get_trials(deepcopy=False)
    if isinstance(sampler, _NumberSeededRandomSampler | _NumberIndexedQMCSampler):
        index = sampler.index(trials, trial.number)
        return Point(sampler.point_params(study, index), index, {})
    return Point(dict(trial.params), PointIndex()(trials, trial.number), {})


# ── samplers ────────────────────────────────────────────────────────────────────────────────


def make_sampler(cfg: Any, space: Space) -> optuna.samplers.BaseSampler:
    """The config's sampler, seeded from ``search.seed``."""
    seed, kind = cfg.search.seed, cfg.search.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "grid":
            return _AskTellGridSampler(space.grid, seed=seed)
        if kind == "random":
            return _NumberSeededRandomSampler(space.distributions, seed=seed)
        if kind == "qmc":
            return _NumberIndexedQMCSampler(space.distributions, scramble=True, seed=seed,
                                            warn_independent_sampling=False)
        if kind == "tpe":  # constant_liar: pending trials of a batch count as bad, spreading it
            return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
        if kind == "nsga2":
            return optuna.samplers.NSGAIISampler(seed=seed)
    raise ConfigError(f"search.sampler {declared('search.sampler').problem(kind)}")


class _AskTellGridSampler(optuna.samplers.GridSampler):
    """GridSampler whose end of grid does not call ``study.stop()`` (which raises outside
    ``optimize``); the loop itself stops asking when every grid point is complete.

    A trial's cell is its ``grid_id`` system attribute, written by ``before_trial`` right after
    the trial is created: trial ``n`` below the number of cells takes cell ``n``, a later one a
    cell no trial has taken. A retry carries its cell's ``grid_id`` (as Optuna's own retry
    callback does), so that no later trial takes the cell too."""

    def __init__(self, grid: Mapping[str, Sequence[Any]], seed: int | None = None) -> None:
        super().__init__(grid, seed=seed)
        self._grid = {name: list(values) for name, values in sorted(grid.items())}
        # the cells in GridSampler's order: the product of the sorted names' values, shuffled
        # by a generator of the seed (pinned by tests/sweep/test_sampling.py)
        self._cells = list(itertools.product(*self._grid.values()))
        np.random.RandomState(seed or 0).shuffle(self._cells)

    def after_trial(self, study, trial, state, values) -> None:
        return None

    def point(self, trial: FrozenTrial) -> Point | None:
        """The cell of a sampled trial (None: it died before it took one)."""
        cell = trial.system_attrs.get("grid_id")
        if cell is None and trial.number < len(self._cells):
            cell = trial.number  # the cell before_trial gives it
        if cell is None:
            return None
        params = dict(zip(self._grid, self._cells[int(cell)], strict=True))
        return Point(params, int(cell), {"grid_id": int(cell), "search_space": self._grid})


class _PointSampler:
    """What the random and qmc samplers share: the config's space (Optuna's would sample the
    first trial at random and infer the space from it), and a sampled trial's parameters as
    those of its point index (:class:`PointIndex`) through the subclass's ``point_params``."""

    _space: dict[str, BaseDistribution]
    index: PointIndex

    def point_params(self, study: optuna.Study, index: int) -> dict[str, Any]:
        raise NotImplementedError

    def infer_relative_search_space(self, study: optuna.Study, trial: Any
                                    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(self, study: optuna.Study, trial: Any,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space or not _sampled(trial):
            return {}
        return self.point_params(study, self.index(study.get_trials(deepcopy=False),
                                                   trial.number))


class _NumberSeededRandomSampler(_PointSampler, optuna.samplers.RandomSampler):
    """RandomSampler whose trial of point index ``i`` draws all its parameters (in the space's
    order) from a generator seeded by (seed, i).

    Optuna's own draws from one generator per process, so a resumed study (or a second worker)
    would repeat the first process's draws; here the trial of index ``i`` gets the same
    parameters whoever runs it and whenever, and a retry gets them again."""

    def __init__(self, distributions: Mapping[str, BaseDistribution],
                 seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._base_seed = int(seed or 0)
        self._space = dict(distributions)
        self.index = PointIndex()

    def point_params(self, study: optuna.Study, index: int) -> dict[str, Any]:
        """The parameters of point ``index``."""
        words = np.random.SeedSequence([self._base_seed, int(index)]).generate_state(4)
        reseed_random_sampler(self, words)
        return {name: self.sample_independent(study, None, name, dist)
                for name, dist in self._space.items()}


class _NumberIndexedQMCSampler(_PointSampler, IndexedQMCSampler):
    """QMCSampler whose point index follows from the trial's number.

    Optuna's keeps a counter on the study (read, then written): two workers asking at once read
    the same value and take the same point. Trial numbers are given out atomically by the
    storage, and every trial numbered below this one already exists when it samples, so
    ``index = #{trials before it that were sampled, not queued with fixed parameters}`` is unique
    among workers, and a resumed study (whose stopped trials were queued again) continues the
    sequence exactly where one uninterrupted process would be. The space is the config's (Optuna's
    would sample the first trial at random and infer the space from it), its names in order are
    the columns of the sequence."""

    def __init__(self, distributions: Mapping[str, BaseDistribution], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._space = dict(distributions)
        self.index = PointIndex()

    def point_params(self, study: optuna.Study, index: int) -> dict[str, Any]:
        """The parameters of point ``index`` of the sequence."""
        self.sample_index = index
        return IndexedQMCSampler.sample_relative(self, study, None, dict(self._space))


def suggest(trial: optuna.Trial, name: str, distribution: BaseDistribution) -> Any:
    """Suggest ``name`` from ``distribution`` through the trial's public ``suggest_*`` methods
    (each builds the same distribution from these arguments)."""
    if isinstance(distribution, FloatDistribution):
        return trial.suggest_float(name, distribution.low, distribution.high,
                                   step=distribution.step, log=distribution.log)
    if isinstance(distribution, IntDistribution):
        return trial.suggest_int(name, distribution.low, distribution.high,
                                 step=distribution.step, log=distribution.log)
    if isinstance(distribution, CategoricalDistribution):
        return trial.suggest_categorical(name, list(distribution.choices))
    raise TypeError(f"cannot suggest {name} from a {type(distribution).__name__}")


def grid_points(space: Space) -> list[dict[str, Any]]:
    """Every point of a grid space, as {name: value}."""
    names = sorted(space.grid or {})
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*(space.grid[n] for n in names))]


def grid_key(params: Mapping[str, Any], names: Sequence[str]) -> tuple:
    """A point's values in ``names`` order (to compare points)."""
    return tuple(params.get(n) for n in names)
