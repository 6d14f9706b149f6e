"""The one labelled-output format, written by ``fewshot classify`` (local and Ray) and the app.

Every input column, then four columns (:data:`OUTPUT_COLUMNS`): ``label`` (the answer, or the unknown
label), ``confidence`` (its probability, 4 decimals), ``top_3`` (``"label 0.91; other 0.05; third 0.01"``)
and ``in_scope_score`` (3 decimals; ``-inf`` where "none of these" examples won). When the input already
has a column of one of these names, all four are prefixed ``predicted_``. Rows with a blank text are kept,
with the four cells empty. Cells are strings, so the file's bytes do not depend on how a chunk was split.
The file is written as its input was (:func:`csv_options`): the same delimiter, and a UTF-8 byte-order mark where
the input came from a spreadsheet. Lines end with LF, and cells are written as they are: the app's downloads
alone put a ``'`` before formula-like cells (:func:`fewshot.io.formulas.neutralize_formulas`), so that the command
line's output carries the texts unchanged for other programs.

A multi-label classifier (``multi_label=True``) writes :data:`MULTILABEL_COLUMNS` instead: ``labels`` (every
predicted label joined with ``;``, most probable first; the unknown label where the unknown options reject
the text), ``confidence`` (the most probable label's probability), ``top_3`` (per-label probabilities,
independent) and ``in_scope_score`` (the most probable label's logit); ``predicted_`` on a clash as above.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FewShotError
from ..multilabel.table import join_labels, split_label_cell
from ..progress import ProgressFn
from .tables import CsvFormat


def check_output_file(path: Path, what: str = "--output", example: str = "labelled.csv") -> None:
    """Before any work: ``path`` names a file that can be written (its folder exists, it is not a folder, a file
    can be made beside it, as ``path.part`` is while it is written), so a long run never ends in a write error."""
    if not path.parent.is_dir():
        raise FewShotError(f"{what} folder {path.parent} does not exist; create it first")
    if path.is_dir():
        raise FewShotError(f"{what} {path} is a folder; name a file in it, e.g. {path / example}")
    probe = path.with_name(path.name + ".part")
    existed = probe.exists()
    try:
        with open(probe, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        raise FewShotError(f"cannot write {what} {path}: {exc.strerror or exc}") from None
    if not existed:
        probe.unlink(missing_ok=True)


def over_length_rows(clf: Any, texts: pd.Series) -> np.ndarray:
    """Which ``texts`` (a column, blanks allowed) are longer than the encoder reads, so that only their start
    counts; all False for a multi-label classifier, which also reads each half of a text on its own. One rule
    for every surface that says so: ``fewshot classify`` on either engine, and the app's Batch and Classify."""
    if getattr(clf.config, "multi_label", False):
        return np.zeros(len(texts), dtype=bool)
    return clf.encoder.over_length(texts.fillna("").astype(str).tolist())


def answer_counts(cells: pd.Series, multi_label: bool = False) -> Counter[str]:
    """How often each answer occurs in a labelled column (empty cells, the rows without a text, are not
    counted; a multi-label cell counts once for each of its labels)."""
    cells = cells.fillna("").astype(str)
    cells = cells[cells != ""]
    if not multi_label:
        return Counter(cells.tolist())
    return Counter(lab for cell in cells for lab in split_label_cell(cell))


def answers_line(counts: Counter[str], unknown_label: str = "unknown", shown: int = 10) -> str:
    """One line saying what a file was answered: ``answers: unknown 37 · refund 1,204 · lost_card 980`` (the
    unknown answers first, then the labels most frequent first, ties by name; past ``shown``, how many more)."""
    top = sorted(counts.items(), key=lambda item: (item[0] != unknown_label, -item[1], item[0]))[:shown]
    more = len(counts) - len(top)
    return "answers: " + " · ".join(f"{lab} {n:,}" for lab, n in top) + (f" · {more} more label(s)" if more else "")


OUTPUT_COLUMNS = ("label", "confidence", "top_3", "in_scope_score")
MULTILABEL_COLUMNS = ("labels", "confidence", "top_3", "in_scope_score")
PREFIX = "predicted_"
TOP = 3


