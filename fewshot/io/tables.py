"""Reading the CSV files users bring (and Excel workbooks, with ``fewshot[excel]``): clear errors for bad files,
chunked streaming for big ones."""

from __future__ import annotations

import codecs
import csv
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FewShotError, install_hint
from ..text import label_name

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
SAVE_AS_CSV = "save it as CSV (Excel: File > Save As > CSV UTF-8)"
NOT_CSV = (
    (b"PK\x03\x04", "a zip archive (not an Excel workbook); unpack it and give the CSV inside"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", f"an Excel workbook (.xls); {SAVE_AS_CSV}"),
    (b"\x1f\x8b", "compressed (gzip); decompress it first"),
    (b"%PDF", "a PDF document; export the table as CSV"),
)
"""File signatures that people upload by mistake, and what to tell them (an .xlsx workbook, also a zip, is read)."""


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FewShotError(f"file not found: {path}")
    if path.is_dir():
        raise FewShotError(f"{path} is a folder; expected a CSV file")
    if path.stat().st_size == 0:
        raise FewShotError(f"{path} is empty; expected a CSV with a header row")
    return path


DELIMITERS = (",", ";", "\t", "|")


ONE_COLUMN_SEP = "\x1f"
"""What a one-column CSV is read with: a delimiter that text does not hold (the ASCII unit separator), so that a
comma in a hand-written line is part of its text."""


@dataclass(frozen=True)
class CsvFormat:
    """How a file is written: its text encoding and field delimiter."""

    encoding: str
    sep: str
    excel: bool = False  # an .xlsx workbook: its first sheet, read with openpyxl (no encoding or delimiter)
    one_column: bool = False  # a header without a delimiter: each line is one text, commas and blank lines included

    @property
    def read_sep(self) -> str:
        """The delimiter to read the file with (:data:`ONE_COLUMN_SEP` for one column)."""
        return ONE_COLUMN_SEP if self.one_column else self.sep

    def pandas_options(self) -> dict[str, Any]:
        """``pd.read_csv`` options for the file: cells as strings as written, its encoding and delimiter, and a
        blank line kept as a row when the file has one column (there it is an empty text)."""
        return {"dtype": str, "keep_default_na": False, "encoding": self.encoding, "sep": self.read_sep,
                "skip_blank_lines": not self.one_column}


def sniff(path: str | Path, encoding: str | None = None) -> CsvFormat:
    """Encoding from the byte-order mark (UTF-8, UTF-8 with BOM, UTF-16) and the delimiter from the header.

    Other encodings (Windows-1252, Latin-1) are not guessed: reading fails with a message that names
    them and the ``encoding`` to pass, so text is never silently garbled. An .xlsx workbook is recognised
    (``excel``); another binary file (an old .xls, an archive, a PDF) is refused by name before any reading.
    """
    path = _check_file(path)
    with open(path, "rb") as fh:
        raw = fh.read(64 * 1024)
    if raw.startswith(b"PK\x03\x04") and _is_workbook(path):
        return CsvFormat("", "", excel=True)
    if raw.startswith(b"PK\x03\x04") and is_classifier_zip(path):
        raise FewShotError(f"{path} is a saved classifier, not a CSV of texts: load it as one (--classifier on the "
                           "command line, FewShotClassifier.load, or the app's Load classifier)")
    for magic, what in NOT_CSV:
        if raw.startswith(magic):
            raise FewShotError(f"{path} is not a text CSV: it is {what}")
    if encoding is None:
        if raw.startswith(codecs.BOM_UTF8):
            encoding = "utf-8-sig"
        elif raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif b"\x00" in raw:  # UTF-16 without a byte-order mark is read with encoding="utf-16-le" (or -be)
            raise FewShotError(f"{path} is not a text CSV (it holds binary data, as a spreadsheet, archive or "
                               "image does): save or export it as CSV (UTF-8)")
        else:
            encoding = "utf-8"
    try:
        header = raw.decode(encoding, errors="ignore").lstrip("\ufeff").splitlines()[0] if raw.strip() else ""
    except LookupError as exc:
        raise FewShotError(f"unknown encoding {encoding!r}; try utf-8, utf-16 or cp1252") from exc
    counts = {d: header.count(d) for d in DELIMITERS}
    sep = max(DELIMITERS, key=lambda d: counts[d]) if any(counts.values()) else ","
    _check_unique_names(path, next(csv.reader([header], delimiter=sep), []))
    return CsvFormat(encoding, sep, one_column=bool(header.strip()) and not any(counts.values()))


def _check_unique_names(path: Path, names: list[str]) -> None:
    """Refuse a header that names a column twice: pandas would rename the copies ("text.1") and the wrong one
    could be read."""
    dupes = sorted({n for n in names if names.count(n) > 1 and n.strip()})
    if dupes:
        raise FewShotError(f"{path} has more than one column named {dupes[0]!r}; rename the copies and try again")


def _is_workbook(path: Path) -> bool:
    """Whether a zip file is an Excel workbook (.xlsx / .xlsm: it holds ``xl/workbook.xml``)."""
    try:
        with zipfile.ZipFile(path) as zf:
            return "xl/workbook.xml" in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def is_classifier_zip(path: Path) -> bool:
    """Whether a zip file holds a saved classifier's ``config.json`` and ``examples.csv`` (at its root or in one
    folder, as :func:`fewshot.persist.read_zip` reads it)."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).name for n in zf.namelist() if n.count("/") <= 1}
    except (zipfile.BadZipFile, OSError):
        return False
    return {"config.json", "examples.csv"} <= names


def _read_workbook(path: Path, nrows: int | None = None) -> pd.DataFrame:
    """The first sheet of an Excel workbook as strings (empty cells ``""``, numbers as written by pandas)."""
    try:
        import openpyxl  # noqa: F401  (pandas reads .xlsx through it)
    except ImportError as exc:
        raise FewShotError(f'{path} is an Excel workbook; reading it needs openpyxl: {install_hint("excel")}, '
                           f"or {SAVE_AS_CSV}") from exc
    try:
        header = pd.read_excel(path, sheet_name=0, header=None, dtype=str, na_filter=False, nrows=1,
                               engine="openpyxl")
        df = pd.read_excel(path, sheet_name=0, dtype=str, na_filter=False, nrows=nrows, engine="openpyxl")
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise FewShotError(f"{path} is not a readable Excel workbook ({type(exc).__name__}: {exc}); "
                           f"{SAVE_AS_CSV}") from exc
    if not len(header) or not any(str(n).strip() for n in header.iloc[0]):
        raise FewShotError(f"{path} is an empty workbook: its first sheet needs a header row (such as text) and rows")
    _check_unique_names(path, [str(n) for n in header.iloc[0]])
    df.columns = [str(c) for c in df.columns]
    return df


def _first_undecodable(path: Path, encoding: str, block: int = 1 << 16) -> tuple[int, int] | None:
    """(line, byte offset in the file) of the first bytes that ``encoding`` cannot decode, read in blocks:
    the decoder's own offset counts from the block pandas was reading, not from the start of the file."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line = 0, 1
    with path.open("rb") as f:
        while chunk := f.read(block):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                start = max(exc.start - len(exc.object) + len(chunk), 0)  # object = bytes carried over + chunk
                return line + chunk[:start].count(b"\n"), offset + start
            offset, line = offset + len(chunk), line + chunk.count(b"\n")
    return None


def _read_errors(path: Path, exc: Exception) -> FewShotError:
    if isinstance(exc, UnicodeDecodeError):
        where = _first_undecodable(path, exc.encoding)
        place = f"line {where[0]}, byte {where[1]}" if where else f"byte {exc.start}"
        return FewShotError(f"{path} is not {exc.encoding.upper()} text ({place}: {exc.reason}); it may be "
                            "Windows-1252/Latin-1: save it as UTF-8, or pass encoding cp1252 (--encoding cp1252)")
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


TEXT_COLUMNS = ("text", "sentence", "utterance", "example", "message", "query", "question", "review", "body",
                "content")
"""What a file's text column is likely called, most likely first (case and surrounding spaces aside)."""
LABEL_COLUMNS = ("label", "labels", "gold", "category", "class", "intent", "topic")
"""What a file's label column is likely called, most likely first."""


def guess_column(columns: Sequence[str], preferred: Sequence[str]) -> str | None:
    """The column named like the first of ``preferred`` that ``columns`` has, case and surrounding spaces aside
    (a column named exactly so first: ``text`` before ``Text``); None when it has none of them."""
    plain: dict[str, str] = {}
    for name in map(str, columns):
        key = name.strip().lower()
        if name == key or key not in plain:
            plain[key] = name
    return next((plain[p.strip().lower()] for p in preferred if p.strip().lower() in plain), None)


TEXT_SAMPLE_ROWS = 200
"""Rows :func:`likely_text_column` looks at (the first ones): enough to tell text from numbers, cheap on any file."""


def _letter_words(cell: str) -> int:
    """Words of ``cell`` made mostly of letters (as many letters as digits at least): ``invoice`` counts, ``61093``,
    ``2024-01-01`` and a UUID do not."""
    count = 0
    for word in cell.split():
        letters = sum(ch.isalpha() for ch in word)
        count += letters > 0 and letters >= sum(ch.isdigit() for ch in word)
    return count


def likely_text_column(df: pd.DataFrame, rows: int = TEXT_SAMPLE_ROWS) -> str | None:
    """The column whose cells look most like text: the most words of letters per row (an empty cell counts none)
    on the first ``rows`` rows, the first such column on a tie; None when no column has any (numbers, dates, codes,
    empty cells). For a file whose text column is named otherwise (``Customer Message``), beside an ID column that
    would otherwise be taken for it."""
    head = df.head(rows)
    best, best_score = None, 0.0
    for name in head.columns:
        cells = head[name].fillna("").astype(str)
        score = sum(map(_letter_words, cells)) / max(len(cells), 1)
        if score > best_score:
            best, best_score = str(name), score
    return best


def header_looks_like_data(names: Sequence[str]) -> bool:
    """Whether a header row reads like a row of data rather than column names: a name of more than two words
    (column names are short, texts are sentences). A file without a header row has its first row read as the
    names; such a file is told to add a header row."""
    return any(len(str(name).split()) > 2 for name in names)


def find_column(path: str | Path, columns: Sequence[str], chosen: str | None, preferred: Sequence[str],
                hint: str) -> str:
    """The column of ``path`` (header ``columns``) to read: ``chosen``, or when None the first of ``preferred`` it
    has, so that a file headed ``Text,Label`` or ``sentence,intent`` reads as it is; an exact name wins over one
    that differs in case or spaces. Else a :class:`FewShotError` listing the columns and ending with ``hint``."""
    names = [str(c) for c in columns]
    if chosen is not None and chosen in names:
        return chosen
    found = guess_column(names, [chosen] if chosen is not None else preferred)
    if found is not None:
        return found
    wanted = repr(chosen) if chosen is not None else f"{preferred[0]!r} (nor {', '.join(preferred[1:])})"
    message = f"{path} has no column {wanted}; its columns are {names}. {hint}"
    if header_looks_like_data(names):
        message += " (if that first row is data, add a header row above it, such as text,label)"
    raise FewShotError(message)


def read_labelled_table(path: str | Path, text_column: str | None = None, label_column: str | None = None,
                        encoding: str | None = None, hint: str = "Choose them with --text-column / --label-column"
                        ) -> tuple[list[str], list[str]]:
    """The texts and labels of a labelled CSV: its columns found by :func:`find_column` (``text_column`` /
    ``label_column`` when given; ``hint`` ends the message when none fits), empty cells refused by row, labels as
    :func:`fewshot.text.label_name` keeps them."""
    df = read_table(path, [], encoding)
    text = find_column(path, list(df.columns), text_column, TEXT_COLUMNS, hint)
    label = find_column(path, list(df.columns), label_column, LABEL_COLUMNS, hint)
    check_filled(path, df, [text, label])
    return df[text].tolist(), [label_name(lab) for lab in df[label]]


def _read_csv(path: Path, fmt: CsvFormat, nrows: int | None = None) -> pd.DataFrame:
    """The whole table (or its first ``nrows`` rows) as strings, a CSV or a workbook as ``fmt`` says."""
    if fmt.excel:
        return _read_workbook(path, nrows)
    return pd.read_csv(path, nrows=nrows, **fmt.pandas_options())


def _csv_chunks(path: Path, fmt: CsvFormat, chunksize: int) -> Iterator[pd.DataFrame]:
    """The table in chunks of strings: a CSV streamed, a workbook (bounded by Excel's row limit) read at once."""
    if fmt.excel:
        df = _read_workbook(path)
        return (df.iloc[i:i + chunksize] for i in range(0, len(df), chunksize))
    return pd.read_csv(path, chunksize=chunksize, **fmt.pandas_options())


def read_table(path: str | Path, columns: list[str], encoding: str | None = None,
               may_be_empty: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read a whole CSV as strings, checking that ``columns`` exist and, but for ``may_be_empty``, have no empty
    cells (a multi-label test file's empty label cell expects no label)."""
    path = _check_file(path)
    try:
        df = _read_csv(path, sniff(path, encoding))
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc) from exc
    _check_columns(path, df, columns)
    if df.empty:
        raise FewShotError(f"{path} has a header but no rows")
    check_filled(path, df, [c for c in columns if c not in may_be_empty])
    return df


def row_number(position: int) -> int:
    """A data row's number as a spreadsheet shows the file, the header being row 1 (position 0 is row 2): the one
    numbering of rows in messages, ``skipped_rows``, the ``--groups`` file and the app's review table."""
    return int(position) + 2


def check_filled(path: str | Path, df: pd.DataFrame, columns: list[str]) -> None:
    """:class:`FewShotError` naming the first row of ``df`` (read from ``path``) with an empty cell in ``columns``."""
    for col in columns:
        blank = df.index[df[col].str.strip() == ""]
        if len(blank):
            raise FewShotError(f"{path}: column {col!r} is empty on row {row_number(blank[0])} "
                               f"({len(blank)} empty cell(s) in all); fill or delete those rows")


def check_header(path: str | Path, columns: list[str], encoding: str | None = None) -> list[str]:
    """Fail early (before any model is loaded) when a CSV is missing, unreadable or lacks ``columns``."""
    path = _check_file(path)
    try:
        head = _read_csv(path, sniff(path, encoding), nrows=50)
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc) from exc
    _check_columns(path, head, columns)
    if head.empty:
        raise FewShotError(f"{path} has a header but no rows")
    return [str(c) for c in head.columns]


def iter_chunks(path: str | Path, text_column: str, chunksize: int = 2048, encoding: str | None = None
                ) -> Iterator[pd.DataFrame]:
    """Stream a CSV in chunks of strings (flat memory at any size); checks the text column up front."""
    path = _check_file(path)
    try:
        reader = _csv_chunks(path, sniff(path, encoding), chunksize)
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


def count_rows(path: str | Path, encoding: str | None = None) -> int | None:
    """Data rows in a CSV (quoted newlines counted right), or None when the file cannot be parsed."""
    try:
        fmt = sniff(path, encoding)
        if fmt.excel:
            return len(_read_workbook(Path(path)))
        with open(path, newline="", encoding=fmt.encoding) as fh:
            return max(sum(1 for _ in csv.reader(fh, delimiter=fmt.read_sep)) - 1, 0)
    except (UnicodeDecodeError, csv.Error, OSError, FewShotError):
        return None


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix cells that a spreadsheet would run as a formula with ``'`` (OWASP CSV injection advice); a cell that
    is a plain number (``-2.31``, ``-inf``, as the in-scope scores are written) stays a number."""
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if _runs_as_formula(v) else v)
    return out


def _runs_as_formula(value: object) -> bool:
    """Whether a spreadsheet could read ``value`` as a formula: a string starting with one of
    :data:`FORMULA_PREFIXES` that is not a plain number."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return "_" in value  # float() reads "1_000" too; a spreadsheet would not, so it stays quoted
