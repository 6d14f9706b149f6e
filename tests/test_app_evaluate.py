"""The app's Evaluate tab and fine-tune action over real HTTP (gradio_client): per-label metrics, confused
pairs, the report, the unknown-rule curve and the operating point (Classify and the saved classifier use it),
fine-tune / cancel / undo per session."""

from __future__ import annotations

import math
import time
import zipfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

pytestmark = [pytest.mark.timeout(600)]

OUT_OF_SCOPE = ["what a lovely sunset over the sea", "recommend me a good pizza recipe",
                "who won the football match yesterday", "how tall is mount everest",
                "tell me a joke about cats", "what is the capital of australia"]


def client(url: str) -> Client:
    return Client(url, verbose=False, download_files=True)


def synthetic_result(n_labels: int = 150, seed: int = 0) -> dict:
    """A scored evaluation as :func:`fewshot.app.evaluate.run` returns it, without an encoder."""
    import numpy as np

    rng = np.random.default_rng(seed)
    labels = [f"label_{i:03d}" for i in range(n_labels)]
    gold = list(rng.choice(labels, 900)) + ["unknown"] * 60
    pred = [g if rng.random() < 0.8 else str(rng.choice(labels)) for g in gold[:900]] + list(rng.choice(labels, 60))
    scores = list(rng.normal(2.0, 0.5, 900)) + list(rng.normal(1.0, 0.5, 60))
    return {"texts": [f"text {i}" for i in range(len(gold))], "gold": gold, "pred": pred,
            "confidence": [0.5] * len(gold), "scores": scores, "unknown_label": "unknown", "auto": 1.2,
            "auto_note": "", "chosen": None, "classes": labels, "skipped": 0}


def test_tables_from_a_scored_file() -> None:
    import numpy as np

    from fewshot.app import evaluate as ev

    res = synthetic_result()
    table = ev.per_label(res)
    assert list(table.columns) == ev.PER_LABEL_COLUMNS and len(table) == len(set(res["gold"]))
    assert table["F1"].is_monotonic_increasing  # worst first
    pairs = ev.confused_pairs(res)
    assert list(pairs.columns) == ev.PAIR_COLUMNS and pairs["rows"].is_monotonic_decreasing
    true, predicted = pairs.iloc[0, 0], pairs.iloc[0, 1]
    rows = ev.errors(res, true, predicted)
    assert len(rows) == pairs.iloc[0, 2] and set(rows["gold"]) == {true} and set(rows["predicted"]) == {predicted}
    s = ev.summary(res)
    from fewshot.app import evaluate_tab
    from fewshot.metrics import apply_score_threshold, separation

    ruled = apply_score_threshold(res["pred"], res["scores"], 1.2, "unknown")
    assert ev.answers(res) == ruled  # the automatic threshold, 1.2, is in use
    assert s["answered_unknown"] == ruled.count("unknown") and s["n_oos"] == 60
    assert 0 < s["oos_recall"] <= 1 and s["accuracy_rule"] != s["accuracy"]

    gold, pred, scores = (np.asarray(res[k]) for k in ("gold", "pred", "scores"))
    assert {k: s[k] for k in ("oos_auroc", "oos_recall_at_cost", "oos_fpr_at_95")} == separation(
        (gold == pred)[:900], scores[:900], scores[900:])  # as `fewshot evaluate --oos` reports them
    assert 0.85 < s["oos_auroc"] < 1 and s["cost"] == 0.02  # scores 2 apart in units of 0.5: AUROC about 0.92
    without = {**res, "gold": res["gold"][:900], "pred": res["pred"][:900], "scores": res["scores"][:900]}
    assert "oos_auroc" not in ev.summary(without) and ev.summary(without)["oos_recall"] is None
    only_oos = {**res, "gold": res["gold"][900:], "pred": res["pred"][900:], "scores": res["scores"][900:]}
    assert ev.summary(only_oos)["in_scope_accuracy_rule"] is None  # no in-scope row to count
    assert "in-scope accuracy n/a" in evaluate_tab.eval_metrics_md(only_oos)  # said so, not "nan%"


