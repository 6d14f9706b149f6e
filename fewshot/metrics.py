"""Scoring a classifier on labelled texts: accuracy, macro-F1, per-label F1 (shared by the CLI and the app)."""

from __future__ import annotations

import time
from typing import Any

from sklearn.metrics import accuracy_score, f1_score


def evaluate(clf: Any, texts: list[str], gold: list[str], *, progress: Any = None) -> dict[str, Any]:
    """Accuracy, macro-F1, per-label F1 and the predictions of ``clf`` on labelled texts, with timing."""
    start = time.perf_counter()
    pred = [str(p) for p in clf.predict(texts, progress=progress)]
    seconds = time.perf_counter() - start
    gold = [str(g) for g in gold]
    labels = sorted(set(gold) | set(pred))
    per_label = f1_score(gold, pred, labels=labels, average=None, zero_division=0)
    gold_labels = sorted(set(gold))
    return {
        "accuracy": float(accuracy_score(gold, pred)),
        "macro_f1": float(f1_score(gold, pred, labels=gold_labels, average="macro", zero_division=0)),
        "n": len(gold),
        "n_labels": len(gold_labels),
        "per_label_f1": {lab: round(float(f), 4) for lab, f in zip(labels, per_label) if lab in set(gold)},
        "counts": {lab: gold.count(lab) for lab in gold_labels},
        "predict_seconds": seconds,
        "predictions": pred,
    }
