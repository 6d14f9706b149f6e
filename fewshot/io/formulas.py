"""Cells a spreadsheet would run as formulas: quoted in the files fewshot writes for people, unquoted again when
fewshot reads examples back."""

from __future__ import annotations

import re

import pandas as pd

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
"""The first characters that make a spreadsheet read a cell as a formula."""


def neutralize_formulas(df: pd.DataFrame) -> pd.DataFrame:
    """Prefix cells that a spreadsheet would run as a formula with ``'`` (OWASP CSV injection advice); a cell that
    is a plain number (``-2.31``, ``-inf``, as the in-scope scores are written; ``-2,5`` or ``-1.234,5`` as a
    decimal-comma file writes them) stays a number. :func:`fewshot.io.tables.read_labelled_table` drops that ``'``
    again."""
    out = df.copy()
    for col in out.columns:
        if not pd.api.types.is_numeric_dtype(out[col]):
            out[col] = out[col].map(lambda v: "'" + v if _runs_as_formula(v) else v)
    return out


PLAIN_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:[,.' \u00a0\u202f]\d{3})+|\d+)(?:[.,]\d+)?(?:[eE][+-]?\d+)?%?")
"""A number as a spreadsheet of any locale writes it: a decimal point or comma, thousands grouped by ``,`` ``.``
``'`` or a space, an exponent, a percent sign. Made of digits and those signs only, it can run no formula."""


def _runs_as_formula(value: object) -> bool:
    """Whether a spreadsheet could read ``value`` as a formula: a string starting with one of
    :data:`FORMULA_PREFIXES` that is not a plain number (:data:`PLAIN_NUMBER`, or what ``float`` reads). A text that
    already starts with ``'`` and one of them (``'@john' mentioned you``) is quoted too, so that
    :func:`unquote_formula` gives every text back as it was."""
    if isinstance(value, str) and value.startswith("'") and value[1:].startswith(FORMULA_PREFIXES):
        return True
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return False
    if PLAIN_NUMBER.fullmatch(value):
        return False
    try:
        float(value)
    except ValueError:
        return True
    return "_" in value  # float() reads "1_000" too; a spreadsheet would not, so it stays quoted


def unquote_formula(cell: str) -> str:
    """``cell`` without the ``'`` that :func:`neutralize_formulas` (or a spreadsheet) puts before a leading ``=``,
    ``+``, ``-``, ``@``, tab or CR, so that a label set exported and read again gives back its examples."""
    rest = cell[1:]
    quoted = rest.startswith(FORMULA_PREFIXES) or (rest.startswith("'") and rest[1:].startswith(FORMULA_PREFIXES))
    return rest if cell.startswith("'") and quoted else cell
