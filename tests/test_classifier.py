"""FewShotClassifier on the real bundled encoder: fitting, predicting, editing labels, saving."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from fewshot import FewShotClassifier, FewShotError, FewShotWarning
from fewshot.encoders.encoder import Encoder

from helpers import QUERIES, support_frame


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder("minilm")


@pytest.fixture()
def clf(encoder: Encoder) -> FewShotClassifier:
    df = support_frame()
    return FewShotClassifier(encoder=encoder).fit(df.text.tolist(), df.label.tolist())


@pytest.mark.parametrize("rule", ["head", "matching", "prototype"])
def test_every_rule_classifies_clear_queries(encoder: Encoder, rule: str) -> None:
    df = support_frame()
    clf = FewShotClassifier(encoder=encoder, rule=rule).fit(df.text.tolist(), df.label.tolist())
    texts, gold = zip(*QUERIES)
    assert list(clf.predict(list(texts))) == list(gold)


def test_predict_proba_columns_follow_classes(clf: FewShotClassifier) -> None:
    assert list(clf.classes_) == ["lost_card", "refund", "weather"]
    probs = clf.predict_proba(["will it snow", "I need a refund"])
    assert probs.shape == (2, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert probs[0].argmax() == 2 and probs[1].argmax() == 1


def test_predict_details_returns_evidence(clf: FewShotClassifier) -> None:
    (det,) = clf.predict_details(["my card is gone"], top=2, n_matches=3)
    assert det.label == "lost_card"
    assert [t[0] for t in det.top][0] == "lost_card" and len(det.top) == 2
    assert len(det.matches) == 3
    assert det.matches[0].label == "lost_card"
    assert det.matches[0].similarity >= det.matches[1].similarity >= det.matches[2].similarity


def test_explain_lists_nearest_examples(clf: FewShotClassifier) -> None:
    matches = clf.explain("where is my refund", k=2)
    assert matches[0].text == "where is my refund"
    assert matches[0].similarity == pytest.approx(1.0, abs=1e-4)
    assert len(matches) == 2


def test_add_and_remove_labels(clf: FewShotClassifier) -> None:
    clf.add_examples("greeting", ["hello there", "hi, good morning"])
    assert "greeting" in clf.classes_
    assert clf.predict(["hey, hello!"])[0] == "greeting"
    clf.remove_label("greeting")
    assert "greeting" not in clf.classes_
    assert len(clf.index) == len(clf.examples) == 12
    assert clf.predict(["hey, hello!"])[0] != "greeting"
    clf.remove_example("I lost my card")
    assert len(clf.examples) == 11 and len(clf.index) == 11
    with pytest.raises(FewShotError, match="unknown label 'nope'"):
        clf.remove_label("nope")


def test_rename_label_merges_without_encoding_again(encoder: Encoder) -> None:
    texts = ["where is my refund", "I want my money back", "refund please", "where is my refund", "I lost my card",
             "my card was stolen"]
    with pytest.warns(FewShotWarning) as record:  # the names written two ways, the text under both
        clf = FewShotClassifier(encoder=encoder).fit(texts, ["refund", "refund", "Refund", "Refund", "card", "card"])
    assert any("differ only in case" in str(w.message) for w in record)
    vectors = clf.support.vectors.copy()
    clf.rename_label("Refund", "refund")  # merged: "where is my refund" was under both, kept once
    assert clf.examples["label"].tolist() == ["refund", "refund", "refund", "card", "card"]
    assert list(clf.classes_) == ["card", "refund"] and len(clf.index) == 5
    np.testing.assert_array_equal(clf.support.vectors, vectors[[0, 1, 2, 4, 5]])  # the same vectors, none new
    clf.rename_label("card", "lost_card")
    assert list(clf.classes_) == ["lost_card", "refund"] and clf.predict(["someone took my card"])[0] == "lost_card"
    for label, name, message in (("nope", "x", "unknown label 'nope'"), ("refund", "refund", "already called"),
                                 ("refund", " ", "non-empty string")):
        with pytest.raises(FewShotError, match=message):
            clf.rename_label(label, name)


def test_spaces_around_a_label_are_not_part_of_it(encoder: Encoder, tmp_path, capsys) -> None:
    """A stray space in a label cell ("refund ", " refund", "lost  card") names the same label, as the app and
    multi-label cells read it: in fit, add_examples, rename_label, score and evaluate's gold labels."""
    from fewshot.metrics import evaluate

    texts = ["where is my refund", "I want my money back", "refund please", "I lost my card", "my card was stolen"]
    clf = FewShotClassifier(encoder=encoder).fit(texts, ["refund", "refund ", " refund", "lost  card", "lost card"])
    assert list(clf.classes_) == ["lost card", "refund"]
    clf.add_examples(" lost card ", ["my card is gone"])
    assert list(clf.classes_) == ["lost card", "refund"] and clf.counts()["lost card"] == 3
    assert clf.score(["give me my money back"], ["refund "]) == 1.0
    assert evaluate(clf, ["give me my money back"], [" refund"])["accuracy"] == 1.0
    clf.rename_label("lost card", " lost_card ")
    assert list(clf.classes_) == ["lost_card", "refund"]
    support = tmp_path / "s.csv"  # the command line reads such a file the same way
    pd.DataFrame({"text": texts, "label": ["refund", "refund ", "refund", "card", "card "]}).to_csv(support,
                                                                                                   index=False)
    from fewshot.cli import main

    capsys.readouterr()
    assert main(["check", "--support", str(support), "--json", "--model", "minilm"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["labels"] == 2 and not [f for f in report["findings"] if f["kind"] == "same_name"]


def test_min_confidence(encoder: Encoder) -> None:
    df = support_frame()
    clf = FewShotClassifier(encoder=encoder, min_confidence=0.99999).fit(df.text.tolist(), df.label.tolist())
    assert "unknown" in set(clf.predict(["the quarterly ledger of a lighthouse", "I lost my card"]))


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        ([], [], "no examples"),
        (["a", "b"], ["x"], "same length"),
        (["a", "b"], ["x", "x"], "at least 2 labels"),
        (["a", "  "], ["x", "y"], r"texts\[1\] is empty"),
        (["a", 3], ["x", "y"], r"texts\[1\] must be a string"),
        (["a", "b"], [0, 1], r"labels\[0\] must be a string, got int 0 \(numbers as names: convert them with str"),
        (["a", "b"], ["x", ""], r"labels\[1\] is empty"),
        ("just one string", ["x"], "single string"),
        (None, ["x"], "texts must be a list of strings, got NoneType"),
        ({"a": "x"}, ["x"], "texts must be a list of strings, got dict"),
        (["a", float("nan")], ["x", "y"], r"texts\[1\] must be a string, got float nan \(a blank cell\?"),
        (pd.DataFrame({"text": ["a", "b"], "label": ["x", "y"]}), ["x", "y"],
         r"texts is a table with the columns \['text', 'label'\]; pass one column of it, e.g. df\['text'\]"),
        (np.array([["a", "b"]]), ["x"], r"texts is a 2-D array of shape \(1, 2\)"),
    ],
)
def test_bad_fit_input_names_the_value(encoder: Encoder, texts, labels, message: str) -> None:
    with pytest.raises(FewShotError, match=message):
        FewShotClassifier(encoder=encoder).fit(texts, labels)


