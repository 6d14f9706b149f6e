"""Multi-label classification on sentence embeddings: several labels per text, per-label thresholds.

Self-contained (numpy, scipy via scikit-learn, :mod:`fewshot.errors`): the classifier feeds it vectors.
"""

from __future__ import annotations

from .core import METHODS, MultiLabelConfig, MultiLabelCore, matched_examples, synthetic_pairs
from .metrics import multilabel_scores
from .table import LABEL_SEPARATOR, group_label_rows, join_labels, split_label_cell

__all__ = ["LABEL_SEPARATOR", "METHODS", "MultiLabelConfig", "MultiLabelCore", "group_label_rows",
           "join_labels", "matched_examples", "multilabel_scores", "split_label_cell", "synthetic_pairs"]
