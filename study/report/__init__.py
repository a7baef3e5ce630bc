"""The report: from a tidy trials table (given by :mod:`study.api`, never read from a store
here) compute the regions, theory's predictions and the plot data first, then draw the figures
and write report.md and report.html. Imports neither optuna nor mlflow."""