def test_one_column_tables_are_texts(clf: FewShotClassifier) -> None:
    """A one-column DataFrame or (n, 1) array, as scikit-learn's column selectors pass on, is read as its
    texts (iterating a DataFrame would yield its column names)."""
    queries = [q for q, _ in QUERIES]
    expected = clf.predict(queries).tolist()
    assert clf.predict(pd.DataFrame({"text": queries})).tolist() == expected
    assert clf.predict(np.array(queries, dtype=object)[:, None]).tolist() == expected


def test_bad_options(encoder: Encoder) -> None:
    with pytest.raises(FewShotError, match="rule must be one of"):
        FewShotClassifier(encoder=encoder, rule="magic")
    with pytest.raises(FewShotError, match="unknown option"):
        FewShotClassifier(encoder=encoder, temprature=0.1)
    with pytest.raises(FewShotError, match="at least 2 labels"):
        FewShotClassifier(encoder=encoder).predict(["hello"])


def test_progress_true_draws_a_bar_and_a_callback_sees_every_text(encoder: Encoder, capsys) -> None:
    """``progress=True`` (as sentence-transformers' ``show_progress_bar``) draws a tqdm bar on stderr; a callback
    gets ``(done, total)``; the answers are the same either way."""
    df = support_frame()
    texts, labels = [*df.text, "an example no other test encodes"], [*df.label, df.label[0]]
    clf = FewShotClassifier(encoder=encoder).fit(texts, labels, progress=True)
    assert "encoding examples" in capsys.readouterr().err  # the one text the shared encoder has not seen
    texts = [q for q, _ in QUERIES] + ["a text not seen before"]
    plain = clf.predict(texts)
    seen: list[tuple[int, int]] = []
    assert list(clf.predict(texts, progress=lambda done, total: seen.append((done, total)))) == list(plain)
    assert seen[-1] == (0, 0)  # every text was encoded by the call before (the encoder's cache): nothing to do
    more = [*texts, "one more new text"]
    assert list(clf.predict(more, progress=True)) == list(clf.predict(more))
    err = capsys.readouterr().err
    assert "classifying" in err and "1/1" in err  # the one text not encoded before
    clf.predict(more, progress=True)
    assert "classifying" not in capsys.readouterr().err  # all in the encoder's cache: no work, no bar


