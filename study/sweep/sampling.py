"""What Optuna samples: the config's space as Optuna distributions, the seeded samplers, and the
engine trial a set of sampled values becomes.

Samplers are seeded from ``search.seed``:

- ``grid``: values, or ranges with a step; the loop stops at the end of the grid and re-queues
  failed points, which GridSampler would never revisit;
- ``random``: trial ``n`` draws from a generator seeded by (search.seed, n), so a resumed or
  shared study draws what one uninterrupted process would have drawn;
- ``qmc``: scrambled Sobol; trial ``n`` takes the point whose index is the number of sampled
  (not re-queued) trials before it, so workers sharing a study never take the same point and a
  resumed study goes on where it stopped;
- ``tpe``: ``constant_liar``, so the pending trials of a batch spread it out;
- ``nsga2``.

Trial ``n`` shuffles minibatches with a seed drawn from (search.seed, algorithm.seed, n).

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


def trial_seed(cfg: Any, base: engine.Settings, number: int) -> int:
    """Minibatch seed of trial ``number``: from (search.seed, algorithm seed, number)."""
    entropy = [int(cfg.search.seed or 0), int(base.seed), int(number)]
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


# ── samplers ────────────────────────────────────────────────────────────────────────────────


def make_sampler(cfg: Any, space: Space) -> optuna.samplers.BaseSampler:
    """The config's sampler, seeded from ``search.seed``."""
    seed, kind = cfg.search.seed, cfg.search.sampler
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "grid":
            return _AskTellGridSampler(space.grid, seed=seed)
        if kind == "random":
            return _NumberSeededRandomSampler(seed=seed)
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
    ``optimize``); the loop itself stops asking when every grid point is complete."""

    def after_trial(self, study, trial, state, values) -> None:
        return None


class _NumberSeededRandomSampler(optuna.samplers.RandomSampler):
    """RandomSampler whose generator is reseeded from (seed, trial number) before each trial.

    Optuna's own draws from one generator per process, so a resumed study (or a second worker)
    would repeat the first process's draws; here trial ``n`` gets the same parameters whoever
    runs it and whenever."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(seed=seed)
        self._base_seed = int(seed or 0)

    def before_trial(self, study: optuna.Study, trial: Any) -> None:
        words = np.random.SeedSequence([self._base_seed, int(trial.number)]).generate_state(4)
        reseed_random_sampler(self, words)
        super().before_trial(study, trial)


class _NumberIndexedQMCSampler(IndexedQMCSampler):
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

    def infer_relative_search_space(self, study: optuna.Study, trial: Any
                                    ) -> dict[str, BaseDistribution]:
        return dict(self._space)

    def sample_relative(self, study: optuna.Study, trial: Any,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        before = study.get_trials(deepcopy=False)
        self.sample_index = sum(1 for t in before if t.number < trial.number
                                and "fixed_params" not in t.system_attrs)
        return super().sample_relative(study, trial, search_space)


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
