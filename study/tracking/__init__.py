"""MLflow behind a small module we own: the experiment, one parent run per sweep and one child
run per trial, batched logging with retries, artifacts, store URIs, and the worker identity
written on trials and runs. The only package that imports mlflow; below the sweep, above
:mod:`study.config` and :mod:`study.core`."""
