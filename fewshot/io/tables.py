"""Reading the CSV files users bring (and Excel workbooks, with ``fewshot[excel]``): clear errors for bad files,
chunked streaming for big ones."""

from __future__ import annotations

import csv
import io
import itertools
import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FewShotError, install_hint
from ..text import label_name
from .encodings import SAMPLE_BYTES, codec_name, file_encoding, not_text_error
from .formulas import unquote_formula

SAVE_AS_CSV = "save it as CSV (Excel: File > Save As > CSV UTF-8)"
NOT_CSV = (
    (b"PK\x03\x04", "a zip archive (not an Excel workbook); unpack it and give the CSV inside"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", f"an Excel workbook (.xls); {SAVE_AS_CSV}"),
    (b"\x1f\x8b", "compressed (gzip); decompress it first"),
    (b"%PDF", "a PDF document; export the table as CSV"),
)
"""File signatures that people upload by mistake, and what to tell them (an .xlsx workbook, also a zip, is read)."""


OTHER_FORMATS = {
    ".json": ("a JSON file", "pandas.read_json(path)"),
    ".jsonl": ("a JSON Lines file", "pandas.read_json(path, lines=True)"),
    ".ndjson": ("a JSON Lines file", "pandas.read_json(path, lines=True)"),
    ".parquet": ("a Parquet file", "pandas.read_parquet(path)"),
}
"""File types that are tables but not CSV, refused by their extension (as the app's upload refuses them), with the
pandas call that reads them for a conversion to CSV."""


def _check_file(path: str | Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FewShotError(f"file not found: {path}")
    if path.is_dir():
        raise FewShotError(f"{path} is a folder; expected a CSV file")
    if path.suffix.lower() in OTHER_FORMATS:
        what, call = OTHER_FORMATS[path.suffix.lower()]
        raise FewShotError(f"{path} is {what}; fewshot reads CSV files (and .xlsx workbooks): save it as CSV with a "
                           f"header row such as text,label (in Python: {call}.to_csv('file.csv', index=False))")
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
    """How a CSV is written: its encoding (:func:`file_encoding`) and its delimiter (:func:`sniff_delimiter`).

    An .xlsx workbook is recognised (``excel``); another binary file (an old .xls, an archive, a PDF) is refused by
    name before any reading, so text is never silently garbled.
    """
    path = _check_file(path)
    with open(path, "rb") as fh:
        raw = fh.read(SAMPLE_BYTES)
    if raw.startswith(b"PK\x03\x04") and _is_workbook(path):
        return CsvFormat("", "", excel=True)
    if raw.startswith(b"PK\x03\x04") and is_classifier_zip(path):
        raise FewShotError(f"{path} is a saved classifier, not a CSV of texts: load it as one (--classifier on the "
                           "command line, FewShotClassifier.load, or the app's Load classifier)")
    for magic, what in NOT_CSV:
        if raw.startswith(magic):
            raise FewShotError(f"{path} is not a text CSV: it is {what}")
    encoding = file_encoding(path, encoding, raw)
    text = raw.decode(encoding, errors="ignore").lstrip("\ufeff")
    sep, header = sniff_delimiter(text, truncated=len(raw) == SAMPLE_BYTES)
    first_line = text.splitlines()[0] if text.strip() else ""
    _check_unique_names(path, header)
    return CsvFormat(encoding, sep or ",", one_column=bool(first_line.strip()) and sep is None)


SNIFF_ROWS = 20
"""Data rows, after the header, that :func:`sniff_delimiter` checks against the header's number of fields."""


def sniff_delimiter(text: str, truncated: bool = False) -> tuple[str | None, list[str]]:
    """The delimiter of a CSV that starts with ``text`` (``truncated``: the file goes on) and its header's names.

    Each of :data:`DELIMITERS` parses the header and the first :data:`SNIFF_ROWS` rows as CSV, so a delimiter inside
    a quoted name (``id;"Nachricht, Kunde";Datum``) does not count; among those that split the header in two or
    more, the one whose rows have as many fields as the header wins, then the one whose names hold no stray quote,
    then the one giving more columns. None (one column) when none splits the header.
    """
    best: tuple[tuple[float, int, int], str, list[str]] | None = None
    for sep in DELIMITERS:
        records = _first_records(text, sep, truncated)
        if not records or len(records[0]) < 2:
            continue
        header, rows = records[0], records[1:]
        consistent = sum(len(r) == len(header) for r in rows) / len(rows) if rows else 1.0
        key = (consistent, -sum('"' in name for name in header), len(header))
        if best is None or key > best[0]:
            best = (key, sep, header)
    if best is None:
        records = _first_records(text, ",", truncated)
        return None, records[0] if records else []
    return best[1], best[2]


def _first_records(text: str, sep: str, truncated: bool) -> list[list[str]]:
    """The header and first :data:`SNIFF_ROWS` rows of ``text`` read with ``sep``, blank lines left out (a record
    cut by the end of a ``truncated`` sample too)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    try:
        records = [r for r in itertools.islice(reader, 4 * SNIFF_ROWS) if r]
    except csv.Error:  # a line the csv module cannot read: what was read before it still counts
        records = []
    if truncated and len(records) < 4 * SNIFF_ROWS:
        records = records[:-1]  # the last one may be cut
    return records[:SNIFF_ROWS + 1]


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
        raise FewShotError(_empty_first_row(path))
    _check_unique_names(path, [str(n) for n in header.iloc[0]])
    df.columns = [str(c) for c in df.columns]
    return df


DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "'|'"}


def _empty_first_row(path: Path, rows: int = 1000) -> str:
    """What a workbook whose first sheet's first row is empty holds instead (fewshot reads the header from that
    row): the row of its first sheet where a table seems to start, or the other sheets, or nothing."""
    import openpyxl

    book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        filled = []  # per sheet, the first row (1-based) with a cell that is not empty, in the first ``rows``
        for sheet in book.worksheets:
            cells = sheet.iter_rows(values_only=True, max_row=rows)
            filled.append(next((i for i, row in enumerate(cells, start=1)
                                if any(v is not None and str(v).strip() for v in row)), None))
        names = list(book.sheetnames)
    finally:
        book.close()
    rule = "fewshot reads the header (such as text,label) from the first row of the first sheet"
    if filled and filled[0] is not None:
        return (f"{path}: the first row of its first sheet ({names[0]!r}) is empty, and {rule}; the table seems to "
                f"start on row {filled[0]}: delete the rows above it, or {SAVE_AS_CSV}")
    others = [name for name, row in zip(names[1:], filled[1:]) if row is not None]
    if others:
        return (f"{path}: its first sheet ({names[0]!r}) is empty, and {rule}; the workbook's sheets are {names}, "
                f"{others[0]!r} holding data: move that sheet first, or {SAVE_AS_CSV}")
    return f"{path} is an empty workbook: its first sheet needs a header row (such as text) and rows"


def _read_errors(path: Path, exc: Exception, fmt: CsvFormat | None = None) -> FewShotError:
    """A :class:`FewShotError` for an error pandas or the csv module raised reading ``path`` (written as ``fmt``
    says), in the product's words, its rows numbered as a spreadsheet shows the file (1 is the header)."""
    if isinstance(exc, UnicodeDecodeError):
        codec = codec_name(fmt.encoding) if fmt is not None and fmt.encoding else exc.encoding  # not "charmap"
        given = fmt.encoding if fmt is not None and not codec.startswith("utf") else None
        return not_text_error(path, codec, given)
    if isinstance(exc, pd.errors.EmptyDataError):
        return FewShotError(f"{path} has no rows; expected a CSV with a header row")
    if isinstance(exc, (pd.errors.ParserError, csv.Error)):
        said = str(exc)
        if found := re.search(r"EOF inside string starting at row (\d+)", said):  # pandas counts the header as 0
            return FewShotError(f"{path}: a quote opened on row {int(found[1]) + 1} is never closed; close it, or "
                                'double each quote inside a quoted text ("") (rows as a spreadsheet numbers them, '
                                "1 being the header)")
        if found := re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", said):  # line: a row, so counted
            name = DELIMITER_NAMES.get(fmt.sep, repr(fmt.sep)) if fmt is not None else "delimiter"
            return FewShotError(f"{path}: row {found[2]} has {found[3]} fields where the header has {found[1]}: a "
                                f"{name} inside a text that is not in quotes? Put such a text in double quotes "
                                "(rows as a spreadsheet numbers them, 1 being the header)")
        return FewShotError(f"{path} is not a readable CSV: {said.splitlines()[0] if said else type(exc).__name__}")
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
    :func:`fewshot.text.label_name` keeps them. A ``'`` before a leading ``=`` ``+`` ``-`` ``@``, tab or CR is
    dropped (:func:`unquote_formula`): the app's exports and spreadsheets add it against formulas."""
    df = read_table(path, [], encoding)
    text = find_column(path, list(df.columns), text_column, TEXT_COLUMNS, hint)
    label = find_column(path, list(df.columns), label_column, LABEL_COLUMNS, hint)
    check_filled(path, df, [text, label])
    return [unquote_formula(t) for t in df[text]], [label_name(unquote_formula(lab)) for lab in df[label]]


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
    fmt = sniff(path, encoding)
    try:
        df = _read_csv(path, fmt)
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc, fmt) from exc
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
    fmt = sniff(path, encoding)
    try:
        head = _read_csv(path, fmt, nrows=50)
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc, fmt) from exc
    _check_columns(path, head, columns)
    if head.empty:
        raise FewShotError(f"{path} has a header but no rows")
    return [str(c) for c in head.columns]


def iter_chunks(path: str | Path, text_column: str, chunksize: int = 2048, encoding: str | None = None
                ) -> Iterator[pd.DataFrame]:
    """Stream a CSV in chunks of strings (flat memory at any size); checks the text column up front."""
    path = _check_file(path)
    fmt = sniff(path, encoding)
    try:
        reader = _csv_chunks(path, fmt, chunksize)
        first = True
        for chunk in reader:
            if first:
                _check_columns(path, chunk, [text_column])
                first = False
            yield chunk
        if first:
            raise FewShotError(f"{path} has a header but no rows")
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError, csv.Error) as exc:
        raise _read_errors(path, exc, fmt) from exc


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
