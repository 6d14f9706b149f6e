"""Whether examples and texts to classify look like English, for the encoders trained on English text only.

The bundled MiniLM-L6 and all-mpnet-base-v2 were trained on English text; given Spanish or Chinese examples they
still answer, and nothing would tell the user that the encoder was not made for that language. The check: the share
of the examples' words (runs of letters, lowercased and without accents, as the encoder's tokenizer sees them) that
are in Latin letters and are whole words of MiniLM's English word-piece vocabulary (which also holds many single
letters of other scripts); words with a capital letter (names, brands) are left out when enough others remain.
``python bench/language_check.py`` measures it: 0.97 on CLINC150's and HWU64's training texts, at least 0.84 on any
6 of them (2 from each of 3 intents, 500 draws each), 0.72 to 1.00 on short English requests full of jargon, brand
names, slang or foreign names, against 0.08 to 0.55 on short requests in 10 other languages written in Latin letters
and 0 in 6 other scripts.

>>> english_word_share(["where is my refund", "I lost my card"]) > 0.8
True
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from functools import lru_cache
from itertools import islice
from typing import Any

ENGLISH_SHARE = 0.65
"""Below this share of English words, a label set is reported as not English (see the module docstring for
the measured shares on each side)."""
MIN_WORDS = 8
"""Fewer words than this say too little to judge a language."""
SAMPLE_TEXTS = 1000
"""How many texts from the start of a file to classify are read to judge its language."""
MULTILINGUAL_EXAMPLE = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
"""A multilingual sentence-transformers model to suggest (50+ languages; fetched once from the Hugging Face hub)."""

_UNSPACED = "\u0e00-\u0e7f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
_WORD = re.compile(f"[{_UNSPACED}]|[^\\W\\d_{_UNSPACED}]+")
"""A word: a run of letters, or one letter of a script written without spaces (Thai, kana, Chinese characters)."""


@lru_cache(maxsize=1)
def _english_words() -> frozenset[str]:
    """MiniLM's whole-word vocabulary (bert-base-uncased's word pieces that start a word), read once."""
    from .encoders.registry import bundled_minilm_path

    lines = (bundled_minilm_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    return frozenset(w for w in lines if w and not w.startswith(("##", "[")))


def _plain(word: str) -> str:
    """A word as the uncased tokenizer sees it: lowercased, accents stripped."""
    return "".join(c for c in unicodedata.normalize("NFD", word.lower()) if unicodedata.category(c) != "Mn")


def english_word_share(texts: Sequence[str]) -> float | None:
    """Share of the words of ``texts`` that are English words (None: fewer than :data:`MIN_WORDS` words).

    Words with a capital letter (names, brands, product codes: "Jürgen", "AirPods", "VPN") are left out when
    enough others remain: whatever the language, they are often missing from the vocabulary, and they say little
    about the language of the words around them.
    """
    words = [w for t in texts for w in _WORD.findall(str(t))]
    uncapitalised = [w for w in words if not any(c.isupper() for c in w)]
    plain = [_plain(w) for w in (uncapitalised if len(uncapitalised) >= MIN_WORDS else words)]
    if len(plain) < MIN_WORDS:
        return None
    vocab = _english_words()
    return sum(w.isascii() and w in vocab for w in plain) / len(plain)


def english_model_name(spec: Any) -> str | None:
    """The model's name when it reads English only (:func:`fewshot.encoders.registry.english_only`), else None
    (also for no spec): who the language check applies to."""
    from .encoders.registry import english_only

    return str(spec.name) if spec is not None and english_only(spec) else None


def english_encoder_name(encoder: Any) -> str | None:
    """:func:`english_model_name` of ``encoder``'s model (None for a stand-in without a ``spec``, such as a cache
    of vectors)."""
    return english_model_name(getattr(encoder, "spec", None))


def not_english_note(texts: Sequence[str], encoder: str, what: str = "the examples") -> str | None:
    """A one-line note when ``texts`` (``what`` names them: plural, or ``"this text"``) do not look English
    (``encoder``: the English-only encoder's name), else None."""
    share = english_word_share(texts)
    if share is None or share >= ENGLISH_SHARE:
        return None
    verb, their = ("does", "its") if what == "this text" else ("do", "their")
    return (f"{what} {verb} not look like English ({share:.0%} of {their} words are English words); the encoder "
            f"{encoder!r} was trained on English text only: for another language use a multilingual "
            f"sentence-transformers model, e.g. "
            f"{MULTILINGUAL_EXAMPLE!r} (model= in Python, --model in the CLI, FEWSHOT_MODEL for the app)")


def input_note(encoder: str | None, examples: Sequence[str], texts: Iterable[Any], what: str) -> str | None:
    """The note for texts to classify (``what`` names them; only their first :data:`SAMPLE_TEXTS` are read) that
    do not look English while the English-only ``encoder`` (None: another one) has English examples; examples in
    another language are reported when they are fitted, so the texts are then not reported again."""
    if encoder is None:
        return None
    note = not_english_note([str(t) for t in islice(texts, SAMPLE_TEXTS)], encoder, what)
    if note is None or not_english_note(list(examples), encoder) is not None:
        return None
    return note


def classifier_input_note(clf: Any, texts: Iterable[Any], what: str) -> str | None:
    """:func:`input_note` for a fitted :class:`~fewshot.FewShotClassifier` (its encoder and examples)."""
    return input_note(english_encoder_name(clf.encoder), clf.examples["text"].tolist(), texts, what)
