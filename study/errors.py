"""The project's error types. A :class:`StudyError` is a user's mistake or an unusable store:
the CLI prints its message as one line on stderr and exits with code 2."""


class StudyError(Exception):
    """Base class: bad input or an unusable store; the message is one complete line."""


class ConfigError(StudyError):
    """A config file (or override) is malformed or breaks a rule; names file and dotted key."""


class DataError(StudyError):
    """A data file or frame cannot become a problem; names file, 1-based line and column."""


class StorageError(StudyError):
    """An Optuna storage or MLflow store cannot be used (locked, read-only, full, mismatched)."""
