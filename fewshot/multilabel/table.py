"""The multi-label table format: a label cell may hold several labels separated by ``;``, and a text
repeated on several rows carries the labels of all its rows.

Pure functions on already-read columns (any CSV reader feeds them), so the CLI, the app and the library
read and write one format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from ..errors import FewShotError
from ..text import label_name

LABEL_SEPARATOR = ";"


def split_label_cell(cell: Any, sep: str = LABEL_SEPARATOR) -> list[str]:
    """The labels in one cell: split on ``sep``, spaces trimmed (:func:`~fewshot.text.label_name`), blanks dropped,
    duplicates dropped (first kept).

    ``None``, NaN and blank cells give ``[]``.
    """
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return []
    parts = (label_name(p) for p in str(cell).split(sep))
    return list(dict.fromkeys(p for p in parts if p))


def group_label_rows(texts: Sequence[Any], cells: Sequence[Any], sep: str = LABEL_SEPARATOR,
                     no_label: str | None = None) -> tuple[list[str], list[list[str]]]:
    """Merge rows into one example per distinct text: ``(texts, label_lists)`` in first-appearance order.

    A text's labels are the union of its rows' cells (each cell split by :func:`split_label_cell`), in the
    order first seen. Texts are compared after stripping surrounding whitespace. A text whose every cell is
    blank keeps an empty list: the caller decides (an error when fitting, "expects unknown" when scoring).
    ``no_label`` (a test file's unknown label) is read as a blank: it expects no label. Blank texts raise
    :class:`FewShotError` naming the row.
    """
    if len(texts) != len(cells):
        raise FewShotError(f"expected one label cell per text, got {len(texts)} texts and {len(cells)} cells")
    merged: dict[str, dict[str, None]] = {}
    for row, (text, cell) in enumerate(zip(texts, cells)):
        if text is None or (isinstance(text, float) and math.isnan(text)) or not str(text).strip():
            raise FewShotError(f"row {row + 1}: the text is blank")
        labels = merged.setdefault(str(text).strip(), {})
        labels.update(dict.fromkeys(lab for lab in split_label_cell(cell, sep) if lab != no_label))
    return list(merged), [list(v) for v in merged.values()]


def join_labels(labels: Iterable[str], sep: str = LABEL_SEPARATOR) -> str:
    """One output cell for a label list (``""`` for none); a label containing ``sep`` is an error naming it,
    since the cell could not be read back."""
    out = []
    for lab in labels:
        lab = str(lab)
        if sep in lab:
            raise FewShotError(f"label {lab!r} contains the multi-label separator {sep!r}; rename it")
        out.append(lab)
    return sep.join(out)