def csv_options(fmt: CsvFormat, to_file: bool = True) -> dict[str, str]:
    """``DataFrame.to_csv`` options for an output read from a file of format ``fmt``: its delimiter (a ``;`` file,
    as Excel writes where the decimal mark is a comma, is opened in columns there only with ``;``) and, for a file
    (not standard output, which another program reads), a UTF-8 byte-order mark when the input was a workbook or
    not plain UTF-8 (a mark, UTF-16, ``--encoding cp1252``): files from Excel, which opens a UTF-8 CSV without
    the mark in the local code page, garbling accents and other scripts. Lines end with LF on every system (pandas
    would write the system's own, CRLF on Windows), so a file's bytes do not depend on where it was labelled."""
    bom = to_file and (fmt.excel or fmt.encoding.replace("_", "-").lower() not in ("utf-8", "utf8", "ascii"))
    return {"sep": fmt.sep or ",", "encoding": "utf-8-sig" if bom else "utf-8", "lineterminator": "\n"}


def output_names(existing_columns: Sequence[Any], multi_label: bool = False) -> tuple[str, ...]:
    """Names of the added columns: :data:`OUTPUT_COLUMNS` (:data:`MULTILABEL_COLUMNS` with ``multi_label``),
    prefixed ``predicted_`` when one is taken, in any case (``Label``: databases and some spreadsheets read column
    names without case, so ``Label`` and ``label`` would clash there)."""
    names = MULTILABEL_COLUMNS if multi_label else OUTPUT_COLUMNS
    if set(names) & {str(c).strip().lower() for c in existing_columns}:
        return tuple(PREFIX + c for c in names)
    return names


def label_frame(clf: Any, df: pd.DataFrame, text_column: str, *, progress: ProgressFn | None = None,
                max_chars: int | None = None, batch_aware: bool = False, **unknown_overrides: Any) -> pd.DataFrame:
    """``df`` plus the four output columns, from ``clf.predict_with_scores`` (its unknown options apply).

    Blank texts stay unlabelled (empty cells), missing ones too (NaN or None, as pandas reads an empty CSV cell: not
    the text "nan"). ``max_chars``: cut texts to this many characters first
    (a front end's own input limit; the encoder cuts at :data:`fewshot.text.MAX_TEXT_CHARS` anyway).
    ``batch_aware``: the rows' in-scope scores are read together (``clf.predict_with_scores``).
    ``unknown_overrides`` (``min_confidence``, ``auto_unknown``, ``score_threshold``) replace the classifier's
    unknown options for this call, as in ``clf.predict_with_scores``.
    """
    if text_column not in df.columns:
        raise FewShotError(f"there is no column {text_column!r}; the columns are {list(map(str, df.columns))}")
    texts = df[text_column].fillna("").astype(str)
    if max_chars is not None:
        texts = texts.str.slice(0, max_chars)
    filled = (texts.str.strip() != "").to_numpy()
    multi = bool(getattr(getattr(clf, "config", None), "multi_label", False))
    label_col, conf_col, top_col, score_col = output_names(df.columns, multi)
    n = len(df)
    labels, confs, tops, scores = ([""] * n for _ in range(4))
    keep = np.flatnonzero(filled)
    if len(keep):
        if batch_aware:  # passed only when asked for: any predictor with predict_with_scores works otherwise
            unknown_overrides["batch_aware"] = True
        predicted, probs, in_scope = clf.predict_with_scores(texts.iloc[keep].tolist(), progress=progress,
                                                            **unknown_overrides)
        order = np.argsort(-probs, axis=1)[:, :TOP]
        unknown_label = str(getattr(getattr(clf, "config", None), "unknown_label", "unknown"))
        for j, lab, p, o, s in zip(keep, predicted, probs, order, in_scope):
            labels[j] = (join_labels(lab) or unknown_label) if multi else str(lab)
            confs[j] = f"{p.max():.4f}"
            tops[j] = "; ".join(f"{clf.classes_[i]} {p[i]:.2f}" for i in o)
            scores[j] = f"{s:.3f}"
    out = df.copy()
    out[label_col], out[conf_col], out[top_col], out[score_col] = labels, confs, tops, scores
    return out