def test_save_never_deletes_files_it_did_not_write(clf: FewShotClassifier, tmp_path) -> None:
    """A save replaces nothing, an empty folder or an earlier save; a file or a folder with other files is
    refused by name and left as it was."""
    (tmp_path / "empty").mkdir()
    assert clf.save(tmp_path / "empty") == tmp_path / "empty" and clf.save(tmp_path / "empty")  # again: replaced
    (tmp_path / "empty" / ".DS_Store").write_bytes(b"\0")  # a file browser's leftovers do not block a save
    assert clf.save(tmp_path / "empty") and not (tmp_path / "empty" / ".DS_Store").exists()
    other = tmp_path / "project"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(FewShotError, match=r"project is a folder of other files \(notes.txt\); saving would"):
        clf.save(other)
    (tmp_path / "empty" / "README.md").write_text("my card")
    with pytest.raises(FewShotError, match=r"a saved classifier with other files \(README.md\)"):
        clf.save(tmp_path / "empty")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(FewShotError, match="is a file; save the classifier to a folder path"):
        clf.save(tmp_path / "a_file")
    assert (other / "notes.txt").read_text() == "mine" and (tmp_path / "empty" / "README.md").read_text() == "my card"
    assert (tmp_path / "a_file").read_text() == "x"


@pytest.mark.parametrize("options", [{}, {"multi_label": True}], ids=["single-label", "multi-label"])
def test_a_texts_scores_do_not_depend_on_its_batch(encoder: Encoder, options: dict) -> None:
    """Each text alone gives the bits it gives among others (MKL strict mode, tests/conftest.py, as the CLI
    runs): so ``fewshot classify`` writes the same file whatever ``--chunk-size`` and on Ray."""
    df = support_frame()
    clf = FewShotClassifier(encoder=encoder, **options).fit(df.text.tolist(), df.label.tolist())
    texts = [q for q, _ in QUERIES] * 3 + ["something else entirely", "a much longer text about refunds and cards"]
    _, probs, scores = clf.predict_with_scores(texts)
    alone = [clf.predict_with_scores([t]) for t in texts]
    np.testing.assert_array_equal(np.vstack([p for _, p, _ in alone]), probs)
    np.testing.assert_array_equal(np.concatenate([s for _, _, s in alone]), scores)


