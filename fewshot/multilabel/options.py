"""Checks of the classifier options that concern multi-label mode (``multi_label``, ``label_thresholds``).

Kept apart from :mod:`fewshot.multilabel.classifier_mode` so that :mod:`fewshot.config` can call it without
importing the classifier's modules.
"""

from __future__ import annotations

from typing import Any

from ..errors import FewShotError

__all__ = ["check_config", "is_label_threshold"]


def is_label_threshold(value: Any) -> bool:
    """Whether ``value`` can be a label's decision threshold: a probability strictly between 0 and 1 (at 0 the
    label would always be answered, at 1 never)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 < value < 1.0


def check_config(config: Any) -> None:
    """Raise :class:`FewShotError` when ``config`` (a ClassifierConfig) asks multi-label mode for something it
    does not do; called by ``ClassifierConfig.validate``."""
    th = config.label_thresholds
    if th is not None:
        if not isinstance(th, dict):
            raise FewShotError(f"label_thresholds must be a dict of label -> probability, got {th!r}")
        for lab, v in th.items():
            if not is_label_threshold(v):
                raise FewShotError(f"label_thresholds[{lab!r}] must be a probability in (0, 1), got {v!r}")
        if not config.multi_label and th:
            raise FewShotError("label_thresholds needs multi_label=True")
    if not config.multi_label:
        return
    if config.adapt != "none":
        raise FewShotError(f"adapt={config.adapt!r} fits a single-label head; multi_label=True needs adapt='none'")
    if config.rule != "head":
        raise FewShotError(f"rule={config.rule!r} is a single-label rule; multi_label=True fits its own per-label "
                           "model (fewshot.multilabel), so leave rule at its default")
