"""Label-set health checks: warnings a person should see before trusting a few-shot classifier.

Seven kinds of finding, each with a one-line message:

- ``single_example``: a label with only one example (its prototype is that one sentence);
- ``duplicate``: the exact same text twice under the same label (counts double, adds nothing);
- ``conflict``: the exact same text under two different labels (the classifier cannot separate them);
- ``closer_to_other``: an example whose embedding sits closer to another label's centroid than to the
  centroid of the other examples of its own label (often a mislabelled or ambiguous example);
- ``not_english``: examples that do not look English, for an encoder trained on English only
  (:mod:`fewshot.language`);
- ``same_name``: labels whose names differ only in case, spacing, ``_`` or ``-`` (``Refund`` and ``refund``):
  usually one label typed two ways, which splits its examples;
- ``joined``: single-label names holding ``;`` (``billing;bug``): a multi-label file read without ``multi_label``.

>>> findings = diagnose(["a", "a", "b"], ["x", "x", "y"])
>>> [f.kind for f in findings]
['single_example', 'duplicate']
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .language import english_encoder_name, not_english_note
from .rules import l2_normalize
from .text import label_key

KINDS = ("single_example", "duplicate", "conflict", "closer_to_other", "not_english", "same_name", "joined")
DEFAULT_MARGIN = 0.1
"""How much closer (cosine) another label's centroid must be before an example is reported: with fewer
than ~10 examples per label, centroids are noisy and smaller gaps mostly flag fine examples."""


@dataclass(frozen=True)
class Finding:
    """One warning about a label set."""

    kind: str
    message: str
    label: str = ""
    text: str = ""
    other_label: str = ""
    score: float = 0.0


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


def single_example_labels(labels: Sequence[str]) -> list[Finding]:
    """Labels with exactly one example."""
    counts: dict[str, int] = defaultdict(int)
    for lab in labels:
        counts[lab] += 1
    return [Finding("single_example", f"label {lab!r} has a single example; add a few more so it is not "
                    "defined by one sentence", label=lab)
            for lab in sorted(counts) if counts[lab] == 1]


def same_name_labels(labels: Sequence[str]) -> list[Finding]:
    """Labels whose names are the same but for case, spacing, ``_`` or ``-``."""
    groups: dict[str, set[str]] = defaultdict(set)
    for lab in labels:
        groups[label_key(lab)].add(lab)
    return [Finding("same_name", f"the labels {' and '.join(map(repr, names))} differ only in case, spaces, '_' or "
                    "'-'; if they mean the same, rename them to one so that their examples count together",
                    label=names[0], other_label=names[1])
            for names in (sorted(g) for g in groups.values() if len(g) > 1)]


def joined_labels(labels: Sequence[str]) -> list[Finding]:
    """Single-label names holding the multi-label separator (``billing;bug``): most likely a multi-label file read
    without ``multi_label``, where each combination becomes a label of its own."""
    from .multilabel.table import LABEL_SEPARATOR

    joined = sorted({lab for lab in labels if LABEL_SEPARATOR in lab})
    if not joined:
        return []
    return [Finding("joined", f"{len(joined)} label(s) hold {LABEL_SEPARATOR!r} (such as {joined[0]!r}): if a text may "
                    "carry several labels, use multi_label=True (--multi-label; the app's Multi-label switch); "
                    "without it each combination is a label of its own", label=joined[0])]


def duplicates(texts: Sequence[str], labels: Sequence[str]) -> list[Finding]:
    """Exact duplicate texts: under the same label (``duplicate``) or under different labels (``conflict``)."""
    seen: dict[str, list[str]] = defaultdict(list)
    for text, lab in zip(texts, labels):
        seen[text.strip()].append(lab)
    out = []
    for text, labs in seen.items():
        distinct = sorted(set(labs))
        if len(distinct) > 1:
            out.append(Finding("conflict", f"the same text {_short(text)!r} is an example of "
                               f"{', '.join(map(repr, distinct))}; keep it under one label",
                               label=distinct[0], text=text, other_label=distinct[1]))
        elif len(labs) > 1:
            out.append(Finding("duplicate", f"{_short(text)!r} appears {len(labs)} times under "
                               f"{distinct[0]!r}; one copy is enough", label=distinct[0], text=text))
    return out


def closer_to_other_label(texts: Sequence[str], labels: Sequence[str], vectors: np.ndarray,
                          margin: float = DEFAULT_MARGIN) -> list[Finding]:
    """Examples more similar to another label's centroid than to their own label's leave-one-out centroid.

    ``vectors`` holds one embedding per text (any scale; they are normalised here). Labels with a single
    example are skipped (their leave-one-out centroid is empty), as is everything when there are fewer
    than 2 labels. ``margin``: how much closer the other label must be to be reported.
    """
    labels = list(labels)
    classes = sorted(set(labels))
    if len(classes) < 2 or len(texts) != len(vectors):
        return []
    vecs = l2_normalize(np.asarray(vectors, dtype=np.float64))
    idx = np.array([classes.index(lab) for lab in labels])
    sums = np.stack([vecs[idx == c].sum(axis=0) for c in range(len(classes))])
    sizes = np.bincount(idx, minlength=len(classes))
    centroids = l2_normalize(sums / sizes[:, None])
    out = []
    for i, (text, c) in enumerate(zip(texts, idx)):
        if sizes[c] < 2:
            continue
        own = float(l2_normalize((sums[c] - vecs[i]) / (sizes[c] - 1)) @ vecs[i])
        sims = centroids @ vecs[i]
        sims[c] = -np.inf
        best = int(np.argmax(sims))
        if sims[best] > own + margin:
            out.append(Finding("closer_to_other", f"{_short(text)!r} (label {classes[c]!r}) is closer to "
                               f"{classes[best]!r} ({sims[best]:.2f}) than to its own label ({own:.2f}); "
                               "check its label or rephrase it", label=classes[c], text=text,
                               other_label=classes[best], score=float(sims[best] - own)))
    return sorted(out, key=lambda f: -f.score)


def not_english(texts: Sequence[str], encoder: str) -> list[Finding]:
    """A ``not_english`` finding when ``texts`` do not look English; ``encoder``: the name of the English-only
    encoder that will read them."""
    note = not_english_note([str(t) for t in texts], encoder)
    return [Finding("not_english", note)] if note else []


def diagnose(texts: Sequence[str], labels: Sequence[str], vectors: np.ndarray | None = None,
             margin: float = DEFAULT_MARGIN, english_encoder: str | None = None) -> list[Finding]:
    """All findings for a label set; the embedding check runs only when ``vectors`` are given, the language
    check only when ``english_encoder`` names an encoder that reads English only."""
    texts, labels = [str(t) for t in texts], [str(lab) for lab in labels]
    out = not_english(texts, english_encoder) if english_encoder else []
    out += joined_labels(labels) + same_name_labels(labels) + single_example_labels(labels) + duplicates(texts, labels)
    if vectors is not None and len(texts):
        out += closer_to_other_label(texts, labels, vectors, margin=margin)
    return out


def diagnose_multilabel(texts: Sequence[str], label_sets: Sequence[Sequence[str]], vectors: np.ndarray | None = None,
                        margin: float = DEFAULT_MARGIN, english_encoder: str | None = None) -> list[Finding]:
    """:func:`diagnose` for a multi-label set (one text per example, with its labels): a text under several labels
    is an example of each, not a conflict; labels with one example are counted over every example; only
    single-label examples are checked against the other labels (an example of two labels sits between them on
    purpose)."""
    texts = [str(t) for t in texts]
    names = [str(lab) for labs in label_sets for lab in labs]
    out = not_english(texts, english_encoder) if english_encoder else []
    out += same_name_labels(names) + single_example_labels(names)
    single = [i for i, labs in enumerate(label_sets) if len(labs) == 1]
    if vectors is not None and single:
        out += closer_to_other_label([texts[i] for i in single], [str(label_sets[i][0]) for i in single],
                                     np.asarray(vectors)[single], margin=margin)
    return out


def diagnose_classifier(clf: Any, margin: float = DEFAULT_MARGIN) -> list[Finding]:
    """Findings for a fitted :class:`~fewshot.FewShotClassifier`, using its encoder (cached, no re-encoding);
    a multi-label classifier's by :func:`diagnose_multilabel`."""
    from .multilabel.table import split_label_cell

    examples = clf.examples
    texts, labels = examples["text"].tolist(), examples["label"].tolist()
    vectors = clf.encoder.encode(texts) if texts else None
    english = english_encoder_name(clf.encoder)
    if getattr(clf.config, "multi_label", False):
        sets = [split_label_cell(cell) for cell in labels]
        return diagnose_multilabel(texts, sets, vectors, margin=margin, english_encoder=english)
    return diagnose(texts, labels, vectors, margin=margin, english_encoder=english)
