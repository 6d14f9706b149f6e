"""Texts as the library takes them: validation of user-given texts, label names as text, the length cap."""

from __future__ import annotations

import numbers
from collections.abc import Iterable
from typing import Any

from .errors import FewShotError

MAX_TEXT_CHARS = 10_000
"""Texts are cut to this many characters before encoding: the encoder reads only its first 256 tokens
anyway, and tokenising a 100,000-character paste would cost time for nothing."""

def clean_texts(texts: Iterable[Any], what: str) -> list[str]:
    """``texts`` as a list of non-blank strings; :class:`FewShotError` naming ``what[i]`` otherwise."""
    if isinstance(texts, str):
        raise FewShotError(f"{what} must be a list of strings, got a single string {texts[:40]!r}")
    if isinstance(texts, dict) or not isinstance(texts, Iterable):
        raise FewShotError(f"{what} must be a list of strings, got {type(texts).__name__} {str(texts)[:40]!r}")
    texts = _one_column(texts, what)
    out = []
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise FewShotError(f"{what}[{i}] must be a string, got {type(t).__name__} {t!r}{non_string_hint(t)}")
        if not t.strip():
            raise FewShotError(f"{what}[{i}] is empty; every text needs some words")
        out.append(str(t))  # numpy.str_ and other str subclasses as plain str
    return out


def label_name(label: str) -> str:
    """A label as the classifier keeps it: surrounding spaces dropped and inner runs of spaces made one, so that
    ``"refund "`` (a stray space in a CSV cell) is the label ``refund``, as the app and multi-label cells read it."""
    return " ".join(label.split())


def clean_labels(labels: Iterable[Any], what: str = "labels") -> list[str]:
    """:func:`clean_texts` of ``labels``, each as :func:`label_name` keeps it."""
    return [label_name(label) for label in clean_texts(labels, what)]


def _one_column(texts: Iterable[Any], what: str) -> Iterable[Any]:
    """A table's only column (a pandas DataFrame, or a 2-D array of one column, as scikit-learn's column
    selectors hand on); a table of several columns is refused, since iterating it would yield its column
    names or its rows, not texts."""
    columns = getattr(texts, "columns", None)
    if columns is not None:
        if len(columns) != 1:
            raise FewShotError(f"{what} is a table with the columns {list(columns)[:10]}; pass one column of it, "
                               f"e.g. df[{str(list(columns)[0]) if len(columns) else 'text'!r}]")
        return texts.iloc[:, 0]  # type: ignore[attr-defined]
    shape = getattr(texts, "shape", None)
    if shape is not None and len(shape) == 2:
        if shape[1] != 1:
            raise FewShotError(f"{what} is a 2-D array of shape {tuple(shape)}; pass one column of texts")
        return texts[:, 0]  # type: ignore[index]
    return texts


def non_string_hint(value: Any) -> str:
    """What a non-string usually means: a blank cell read as NaN or None, or numbers used as names."""
    if value is None or (isinstance(value, numbers.Real) and value != value):
        return " (a blank cell? drop or fill the missing rows first, e.g. df.dropna())"
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        return (" (numbers as names: convert them with str() first; scikit-learn tools that encode the labels as "
                "numbers first, such as StackingClassifier, soft voting or cross_val_predict(method="
                "'predict_proba'), cannot pass them to FewShotClassifier)")
    return ""


def label_text(label: str) -> str:
    """A label's name as an example text: ``lost_card`` / ``lost-card`` -> ``"lost card"``."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


def label_key(label: str) -> str:
    """What two spellings of one label name share: ``Lost card``, ``lost_card`` and ``lost-card`` give the same
    key (case, spaces, ``_`` and ``-`` aside)."""
    return label_text(label).casefold()


def same_name_as(label: str, known: Iterable[str]) -> str | None:
    """The label of ``known`` spelled as ``label`` but for case, spaces, ``_`` or ``-`` (None: none is)."""
    key = label_key(label)
    return next((k for k in known if k != label and label_key(k) == key), None)
