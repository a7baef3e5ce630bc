"""CSV files and DataFrames → :class:`study.core.problem.Problem`, with every check a fit needs.

A data file is a plain numeric CSV: ``,`` as delimiter, an optional header row (a first row whose
cells are all non-numbers), LF or CRLF line ends, an optional UTF-8 byte-order mark. Nothing is
dropped or coerced: every problem is a :class:`study.errors.DataError` whose one-line message names
the file and the 1-based line and column, for example ``data/x.csv:14:2: cell 'abc' is not a
number``. Blank lines at the end of a file are allowed; elsewhere they are errors.

After parsing, a problem with ``d`` features must also be *identifiable*, so that the
least-squares optimum θ* = argmin Σ (y − Xw − b)² is unique:

- at least ``d + 2`` rows (more rows than the ``d + 1`` parameters);
- no (almost) constant feature: a column whose std is at the rounding level of its values,
  std ≤ 512·ε·max|x| (≈ 1.1e-13·max|x|, whatever the scale), has no slope;
- no exactly collinear features: the centered design ``X − x̄`` must have full column rank.

The project's own data sets are made by :mod:`study.core.datasets`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from study.core.problem import Problem
from study.errors import DataError

Column = str | int
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_NON_FINITE = {"nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity",
               "-infinity"}
_VARIANCE_RTOL = 512 * np.finfo(np.float64).eps  # ≈ 1.1e-13, relative to max |x|
_RANK_RTOL = 1e-10


class _Table:
    """Parsed cells as floats, with what is needed to name a cell in a message."""

    def __init__(self, source: str, names: list[str] | None, values: np.ndarray,
                 lines: list[int] | None) -> None:
        self.source = source
        self.names = names  # header names, or None
        self.values = values  # (rows, columns) float64, all finite
        self.lines = lines  # 1-based file line of each row; None for frames

    def label(self, j: int) -> str:
        """``'x' (column 1)`` or ``column 1`` (1-based)."""
        return f"{self.names[j]!r} (column {j + 1})" if self.names else f"column {j + 1}"


def _cell_problem(text: str) -> str | None:
    """Why a CSV cell is not a finite number, or None when it is one."""
    cell = text.strip()
    if _NUMBER.fullmatch(cell):
        return None
    if not cell:
        return "empty cell"
    if cell.lower() in _NON_FINITE:
        return f"{cell} is not a finite number"
    if ";" in cell:
        return f"cell {cell!r} is not a number (the file seems to use ';' as delimiter; only ',' " \
               "is accepted)"
    return f"cell {cell!r} is not a number"


def _blank(cells: list[str]) -> bool:
    return not cells or (len(cells) == 1 and not cells[0].strip())


def _is_number_text(text: str) -> bool:
    cell = text.strip()
    return bool(_NUMBER.fullmatch(cell)) or cell.lower() in _NON_FINITE


# Data files are read whole and parsed in Python: past this size the read alone takes minutes
# and gigabytes, while the engine needs only the sufficient statistics.
MAX_DATA_BYTES = 256 * 2**20


def _read_text(path: Path, shown: str) -> str:
    if not path.exists():
        raise DataError(f"{shown}: no such file")
    if not path.is_file():
        raise DataError(f"{shown}: {'a folder' if path.is_dir() else 'not a regular file'}, "
                        "not a CSV file")
    try:
        size = path.stat().st_size
        if size > MAX_DATA_BYTES:
            raise DataError(f"{shown}: {size / 2**20:,.0f} MiB is past the limit of "
                            f"{MAX_DATA_BYTES // 2**20} MiB for a data file (about 10 million "
                            "rows of two numbers); sample or aggregate the rows first")
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{shown}: cannot be read: {exc.strerror}") from None
    _remember_digest(path, raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DataError(f"{shown}:{line}:{col}: not UTF-8 text (byte {raw[exc.start]:#04x})") \
            from None


def _parse_csv(text: str, shown: str) -> _Table:
    """Text → table; the first error found in reading order is raised."""
    rows = _csv_rows(text, shown)
    first_line, first = rows[0]
    names = _header(first, first_line, shown)
    if names is not None:
        rows = rows[1:]
    return _Table(shown, names, _cell_values(rows, len(first), names, shown),
                  [line for line, _ in rows])


def _csv_rows(text: str, shown: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows with their 1-based line numbers; a malformed file, an empty one, a
    blank line inside the data or another delimiter is a one-line error."""
    rows: list[tuple[int, list[str]]] = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise DataError(f"{shown}:{reader.line_num}: malformed CSV: {exc}") from None
    while rows and _blank(rows[-1][1]):
        rows.pop()  # blank lines at the end are not data
    if not rows:
        raise DataError(f"{shown}: empty file (no rows)")
    for line, cells in rows:
        if _blank(cells):
            raise DataError(f"{shown}:{line}:1: empty line inside the data")
    first_line, first = rows[0]
    if len(first) == 1 and (";" in first[0] or "\t" in first[0]):
        sep = "';'" if ";" in first[0] else "a tab"
        raise DataError(f"{shown}:{first_line}:1: the file seems to use {sep} as delimiter; "
                        "only ',' is accepted")
    return rows


