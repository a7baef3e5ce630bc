"""YAML → one validated, frozen :class:`~study.config.model.StudyConfig`: the model and its
sections, the search space, ``--set`` overrides, YAML I/O with file:line:col errors, and the
one-line messages. Imports only :mod:`study.core` below it."""