def test_file_labels_the_label_set_lacks_are_named_with_a_likely_match() -> None:
    from fewshot.app import evaluate_tab

    lines = evaluate_tab.file_warnings({"classes": ["lost_card", "refund"], "skipped": 0},
                            {"unseen_labels": ["Lost card", "billing"]})
    assert lines == ["⚠ labels in the file but not in your label set: Lost card (did you mean lost\\_card?), billing"]
    # (markdown-escaped: the page shows lost_card)


def test_skipped_rows_are_named_by_their_row() -> None:
    """Rows without a text or a label are named as a spreadsheet numbers the file (the first few), as the command
    line names an empty cell's row."""
    from fewshot.app import evaluate_tab
    from fewshot.app import evaluate as ev

    keep = pd.Series([True, False, True, True, False])
    assert ev.skipped_rows(keep) == {"skipped": 2, "skipped_rows": [3, 6]}
    assert ev.skipped_rows(pd.Series([False] * 8))["skipped_rows"] == [2, 3, 4, 5, 6]
    no_unseen = {"unseen_labels": []}
    assert evaluate_tab.file_warnings({"skipped": 1, "skipped_rows": [4]}, no_unseen) == [
        "⚠ 1 row(s) without text or label were skipped (row 4)"]
    assert evaluate_tab.file_warnings({"skipped": 2, "skipped_rows": [3, 6]}, no_unseen) == [
        "⚠ 2 row(s) without text or label were skipped (rows 3 and 6)"]
    assert evaluate_tab.file_warnings({"skipped": 8, "skipped_rows": [2, 3, 4, 5, 6]}, no_unseen) == [
        "⚠ 8 row(s) without text or label were skipped (rows 2, 3, 4, 5, 6 and 3 more)"]
    assert evaluate_tab.file_warnings({"skipped": 1}, no_unseen) == ["⚠ 1 row(s) without text or label were skipped"]


def test_confusion_view_stays_small_at_150_labels() -> None:
    from fewshot.app import evaluate as ev

    fig = ev.confusion_figure(synthetic_result())
    ax = fig.axes[0]
    assert len(ax.get_yticks()) == ev.TOP_CONFUSION and len(ax.get_xticks()) == ev.TOP_CONFUSION + 1  # + "(other)"
    assert ax.get_title().startswith(f"The {ev.TOP_CONFUSION} labels with most errors (of ")


def test_curve_axes_and_points() -> None:
    from fewshot.app import evaluate as ev

    res = synthetic_result()
    assert ev.axes(res)[:2] == ("oos_recall", "accuracy_kept")
    p = ev.point(res, 1.2)
    assert 0 < p["coverage"] < 1 and 0 < p["oos_recall"] <= 1
    assert ev.point(res, 100.0)["coverage"] == 0.0
    low, high, value = ev.slider_range(res)
    assert low < value == 1.2 < high
    no_oos = {**res, "gold": res["gold"][:900], "pred": res["pred"][:900], "scores": res["scores"][:900],
              "texts": res["texts"][:900], "confidence": res["confidence"][:900]}
    assert ev.axes(no_oos)[:2] == ("coverage", "answered_accuracy")
    assert "out-of-scope" not in ev.point_md(no_oos, 1.2)
    chosen = {**res, "chosen": 2.0}
    assert ev.active_threshold(chosen) == 2.0 and ev.summary(chosen)["mode"] == "chosen"


def test_report_files(tmp_path: Path) -> None:
    from fewshot.app import evaluate as ev

    res = synthetic_result()
    res["texts"][0] = "=HYPERLINK(1)"
    per_label, predictions = (Path(p) for p in ev.write_report(res, "my file.csv"))
    assert per_label.name == "my_file_per_label.csv" and predictions.name == "my_file_predictions.csv"
    rows = pd.read_csv(predictions, dtype=str, keep_default_na=False)
    assert len(rows) == 960 and rows["correct"].iloc[0] == "False"  # errors first
    assert "'=HYPERLINK(1)" in set(rows["text"])  # a spreadsheet would not run it
    assert list(pd.read_csv(per_label).columns) == ev.PER_LABEL_COLUMNS


