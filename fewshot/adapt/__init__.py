"""Per-task adaptation of the encoder on the user's examples ("fine-tune for my labels").

Imported only when asked for (never by ``import fewshot``): it trains with torch.

>>> from fewshot.adapt import FinetuneConfig, finetune          # doctest: +SKIP
>>> result = finetune(st_model, texts, labels, FinetuneConfig(time_budget=30))  # doctest: +SKIP
>>> result.report.message, sorted(result.state_dict)[:1]        # doctest: +SKIP
"""

from __future__ import annotations

from .config import LOSSES, FinetuneConfig, FinetuneReport, FinetuneResult
from .estimate import OverlapHint, cv_accuracy, fold_ids, overlap_hint, prototype_rule
from .finetune import apply_weights, finetune
from .layers import TopLayers, lower_states

__all__ = ["LOSSES", "FinetuneConfig", "FinetuneReport", "FinetuneResult", "OverlapHint", "TopLayers",
           "apply_weights", "cv_accuracy", "finetune", "fold_ids", "lower_states", "overlap_hint", "prototype_rule"]
