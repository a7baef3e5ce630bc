"""Optuna drives the sweep. This package is the only one that imports optuna (MLflow lives in
:mod:`study.tracking`, below it); :mod:`study.api` calls it, and the report reads its trials
through :func:`study.sweep.summary.trials_frame`.

- :mod:`~study.sweep.sampling`: the config's space as Optuna distributions, seeded samplers, grids
- :mod:`~study.sweep.objectives`: finite objective values, user attributes, best trials
- :mod:`~study.sweep.storage`: open and check storages (config hash, read-only or full stores)
- :mod:`~study.sweep.journal`: the journal file: a lock a killed writer cannot leave, torn lines
- :mod:`~study.sweep.reaper`: dead workers' trials failed and re-queued; heartbeats
- :mod:`~study.sweep.startup`: what is made once before the first batch (study, experiment, parent)
- :mod:`~study.sweep.loop`: the batched ask → run → log → tell loop; ``run_sweep``
- :mod:`~study.sweep.workers`: ``study run --workers N``: N processes on one study
- :mod:`~study.sweep.summary`: the end-of-run summary and the tidy trials table
- :mod:`~study.sweep._optuna_private`: every use of Optuna's private API, each with its reason

The loop (``run_sweep``): count COMPLETE trials; while fewer than ``search.n_trials``, ask
``min(batch_size, remaining)`` trials, turn their parameters (plus the constants of the space)
into engine trials, run them as one :func:`study.core.engine.run` call, log each as an MLflow
child run (:mod:`study.tracking.tracker`), store its result as user attributes and tell Optuna its
objective values. ``n_trials`` is the *total* wanted: re-running resumes, raising it adds the
difference.

User attributes of a told trial: ``status`` (converged | max_epochs | diverged),
``mlflow_run_id``, and ``result``, a dict of ``final_<param>``, ``final_cost``,
``initial_cost``, ``dist_to_ols``, ``cost_gap``, ``rel_cost_gap``, ``grad_norm``,
``epochs_run``, ``diverged_at``, ``epochs_to_param_tol_<t>``, ``epochs_to_cost_tol_<t>`` (None
when unreached) and the minibatch ``seed``; ``worker`` (host:pid) is set when it is asked, and
``retry_of`` (the number of the failed trial) on a trial re-queued after its worker died or was
interrupted. :func:`trials_frame` flattens them into one tidy row per trial.

Objective values are never NaN, ±inf or a sentinel: a diverged trial reports its last finite
value and the constraint ``diverged`` = 1 (infeasible), an unreached tolerance the space's largest
budget plus one such budget per decade still to go (:mod:`study.sweep.objectives`);
:func:`best_trials` never returns a diverged trial.

Storages (:mod:`study.sweep.storage`): a path (the default ``optuna.journal``) is a journal file
(the sweep's writes cost about 3.5 ms per trial here, against about 30 ms on sqlite; see
benchmarks/RESULTS.md); ``sqlite:///`` waits 30 s on a lock; ``postgresql://…`` is Optuna's RDB
storage with heartbeats. A changed config is refused naming the changed fields, unless
``fresh=True``; a torn journal line is refused with the exact repair.

Workers: any number of processes — ``study run --workers N`` on one machine, the same command
on several machines against one PostgreSQL storage and one MLflow server — share a study; the
study ends with exactly ``n_trials`` complete trials, each with one MLflow child run. Trials
left RUNNING by a dead worker (a dead process on this host; on RDB storages, a stopped
heartbeat) are failed, their runs marked KILLED, and their parameters run again.

Interrupts: SIGINT and SIGTERM halt the running trials and stop once the finished ones are told
(the halted ones run again on resume); a second signal stops at once
(see :mod:`study.sweep.loop`).
"""
