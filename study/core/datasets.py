"""The project's own small data sets: seeded, deterministic generators and the CSVs made from them.

Each generator returns a DataFrame with named columns (``x, y`` or ``x1 … x5, y``) drawn from
``numpy.random.default_rng(seed)``; the same seed gives the same numbers on every machine.

| name        | rows × features | what it reproduces                                             |
|-------------|-----------------|----------------------------------------------------------------|
| tutorial_c  | 5 × 1           | tutorial C's X = 1..5, Y = 1, 3, 3, 3, 5 (no randomness)       |
| tutorial_b  | 100 × 1         | tutorial B: x, y = linspace(−1, 1, 100) + N(0, 0.25²) each     |
| multivariate| 100 × 5         | tutorial E: a random regression problem (like sklearn's        |
|             |                 | make_regression: N(0, 1) features, coefficients 100·U(0, 1),   |
|             |                 | Gaussian noise σ = 10, no bias)                                |
| blog_like   | 100 × 1         | the shape of the article's data: x ~ U(20, 80), y = 1.3x + 8 + |
|             |                 | N(0, 10²); its mse Hessian has the same long, flat valley      |

``python -m study.core.datasets [FOLDER]`` (default ``data``) rewrites the CSVs with a header row;
values are written as the shortest decimal that reads back to the same float.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

SEED = 0  # the seed of every shipped CSV


def tutorial_c() -> pd.DataFrame:
    """Tutorial C's five points: X = 1..5, Y = 1, 3, 3, 3, 5 (OLS line y = 0.8x + 0.6)."""
    return pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [1.0, 3.0, 3.0, 3.0, 5.0]})


def tutorial_b(seed: int = SEED) -> pd.DataFrame:
    """x = linspace(−1, 1, 100) + ε₁, y = linspace(−1, 1, 100) + ε₂, ε ~ N(0, 0.25²)."""
    rng = np.random.default_rng(seed)
    base = np.linspace(-1.0, 1.0, 100)
    x = base + rng.normal(0.0, 0.25, 100)
    y = base + rng.normal(0.0, 0.25, 100)
    return pd.DataFrame({"x": x, "y": y})


def multivariate(seed: int = SEED, n: int = 100, d: int = 5, noise: float = 10.0
                 ) -> pd.DataFrame:
    """y = X w + ε with X ~ N(0, 1) (n × d), w ~ 100·U(0, 1), ε ~ N(0, noise²)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = 100.0 * rng.uniform(0.0, 1.0, d)
    y = X @ w + rng.normal(0.0, noise, n)
    frame = pd.DataFrame(X, columns=[f"x{j + 1}" for j in range(d)])
    frame["y"] = y
    return frame


def blog_like(seed: int = SEED) -> pd.DataFrame:
    """100 points, x ~ U(20, 80), y = 1.3x + 8 + N(0, 10²).

    Like the article's data, x is far from 0 compared with its spread, so the mse Hessian
    H = (2/N)[[Σx², Σx], [Σx, N]] has a condition number in the tens of thousands: the cost has
    a long, flat valley along which gradient descent crawls.
    """
    rng = np.random.default_rng(seed)
    x = rng.uniform(20.0, 80.0, 100)
    y = 1.3 * x + 8.0 + rng.normal(0.0, 10.0, 100)
    return pd.DataFrame({"x": x, "y": y})


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {
    "tutorial_c": tutorial_c,
    "tutorial_b": tutorial_b,
    "multivariate": multivariate,
    "blog_like": blog_like,
}


def _number(v: float) -> str:
    return np.format_float_positional(float(v), unique=True, trim="-")


def render_csv(frame: pd.DataFrame) -> str:
    """CSV text: a header row, then one row per point, LF line ends, shortest round-trip floats."""
    lines = [",".join(str(c) for c in frame.columns)]
    lines += [",".join(_number(v) for v in row) for row in frame.to_numpy(dtype=np.float64)]
    return "\n".join(lines) + "\n"


def write_datasets(folder: str | Path) -> dict[str, Path]:
    """Write every data set as ``<folder>/<name>.csv``; returns name → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, make in DATASETS.items():
        path = folder / f"{name}.csv"
        path.write_text(render_csv(make()), encoding="utf-8", newline="")
        out[name] = path
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    for name, path in write_datasets(args[0] if args else "data").items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
