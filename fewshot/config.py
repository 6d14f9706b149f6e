"""ClassifierConfig: every setting that decides predictions besides the examples (saved with the classifier).

The out-of-scope ("unknown") settings are three, each one meaning:

- ``min_confidence``: a probability in [0, 1]; a text whose top probability is below it is unknown.
- ``auto_unknown``: a text whose in-scope score is below a threshold derived from the examples alone is
  unknown (see :mod:`fewshot.unknown`).
- ``score_threshold``: an explicit in-scope-score threshold (a chosen operating point); it replaces the
  automatic one.

With ``multi_label=True`` the same three options decide when a text gets no label at all (``[]``):
``min_confidence`` on the most probable label's probability, ``score_threshold`` on its logit, and
``auto_unknown``: a text for which no label reaches its own cross-validated threshold is unknown (without it
the most probable label is always named); see :mod:`fewshot.multilabel.classifier_mode`.

Besides unknown, an answer can be *ambiguous* ("A or B?"): ``ambiguity_margin`` (default 0.1; None: off) is
the top-2 probability margin below which a known answer is flagged, with both labels (``Prediction.ambiguous``
and ``Prediction.alternatives``); the label stays the top one. Unknown takes precedence.

Older names still work for a while: ``unknown_threshold=<float>`` means ``min_confidence``,
``unknown_threshold="auto"`` means ``auto_unknown=True``, and ``quantize`` means ``int8`` (each with a
``FutureWarning``); configs saved under those names load silently.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Any

from .errors import FewShotError, user_stacklevel

RULES = ("head", "matching", "prototype")
"""Classification rules (see :mod:`fewshot.rules`)."""
ADAPT_METHODS = ("none", "maml", "fomaml", "reptile")
"""``adapt`` values: ``"none"`` or the meta-learned inner loop of a model folder (see :mod:`fewshot.meta`)."""
DEPRECATED_OPTIONS = ("unknown_threshold", "quantize")
"""Old option names still accepted (with a ``FutureWarning``) and mapped onto the current ones."""


@dataclass
class ClassifierConfig:
    """Everything that decides predictions besides the examples; saved with the classifier."""

    model: str | None = None
    rule: str = "head"
    temperature: float = 0.1  # head / prototype logits scale
    matching_temperature: float = 0.05
    k: int = 10  # nearest support examples for matching attention and explanations
    label_names: bool = True  # the label's name (``lost_card`` -> "lost card") as one extra example
    center: bool = True
    head_steps: int = 200
    head_weight_decay: float = 1e-4
    min_confidence: float | None = None  # unknown below this top probability (in [0, 1]); None: off
    auto_unknown: bool = False  # unknown below the automatic in-scope-score threshold (fewshot.unknown);
    # multi_label: unknown when no label reaches its own cross-validated threshold
    score_threshold: float | None = None  # unknown below this in-scope score; replaces the automatic threshold
    unknown_label: str = "unknown"
    auto_max_drop: float = 0.02  # automatic threshold: in-scope accuracy it may cost, estimated on held-out examples
    auto_quantile: float | None = None  # automatic threshold by quantile instead: this share of held-out scores
    ambiguity_margin: float | None = 0.1  # "ambiguous: A or B?" below this top-2 probability margin; None: off
    batch_size: int = 64
    int8: bool = False  # the int8 encoder (fewshot.encoders.int8)
    extra_layers: list[int] | str = "auto"  # encoder layers appended to the embedding (fewshot.encoders.encoder)
    adapt: str = "none"  # "maml" | "fomaml" | "reptile": fit the head with the model folder's inner loop
    multi_label: bool = False  # several labels per text (fewshot.multilabel.classifier_mode); predict returns lists
    label_thresholds: dict[str, float] | None = None  # multi-label: per-label probability thresholds that override
    # the cross-validated ones

    @classmethod
    def from_options(cls, options: dict[str, Any], *, warn: bool = True) -> ClassifierConfig:
        """A validated config from keyword options; old names are mapped (``warn``: with a FutureWarning)."""
        options = migrate_options(options, warn=warn)
        known = option_names()
        bad = sorted(set(options) - known)
        if bad:
            raise FewShotError(f"unknown option(s) {bad}; expected some of {sorted(known - {'model'})}")
        config = cls(**options)
        config.validate()
        return config

    @property
    def uses_score(self) -> bool:
        """Whether unknown answers depend on the in-scope score (automatic or explicit threshold; in multi-label
        mode the automatic unknown reads the per-label thresholds, not the score)."""
        return (self.auto_unknown and not self.multi_label) or self.score_threshold is not None

    def validate(self) -> None:
        """Raise :class:`FewShotError` naming the first bad value."""
        if self.rule not in RULES:
            raise FewShotError(f"rule must be one of {RULES}, got {self.rule!r}")
        if not isinstance(self.unknown_label, str) or not self.unknown_label.strip():
            raise FewShotError(f"unknown_label must be a non-empty string (the answer for 'none of these'), got "
                               f"{self.unknown_label!r}")
        for name in ("temperature", "matching_temperature"):
            if not getattr(self, name) > 0:
                raise FewShotError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.k < 1:
            raise FewShotError(f"k must be >= 1, got {self.k!r}")
        c = self.min_confidence
        if c is not None and (isinstance(c, (str, bool)) or not isinstance(c, (int, float)) or not 0.0 <= c <= 1.0):
            raise FewShotError(f"min_confidence must be a probability in [0, 1] or None, got {c!r}")
        if not isinstance(self.auto_unknown, bool):
            raise FewShotError(f"auto_unknown must be True or False, got {self.auto_unknown!r}")
        s = self.score_threshold
        if s is not None and (isinstance(s, (str, bool)) or not isinstance(s, (int, float)) or not math.isfinite(s)):
            raise FewShotError(f"score_threshold must be a finite in-scope score or None, got {s!r}")
        if not 0.0 <= self.auto_max_drop < 0.5:
            raise FewShotError(f"auto_max_drop must be in [0, 0.5), got {self.auto_max_drop!r}")
        if self.auto_quantile is not None and not 0.0 < self.auto_quantile < 0.5:
            raise FewShotError(f"auto_quantile must be None or in (0, 0.5), got {self.auto_quantile!r}")
        m = self.ambiguity_margin
        if m is not None and (isinstance(m, (str, bool)) or not isinstance(m, (int, float)) or not 0.0 <= m <= 1.0):
            raise FewShotError(f"ambiguity_margin must be a probability margin in [0, 1] or None, got {m!r}")
        if not isinstance(self.int8, bool):
            raise FewShotError(f"int8 must be True or False, got {self.int8!r}")
        if not (self.extra_layers == "auto" or (isinstance(self.extra_layers, (list, tuple))
                                                 and all(isinstance(k, int) for k in self.extra_layers))):
            raise FewShotError(f"extra_layers must be 'auto' or a list of layer numbers, got {self.extra_layers!r}")
        if self.adapt not in ADAPT_METHODS:
            raise FewShotError(f"adapt must be one of {ADAPT_METHODS}, got {self.adapt!r}")
        if not isinstance(self.multi_label, bool):
            raise FewShotError(f"multi_label must be True or False, got {self.multi_label!r}")
        if self.multi_label or self.label_thresholds is not None:
            from .multilabel.options import check_config

            check_config(self)
        if self.adapt != "none" and self.rule == "matching":
            raise FewShotError(f"adapt={self.adapt!r} fits a head, but rule='matching' uses none; "
                               "pass rule='head' (the default) or adapt='none'")

    # Old attribute names, readable and writable with a FutureWarning (properties are no dataclass fields: asdict
    # and saved configs carry only the current names).
    @property
    def unknown_threshold(self) -> float | str | None:
        """Deprecated: ``"auto"`` for ``auto_unknown``, else ``min_confidence``."""
        warnings.warn("ClassifierConfig.unknown_threshold is deprecated: read min_confidence and auto_unknown",
                      FutureWarning, stacklevel=2)
        return "auto" if self.auto_unknown else self.min_confidence

    @unknown_threshold.setter
    def unknown_threshold(self, value: float | str | None) -> None:
        warnings.warn("ClassifierConfig.unknown_threshold is deprecated: use clf.set_params(min_confidence=...) "
                      "or clf.set_params(auto_unknown=True)", FutureWarning, stacklevel=2)
        for name, new in unknown_options(value).items():
            setattr(self, name, new)

    @property
    def quantize(self) -> bool:
        """Deprecated: ``int8``."""
        warnings.warn("ClassifierConfig.quantize is deprecated: read int8", FutureWarning, stacklevel=2)
        return self.int8

    @quantize.setter
    def quantize(self, value: bool) -> None:
        warnings.warn("ClassifierConfig.quantize is deprecated: set int8", FutureWarning, stacklevel=2)
        self.int8 = bool(value)


def option_names() -> set[str]:
    """The current option names (the fields of :class:`ClassifierConfig`)."""
    return {f.name for f in fields(ClassifierConfig)}


def unknown_options(value: float | str | None) -> dict[str, Any]:
    """The current unknown options for an old ``unknown_threshold`` value (a probability, ``"auto"`` or None)."""
    if value is None:
        return {"min_confidence": None, "auto_unknown": False}
    if value == "auto":
        return {"min_confidence": None, "auto_unknown": True}
    if isinstance(value, str) or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FewShotError(f"unknown_threshold must be a confidence in [0, 1], 'auto' or None, got {value!r}")
    return {"min_confidence": float(value), "auto_unknown": False}


def migrate_options(options: dict[str, Any], *, warn: bool = True) -> dict[str, Any]:
    """``options`` with the old names (``unknown_threshold``, ``quantize``) mapped onto the current ones.

    ``warn``: a ``FutureWarning`` per old name (keyword arguments); saved configs migrate silently.
    """
    options = dict(options)
    if "unknown_threshold" in options:
        old = options.pop("unknown_threshold")
        if warn:
            warnings.warn("unknown_threshold is deprecated: pass min_confidence=<probability> or "
                          "auto_unknown=True instead", FutureWarning, stacklevel=user_stacklevel())
        new = unknown_options(old)
        clash = [k for k in new if k in options and options[k] != new[k]]
        if clash:
            raise FewShotError(f"unknown_threshold={old!r} contradicts {clash[0]}={options[clash[0]]!r}; "
                               "pass only min_confidence / auto_unknown")
        options |= new
    if "quantize" in options:
        old = options.pop("quantize")
        if warn:
            warnings.warn("quantize is deprecated: pass int8=True instead", FutureWarning, stacklevel=user_stacklevel())
        if "int8" in options and bool(options["int8"]) != bool(old):
            raise FewShotError(f"quantize={old!r} contradicts int8={options['int8']!r}; pass only int8")
        options["int8"] = bool(old)
    return options
