"""Checks of the classifier options that concern multi-label mode (``multi_label``, ``label_thresholds``).

Kept apart from :mod:`fewshot.multilabel.classifier_mode` so that :mod:`fewshot.config` can call it without
importing the classifier's modules.
"""

from __future__ import annotations

from typing import Any

from ..errors import FewShotError

__all__ = ["check_config"]


def check_config(config: Any) -> None:
    """Raise :class:`FewShotError` when ``config`` (a ClassifierConfig) asks multi-label mode for something it
    does not do; called by ``ClassifierConfig.validate``."""
    th = config.label_thresholds
    if th is not None:
        if not isinstance(th, dict):
            raise FewShotError(f"label_thresholds must be a dict of label -> probability, got {th!r}")
        for lab, v in th.items():
            if isinstance(v, (str, bool)) or not isinstance(v, (int, float)) or not 0.0 < v < 1.0:
                raise FewShotError(f"label_thresholds[{lab!r}] must be a probability in (0, 1), got {v!r}")
        if not config.multi_label and th:
            raise FewShotError("label_thresholds needs multi_label=True")
    if not config.multi_label:
        return
    if config.auto_unknown:
        raise FewShotError("auto_unknown is not available with multi_label=True; pass min_confidence=P (on the "
                           "most probable label) or score_threshold=S (on its logit) instead")
    if config.adapt != "none":
        raise FewShotError(f"adapt={config.adapt!r} fits a single-label head; multi_label=True needs adapt='none'")