def test_warnings_name_the_line_that_called_fewshot(encoder: Encoder) -> None:
    """A warning raised deep inside (the support set, the encoder's generator under a progress wrapper) points
    at the user's call, not at fewshot's or torch's own lines."""
    clf = FewShotClassifier(encoder=encoder)
    with pytest.warns(FewShotWarning, match="under two labels") as caught:
        clf.fit(["hello there", "hello there", "bye now"], ["greet", "bye", "bye"])
    assert caught[0].filename == __file__
    with pytest.warns(FewShotWarning, match="were cut to that length") as caught:
        clf.predict(["word " * 3000])
    assert caught[0].filename == __file__


def test_save_load_in_fresh_process_gives_same_predictions(clf: FewShotClassifier, tmp_path) -> None:
    queries = [q for q, _ in QUERIES] + ["something else entirely"]
    expected = clf.predict_proba(queries)
    clf.save(tmp_path / "clf")
    code = (  # the same BLAS mode as this process (tests/conftest.py), as a program needing the guarantee sets it
        "import sys, json; from fewshot.encoders.determinism import strict_blas; strict_blas();"
        "from fewshot import FewShotClassifier;"
        "c = FewShotClassifier.load(sys.argv[1]);"
        "print(json.dumps(c.predict_proba(json.loads(sys.argv[2])).tolist()))"
    )
    import json

    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "clf"), json.dumps(queries)],
                         capture_output=True, text=True, check=True)
    got = np.array(json.loads(out.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_saved_extra_layers_are_kept_and_a_save_without_them_is_re_encoded(tmp_path) -> None:
    import json

    df = support_frame()
    plain = FewShotClassifier("minilm", extra_layers=[]).fit(df.text.tolist(), df.label.tolist())
    plain.save(tmp_path / "plain")
    again = FewShotClassifier.load(tmp_path / "plain")  # keeps the sentence embedding alone, reuses the index
    assert again.encoder.extra_layers == () and again.support.vectors.shape[1] == 384
    np.testing.assert_array_equal(again.support.vectors, plain.support.vectors)
    config = json.loads((tmp_path / "plain" / "config.json").read_text())  # as a save before extra_layers
    del config["config"]["extra_layers"], config["encoder"]["extra_layers"]
    (tmp_path / "plain" / "config.json").write_text(json.dumps(config))
    old = FewShotClassifier.load(tmp_path / "plain")  # today's default encoder: the examples are re-encoded
    assert old.encoder.extra_layers == (4,) and old.support.vectors.shape == (len(df), 768)
    np.testing.assert_allclose(old.support.vectors, old.encoder.encode(df.text.tolist()), atol=1e-6)
    queries = [q for q, _ in QUERIES]
    assert list(old.predict(queries)) == [g for _, g in QUERIES]


def test_save_and_load_a_zip(clf: FewShotClassifier, tmp_path) -> None:
    """A path ending in .zip gets the folder zipped; load takes it, and a zip holding the folder one level down
    (the app's Save classifier); errors name the zip, and saving never replaces a file that is not such a zip."""
    import zipfile

    queries = [q for q, _ in QUERIES] + ["something else entirely"]
    expected = clf.predict_proba(queries)
    zipped = clf.save(tmp_path / "clf.zip")
    assert zipped == tmp_path / "clf.zip" and zipfile.is_zipfile(zipped)
    assert {"config.json", "examples.csv", "index.faiss"} <= set(zipfile.ZipFile(zipped).namelist())
    np.testing.assert_array_equal(FewShotClassifier.load(zipped).predict_proba(queries), expected)
    clf.save(zipped)  # an earlier save is replaced
    nested = tmp_path / "nested.zip"  # as the app writes it, with a file browser's leftovers
    with zipfile.ZipFile(zipped) as src, zipfile.ZipFile(nested, "w") as dst:
        for name in src.namelist():
            dst.writestr(f"my_classifier/{name}", src.read(name))
        dst.writestr("__MACOSX/my_classifier/._config.json", b"\0")
    loaded = FewShotClassifier.load(nested)
    np.testing.assert_array_equal(loaded.predict_proba(queries), expected)
    assert loaded.examples.equals(clf.examples)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(zipped) as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"{not json" if name == "config.json" else src.read(name))
    with pytest.raises(FewShotError, match=r"damaged.zip is a damaged saved classifier") as info:
        FewShotClassifier.load(damaged)
    assert "fewshot-zip-" not in str(info.value)  # never the temporary folder it was unpacked into
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("photo.jpg", b"\xff")
    with pytest.raises(FewShotError, match=r"other.zip is not a saved classifier: it needs config.json"):
        FewShotClassifier.load(other)
    with pytest.raises(FewShotError, match=r"other.zip exists and is not a saved classifier's zip"):
        clf.save(other)
    assert zipfile.ZipFile(other).namelist() == ["photo.jpg"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../config.json", "{}")
    with pytest.raises(FewShotError, match="unsafe path"):
        FewShotClassifier.load(evil)
    data = bytearray(zipped.read_bytes())  # as `zip -P secret` marks it: the encrypted bit of each entry
    at = data.find(b"PK\x01\x02")  # a central directory entry; its general-purpose flags are 8 bytes in
    while at != -1:
        data[at + 8] |= 1
        at = data.find(b"PK\x01\x02", at + 4)
    locked = tmp_path / "locked.zip"
    locked.write_bytes(bytes(data))
    with pytest.raises(FewShotError, match="locked.zip is password-protected"):
        FewShotClassifier.load(locked)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FewShotError, match="notes.txt is a file, not a saved classifier"):
        FewShotClassifier.load(tmp_path / "notes.txt")


def test_a_path_under_the_home_folder_is_expanded(clf: FewShotClassifier, tmp_path, monkeypatch) -> None:
    """``save("~/clf")`` and ``load("~/clf")`` use the home folder, as pandas does, and never make a folder named
    '~' in the working directory."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    assert clf.save("~/clf") == tmp_path / "home" / "clf" and clf.save("~/clf.zip").is_file()
    assert not (tmp_path / "~").exists()
    for saved in ("~/clf", "~/clf.zip"):
        assert list(FewShotClassifier.load(saved).classes_) == list(clf.classes_)


def test_load_rejects_a_non_classifier_folder(tmp_path) -> None:
    with pytest.raises(FewShotError, match="not a saved classifier"):
        FewShotClassifier.load(tmp_path)


def test_scikit_learn_clone_cross_val_score_and_grid_search(encoder: Encoder) -> None:
    """The scikit-learn contract: get_params gives the options as passed (clone checks it), clones share the
    encoder, and score(texts, labels) is the mean accuracy that cross_val_score and GridSearchCV read."""
    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV, cross_val_score

    df = support_frame()
    texts, labels = df.text.tolist(), df.label.tolist()
    clf = FewShotClassifier(encoder=encoder, auto_unknown=True)
    copy = clone(clf)
    assert copy.encoder is encoder and copy.get_params() == clf.get_params()
    assert copy.get_params()["extra_layers"] == "auto" and copy.encoder.extra_layers == encoder.extra_layers
    assert clf.set_params(**clf.get_params()) is clf  # the round trip changes nothing
    listed = FewShotClassifier(encoder=encoder, extra_layers=list(encoder.extra_layers), multi_label=True,
                               label_thresholds={"a": 0.4})
    assert clone(listed).get_params()["label_thresholds"] == {"a": 0.4}  # list and dict options clone too
    with pytest.raises(FewShotError, match="encoder is fixed"):
        clf.set_params(encoder=None)
    folds = cross_val_score(FewShotClassifier(encoder=encoder), texts, labels, cv=3)
    assert folds.shape == (3,) and ((folds >= 0) & (folds <= 1)).all()
    search = GridSearchCV(FewShotClassifier(encoder=encoder), {"rule": ["head", "prototype"]}, cv=3).fit(texts, labels)
    assert search.best_params_["rule"] in {"head", "prototype"}


def test_making_a_classifier_loads_nothing_and_a_bad_model_fails_at_fit() -> None:
    """The constructor stores (and checks) options; the model is opened when a text is first read, so a clone or
    an unfitted classifier costs nothing, and a model that is not there is named by fit."""
    from sklearn.base import clone

    clf = clone(FewShotClassifier(model="/nowhere/model", rule="prototype"))
    assert clf.get_params()["model"] == "/nowhere/model" and not clf.__sklearn_is_fitted__()
    with pytest.raises(FewShotError, match="model '/nowhere/model' was not found"):
        clf.fit(["where is my refund", "my card is lost"], ["refund", "card"])
    with pytest.raises(FewShotError, match="rule must be"):
        FewShotClassifier(rule="magic")  # options are still checked at once


def test_set_params_changes_encoder_options_until_there_are_examples():
    """Options that decide the vectors may change before fit (GridSearchCV sets them on an unfitted clone), not
    after: the stored vectors would no longer match."""
    from sklearn.model_selection import GridSearchCV

    df = support_frame()
    texts, labels = df.text.tolist(), df.label.tolist()
    clf = FewShotClassifier(model="minilm").set_params(extra_layers=[], batch_size=8)
    assert list(clf.encoder.extra_layers) == [] and clf.get_params()["extra_layers"] == []
    search = GridSearchCV(FewShotClassifier(model="minilm"), {"extra_layers": ["auto", []]}, cv=2)
    search.fit(texts, labels)
    assert search.best_params_["extra_layers"] in ("auto", [])
    assert list(search.best_estimator_.encoder.extra_layers) == ([4] if search.best_params_["extra_layers"] == "auto"
                                                          else [])
    with pytest.raises(FewShotError, match="extra_layers is fixed once the classifier has examples"):
        clf.fit(texts, labels).set_params(extra_layers="auto")
    with pytest.raises(FewShotError, match="int8 is fixed once an encoder was given"):
        FewShotClassifier(encoder=clf.encoder).set_params(int8=True)
    assert clf.set_params(auto_unknown=True).config.auto_unknown  # other options still change after fit


def test_score_is_mean_accuracy_with_the_unknown_rule(clf: FewShotClassifier) -> None:
    texts, gold = map(list, zip(*QUERIES))
    predicted = list(clf.predict(texts))
    assert clf.score(texts, gold) == pytest.approx(np.mean([p == g for p, g in zip(predicted, gold)]))
    assert clf.score(texts, gold) == 1.0
    off = "what is the capital of mongolia"
    clf.set_params(score_threshold=float(clf.in_scope_score([off])[0]) + 1e-3)
    assert clf.predict([off])[0] == "unknown" and clf.score([off], ["unknown"]) == 1.0
    with pytest.raises(FewShotError, match="same length"):
        clf.score(texts, gold[:-1])
    with pytest.raises(FewShotError, match="labels must be a list with one label per text, got str"):
        clf.score(texts[:1], "refund")


def test_multilabel_score_is_subset_accuracy(encoder: Encoder) -> None:
    texts = ["refund my order", "my card was stolen", "I want my money back", "I lost my card",
             "refund me and block my stolen card", "where is my refund", "card missing"]
    labels = ["refund", "card", "refund", "card", "refund;card", "refund", "card"]
    clf = FewShotClassifier(encoder=encoder, multi_label=True).fit(texts, labels)
    predicted = clf.predict(texts)
    gold = [set(cell.split(";")) for cell in labels]
    expected = np.mean([set(p) == g for p, g in zip(predicted, gold)])
    assert clf.score(texts, labels) == pytest.approx(expected)
    assert clf.score(texts, [sorted(g) for g in gold]) == pytest.approx(expected)  # lists work as cells


def test_saved_config_records_the_layers_in_use(clf: FewShotClassifier, tmp_path) -> None:
    import json

    clf.save(tmp_path / "c")
    saved = json.loads((tmp_path / "c" / "config.json").read_text())["config"]
    assert clf.get_params()["extra_layers"] == "auto"
    assert saved["extra_layers"] == list(clf.encoder.extra_layers)


def test_pickle_travels_through_the_saved_folder(clf: FewShotClassifier, encoder: Encoder) -> None:
    """joblib and scikit-learn's n_jobs pickle estimators: a copy answers as the original, with the encoder
    loaded by name (never copied), and an empty classifier travels as its options."""
    import pickle

    clf.set_params(auto_unknown=True)
    copy = pickle.loads(pickle.dumps(clf))
    texts = [t for t, _ in QUERIES] + ["what is the capital of mongolia"]
    assert list(copy.predict(texts)) == list(clf.predict(texts))
    np.testing.assert_allclose(copy.predict_proba(texts), clf.predict_proba(texts), atol=1e-6)
    assert copy.auto_threshold_ == pytest.approx(clf.auto_threshold_)
    import copy as copying

    shallow = copying.copy(clf)
    assert shallow.support is clf.support and shallow.encoder is clf.encoder
    deep = copying.deepcopy(clf)
    assert deep.support is not clf.support and list(deep.predict(texts)) == list(clf.predict(texts))
    empty = pickle.loads(pickle.dumps(FewShotClassifier(encoder=encoder, rule="prototype")))
    assert empty.get_params()["rule"] == "prototype" and empty.encoder.name == encoder.name
    assert list(empty.classes_) == []


def test_scikit_learn_conventions_at_the_edges(encoder: Encoder, clf: FewShotClassifier) -> None:
    """check_is_fitted tells an unfitted classifier; a deprecated name warns at the user's line; explain(k) and
    unknown_label refuse values that would give odd answers."""
    import warnings

    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(NotFittedError):
        check_is_fitted(FewShotClassifier(encoder=encoder))
    check_is_fitted(clf)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FewShotClassifier(encoder=encoder).set_params(unknown_threshold=0.3)
    assert [w.filename for w in caught if w.category is FutureWarning] == [__file__]
    with pytest.raises(FewShotError, match="k must be a whole number of at least 1, got 0"):
        clf.explain("where is my refund", k=0)
    for bad in (None, 5, "  "):
        with pytest.raises(FewShotError, match="unknown_label must be a non-empty string"):
            FewShotClassifier(encoder=encoder, unknown_label=bad)


def test_metrics_refuse_inputs_they_would_score_wrongly(clf: FewShotClassifier) -> None:
    from fewshot import metrics

    texts = [q for q, _ in QUERIES]
    with pytest.raises(FewShotError, match="texts and gold must have the same length, got 4 and 1"):
        metrics.evaluate_curve(clf, texts, ["refund"])  # it broadcast one label against every answer
    with pytest.raises(FewShotError, match=r"gold\[0\] must be a string, got float nan \(a blank cell"):
        metrics.evaluate(clf, texts[:1], [float("nan")])  # it scored a label called "nan"
    with pytest.raises(FewShotError, match="no texts to score"):
        metrics.evaluate(clf, [], [])
    with pytest.raises(FewShotError, match="texts and gold must have the same length"):
        metrics.evaluate_oos(clf, texts, ["refund"], ["what's the weather"])
    with pytest.raises(FewShotError, match="NaN found"):
        metrics.recall_at_cost([True, True, False], [3.0, float("nan"), 1.0], [0.5, 2.5])
    with pytest.raises(FewShotError, match="one value per in-scope text"):
        metrics.recall_at_cost([True], [3.0, 1.0], [0.5])