def _header(first: list[str], line: int, shown: str) -> list[str] | None:
    """The column names when the first row is a header (every cell a non-numeric name)."""
    if not all(c.strip() and not _is_number_text(c) for c in first):
        return None
    names = [c.strip() for c in first]
    seen: dict[str, int] = {}
    for j, name in enumerate(names):
        if name in seen:
            raise DataError(f"{shown}:{line}:{j + 1}: duplicate column name {name!r} "
                            f"(also column {seen[name] + 1})")
        seen[name] = j
    return names


def _cell_values(rows: list[tuple[int, list[str]]], width: int, names: list[str] | None,
                 shown: str) -> np.ndarray:
    """The data rows as floats; a ragged row or a bad cell is an error at its line and column."""
    values = np.empty((len(rows), width), dtype=np.float64)
    for i, (line, cells) in enumerate(rows):
        if len(cells) != width:
            col = min(len(cells), width) + 1
            raise DataError(f"{shown}:{line}:{col}: line {line} has {len(cells)} cells; "
                            f"expected {width}")
        for j, cell in enumerate(cells):
            problem = _cell_problem(cell)
            if problem is not None:
                where = f" in column {names[j]!r}" if names else ""
                hint = ""
                if i == 0 and names is None and cell.strip() and not _is_number_text(cell):
                    hint = " (a header row needs a non-numeric name in every column)"
                raise DataError(f"{shown}:{line}:{j + 1}: {problem}{where}{hint}")
            values[i, j] = float(cell)
    return values


def _frame_table(df, source: str) -> _Table:
    """DataFrame → table; cells must be real numbers (bools and text are refused)."""
    names = [str(c) for c in df.columns]
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise DataError(f"{source}: duplicate column name {dup!r}")
    values = np.empty(df.shape, dtype=np.float64)
    for j, name in enumerate(names):
        col = df.iloc[:, j]
        for i, cell in enumerate(col.tolist()):
            where = f"{source}: row {i + 1} (index {df.index[i]!r}), column {j + 1} {name!r}"
            if isinstance(cell, bool | np.bool_) or not isinstance(cell, int | float | np.number):
                shown = "empty cell" if cell is None else f"cell {cell!r} is not a number"
                raise DataError(f"{where}: {shown}")
            if not math.isfinite(float(cell)):
                raise DataError(f"{where}: {cell} is not a finite number")
            values[i, j] = float(cell)
    return _Table(source, names, values, None)


def _position(table: _Table, sel: Column, role: str) -> int:
    width = table.values.shape[1]
    if isinstance(sel, bool) or not isinstance(sel, int | str | np.integer):
        raise DataError(f"{table.source}: {role} column must be a name or a 0-based position; "
                        f"got {sel!r}")
    if isinstance(sel, str):
        if table.names is None:
            raise DataError(f"{table.source}: no header row, so column {sel!r} ({role}) cannot "
                            f"be found; give 0-based positions 0..{width - 1}")
        if sel not in table.names:
            raise DataError(f"{table.source}: unknown {role} column {sel!r}; columns are "
                            f"{', '.join(table.names)}")
        return table.names.index(sel)
    if not 0 <= sel < width:
        raise DataError(f"{table.source}: {role} column position {sel} is out of range; the data "
                        f"has {width} columns (positions 0..{width - 1})")
    return int(sel)


def _select(table: _Table, x: Column | Sequence[Column] | None,
            y: Column | None) -> tuple[list[int], int]:
    width = table.values.shape[1]
    if width < 2:
        raise DataError(f"{table.source}: needs at least 2 columns (x and y); got {width}")
    yj = width - 1 if y is None else _position(table, y, "y")
    if x is None:
        xs = [j for j in range(width) if j != yj]
    else:
        items = [x] if isinstance(x, str | int) else list(x)
        if not items:
            raise DataError(f"{table.source}: x must name at least one column")
        xs = [_position(table, c, "x") for c in items]
    for j in xs:
        if j == yj:
            raise DataError(f"{table.source}: {table.label(j)} is both x and y")
        if xs.count(j) > 1:
            raise DataError(f"{table.source}: {table.label(j)} is given twice as x")
    return xs, yj


