"""What a visitor uploads or pastes, read as the command line reads it: example CSVs and the shipped label sets,
the tables Batch and Evaluate score, with the column guesses and what to say about a doubtful file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import FewShotError
from ..io.encodings import NotTextError
from ..io.output import csv_options
from ..io.tables import (LABEL_COLUMNS, TEXT_COLUMNS, TEXT_SAMPLE_ROWS, guess_column, header_looks_like_data,
                         likely_text_column, read_labelled_table, read_table, sniff)
from ..text import label_name
from ..label_sets import LABEL_SETS_DIR
from . import state as st
from .settings import env_int

MAX_ROWS = env_int("FEWSHOT_MAX_ROWS", 20000)


def example_sets() -> dict[str, Path]:
    """Display name -> CSV file of the ready label sets shipped in ``fewshot/label_sets``."""
    files = sorted(LABEL_SETS_DIR.glob("*.csv")) if LABEL_SETS_DIR.is_dir() else []
    return {p.stem.replace("_", " ").capitalize(): p for p in files}


def load_example_set(name: str) -> st.Rows:
    """Rows of a ready label set by display name (or file stem)."""
    sets = example_sets()
    by_stem = {p.stem: p for p in sets.values()}
    path = sets.get(str(name)) or by_stem.get(str(name))
    if path is None:
        raise FewShotError(f"no example label set {name!r}; choose one of {list(sets)}")
    return rows_from_csv(path)


def rows_from_csv(path: str | Path, display_name: str | None = None) -> st.Rows:
    """Rows from a ``text,label`` CSV (column order free; ``Text``, ``sentence,intent`` … read too, as the CLI
    reads them)."""
    return read_examples(path, display_name)[0]


def read_examples(path: str | Path, display_name: str | None = None) -> tuple[st.Rows, int]:
    """:func:`rows_from_csv`'s rows and how many of the file's examples were cut to :data:`st.MAX_INPUT_CHARS` (more
    than spaces lost), for the import to say so as Batch does."""
    with upload_errors(path, display_name):
        texts, labels = read_labelled_table(path, hint="Name them text and label in the file's first row")
    cut = sum(txt[st.MAX_INPUT_CHARS:].strip() != "" for txt in texts)
    return st.clean_rows([[lab, txt[:st.MAX_INPUT_CHARS]] for lab, txt in zip(labels, texts)]), cut


def cut_note(count: int) -> str:
    """What the import says of ``count`` examples longer than :data:`st.MAX_INPUT_CHARS` that it cut."""
    return (f"{count:,} example{'s' if count != 1 else ''} longer than {st.MAX_INPUT_CHARS:,} characters "
            f"{'were' if count != 1 else 'was'} cut to {'their' if count != 1 else 'its'} first {st.MAX_INPUT_CHARS:,}")


@contextmanager
def upload_errors(path: str | Path, display_name: str | None = None) -> Iterator[None]:
    """A :class:`FewShotError` raised meanwhile about the upload ``path`` names its plain file name, not its temp
    path, and says what to do in the app about an encoding."""
    try:
        yield
    except FewShotError as exc:
        msg = str(exc)
        if isinstance(exc, NotTextError):  # the app has no encoding option: say what to do here, with the guess
            likely = f" it may be {exc.likely}:" if exc.likely else ""
            msg = f"{exc.problem};{likely} save it as UTF-8 (or UTF-16) in your editor and upload it again"
        raise FewShotError(msg.replace(str(path), display_name or Path(path).name)) from exc



def text_column(df: pd.DataFrame, chosen: str | None = None, exclude: str | None = None) -> str:
    """``chosen`` when given (a name the file lacks is refused where it is read), else the column named like text,
    else the one whose cells look most like text (:func:`fewshot.io.tables.likely_text_column`: not an ID column;
    never ``exclude``, the label column), else the first: what the dropdown shows once an upload is read, so a click
    that comes before that gets it."""
    columns = [str(c) for c in df.columns]
    if chosen:
        return str(chosen)
    return guess_column(columns, TEXT_COLUMNS) or _likely_text(df, exclude) or columns[0]


def _likely_text(df: pd.DataFrame, exclude: str | None) -> str | None:
    return likely_text_column(df.drop(columns=[exclude]) if exclude in df.columns else df)


def text_column_note(df: pd.DataFrame, name: str, exclude: str | None = None) -> str | None:
    """What to tell the user when no column of the upload ``name`` (but ``exclude``, the label column) is named
    like text nor holds text (numbers, dates, empty cells): the preselected column is a guess they must correct."""
    if guess_column([str(c) for c in df.columns], TEXT_COLUMNS) or _likely_text(df, exclude):
        return None
    return (f"no column of {name} looks like text (its first rows hold numbers, dates or empty cells): choose the "
            "column that holds the texts")


HEADER_HINT = " (if that first row is data, add a header row above it, such as text,label)"
"""The command line's hint (:func:`fewshot.io.tables.find_column`) for a file whose header reads like data, where the
app asks for a column."""


def header_hint(columns: list[str]) -> str:
    """:data:`HEADER_HINT` when the header ``columns`` reads like a row of data (the command line's rule,
    :func:`fewshot.io.tables.header_looks_like_data`), else ""."""
    return HEADER_HINT if header_looks_like_data(columns) else ""


def _named_like_a_cell(df: pd.DataFrame, name: str) -> bool:
    """Whether the column name ``name`` of ``df`` looks like one of its own cells: a number, or a value the column
    holds in its first rows (a label such as ``refund`` read as the name of the label column)."""
    key = name.strip()
    try:
        float(key)
        return True
    except ValueError:
        pass
    return bool(key) and key in set(df[name].head(TEXT_SAMPLE_ROWS).astype(str).str.strip())


def headerless_note(df: pd.DataFrame, name: str, evaluated: bool = False) -> str | None:
    """What to tell the user when the upload ``name`` seems to have no header line, so that its first row was
    taken as the column names and is not classified (``evaluated``: not evaluated). No column is named like text
    and a name reads like a text (:func:`fewshot.io.tables.header_looks_like_data`, the command line's rule); with
    several columns another name also reads like one of its own cells (a number, a label the column holds), since
    a column of texts may well be named in a few words (``Customer Message (as received)``). Said, not guessed away
    by reading the file as headerless: the file then gives the same rows here as on the command line."""
    columns = [str(c) for c in df.columns]
    if guess_column(columns, TEXT_COLUMNS) or not header_looks_like_data(columns):
        return None
    done = "evaluated" if evaluated else "classified"
    if len(columns) == 1:
        return (f"the first line of {name}, {_short(columns[0])!r}, is read as the column name, so it is not {done}; "
                "if it is a text, add a header line such as text above it")
    if not any(_named_like_a_cell(df, c) for c in columns if not header_looks_like_data([c])):
        return None
    names = ", ".join(repr(_short(c, 50)) for c in columns[:3]) + (", …" if len(columns) > 3 else "")
    header = "such as text,label" if evaluated else "text for the column of texts"
    return (f"the first line of {name} ({names}) is read as the column names, so it is not {done}; if it is a row "
            f"of data, add a header line above it that names the columns ({header})")


def _short(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def foreign_labels_note(df: pd.DataFrame, label_col: str, state: Any, name: str) -> str | None:
    """What to tell the user before evaluating the upload ``name`` when none of the true labels in ``label_col``
    (rows labelled ``unknown`` aside) is a label of the label set: every row would count as an error, most likely
    because the file names the labels otherwise. None when some label is shared (or there is nothing to compare)."""
    if label_col not in df.columns:
        return None
    multi = st.is_multi(state)
    gold = sorted({lab for cell in df[label_col] for lab in st.cell_labels(label_name(str(cell)), multi)}
                  - {st.NONE_LABEL})
    mine = [lab for lab in st.labels_of(st.state_rows(state), multi) if lab != st.NONE_LABEL]
    if not gold or not mine or set(gold) & set(mine):
        return None

    def few(labels: list[str]) -> str:
        return ", ".join(repr(lab) for lab in labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")

    return (f"none of the labels of {name} is a label of your label set (the file has {few(gold)}; yours are "
            f"{few(mine)}): every row will count as an error; rename the labels in the file or in your label set")


def label_column(columns: list[str], chosen: str | None = None) -> str | None:
    """``chosen`` when given, else the likely label column (None: no column looks like one)."""
    return str(chosen) if chosen else guess_column(columns, LABEL_COLUMNS)


def read_upload(path: str | Path, display_name: str | None = None) -> pd.DataFrame:
    """An uploaded CSV as strings, with a row limit."""
    with upload_errors(path, display_name):
        df = read_table(path, [])
    if len(df) > MAX_ROWS:
        raise FewShotError(f"{display_name or Path(path).name} has {len(df)} rows; this app classifies at most "
                           f"{MAX_ROWS} per file (use the `fewshot classify` CLI for bigger files)")
    return df


PASTED_COLUMN = "text"


def pasted_rows(pasted: str) -> pd.DataFrame:
    """Texts pasted one per line (a spreadsheet column copied, say) as a one-column frame; blank lines dropped,
    with the same row limit as a file."""
    lines = [line.strip() for line in pasted.splitlines()]
    df = pd.DataFrame({PASTED_COLUMN: [line for line in lines if line]}, dtype=str)
    if len(df) > MAX_ROWS:
        raise FewShotError(f"{len(df):,} texts were pasted; this app classifies at most {MAX_ROWS:,} at once (the "
                           "`fewshot classify` command line takes a CSV of any size)")
    return df


def upload_delimiter(path: str | Path) -> str:
    """An uploaded CSV's delimiter (``,`` for a workbook): its labelled download is written with the same one, so
    that a spreadsheet set to ``;`` (where the decimal mark is a comma) opens it in columns as it opened the upload."""
    return csv_options(sniff(path))["sep"]  # the command line's rule (fewshot.io.output.csv_options)
