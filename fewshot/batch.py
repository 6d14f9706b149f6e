"""Labelling a chunk of a user's CSV: the one routine behind `fewshot classify`, local or on Ray."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def output_columns(columns: Sequence[str]) -> tuple[str, str]:
    """``label``/``confidence``, or ``predicted_label``/``predicted_confidence`` when the input has them."""
    if "label" in columns or "confidence" in columns:
        return "predicted_label", "predicted_confidence"
    return "label", "confidence"


def label_chunk(clf: Any, chunk: pd.DataFrame, text_column: str, pred_col: str, conf_col: str) -> pd.DataFrame:
    """``chunk`` plus the predicted label and its confidence (4 decimals); blank texts stay unlabelled."""
    texts = chunk[text_column].tolist()
    keep = [j for j, t in enumerate(texts) if t.strip()]
    labels: list[str] = [""] * len(texts)
    confs = np.full(len(texts), np.nan)
    if keep:
        predicted, probs, _ = clf.predict_with_scores([texts[j] for j in keep])
        for j, lab, p in zip(keep, predicted, probs.max(axis=1)):
            labels[j], confs[j] = str(lab), round(float(p), 4)
    out = chunk.copy()
    out[pred_col], out[conf_col] = labels, confs
    return out