def _spread(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, std, scale = max |x|) per column, computed on x/scale so that neither tiny
    (1e-200: squares underflow) nor huge (1e300: sums overflow) values lose the spread."""
    scale = np.max(np.abs(X), axis=0)
    safe = np.where(scale > 0, scale, 1.0)
    Z = X / safe
    return Z.mean(axis=0) * safe, Z.std(axis=0) * safe, scale


def _check_identifiable(table: _Table, xs: list[int], X: np.ndarray, y: np.ndarray) -> None:
    n, d = X.shape
    need = d + 2
    if n < need:
        what = "header only, no data rows; " if n == 0 and table.names else ""
        raise DataError(f"{table.source}: {what}needs at least {need} rows (more than the "
                        f"{d + 1} parameters) for a unique fit; got {n}")
    with np.errstate(all="ignore"):  # overflow here is a data error, never a warning
        mean, std, scale = _spread(X)
        for k, j in enumerate(xs):
            # constant up to rounding: the spread is within a few hundred ulps of the values
            if std[k] <= _VARIANCE_RTOL * scale[k]:
                name = table.names[j] if table.names else ("x" if d == 1 else f"x{k + 1}")
                raise DataError(f"{table.source}: {name} has (almost) zero variance: the slope "
                                f"is not identifiable (column {j + 1}: std {std[k]:.3g} around "
                                f"mean {mean[k]:.6g}, at the rounding level of its values)")
        # the Hessian's entries are up to 2·Σx² (sse cost): they must be finite too
        if not (np.isfinite(2.0 * np.sum(X * X)) and np.isfinite(2.0 * np.sum(y * y))):
            raise DataError(f"{table.source}: values too large: their squares overflow float64")
        if d > 1:
            U = (X - mean) / std
            _, s, vt = np.linalg.svd(U, full_matrices=False)
            if s[-1] <= _RANK_RTOL * s[0]:
                involved = [xs[k] for k in np.flatnonzero(np.abs(vt[-1]) > 1e-6)]
                names = ", ".join(table.label(j) for j in involved)
                raise DataError(f"{table.source}: features {names} are (almost) exactly "
                                "collinear: their weights are not identifiable")


def _problem(table: _Table, x, y) -> Problem:
    xs, yj = _select(table, x, y)
    X = table.values[:, xs]
    yv = table.values[:, yj]
    _check_identifiable(table, xs, X, yv)
    if table.names:
        x_names = tuple(table.names[j] for j in xs)
        y_name = table.names[yj]
    else:
        x_names = ("x",) if len(xs) == 1 else tuple(f"x{k + 1}" for k in range(len(xs)))
        y_name = "y"
    return Problem(np.ascontiguousarray(X), np.ascontiguousarray(yv), x_names=x_names,
                   y_name=y_name, source=table.source)


def load_problem(path: str | Path, x: Column | Sequence[Column] | None = None,
                 y: Column | None = None) -> Problem:
    """Read a numeric CSV into a :class:`Problem`.

    ``x``: column names or 0-based positions (one or many; default: every column but ``y``);
    ``y``: a name or position (default: the last column). Raises :class:`DataError` naming
    ``path:line:column`` for the first bad cell, or the rule that the data breaks.
    """
    shown = str(path)
    table = _parse_csv(_read_text(Path(path).expanduser(), shown), shown)
    return _problem(table, x, y)


def problem_from_frame(df, x: Column | Sequence[Column] | None = None, y: Column | None = None,
                       source: str = "<DataFrame>") -> Problem:
    """A :class:`Problem` from a pandas DataFrame, with the same checks as :func:`load_problem`
    (cells must be finite real numbers; rows are named by 1-based position and index label)."""
    return _problem(_frame_table(df, source), x, y)


_DIGESTS: dict[tuple, str] = {}


def _file_key(path: Path) -> tuple:
    st = path.stat()
    return (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)


def _remember_digest(path: Path, raw: bytes) -> None:
    """Keep the sha256 of bytes just read, so identifying the data never reads it again."""
    _DIGESTS[_file_key(path)] = hashlib.sha256(raw).hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes (identifies the data a study ran on); taken from the read that
    loaded the data when the file has not changed since, else read in 1 MiB blocks."""
    path = Path(path)
    key = _file_key(path)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(2**20), b""):
                digest.update(block)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]
