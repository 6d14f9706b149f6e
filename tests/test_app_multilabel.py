"""The app's multi-label mode (over HTTP with gradio_client) and a saved classifier's operating point on upload."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = [pytest.mark.timeout(300)]

TICKETS = [  # mostly single-label examples, two with two labels (one as a cell "a; b", one as a repeated text)
    ["billing", "I was charged twice on my card"], ["billing", "refund my last payment please"],
    ["billing", "my invoice shows the wrong amount"], ["billing", "why did my subscription price go up"],
    ["bug", "the app crashes when I open settings"], ["bug", "the page shows an error 500"],
    ["bug", "the button does nothing when I click it"], ["bug", "the screen freezes after login"],
    ["shipping", "where is my parcel"], ["shipping", "my order has not arrived yet"],
    ["shipping", "the delivery is late again"], ["shipping", "which courier brings my package"],
    ["billing; bug", "the payment page crashed and I was charged anyway"],
    ["shipping", "the tracking page is broken and my parcel is lost"],
    ["bug", "the tracking page is broken and my parcel is lost"],
]
LABELS = {"billing", "bug", "shipping"}
TWO = "I was charged twice on my card and the app crashes when I open settings"


def client(url: str) -> Client:
    return Client(url, verbose=False, download_files=True)


def rows_of(table: dict) -> list[list[str]]:
    return [r for r in table["data"] if any(r)]


@pytest.mark.slow
def test_multi_label_switch_classify_batch_evaluate_save(app_url: str, tmp_path: Path) -> None:
    c = client(app_url)
    summary = c.predict({"headers": ["label", "text"], "data": TICKETS}, api_name="/set_table")
    assert "is an example of 'bug', 'shipping'" in summary  # single-label mode: a text under two labels conflicts
    params = c.view_api(print_info=False, return_format="dict")["named_endpoints"]["/set_multi_label"]["parameters"]
    assert [p["parameter_name"] for p in params] == ["multi"]
    table, summary = c.predict(multi=True, api_name="/set_multi_label")
    assert len(rows_of(table)) == len(TICKETS)  # the switch keeps the rows as written
    assert "Multi-label · 3 labels · 14 examples** (2 with several labels)" in summary
    assert "keep it under one label" not in summary

    bars, verdict, matches = c.predict(TWO, True, 0.5, api_name="/classify")
    assert verdict.startswith("### ") and "billing" in verdict.split("\n")[0] and "bug" in verdict.split("\n")[0]
    assert "above their thresholds" in verdict
    assert {x["label"] for x in bars["confidences"]} == LABELS
    assert {r[0] for r in matches["data"]} == {"billing", "bug"}  # each answered label with its own examples
    _, verdict, _ = c.predict("qwerty asdf zxcv", True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown") and "No label reaches its threshold" in verdict

    batch = tmp_path / "tickets.csv"
    pd.DataFrame({"text": [TWO, "where is my parcel, it is late", "my invoice is wrong", ""]}).to_csv(batch,
                                                                                                     index=False)
    preview, download, summary = c.predict(handle_file(str(batch)), "text", True, 0.5, api_name="/classify_csv")
    out = pd.read_csv(download, dtype=str, keep_default_na=False)
    assert list(out.columns) == ["text", "labels", "confidence", "top_3", "in_scope_score"]
    assert set(out["labels"][0].split(";")) == {"billing", "bug"}
    assert out["labels"].tolist()[1:] == ["shipping", "billing", ""]
    assert "got several labels" in summary and "bug: 1" in summary

    gold = tmp_path / "gold.csv"
    pd.DataFrame({"text": [TWO, "where is my parcel, it is late", "my invoice is wrong", "qwerty asdf zxcv"],
                  "labels": ["billing; bug", "shipping", "billing", "unknown"]}).to_csv(gold, index=False)
    metrics, _, wrong = c.predict(handle_file(str(gold)), "text", "labels", api_name="/evaluate")
    assert "Micro-F1 1.000" in metrics and "subset accuracy 100.0%" in metrics and "on 4 texts" in metrics
    assert wrong["headers"] == ["text", "gold", "predicted"] and not rows_of(wrong)
    per_label, *_ = c.predict(api_name="/eval_details")
    assert {r[0] for r in per_label["data"]} == LABELS and all(r[1] == 1.0 for r in per_label["data"])

    with pytest.raises(AppError, match="carry several labels"):  # refused, and the label set stays as it was
        c.predict(False, api_name="/set_multi_label")
    table, summary = c.predict(api_name="/label_set")
    assert len(rows_of(table)) == len(TICKETS) and "Multi-label" in summary

    saved = Path(c.predict(api_name="/save_classifier"))
    other = client(app_url)
    table, summary = other.predict(handle_file(str(saved)), api_name="/load_classifier")
    assert "Multi-label · 3 labels" in summary and ["billing; bug", TICKETS[12][1]] in rows_of(table)
    _, verdict, _ = other.predict(TWO, True, 0.5, api_name="/classify")
    assert "billing" in verdict.split("\n")[0] and "bug" in verdict.split("\n")[0]


@pytest.mark.slow
def test_none_of_these_examples_are_left_out_in_multi_label_mode(app_url: str, tmp_path: Path) -> None:
    """An example labelled unknown does not block multi-label mode: it is left out of the fit (the summaries say
    so), kept in the label set, and used again when multi-label is off."""
    c = client(app_url)
    c.predict({"headers": ["label", "text"], "data": TICKETS[:12] + [["unknown", "what a lovely sunset"]]},
              api_name="/set_table")
    table, summary = c.predict(True, api_name="/set_multi_label")
    assert "left out in multi-label mode" in summary and ["unknown", "what a lovely sunset"] in rows_of(table)
    _, verdict, _ = c.predict(TWO, True, 0.5, api_name="/classify")
    assert "billing" in verdict.split("\n")[0] and "bug" in verdict.split("\n")[0]
    _, _, summary = c.predict(handle_file(str(_texts(tmp_path))), "text", True, 0.5, api_name="/classify_csv")
    assert "labelled 'unknown'" in summary and "left out in multi-label mode" in summary
    with zipfile.ZipFile(c.predict(api_name="/save_classifier")) as zf:  # saving works; the zip leaves them out
        examples = zf.read("fewshot_classifier/examples.csv").decode("utf-8")
    assert "lovely sunset" not in examples and "charged twice" in examples
    table, summary = c.predict(False, api_name="/set_multi_label")
    assert '"none of these" examples' in summary and ["unknown", "what a lovely sunset"] in rows_of(table)
    _, verdict, _ = c.predict("what a lovely sunset over the sea", True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown") and "none of these" in verdict


@pytest.mark.slow
def test_uploaded_classifier_keeps_its_saved_unknown_threshold(app_url: str, tmp_path: Path) -> None:
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    _, verdict, _ = c.predict("I was charged twice on my card", True, 0.5, int8=False, api_name="/classify")
    assert verdict.startswith("### billing")
    saved = Path(c.predict(int8=False, api_name="/save_classifier"))  # fp32, as `fewshot fit --out` saves it
    from helpers import zip_with_threshold

    strict = zip_with_threshold(saved, tmp_path / "strict.zip", 50.0)  # above every score: all answered unknown
    other = client(app_url)
    other.predict(handle_file(str(strict)), api_name="/load_classifier")
    for int8 in (True, False, True):  # the same encoder model, int8 or not: the saved threshold holds
        _, verdict, _ = other.predict("I was charged twice on my card", True, 0.5, int8=int8, api_name="/classify")
        assert verdict.startswith("### unknown") and "50.00" in verdict, int8
    _, _, summary = other.predict(handle_file(str(_texts(tmp_path))), "text", True, 0.5, api_name="/classify_csv")
    assert "2 row(s) answered *unknown*" in summary
    again = Path(other.predict(api_name="/save_classifier"))  # saving keeps it
    with zipfile.ZipFile(again) as zf:
        assert json.loads(zf.read("fewshot_classifier/config.json"))["config"]["score_threshold"] == 50.0


def _texts(folder: Path) -> Path:
    path = folder / "two.csv"
    pd.DataFrame({"text": ["I was charged twice on my card", "where is my parcel"]}).to_csv(path, index=False)
    return path


def test_saved_operating_point_is_read_safely(tmp_path: Path) -> None:
    from fewshot.app import classifier_zip

    config = tmp_path / "config.json"
    for value, expected in [(1.5, 1.5), (-3, -3.0), (None, None), ("1.0", None), (True, None), (1e9, None),
                            (float("nan"), None)]:
        config.write_text(json.dumps({"config": {"score_threshold": value}, "encoder": {"model": "m"}}))
        assert classifier_zip.saved_operating_point(config) == (expected, "m")
    config.write_text(json.dumps({"config": {}}))
    assert classifier_zip.saved_operating_point(config) == (None, None)


def test_multi_label_rows_counts_and_removal() -> None:
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st
    from fewshot.errors import FewShotError

    rows = [["a;b", "x and y"], ["a", "only x"], ["c", "x and y"], ["", "draft"]]
    state = edits.set_multi_label(st.with_rows(st.empty_state(), rows), True)
    assert st.is_multi(state) and st.labels_of(st.state_rows(state), True) == ["a", "b", "c"]
    assert st.counts_of(st.state_rows(state), True) == {"a": 2, "b": 1, "c": 1}  # "x and y" counts once per label
    assert st.check_cell(" a ;b;; ", True) == "a; b" and st.check_cell("a; b", False) == "a; b"
    assert edits.add_examples(state, "b ; c", "new one")[0]["rows"][-1] == ["b; c", "new one"]
    assert edits.remove_label(state, "a")["rows"] == [["b", "x and y"], ["c", "x and y"], ["", "draft"]]
    with pytest.raises(FewShotError, match="carry several labels"):
        edits.set_multi_label(state, False)
    with pytest.raises(FewShotError, match="true or false"):
        edits.set_multi_label(state, "yes")
    single = edits.set_multi_label(st.with_rows(st.empty_state(), [["a", "t"], ["b", "u"]]), True)
    assert not st.is_multi(edits.set_multi_label(single, False))


def test_renaming_a_label_merges_it_into_one_of_that_name() -> None:
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st
    from fewshot.errors import FewShotError

    single = st.with_rows(st.empty_state(), [["refund", "where is my refund"], ["Refund", "where is my refund"],
                                             ["Refund", "refund please"], ["card", "lost"], ["card", "lost"]])
    new, merged = edits.rename_label(single, "Refund", "refund")
    assert merged and new["rows"] == [["refund", "where is my refund"], ["refund", "refund please"],
                                      ["card", "lost"], ["card", "lost"]]  # only the merged copy goes
    assert st.undo(new)["rows"] == single["rows"]
    new, merged = edits.rename_label(single, "card", " lost  card ")
    assert not merged and st.labels_of(st.state_rows(new), False) == ["Refund", "lost card", "refund"]
    rows = [["a; b", "x"], ["b", "y"], ["a", "y"]]
    multi = st.with_rows(st.empty_state(), rows, {"multi_label": True, "label_thresholds": {"b": 0.7}})
    new, merged = edits.rename_label(multi, "b", "a")
    assert merged and new["rows"] == [["a", "x"], ["a", "y"]]
    assert st.state_options(new)["label_thresholds"] == {"a": 0.7}  # the threshold follows its label
    new, _ = edits.rename_label(multi, "b", "c")
    assert new["rows"] == [["a; c", "x"], ["c", "y"], ["a", "y"]]
    for label, name, message in (("zz", "q", "no label 'zz'"), ("a", "a", "already called 'a'"),
                                 ("a", "x; y", "cannot contain ';'"), ("a", " ", "empty")):
        with pytest.raises(FewShotError, match=message):
            edits.rename_label(multi, label, name)


def test_uploaded_label_thresholds_are_kept_when_valid() -> None:
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st

    crafted = {"a": 0.5, "b": 1.5, "c": "0.3", 3: 0.2, "d": True, "e": 0.0, "f": 1.0, "x" * 200: 0.5, "g": 0.25}
    kept = st.safe_options({"multi_label": True, "label_thresholds": crafted})
    assert kept == {"multi_label": True, "label_thresholds": {"a": 0.5, "g": 0.25}}
    assert st.safe_options({"multi_label": True, "label_thresholds": crafted}, ["a", "b"]) == \
        {"multi_label": True, "label_thresholds": {"a": 0.5}}  # only known labels
    assert st.safe_options({"multi_label": True, "label_thresholds": [0.5]}) == {"multi_label": True}
    assert st.safe_options({"label_thresholds": {"a": 0.5}}) == {}  # single-label: no per-label thresholds
    rows = [["a; b", "x and y"], ["a", "only x"], ["c", "only z"]]
    state = st.with_rows(st.empty_state(), rows, {"multi_label": True, "label_thresholds": {"a": 0.7, "b": 0.6}})
    assert st.state_options(state)["label_thresholds"] == {"a": 0.7, "b": 0.6}
    assert st.state_options(edits.remove_label(state, "b"))["label_thresholds"] == {"a": 0.7}  # a removed label's goes
    assert "label_thresholds" not in st.state_options(edits.remove_label(edits.remove_label(state, "b"), "a"))


def test_automatic_unknown_is_the_classifiers_own() -> None:
    from fewshot.app import evaluate as ev
    from fewshot.app import session_classifier as sc

    multi = type("Clf", (), {"config": type("Cfg", (), {"multi_label": True, "score_threshold": None})()})()
    rule = ev.unknown_rule(multi, True, 0.5)
    assert rule.mode == "labels" and rule.options == {"min_confidence": None, "auto_unknown": True,
                                                      "score_threshold": None}
    assert ev.unknown_rule(multi, False, 0.5).options["min_confidence"] == 0.5
    assert sc.thresholds_text({"a": 0.4, "b": 0.4}) == "40%" and sc.thresholds_text({"a": 0.3, "b": 0.55}) == \
        "30% to 55% by label"


def test_multi_label_evaluation_tables() -> None:
    from fewshot.app import evaluate as ev

    res = {"multi": True, "gold_sets": [["a", "b"], ["b"], ["c"], ["a"], []],
           "pred_sets": [["a"], ["b"], ["c", "a"], ["a"], []],
           "classes": ["a", "b", "c"], "unknown_label": "unknown", "texts": list("vwxyz"), "scores": [1.0] * 5}
    res["gold"] = [ev.set_cell(s, "unknown") for s in res["gold_sets"]]
    res["pred"] = [ev.set_cell(s, "unknown") for s in res["pred_sets"]]
    s = ev.multi_summary(res)
    assert s["subset_accuracy"] == 0.6 and s["errors"] == 2 and s["answered_unknown"] == 1 and s["several"] == 1
    table = ev.per_label(res)
    assert table["label"].tolist() == ["b", "a", "c"]  # worst F1 first
    assert table.set_index("label").loc["b", "most often predicted as"] == ev.MISSED  # answered "a" alone
    assert ev.errors(res)["gold"].tolist() == ["a; b", "c"]
    assert ev.confused_pairs(res).iloc[0].tolist()[:3] == ["a; b", "a", 1]
    assert ev.confusion_figure(res) is not None


def test_multi_label_verdict_and_suggestion() -> None:
    from types import SimpleNamespace

    from fewshot.app import classify_tab
    from fewshot.app import session_classifier as sc

    thresholds = {"billing": 0.4, "bug": 0.4, "shipping": 0.4}
    two = SimpleNamespace(labels=["bug", "billing"], top=[("bug", 0.97), ("billing", 0.81), ("shipping", 0.02)],
                          confidence=0.97, score=3.4)
    out = classify_tab.multi_verdict_md(two, sc.Unknown("labels"), thresholds, "unknown")
    assert out.startswith("### bug · billing\n2 labels above their thresholds: **bug** 97%, **billing** 81%")
    assert "shipping 2% (threshold 40%)" in out and out.index("shipping 2%") > out.index("<details>")
    matches = {"headers": ["label", "example", "similarity"],
               "data": [["bug", "the app crashes", 0.8], ["billing", "charged twice", 0.7]]}
    assert classify_tab.suggest_label({"bug": 0.97, "billing": 0.81}, out, matches).value == "bug; billing"
    none = SimpleNamespace(labels=[], top=[("shipping", 0.24), ("bug", 0.01)], confidence=0.24, score=-1.2)
    out = classify_tab.multi_verdict_md(none, sc.Unknown("labels"), thresholds, "unknown")
    assert out.startswith("### unknown\nNo label reaches its threshold (40%). Best guess: **shipping** (24%)")
    assert classify_tab.suggest_label({"shipping": 0.24}, out, matches).value is None
    forced = SimpleNamespace(labels=["shipping"], top=[("shipping", 0.24)], confidence=0.24, score=-1.2)
    out = classify_tab.multi_verdict_md(forced, sc.Unknown("off"), thresholds, "unknown")
    assert "although no label reaches its threshold (40%)" in out


@pytest.mark.slow
def test_a_saved_threshold_from_another_encoder_is_not_applied(tmp_path: Path) -> None:
    from helpers import support_frame

    from fewshot.app import classifier_zip
    from fewshot.app import evaluate as ev
    from fewshot.app import session_classifier as sc

    state = {"rows": [[lab, t] for t, lab in support_frame().itertuples(index=False)], "options": {}}
    fit = sc.fitted_classifier(state, None)
    fit.clf.set_params(score_threshold=1.25)
    saved = classifier_zip.save_zip(fit)
    fit.clf.set_params(score_threshold=None)
    _, same = classifier_zip.load_zip(saved)
    assert same.clf.config.score_threshold == 1.25 and not same.note
    assert ev.unknown_rule(same.clf, True, 0.0).options["score_threshold"] == 1.25  # Classify and Batch use it
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(other, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("config.json"):
                meta = json.loads(data)
                meta["encoder"]["model"] = "some-other-encoder"
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    _, moved = classifier_zip.load_zip(other)
    assert moved.clf.config.score_threshold is None and "some-other-encoder" in moved.note


@pytest.mark.slow
def test_saved_multi_label_zip_answers_like_the_app_and_keeps_its_thresholds(tmp_path: Path) -> None:
    from fewshot import FewShotClassifier
    from fewshot.app import classifier_zip
    from fewshot.app import evaluate as ev
    from fewshot.app import session_classifier as sc
    from fewshot.app import state as st

    state = st.with_rows(st.empty_state(), TICKETS, {"multi_label": True, "label_thresholds": {"bug": 0.8}})
    fit = sc.fitted_classifier(state, None)
    assert fit.clf.label_thresholds_["bug"] == 0.8
    texts = [TWO, "where is my parcel", "qwerty asdf zxcv", "hello there", "my invoice is wrong"]
    rule = ev.unknown_rule(fit.clf, True, 0.5)  # the app's default: *Unknown: automatic*
    app_answers = fit.clf.predict(texts, **rule.options)
    assert [] in app_answers  # the nonsense text: no label reaches its threshold
    saved = classifier_zip.save_zip(fit)
    assert not fit.clf.config.auto_unknown  # the session's classifier is unchanged
    with zipfile.ZipFile(saved) as zf:
        zf.extractall(tmp_path)
        config = json.loads(zf.read("fewshot_classifier/config.json"))["config"]
    assert config["auto_unknown"] and config["label_thresholds"] == {"bug": 0.8}
    library = FewShotClassifier.load(tmp_path / "fewshot_classifier")  # as the CLI and Python load it
    assert library.predict(texts) == app_answers
    loaded, again = classifier_zip.load_zip(saved)  # back into the app: the per-label threshold is kept
    assert loaded["options"]["label_thresholds"] == {"bug": 0.8} and again.clf.label_thresholds_["bug"] == 0.8
    assert st.state_options(loaded)["label_thresholds"] == {"bug": 0.8}
    crafted = tmp_path / "crafted.zip"  # unknown labels and bad values are dropped, not fatal
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(crafted, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("config.json"):
                meta = json.loads(data)
                meta["config"]["label_thresholds"] = {"bug": 0.7, "nope": 0.5, "billing": 2.0}
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    loaded, fitted = classifier_zip.load_zip(crafted)
    assert loaded["options"]["label_thresholds"] == {"bug": 0.7} and fitted.clf.label_thresholds_["bug"] == 0.7



def test_single_label_options_of_a_loaded_zip_stay_out_of_a_multi_label_fit() -> None:
    """A zip fitted with --rule matching, then Multi-label ticked: the library refuses rule= with multi_label, so
    the fit leaves it out, and the state keeps it for when the switch goes off."""
    from fewshot import FewShotClassifier
    from fewshot.app import label_edits as edits
    from fewshot.app import session_classifier as sc
    from fewshot.app import state as st

    single = st.with_rows({}, [["a", "x y"], ["b", "z w"]], {"rule": "matching"})
    multi = edits.set_multi_label(single, True)
    assert sc.fit_options(multi) == {"multi_label": True} and st.state_options(multi)["rule"] == "matching"
    FewShotClassifier(**sc.fit_options(multi))  # accepted (the encoder loads on first use)
    assert sc.fit_options(edits.set_multi_label(multi, False)) == {"rule": "matching"}


def test_multi_label_scores_cover_the_labels_the_file_or_the_answers_name() -> None:
    from fewshot.app import evaluate as ev

    res = {"multi": True, "gold_sets": [["a"], ["b"], ["a", "b"]], "pred_sets": [["a"], ["b"], ["a", "c"]],
           "classes": ["a", "b", "c", "d", "e", "f"], "unknown_label": "unknown", "texts": list("xyz"),
           "scores": [1.0] * 3}
    res["gold"] = [ev.set_cell(s, "unknown") for s in res["gold_sets"]]
    res["pred"] = [ev.set_cell(s, "unknown") for s in res["pred_sets"]]
    s = ev.multi_summary(res)
    assert set(s["per_label"]) == {"a", "b", "c"}  # d, e, f: neither in the file nor answered
    assert s["macro_f1"] == pytest.approx((1.0 + 2 / 3 + 0.0) / 3)  # not /6 with d, e, f at 0
    assert set(ev.per_label(res)["label"]) == {"a", "b", "c"}


def test_ticking_multi_label_and_loading_options_are_undo_steps() -> None:
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st

    rows = [["billing", "refund please"], ["bug", "it crashes"]]
    base = st.with_rows(st.empty_state(), rows)
    multi = edits.set_multi_label(base, True)
    assert st.is_multi(multi) and len(st.history_of(multi)) == 2
    back = st.undo(multi)
    assert not st.is_multi(back) and st.state_rows(back) == rows
    same_rows = st.with_rows(base, rows, {"temperature": 0.5})  # a zip of the same rows with other options
    assert st.state_options(st.undo(same_rows)) == {}
    assert st.with_rows(base, rows) is not base and len(st.history_of(st.with_rows(base, rows))) == 1