@pytest.fixture(scope="module")
def labelled_csv(batch_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped labelled sample plus rows labelled ``unknown`` (out-of-scope texts)."""
    df = pd.read_csv(batch_csv, dtype=str, keep_default_na=False)
    df = df[(df["text"].str.strip() != "") & (df["label"].str.strip() != "")]
    extra = pd.DataFrame({"text": OUT_OF_SCOPE, "label": ["unknown"] * len(OUT_OF_SCOPE)})
    path = tmp_path_factory.mktemp("eval") / "with_unknown.csv"
    pd.concat([df[["text", "label"]], extra]).to_csv(path, index=False)
    return path


@pytest.fixture()
def session(app_url: str) -> Client:
    c = client(app_url)
    c.predict("Support tickets", api_name="/load_example")
    return c


@pytest.mark.slow
def test_evaluate_reports_tables_curve_and_report(session: Client, labelled_csv: Path) -> None:
    info = session.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/evaluate", "/eval_details", "/preview_point", "/set_operating_point", "/automatic_operating_point",
            "/finetune", "/cancel_finetune", "/undo_finetune", "/overlap_hint"} <= set(info)
    metrics, plot, wrong = session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    assert "Accuracy" in metrics and "macro-F1" in metrics  # compatible with earlier clients
    assert "With the unknown rule" in metrics and "out-of-scope recall" in metrics
    assert "For any threshold: AUROC" in metrics and "FPR@95" in metrics
    assert plot is not None and wrong["headers"] == ["text", "gold", "predicted"]
    per_label, pairs, curve, slider, point, report = session.predict(api_name="/eval_details")
    assert per_label["headers"][:5] == ["label", "F1", "precision", "recall", "n"]
    f1 = [float(r[1]) for r in per_label["data"]]
    assert f1 == sorted(f1)  # worst first
    assert pairs["headers"][:3] == ["true label", "predicted as", "rows"]
    assert curve is not None and "threshold" in point and "in-scope accuracy" in point
    low, high, value = slider["minimum"], slider["maximum"], slider["value"]
    assert low < value < high
    files = [Path(p) for p in report]
    assert sorted(p.name.split("_")[-1] for p in files) == ["label.csv", "predictions.csv"]
    rows = pd.read_csv(next(p for p in files if p.name.endswith("predictions.csv")), dtype=str, keep_default_na=False)
    assert len(rows) == len(pd.read_csv(labelled_csv)) and {"text", "gold", "predicted", "in_scope_score"} <= set(rows)
    curve2, line = session.predict(high, api_name="/preview_point")
    assert curve2 is not None and "0% of rows answered" in line  # everything below the top: all unknown
    skipped = session.predict(None, api_name="/preview_point")  # a number box emptied while typing: no error
    assert skipped == ({"__type__": "update"}, {"__type__": "update"})  # nothing changes


@pytest.mark.slow
def test_rows_skipped_and_a_missing_header_are_said_by_row(session: Client, tmp_path: Path) -> None:
    """Evaluate names the rows it skips (no true label) as the command line does, and a file without a header line
    is told to add one: in the error when no label column is found, and in the results when columns are chosen."""
    from gradio_client.utils import StatusUpdate

    blank = tmp_path / "blank_label.csv"
    blank.write_text("text,label\nI was charged twice,billing\nmy parcel never arrived,shipping\n"
                     "I cannot log in,\nplease cancel my plan,cancellation\n")
    metrics, _, _ = session.predict(handle_file(str(blank)), "text", "label", api_name="/evaluate")
    assert "on 3 rows" in metrics and "⚠ 1 row(s) without text or label were skipped (row 4)" in metrics
    bare = tmp_path / "bare.csv"
    bare.write_text("I was charged twice on my card,billing\nmy parcel never arrived,shipping\n"
                    "I cannot log in,account_access\nrefund the double payment please,billing\n")
    with pytest.raises(AppError, match=r"choose the label column.*add a header row above it, such as text,label"):
        session.predict(handle_file(str(bare)), "", "", api_name="/evaluate")
    said = ("the first line of bare.csv ('I was charged twice on my card', 'billing') is read as the column names, "
            "so it is not evaluated; if it is a row of data, add a header line above it that names the columns "
            "(such as text,label)")
    job = session.submit(handle_file(str(bare)), api_name="/eval_columns")
    job.result()
    warned = []
    while not job.communicator.updates.empty():
        update = job.communicator.updates.get_nowait()
        if isinstance(update, StatusUpdate) and update.log and update.log[1] == "warning":
            warned.append(update.log[0])
    assert warned[0] == said and "add a header" not in warned[1]  # the label column warning does not repeat it
    metrics, _, _ = session.predict(handle_file(str(bare)), "I was charged twice on my card", "billing",
                                    api_name="/evaluate")
    assert "on 3 rows" in metrics and "is read as the column names, so it is not evaluated" in metrics


def test_sliders_answer_typed_values_and_keys(app_url: str) -> None:
    """The threshold sliders (Evaluate's trade-off point, the review's confidence filter, Classify's confidence)
    answer on change: a value typed in the number box or moved with the arrow keys counts at once, not only a mouse
    release; an emptied box (None) is ignored by the handlers, not an error."""
    import json
    import urllib.request

    import gradio as gr

    from fewshot.app import classify_tab, evaluate_tab, review_tab

    with urllib.request.urlopen(app_url + "config", timeout=10) as resp:
        config = json.load(resp)
    elem = {c["id"]: c.get("props", {}).get("elem_id") for c in config["components"]}
    events = {(elem.get(t[0]), t[1]) for d in config["dependencies"] for t in d["targets"]}
    for slider in ("eval-threshold", "review-below", "classify-threshold"):
        assert (slider, "change") in events and (slider, "release") not in events, slider
    assert evaluate_tab.preview_point(None, None) == (gr.skip(), gr.skip())
    assert review_tab.review_shown(False, None, "(all labels)", None) == (gr.skip(), gr.skip(), gr.skip())
    assert classify_tab.reclassify("hello", False, None, True, "fast", {"rows": [["a", "x"], ["b", "y"]]}, None) == \
        tuple(gr.skip() for _ in range(5))


@pytest.mark.slow
def test_operating_point_is_used_by_classify_and_saved(session: Client, labelled_csv: Path, tmp_path: Path) -> None:
    from fewshot import FewShotClassifier

    session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    _, _, _, slider, _, _ = session.predict(api_name="/eval_details")
    text = "I was charged twice on my card"
    _, verdict, _ = session.predict(text, True, 0.5, api_name="/classify")
    assert verdict.startswith("### billing")
    high = float(slider["maximum"])
    summary = session.predict(high, api_name="/set_operating_point")
    assert f"{high:.2f}" in summary and "Save classifier" in summary
    _, verdict, _ = session.predict(text, True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown") and "chosen on the Evaluate tab" in verdict
    _, verdict_off, _ = session.predict(text, False, 0.0, api_name="/classify")  # the user's own rule still wins
    assert verdict_off.startswith("### billing")
    zip_path = session.predict(api_name="/save_classifier")
    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(tmp_path)
    loaded = FewShotClassifier.load(next(p.parent for p in tmp_path.rglob("config.json")))
    assert math.isclose(loaded.config.score_threshold, high, rel_tol=1e-9)
    summary = session.predict(api_name="/automatic_operating_point")
    assert "automatic" in summary
    _, verdict, _ = session.predict(text, True, 0.5, api_name="/classify")
    assert verdict.startswith("### billing")
    with pytest.raises(AppError, match="(?i)threshold|maximum"):  # outside the evaluated range
        session.predict(500.0, api_name="/set_operating_point")


@pytest.mark.slow
def test_operating_point_is_per_session(app_url: str, session: Client, labelled_csv: Path) -> None:
    session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    session.predict(99.0, api_name="/set_operating_point")
    other = client(app_url)
    other.predict("Support tickets", api_name="/load_example")
    _, verdict, _ = other.predict("I was charged twice on my card", True, 0.5, api_name="/classify")
    assert verdict.startswith("### billing")


@pytest.mark.slow
def test_operating_point_of_an_earlier_label_set_is_refused(session: Client, labelled_csv: Path) -> None:
    """A threshold chosen on results about an earlier label set (another example since, multi-label ticked) is
    refused with one message, and Classify keeps answering as before; evaluated again, it applies."""
    text = "I was charged twice on my card"
    session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    _, _, _, slider, _, _ = session.predict(api_name="/eval_details")
    high = float(slider["maximum"])  # above every score: everything would be answered unknown
    session.predict("billing", "my card was debited two times", api_name="/add_examples")
    with pytest.raises(AppError, match="earlier label set.*Evaluate again"):
        session.predict(high, api_name="/set_operating_point")
    _, verdict, _ = session.predict(text, True, 0.5, api_name="/classify")
    assert verdict.startswith("### billing")  # nothing stale was applied
    session.predict(True, api_name="/set_multi_label")
    with pytest.raises(AppError, match="single-label classifiers"):
        session.predict(high, api_name="/set_operating_point")
    session.predict(False, api_name="/set_multi_label")
    session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    _, _, _, slider, _, _ = session.predict(api_name="/eval_details")
    assert f"{float(slider['maximum']):.2f}" in session.predict(float(slider["maximum"]),
                                                                 api_name="/set_operating_point")
    _, verdict, _ = session.predict(text, True, 0.5, api_name="/classify")
    assert verdict.startswith("### unknown")


@pytest.mark.slow
def test_eval_details_before_evaluate_says_what_to_do(app_url: str) -> None:
    with pytest.raises(AppError, match="evaluate a labelled CSV first"):
        client(app_url).predict(api_name="/eval_details")


@pytest.mark.slow
def test_finetune_undo_and_cancel_over_http(app_url: str, session: Client) -> None:
    text = "my parcel never arrived and the tracking is stuck"
    other = client(app_url)
    other.predict("Support tickets", api_name="/load_example")
    before, _, _ = other.predict(text, False, 0.0, api_name="/classify")
    hint = session.predict(api_name="/overlap_hint")
    assert "overlap" in hint or "well separated" in hint
    result = session.predict(10, api_name="/finetune")
    assert "Fine-tuned" in result or "Kept the instant classifier" in result
    assert "Classifier:" in result
    bars, _, _ = session.predict(text, False, 0.0, api_name="/classify")
    assert bars["label"] in {"shipping", "cancellation", "technical_issue", "billing", "account_access"}
    after, _, _ = other.predict(text, False, 0.0, api_name="/classify")
    assert after == before  # another session's classifier (and the shared encoder) is untouched
    if "Fine-tuned" in result:  # the saved classifier carries the adapted weights
        with zipfile.ZipFile(session.predict(api_name="/save_classifier")) as zf:
            assert any(n.endswith("finetune.safetensors") for n in zf.namelist())
    undone = session.predict(api_name="/undo_finetune")
    assert "instant" in undone
    job = session.submit(120, api_name="/finetune")
    time.sleep(3.0)  # the run has started (a cancel before it starts is not kept for the next run)
    session.predict(api_name="/cancel_finetune")
    started = time.monotonic()
    result = job.result(timeout=300)
    assert "Cancelled" in result and "instant" in result
    assert time.monotonic() - started < 100  # stopped well before its 120 s budget
    with pytest.raises(AppError, match="(?i)budget|minimum"):
        session.predict(1, api_name="/finetune")


def test_results_about_an_earlier_label_set_are_marked_and_their_threshold_refused() -> None:
    """Classify's answer, Batch's summary and Evaluate's results record the label set they are about; after a change
    (another example, multi-label ticked) they are marked, Undo back to that label set unmarks them, and a
    threshold from stale, multi-label or other-encoder results is never applied."""
    import gradio as gr

    from fewshot.app import batch_tab, classify_tab, evaluate_tab
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st

    before = st.with_rows(st.empty_state(), [["billing", "charged twice"], ["bug", "the app crashes"]])
    after = st.with_rows(before, [*st.state_rows(before), ["bug", "error 500"]])
    multi = edits.set_multi_label(before, True)
    about = st.label_set_id(before)
    assert len({about, st.label_set_id(after), st.label_set_id(multi)}) == 3
    verdict = "### billing\n91% confident"
    marked = classify_tab.verdict_freshness(after, verdict, {"text": "x", "label_set": about})
    assert marked.startswith(classify_tab.OLD_SET_VERDICT) and marked.endswith(verdict)
    assert classify_tab.verdict_freshness(multi, verdict, {"text": "x", "label_set": about}).startswith(
        classify_tab.OLD_SET_VERDICT)
    assert classify_tab.verdict_freshness(before, marked,
                                          {"text": "x", "label_set": about}) == verdict  # Undo back: unmarked
    assert classify_tab.verdict_freshness(before, verdict, {"text": "x", "label_set": about}) == gr.skip()
    edited = classify_tab.STALE_NOTE + marked  # also edited since: both marks, each taken out on its own
    assert classify_tab.verdict_freshness(before, edited, {"text": "x", "label_set": about}) == (
        classify_tab.STALE_NOTE + verdict)
    summary = "**tickets.csv: 3 rows labelled.**"
    assert batch_tab.batch_freshness(after, summary, {"rows": [], "label_set": about}).startswith(
        batch_tab.OLD_SET_BATCH)
    assert batch_tab.batch_freshness(before, summary, {"rows": [], "label_set": about}) == gr.skip()
    res = {**synthetic_result(5), "label_set": about, "tier": "fast"}
    metrics, point, in_use, *_ = evaluate_tab.eval_freshness(after, "**Accuracy 90%**", "threshold 1.20: …", res)
    assert (metrics.startswith(evaluate_tab.OLD_SET_EVAL) and point.startswith(evaluate_tab.OLD_SET_POINT)
            and in_use == "")
    assert evaluate_tab.eval_freshness(before, "**Accuracy 90%**", "", res) == (gr.skip(),) * 5
    assert evaluate_tab.preview_point(1.2, res, after)[1].startswith(evaluate_tab.OLD_SET_POINT)
    assert evaluate_tab.eval_refresh(res, multi)[0].startswith(evaluate_tab.OLD_SET_EVAL)
    with pytest.raises(gr.Error, match="earlier label set"):
        evaluate_tab.set_operating_point(1.2, True, "fast", after, None, res)
    with pytest.raises(gr.Error, match="single-label classifiers"):
        evaluate_tab.set_operating_point(1.2, True, "fast", multi, None, res)
    with pytest.raises(gr.Error, match="single-label classifiers"):
        evaluate_tab.set_operating_point(1.2, True, "fast", before, None, {**res, "multi": True})
    from fewshot.errors import FewShotError

    with pytest.raises(FewShotError, match="measured with the accurate encoder"):
        evaluate_tab.check_operating_point({**res, "tier": "accurate"}, before, "fast")
    with pytest.raises(gr.Error, match="evaluate a labelled CSV first"):
        evaluate_tab.set_operating_point(1.2, True, "fast", before, None, None)
    evaluate_tab.check_operating_point(res, before, "fast")  # the current label set and encoder: allowed


def test_a_refit_keeps_the_threshold_when_only_int8_changes_and_says_what_it_drops() -> None:
    from types import SimpleNamespace

    from fewshot.app import session_classifier as sc
    from fewshot.app import state as st

    class Clf:
        def __init__(self, threshold: float | None = None, finetuned: object = None) -> None:
            self.config = SimpleNamespace(score_threshold=threshold)
            self.finetuned_ = finetuned

        def set_params(self, **kw: object) -> None:
            self.config.score_threshold = kw["score_threshold"]

    state = st.with_rows(st.empty_state(), [["billing", "charged twice"], ["bug", "the app crashes"]])
    a = st.label_set_id(state)
    state = st.with_point(state, 6.0, "fast")  # the point lives in the state; a refit applies it (fitted_classifier)
    old = sc.Fitted("k", Clf(6.0), int8=False, label_set=a, tier="fast")
    assert sc._carried(old, state, a, "fast", True) == ""  # int8 only: kept, nothing to say
    assert st.point_in_use(state, "fast") == 6.0
    note = sc._carried(old, state, a, "accurate", False)  # another encoder model: not applied, and said
    assert st.point_in_use(state, "accurate") is None and "6.00 was chosen with the fast encoder" in note
    assert sc._carried(old, state, "B" * 64, "fast", True) == ""  # a new label set
    tuned = sc.Fitted("k", Clf(None, finetuned=object()), int8=False, label_set=a, tier="fast")
    assert "fine-tuning was made with the fast encoder" in sc._carried(tuned, state, a, "fast", True)


def test_finetune_panel_messages() -> None:
    from types import SimpleNamespace

    import gradio as gr

    from fewshot.adapt import FinetuneReport
    from fewshot.app import finetune as ft
    from fewshot.app import label_edits as edits
    from fewshot.app import state as st

    kept = SimpleReport(False, False, 0.914, 0.914,
                        "no gain expected (estimated accuracy 91.4% before, best 91.4% after)")
    line = ft.report_md(kept, None).split("  \n")[0]
    assert line == ("**Kept the instant classifier**: no gain expected (estimated accuracy 91.4% before, best 91.4% "
                    "after).")  # said once
    late = SimpleReport(False, False, 0.8, None, "out of time before the first step")
    assert ft.report_md(late, None).split("  \n")[0] == ("**Kept the instant classifier**: out of time before the "
                                                         "first step (estimated accuracy 80% before).")
    earlier = FinetuneReport(steps=5, seconds=3.0, estimate_before=0.8, estimate_after=0.9, kept=True)
    tuned = SimpleNamespace(clf=SimpleNamespace(finetuned_=earlier))  # a second run, after one that was kept
    assert ft.report_md(kept, tuned).startswith("**Kept the earlier fine-tuning**: no gain expected (estimated")
    flag = ft.CancelFlag()
    assert ft.cancel_finetune(flag) == gr.skip() and not flag.event.is_set()  # no run: nothing changes on screen
    flag.running.set()
    assert ft.cancel_finetune(flag).startswith("Cancelling") and flag.event.is_set()
    single = st.with_rows(st.empty_state(), [["a", "x"], ["b", "y"]])
    multi = edits.set_multi_label(single, True)
    assert ft.starting(30, single) == ft.STARTING
    with pytest.raises(gr.Error, match="single-label label sets"):
        ft.starting(30, multi)
    with pytest.raises(gr.Error, match="at least 2 labels"):
        ft.starting(30, st.with_rows(single, [["a", "x"]]))
    with pytest.raises(gr.Error, match="single-label label sets"):
        ft.run_finetune(30, True, "fast", multi, None, flag)
    assert ft.auto_hint(True, "fast", multi, None)[0] == ft.MULTI_NOTE  # no single-label verdict in multi-label mode
    assert ft.auto_hint(True, "fast", st.with_rows(single, [["a", "x"]]), None)[0] == ""  # an old hint goes
    assert [b.interactive for b in ft.panel_mode(multi)] == [False] * 4  # Cancel too, and not red
    assert [b.interactive for b in ft.panel_mode(single)] == [True] * 4
    assert ft.panel_mode(multi)[1].variant == "secondary" and ft.panel_mode(single)[1].variant == "stop"


class SimpleReport:
    def __init__(self, cancelled: bool, kept: bool, before: float | None, after: float | None, reason: str) -> None:
        self.cancelled, self.kept, self.estimate_before, self.estimate_after = cancelled, kept, before, after
        self.reason = reason


def test_results_made_with_the_other_encoder_are_marked() -> None:
    """Evaluate's results and Batch's answers record the encoder they were made with: on the other one they are
    marked (as results of an earlier label set are), and back on it the marks go."""
    import gradio as gr

    from fewshot.app import batch_tab, evaluate_tab, ui
    from fewshot.app import state as st

    state = st.with_rows(st.empty_state(), [["billing", "charged twice"], ["bug", "the app crashes"]])
    res = {**synthetic_result(5), "label_set": st.label_set_id(state), "tier": "fast"}
    metrics, point, in_use, *_ = evaluate_tab.eval_freshness(state, "**Accuracy 90%**", "threshold 1.20: …", res,
                                                             "accurate")
    assert metrics.startswith(ui.other_tier_note("fast", "eval")) and "made with the fast encoder" in metrics
    assert point.startswith(ui.other_tier_note("fast", "point")) and in_use == ""
    back = evaluate_tab.eval_freshness(state, metrics, point, res, "fast")
    assert back[:2] == ("**Accuracy 90%**", "threshold 1.20: …")
    summary = "**tickets.csv: 3 rows labelled.**"
    batch = {"rows": [], "label_set": st.label_set_id(state), "tier": "accurate"}
    marked = batch_tab.batch_freshness(state, summary, batch, "fast")
    assert marked.startswith(ui.other_tier_note("accurate", "batch")) and marked.endswith(summary)
    assert batch_tab.batch_freshness(state, marked, batch, "accurate") == summary
    assert batch_tab.batch_freshness(state, summary, batch, "accurate") == gr.skip()


def test_the_chosen_threshold_is_kept_with_its_label_set() -> None:
    """*Use this threshold* keeps the point in the label-set state: it survives a reload (the browser copy,
    validated), an example added then undone, and an encoder round trip; another label set does not get it, and
    Evaluate says the threshold really in use."""
    from helpers import support_frame

    from fewshot.app import browser, evaluate_tab, labels_tab
    from fewshot.app import label_edits as edits
    from fewshot.app import session_classifier as sc
    from fewshot.app import state as st

    state = st.with_rows(st.empty_state(), [[lab, t] for t, lab in support_frame().itertuples(index=False)])
    fit = sc.fitted_classifier(state, None)
    res = {**synthetic_result(5), "label_set": fit.label_set, "tier": "fast"}
    _, fit, res, chosen = evaluate_tab.set_operating_point(1.5, True, "fast", state, fit, res)
    assert st.point_in_use(chosen, "fast") == 1.5 and st.point_in_use(chosen, "accurate") is None
    # a page reload: the browser copy comes back (and a crafted point is dropped)
    saved = labels_tab.persist(chosen)[0]
    restored, why = browser.restored_state(saved)
    assert not why and sc.fitted_classifier(restored, None).clf.config.score_threshold == 1.5
    for bad in ({"threshold": 1e9, "label_set": fit.label_set, "tier": "fast"}, {"threshold": "x"}, [1], "p",
                {"threshold": 1.0, "label_set": fit.label_set, "tier": "huge"}):
        assert "point" not in browser.restored_state({**saved, "point": bad})[0]
    # an example added: another label set, automatic; undone: the point applies again
    added, _ = edits.add_examples(chosen, "billing", "refund my order please")
    other = sc.fitted_classifier(added, fit)
    assert other.clf.config.score_threshold is None
    undone = st.undo(added)
    assert sc.fitted_classifier(undone, other).clf.config.score_threshold == 1.5
    # the encoder's int8 switch keeps it; fast -> accurate -> fast comes back to it
    assert sc.fitted_classifier(undone, fit, int8=True).clf.config.score_threshold == 1.5
    assert st.point_in_use(undone, "accurate") is None and st.point_in_use(undone, "fast") == 1.5
    # Evaluate says what is in use: results showing the point, on a state without it, show the automatic one
    metrics, _, in_use, _, now = evaluate_tab.eval_freshness(added, "m", "p", {**res, "chosen": 1.5}, "fast")
    assert evaluate_tab.OLD_SET_EVAL in metrics  # about an earlier label set
    auto_state = st.with_point(undone, None, "fast")
    metrics, _, in_use, curve, now = evaluate_tab.eval_freshness(auto_state, "m", "p", {**res, "chosen": 1.5}, "fast")
    assert now["chosen"] is None and "chosen on this tab" not in metrics and "automatic" in in_use
    assert curve is not None


def test_a_cancelled_fine_tune_is_said_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The panel says a run was cancelled; no toast repeats it."""
    from types import SimpleNamespace

    import gradio as gr

    from fewshot.app import ui
    from fewshot.app import finetune as ft
    from fewshot.app import session_classifier as sc
    from fewshot.app import state as st

    said: list[str] = []
    monkeypatch.setattr(gr, "Info", lambda msg, *a, **k: said.append(msg))
    report = SimpleReport(True, False, None, None, "")
    clf = SimpleNamespace(finetune=lambda *a, **k: report, finetuned_=None)
    fit = sc.Fitted("k", clf)  # type: ignore[arg-type]
    monkeypatch.setattr(ui, "fitted", lambda *a, **k: fit)
    state = st.with_rows(st.empty_state(), [["billing", "charged twice"], ["bug", "the app crashes"]])
    text, _ = ft.run_finetune(30, False, "fast", state, fit, ft.CancelFlag(), progress=lambda *a, **k: None)
    assert text.count("Cancelled") == 1 and not said
