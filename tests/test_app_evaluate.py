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

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

OUT_OF_SCOPE = ["what a lovely sunset over the sea", "recommend me a good pizza recipe",
                "who won the football match yesterday", "how tall is mount everest",
                "tell me a joke about cats", "what is the capital of australia"]


def client(url: str) -> Client:
    return Client(url, verbose=False, download_files=True)


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


def test_evaluate_reports_tables_curve_and_report(session: Client, labelled_csv: Path) -> None:
    info = session.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/evaluate", "/eval_details", "/preview_point", "/set_operating_point", "/automatic_operating_point",
            "/finetune", "/cancel_finetune", "/undo_finetune", "/overlap_hint"} <= set(info)
    metrics, plot, wrong = session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    assert "Accuracy" in metrics and "macro-F1" in metrics  # compatible with earlier clients
    assert "With the unknown rule" in metrics and "out-of-scope recall" in metrics
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


def test_operating_point_is_per_session(app_url: str, session: Client, labelled_csv: Path) -> None:
    session.predict(handle_file(str(labelled_csv)), "text", "label", api_name="/evaluate")
    session.predict(99.0, api_name="/set_operating_point")
    other = client(app_url)
    other.predict("Support tickets", api_name="/load_example")
    _, verdict, _ = other.predict("I was charged twice on my card", True, 0.5, api_name="/classify")
    assert verdict.startswith("### billing")


def test_eval_details_before_evaluate_says_what_to_do(app_url: str) -> None:
    with pytest.raises(AppError, match="evaluate a labelled CSV first"):
        client(app_url).predict(api_name="/eval_details")


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
