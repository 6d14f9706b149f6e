"""Reading and writing the CSV files users bring: clear errors for bad files, chunked streaming for big ones."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from .errors import FewShotError

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FewShotError(f"file not found: {path}")
    if path.is_dir():
        raise FewShotError(f"{path} is a folder; expected a CSV file")
    if path.stat().st_size == 0:
        raise FewShotError(f"{path} is empty; expected a CSV with a header row")
    return path


def _read_errors(path: Path, exc: Exception) -> FewShotError:
    if isinstance(exc, UnicodeDecodeError):
        return FewShotError(f"{path} is not UTF-8 text (byte {exc.start}: {exc.reason}); "
                            "save it as UTF-8 CSV and try again")
    if isinstance(exc, pd.errors.EmptyDataError):
        return FewShotError(f"{path} has no rows; expected a CSV with a header row")
    if isinstance(exc, (pd.errors.ParserError, csv.Error)):
        return FewShotError(f"{path} is not a readable CSV: {str(exc).splitlines()[0]}")
    return FewShotError(f"could not read {path}: {exc}")


def _check_columns(path: Path, df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise FewShotError(f"{path} has no column {missing[0]!r}; its columns are {list(map(str, df.columns))}. "
                           "Choose others with --text-column / --label-column")


def read_table(path: str | Path, columns: list[str]) -> pd.DataFrame:
    """Read a whole CSV as strings, checking that ``columns`` exist and have no empty cells."""
    path = _check_file(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc) from exc
    _check_columns(path, df, columns)
    if df.empty:
        raise FewShotError(f"{path} has a header but no rows")
    for col in columns:
        blank = df.index[df[col].str.strip() == ""]
        if len(blank):
            raise FewShotError(f"{path}: column {col!r} is empty on row {int(blank[0]) + 2} "
                               f"({len(blank)} empty cell(s) in all); fill or delete those rows")
    return df


def check_header(path: str | Path, columns: list[str]) -> list[str]:
    """Fail early (before any model is loaded) when a CSV is missing, unreadable or lacks ``columns``."""
    path = _check_file(path)
    try:
        head = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", nrows=50)
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc) from exc
    _check_columns(path, head, columns)
    if head.empty:
        raise FewShotError(f"{path} has a header but no rows")
    return [str(c) for c in head.columns]


def iter_chunks(path: str | Path, text_column: str, chunksize: int = 2048) -> Iterator[pd.DataFrame]:
    """Stream a CSV in chunks of strings (flat memory at any size); checks the text column up front."""
    path = _check_file(path)
    try:
        reader = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8", chunksize=chunksize)
        first = True
        for chunk in reader:
            if first:
                _check_columns(path, chunk, [text_column])
                first = False
            yield chunk
        if first:
            raise FewShotError(f"{path} has a header but no rows")
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc) from exc


def count_rows(path: str | Path) -> int | None:
    """Data rows in a CSV (quoted newlines counted right), or None when the file cannot be parsed."""
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return max(sum(1 for _ in csv.reader(fh)) - 1, 0)
    except (UnicodeDecodeError, csv.Error, OSError):
        return None


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix cells that a spreadsheet would run as a formula with ``'`` (OWASP CSV injection advice)."""
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return out
