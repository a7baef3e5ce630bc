"""The pure core: data → :class:`~study.core.problem.Problem` (sufficient statistics, OLS θ*),
the compiled kernels and the engine that runs many trials at once, and the theory that predicts
them. numpy and numba only (pandas in :mod:`study.core.data`); no I/O beyond reading a data
file; imports nothing of the rooms above it."""
