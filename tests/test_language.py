"""The language check: examples that do not look English are reported where an English-only encoder reads them."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import pandas as pd
import pytest

from fewshot import FewShotClassifier, FewShotWarning
from fewshot.cli import main
from fewshot.diagnostics import diagnose, diagnose_classifier
from fewshot.encoders.registry import ModelSpec, english_only, resolve_model
from fewshot.language import (ENGLISH_SHARE, MULTILINGUAL_EXAMPLE, classifier_input_note, english_word_share,
                              input_note, not_english_note)
from fewshot.label_sets import LABEL_SETS_DIR
from helpers import SUPPORT

SPANISH = {"reembolso": ["¿dónde está mi reembolso?", "quiero que me devuelvan el dinero"],
           "tarjeta": ["perdí mi tarjeta de crédito", "me robaron la tarjeta"]}
CHINESE = {"退款": ["我的退款在哪里", "我想要回我的钱"], "卡": ["我的信用卡丢了", "我的卡被偷了"]}
ENGLISH = {lab: texts[:2] for lab, texts in SUPPORT.items()}


def _flat(examples: dict[str, list[str]]) -> tuple[list[str], list[str]]:
    return [t for ts in examples.values() for t in ts], [lab for lab, ts in examples.items() for _ in ts]


def test_english_share_separates_english_from_other_languages() -> None:
    for path in sorted(LABEL_SETS_DIR.glob("*.csv")):  # the shipped English label sets
        assert english_word_share(pd.read_csv(path)["text"].tolist()) > 0.9, path.name
    assert english_word_share(_flat(ENGLISH)[0]) > 0.9
    assert english_word_share(_flat(SPANISH)[0]) < ENGLISH_SHARE
    assert english_word_share(_flat(CHINESE)[0] * 4) == 0.0  # a word of Chinese letters is never English
    assert english_word_share(["hola", "¿qué tal?"]) is None  # too few words to judge
    names = ["Transfer 500 EUR to Jürgen Müller", "call Siobhan O'Callaghan", "book a table at Nobu Malibu",
             "directions to Gdańsk Główny", "play Sigur Rós", "weather in Tromsø", "flights to Reykjavík"]
    assert english_word_share(names) > 0.9  # names and brands are left out: English around them
    assert english_word_share(["WHERE IS MY REFUND", "I LOST MY CARD"]) > 0.8  # all capitals: every word counts


def test_note_names_the_encoder_and_a_multilingual_model() -> None:
    assert not_english_note(_flat(ENGLISH)[0], "default") is None
    note = not_english_note(_flat(SPANISH)[0], "default")
    assert note is not None and "'default'" in note and MULTILINGUAL_EXAMPLE in note
    assert "% of their words are English words" in note


def test_which_encoders_read_english_only() -> None:
    assert english_only(resolve_model("minilm")) and english_only(resolve_model("default"))
    assert english_only(ModelSpec("mpnet", "sentence-transformers/all-mpnet-base-v2"))
    assert not english_only(ModelSpec(MULTILINGUAL_EXAMPLE, MULTILINGUAL_EXAMPLE))


def test_fit_warns_for_other_languages_only() -> None:
    with pytest.warns(FewShotWarning, match="do not look like English"):
        FewShotClassifier(model="minilm").fit(*_flat(SPANISH))
    with pytest.warns(FewShotWarning, match="do not look like English"):
        FewShotClassifier(model="minilm", multi_label=True).fit(*_flat(CHINESE))
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewShotWarning)
        clf = FewShotClassifier(model="minilm").fit(*_flat(ENGLISH))
    assert "not_english" not in {f.kind for f in diagnose_classifier(clf)}


def test_diagnostics_report_the_language_only_for_an_english_encoder() -> None:
    texts, labels = _flat(SPANISH)
    assert [f.kind for f in diagnose(texts, labels, english_encoder="minilm")] == ["not_english"]
    assert diagnose(texts, labels) == []  # a multilingual encoder: nothing to say
    with pytest.warns(FewShotWarning):
        clf = FewShotClassifier(model="minilm").fit(texts, labels)
    assert "not_english" in {f.kind for f in diagnose_classifier(clf)}


def test_texts_to_classify_are_reported_when_the_examples_are_english() -> None:
    english, spanish = _flat(ENGLISH)[0], _flat(SPANISH)[0]
    note = input_note("minilm", english, spanish, "the rows of in.csv")
    assert note is not None and note.startswith("the rows of in.csv do not look like English")
    assert input_note("minilm", english, english, "x") is None
    assert input_note(None, english, spanish, "x") is None  # a multilingual encoder
    assert input_note("minilm", spanish, spanish, "x") is None  # the examples were reported when fitted
    assert input_note("minilm", english, itertools.repeat("hola amigos de la casa"), "x")  # reads the start only
    clf = FewShotClassifier(model="minilm").fit(*_flat(ENGLISH))
    assert classifier_input_note(clf, pd.Series(spanish), "the rows of this file")
    assert classifier_input_note(clf, ["¿dónde está mi reembolso?"], "this text") is None  # too short to judge


def test_cli_notes_rows_that_do_not_look_english(tmp_path: Path, capsys) -> None:
    support, queries, out = tmp_path / "s.csv", tmp_path / "q.csv", tmp_path / "o.csv"
    texts, labels = _flat(ENGLISH)
    pd.DataFrame({"text": texts, "label": labels}).to_csv(support, index=False)
    for rows, noted in ((_flat(SPANISH)[0], True), (texts, False)):
        pd.DataFrame({"text": rows}).to_csv(queries, index=False)
        assert main(["classify", "--support", str(support), "--input", str(queries), "--output", str(out),
                     "--model", "minilm"]) == 0
        err = capsys.readouterr().err
        assert ("the rows of q.csv do not look like English" in err) is noted, err


def test_cli_prints_the_note_on_its_own_line(tmp_path: Path, capsys) -> None:
    texts, labels = _flat(SPANISH)
    support, queries, out = tmp_path / "s.csv", tmp_path / "q.csv", tmp_path / "o.csv"
    pd.DataFrame({"text": texts, "label": labels}).to_csv(support, index=False)
    pd.DataFrame({"text": ["devuélveme el dinero"]}).to_csv(queries, index=False)
    assert main(["classify", "--support", str(support), "--input", str(queries), "--output", str(out),
                 "--model", "minilm"]) == 0
    err = capsys.readouterr().err
    assert "\nfewshot: note: the examples do not look like English" in "\n" + err.replace("\r", "\n")
    assert pd.read_csv(out)["label"].tolist() == ["reembolso"]
