"""MLflow behind a small module we own: the experiment, one parent run per sweep and one child
run per trial, batched logging with retries, artifacts, store URIs, and the worker identity
written on trials and runs. The only package that imports mlflow; below the sweep, above
:mod:`study.config` and :mod:`study.core`.

- :mod:`~study.tracking.tracker`: the experiment, the parent run, child runs, dead workers' runs
- :mod:`~study.tracking.runlog`: what a child run holds, ``log_batch`` in chunks, store retries
- :mod:`~study.tracking.retry`: the one retry helper (also used for Optuna's RDB schema)
- :mod:`~study.tracking.uri`: a store's sqlite file, artifact root and UI command
- :mod:`~study.tracking.workerid`: ``host:pid`` of a worker, and whether it is dead
- :mod:`~study.tracking._mlflow_private`: every use of MLflow's internal API, with its reason
"""
