"""Names of a trial's values as MLflow and Optuna store them, without importing either (the
objectives and the report read them too)."""


def tol_key(prefix: str, tol: float) -> str:
    """Name of an epochs-to-tolerance value: ``epochs_to_param_tol_0.01``."""
    return f"{prefix}_{tol:g}"
