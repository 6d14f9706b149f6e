"""Multi-label scores: micro-F1, macro-F1, subset accuracy (exact set match) and per-label F1."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import FewShotError


def multilabel_scores(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]],
                      labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Scores of predicted label sets against true ones.

    ``micro_f1`` pools every (text, label) decision; ``macro_f1`` averages per-label F1 over the labels that
    occur in ``true`` or ``pred`` (``labels`` adds more); ``subset_accuracy`` is the share of texts whose
    predicted set equals the true set (an empty true set is matched by an empty prediction).
    """
    if len(true) != len(pred):
        raise FewShotError(f"expected as many predictions as true label sets, got {len(pred)} and {len(true)}")
    names = sorted({str(x) for s in true for x in s} | {str(x) for s in pred for x in s} | set(labels or ()))
    pos = {n: i for i, n in enumerate(names)}
    t = np.zeros((len(true), len(names)), dtype=bool)
    p = np.zeros_like(t)
    for r, (ts, ps) in enumerate(zip(true, pred)):
        t[r, [pos[str(x)] for x in ts]] = True
        p[r, [pos[str(x)] for x in ps]] = True
    tp = (t & p).sum(0)
    fp = (~t & p).sum(0)
    fn = (t & ~p).sum(0)
    denom = 2 * tp + fp + fn
    f1 = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)
    micro_d = 2 * tp.sum() + fp.sum() + fn.sum()
    seen = (t | p).any(0)
    return {
        "micro_f1": float(2 * tp.sum() / micro_d) if micro_d else 1.0,
        "macro_f1": float(f1[seen].mean()) if seen.any() else 1.0,
        "subset_accuracy": float((t == p).all(1).mean()) if len(t) else 0.0,
        "n": len(true),
        "per_label": {n: {"precision": float(tp[i] / (tp[i] + fp[i])) if tp[i] + fp[i] else 0.0,
                          "recall": float(tp[i] / (tp[i] + fn[i])) if tp[i] + fn[i] else 0.0,
                          "f1": float(f1[i]), "support": int(t[:, i].sum())}
                      for i, n in enumerate(names)},
    }
