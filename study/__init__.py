"""Gradient descent on linear regression as a tracked, reproducible hyperparameter study.

The notebook API (imported on first use, so ``import study`` stays cheap)::

    import study
    cfg = study.load_config("configs/quickstart.yaml")
    summary = study.run_sweep(cfg)
    df = study.trials_frame(cfg)
"""

__all__ = ["load_config", "run_sweep", "trials_frame"]


def __getattr__(name: str):
    if name in __all__:
        from study import api

        return getattr(api, name)
    raise AttributeError(f"module 'study' has no attribute {name!r}")
