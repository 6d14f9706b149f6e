"""The `fewshot` command: classify, evaluate, fit, info and one-line errors (exit 2) for bad input."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from fewshot.cli import main
from helpers import QUERIES, SHARED_DATA, needs_mpnet, write_support

ENV = {**os.environ, "FEWSHOT_MODEL": "minilm", "FEWSHOT_NO_PROGRESS": ""}


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fewshot.cli", *args], capture_output=True, text=True,
                          env=ENV, timeout=300, input=stdin)


@pytest.fixture()
def support(tmp_path: Path) -> Path:
    return write_support(tmp_path / "support.csv")


@pytest.fixture()
def queries(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(QUERIES)), "text": [q for q, _ in QUERIES],
                  "note": ["=cmd()", "x", "", "y"]}).to_csv(path, index=False)
    return path


def test_classify_keeps_every_column_and_shows_progress(support: Path, queries: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    res = run_cli("classify", "--support", str(support), "--input", str(queries), "--output", str(out),
                  "--model", "minilm")
    assert res.returncode == 0, res.stderr
    assert "classifying" in res.stderr and "100%" in res.stderr  # the progress bar
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == ["id", "text", "note", "label", "confidence", "top_3", "in_scope_score"]
    assert df["label"].tolist() == [g for _, g in QUERIES]
    assert df["id"].tolist() == list(range(len(QUERIES)))
    assert ((df["confidence"] > 0) & (df["confidence"] <= 1)).all()


def test_classify_streams_in_chunks_and_renames_clashing_columns(support: Path, tmp_path: Path) -> None:
    path = tmp_path / "labelled.csv"
    texts = [q for q, _ in QUERIES] * 5
    pd.DataFrame({"text": texts, "label": ["gold"] * len(texts)}).to_csv(path, index=False)
    out = tmp_path / "out.csv"
    assert main(["classify", "--support", str(support), "--input", str(path), "--output", str(out),
                 "--chunk-size", "3", "--model", "minilm"]) == 0
    df = pd.read_csv(out)
    assert len(df) == len(texts)
    assert list(df.columns) == ["text", "label", "predicted_label", "predicted_confidence", "predicted_top_3",
                                "predicted_in_scope_score"]
    assert df["predicted_label"].tolist() == [g for _, g in QUERIES] * 5


def test_classify_reads_standard_input_and_writes_standard_output(support: Path, tmp_path: Path) -> None:
    """``--input -`` / ``--output -`` for pipes: the CSV alone on stdout, progress and notes on stderr; errors
    name standard input, not its temporary copy."""
    rows = "id,text\n1,where is my refund\n2,my card is lost\n"
    done = run_cli("classify", "--support", str(support), "--input", "-", "--output", "-", stdin=rows)
    assert done.returncode == 0, done.stderr
    out = pd.read_csv(io.StringIO(done.stdout))
    assert list(out.columns) == ["id", "text", "label", "confidence", "top_3", "in_scope_score"]
    assert out["label"].tolist() == ["refund", "lost_card"]
    assert "wrote 2 rows to standard output" in done.stderr
    to_file = tmp_path / "out.csv"
    assert run_cli("classify", "--support", str(support), "--input", "-", "--output", str(to_file),
                   stdin=rows).returncode == 0
    assert pd.read_csv(to_file)["label"].tolist() == ["refund", "lost_card"]
    empty = run_cli("classify", "--support", str(support), "--input", "-", "--output", "-", stdin="")
    assert empty.returncode == 2 and "standard input is empty" in empty.stderr and "stdin.csv" not in empty.stderr
    ray = run_cli("classify", "--support", str(support), "--input", "-", "--output", "-", "--engine", "ray",
                  stdin=rows)
    assert ray.returncode == 2 and "works with the local engine" in ray.stderr


def test_classify_text_prints_a_table_of_answers(support: Path, capsys) -> None:
    """``--text`` (repeatable) classifies texts given on the command line and prints answer, confidence, text;
    an unknown answer names its nearest label; the file-only options are refused by name."""
    args = ["classify", "--support", str(support), "--model", "minilm"]
    assert main([*args, *(f"--text={q}" for q, _ in QUERIES)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["answer", "confidence", "text"] and len(lines) == len(QUERIES) + 1
    for line, (text, gold) in zip(lines[1:], QUERIES):
        assert line.split()[0] == gold and line.endswith(text) and 0 < float(line.split()[1]) <= 1
    assert main([*args, "--auto-unknown", "--text", "what is the capital of france"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("unknown (nearest: ") and last.endswith("what is the capital of france")
    assert main([*args, "--text", "where is my refund", "--output", "out.csv"]) == 2
    assert "--text prints its answers; --output works with --input" in capsys.readouterr().err
    assert main(["classify", "--support", str(support), "--input", str(support)]) == 2
    assert "--output is required with --input" in capsys.readouterr().err


def test_classify_notes_texts_longer_than_the_encoder_reads(support: Path, tmp_path: Path, capsys) -> None:
    """Rows past the encoder's 256 word pieces are counted over every chunk, in one note."""
    path, out = tmp_path / "long.csv", tmp_path / "out.csv"
    long = "my card was stolen yesterday and " * 60
    pd.DataFrame({"text": ["where is my refund", long, "my card is lost", long, ""]}).to_csv(path, index=False)
    assert main(["classify", "--support", str(support), "--input", str(path), "--output", str(out),
                 "--chunk-size", "2", "--model", "minilm"]) == 0
    err = capsys.readouterr().err
    assert "2 texts are longer than the encoder reads (256 word pieces" in err
    assert "\nanswers: " in err  # what the file was answered: 4 texts, the blank row not counted
    line = next(x for x in err.splitlines() if x.startswith("answers: "))
    assert sum(int(part.rsplit(" ", 1)[1]) for part in line[len("answers: "):].split(" · ")) == 4


BAKING = ["what is a good recipe for banana bread", "how do I bake sourdough bread at home",
          "best recipe for chocolate chip cookies", "how long should I bake a lemon cake"]


def test_classify_writes_the_groups_of_similar_unknown_rows(support: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "batch.csv"
    texts = [q for q, _ in QUERIES[:2]] + BAKING[:3] + [q for q, _ in QUERIES[2:]] + BAKING[3:]
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    out, groups = tmp_path / "out.csv", tmp_path / "groups.csv"
    assert main(["classify", "--support", str(support), "--input", str(path), "--output", str(out), "--auto-unknown",
                 "--groups", str(groups), "--chunk-size", "2", "--model", "minilm"]) == 0
    found = pd.read_csv(groups)
    assert list(found.columns) == ["group", "size", "row", "answered", "text"]
    baking = found[found.group == found.group[found.text == BAKING[0]].iloc[0]]
    assert sorted(baking.row) == [4, 5, 6, 9]  # rows as a spreadsheet numbers them (1 = the header), across chunks
    assert sorted(baking.text) == sorted(BAKING) and set(baking.answered) == {"unknown"}
    assert set(found.text) <= set(texts)
    labelled = pd.read_csv(out, keep_default_na=False)
    assert (labelled.label[labelled.text.isin(BAKING)] == "unknown").all()
    assert "1 group(s)" in capsys.readouterr().err
    assert main(["classify", "--support", str(support), "--input", str(path), "--output", str(out),
                 "--groups", str(groups), "--model", "minilm"]) == 0  # no unknown answers: no group, and why
    assert pd.read_csv(groups).empty and "no row was answered unknown" in capsys.readouterr().err
    apart = tmp_path / "apart.csv"  # unknown answers, none alike: no group, and why
    pd.DataFrame({"text": [QUERIES[0][0], BAKING[0], "what is the capital of france"]}).to_csv(apart, index=False)
    assert main(["classify", "--support", str(support), "--input", str(apart), "--output", str(out), "--auto-unknown",
                 "--groups", str(groups), "--model", "minilm"]) == 0
    assert pd.read_csv(groups).empty and "no 3 are alike: " in capsys.readouterr().err
    for extra, message in ((["--groups", str(out)], "other than --input and --output"),
                           (["--groups", str(tmp_path / "no" / "g.csv")], "does not exist"),
                           (["--groups", str(groups), "--engine", "ray"], "local engine")):
        assert main(["classify", "--support", str(support), "--input", str(path), "--output", str(out), *extra]) == 2
        assert message in capsys.readouterr().err


def test_classify_batch_aware_reads_the_whole_file_together(support: Path, tmp_path: Path, capsys) -> None:
    path = tmp_path / "batch.csv"
    texts = [f"{q} ({i})" for i in range(8) for q, _ in QUERIES] + [f"{b} ({i})" for i in range(6) for b in BAKING]
    pd.DataFrame({"text": texts}).to_csv(path, index=False)
    plain, chunked, whole = (tmp_path / f"{name}.csv" for name in ("plain", "chunked", "whole"))
    common = ["classify", "--support", str(support), "--input", str(path), "--auto-unknown", "--model", "minilm"]
    assert main([*common, "--output", str(plain)]) == 0
    assert main([*common, "--output", str(chunked), "--batch-aware", "--chunk-size", "2"]) == 0
    assert main([*common, "--output", str(whole), "--batch-aware"]) == 0
    plain, chunked, whole = (pd.read_csv(p, keep_default_na=False) for p in (plain, chunked, whole))
    pd.testing.assert_frame_equal(chunked, whole)  # one reading of the whole file, whatever the chunk size
    changed = whole.label != plain.label  # to or from unknown, never one label for another
    assert ((whole.label[changed] == "unknown") | (plain.label[changed] == "unknown")).all()
    baking = whole.text.str.startswith(tuple(BAKING))  # a topic no example covers, asked 6 times over
    assert (whole.label[baking] == "unknown").sum() >= (plain.label[baking] == "unknown").sum()
    asked = whole.text.str.startswith(tuple(q for q, _ in QUERIES))  # in scope, each asked 8 times over
    gold = dict(QUERIES)
    right = [gold[t.rsplit(" (", 1)[0]] for t in whole.text[asked]]
    # copies are one text, not a new intent: none is answered unknown anew; an answer that changed is the right label
    assert (whole.label[asked] == "unknown").sum() <= (plain.label[asked] == "unknown").sum()
    assert ((whole.label[asked] == plain.label[asked]) | (whole.label[asked] == right)).all()
    err = capsys.readouterr().err
    assert f"wrote {len(texts):,} rows" in err and "too few for a topic" not in err
    gaps = tmp_path / "gaps.csv"  # 56 rows, but only 46 texts: too few to read together, and said so
    pd.DataFrame({"text": texts[:46] + [""] * 10}).to_csv(gaps, index=False)
    assert main([*common[:4], str(gaps), *common[5:], "--output", str(tmp_path / "g.csv"), "--batch-aware"]) == 0
    assert "fewer than 50 texts, too few for a topic to repeat" in capsys.readouterr().err
    for extra, message in ((["--engine", "ray"], "local engine"), (["--multi-label"], "multi-label")):
        assert main([*common, "--output", str(tmp_path / "x.csv"), "--batch-aware", *extra]) == 2
        assert message in capsys.readouterr().err


def test_evaluate_json(support: Path, tmp_path: Path, capsys) -> None:
    test = tmp_path / "test.csv"
    pd.DataFrame(QUERIES, columns=["text", "label"]).to_csv(test, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--json", "--model", "minilm"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["accuracy"] == 1.0 and result["n"] == 4 and result["unseen_labels"] == []
    assert result["skipped_rows"] == []
    for key in ("macro_f1", "fit_seconds", "predict_seconds", "per_label_f1", "counts"):
        assert key in result
    gaps = tmp_path / "gaps.csv"  # rows with no text are skipped, and said so, as the app's Evaluate does
    pd.DataFrame([*QUERIES[:2], ("", "refund"), *QUERIES[2:], (" ", "")], columns=["text", "label"]).to_csv(gaps,
                                                                                                          index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(gaps), "--json", "--model", "minilm"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["n"] == 4 and json.loads(out.out)["skipped_rows"] == [4, 7]
    assert "skipped 2 rows of gaps.csv with an empty 'text' cell (row 4, 7): nothing to classify" in out.err
    empty = tmp_path / "empty.csv"
    pd.DataFrame({"text": ["", " "], "label": ["refund", "refund"]}).to_csv(empty, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(empty), "--model", "minilm"]) == 2
    assert "is empty on every row; there is nothing to classify" in capsys.readouterr().err


def test_evaluate_writes_the_operating_curve_whose_thresholds_classify_takes(support: Path, queries: Path,
                                                                             tmp_path: Path, capsys) -> None:
    """``--curve``: a row per threshold over the test rows and the --oos texts; the automatic one marked; a row's
    threshold given to ``classify --score-threshold`` answers as the row says."""
    test, oos, curve_path = tmp_path / "test.csv", tmp_path / "oos.csv", tmp_path / "curve.csv"
    pd.DataFrame(QUERIES, columns=["text", "label"]).to_csv(test, index=False)
    pd.DataFrame({"text": ["the weather on mars", "a recipe for pancakes"]}).to_csv(oos, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--oos", str(oos), "--model", "minilm",
                 "--curve", str(curve_path)]) == 0
    assert "wrote the operating curve" in capsys.readouterr().err
    curve = pd.read_csv(curve_path)
    assert list(curve.columns)[:6] == ["threshold", "coverage", "accuracy_kept", "answered_accuracy", "oos_recall",
                                       "accuracy"]
    assert curve["automatic"].sum() == 1 and curve["threshold"].is_monotonic_increasing
    assert curve["coverage"].iloc[0] == 1.0 and curve["coverage"].iloc[-1] == 0.0  # from all answered to none
    row = curve[curve["oos_recall"] == 1.0].iloc[0]  # the cheapest threshold that catches both out-of-scope texts
    both = tmp_path / "both.csv"
    pd.concat([pd.read_csv(test)[["text"]], pd.read_csv(oos)]).to_csv(both, index=False)
    out = tmp_path / "out.csv"
    assert main(["classify", "--support", str(support), "--input", str(both), "--output", str(out), "--model",
                 "minilm", "--score-threshold", repr(float(row["threshold"]))]) == 0
    labels = pd.read_csv(out)["label"]
    assert (labels.iloc[-2:] == "unknown").all()
    assert (labels != "unknown").mean() == pytest.approx(row["coverage"], abs=1e-4)


def test_evaluate_names_test_labels_no_example_has(support: Path, tmp_path: Path, capsys) -> None:
    test = tmp_path / "test.csv"
    rows = QUERIES + [("I was billed twice", "billing"), ("charged two times", "billing"), ("hello", "unknown"),
                      ("give my money back", " Refund")]  # the name of a label but for case and spacing
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(test, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--json", "--model", "minilm"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["unseen_labels"] == ["Refund", "billing"]  # spaces around a label are not part of it
    assert "that no example has: 'Refund' (1 row; did you mean 'refund'?), 'billing' (2 rows); their rows can " \
           "only be answered wrong" in out.err


def test_fit_then_classify_from_folder(support: Path, queries: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clf"
    assert main(["fit", "--support", str(support), "--out", str(folder), "--model", "minilm"]) == 0
    out = tmp_path / "out.csv"
    assert main(["classify", "--classifier", str(folder), "--input", str(queries), "--output", str(out)]) == 0
    assert pd.read_csv(out)["label"].tolist() == [g for _, g in QUERIES]


def test_fit_to_a_zip_then_classify_from_it(support: Path, queries: Path, tmp_path: Path, capsys) -> None:
    """``fit --out x.zip`` writes the folder zipped (what the app's Load classifier takes); ``--classifier`` takes
    such a zip, as the app's Save classifier writes it; ``--no-auto-unknown`` turns off a saved automatic unknown."""
    zipped = tmp_path / "clf.zip"
    assert main(["fit", "--support", str(support), "--out", str(zipped), "--model", "minilm", "--auto-unknown"]) == 0
    out = tmp_path / "out.csv"
    odd = tmp_path / "odd.csv"
    odd.write_text("text\nwhat is the capital of france\n")
    assert main(["classify", "--classifier", str(zipped), "--input", str(odd), "--output", str(out)]) == 0
    assert pd.read_csv(out)["label"].tolist() == ["unknown"]
    for rows, gold in ((odd, None), (queries, [g for _, g in QUERIES])):
        assert main(["classify", "--classifier", str(zipped), "--input", str(rows), "--output", str(out),
                     "--no-auto-unknown"]) == 0
        labels = pd.read_csv(out)["label"].tolist()
        assert labels == gold if gold else "unknown" not in labels
    capsys.readouterr()
    assert main(["classify", "--classifier", str(queries), "--input", str(queries), "--output", str(out)]) == 2
    assert "in.csv is a file, not a saved classifier: give the folder" in capsys.readouterr().err


def test_extra_layers_option_is_saved_with_the_classifier(support: Path, queries: Path, tmp_path: Path) -> None:
    for value, dim in (("none", 384), ("2,4", 3 * 384)):
        folder = tmp_path / value
        assert main(["fit", "--support", str(support), "--out", str(folder), "--model", "minilm",
                     "--extra-layers", value]) == 0
        saved = json.loads((folder / "config.json").read_text())
        assert saved["encoder"]["dim"] == dim and saved["config"]["extra_layers"] == saved["encoder"]["extra_layers"]
        out = tmp_path / f"{value}.csv"  # reloads with the same layers: the saved vectors are reused
        assert main(["classify", "--classifier", str(folder), "--input", str(queries), "--output", str(out)]) == 0
        assert pd.read_csv(out)["label"].tolist() == [g for _, g in QUERIES]
    res = run_cli("evaluate", "--support", str(support), "--test", str(support), "--extra-layers", "four")
    assert res.returncode == 2 and "expected 'auto', 'none' or layer numbers" in res.stderr


def test_custom_columns(tmp_path: Path, capsys) -> None:
    sup = tmp_path / "s.csv"
    pd.DataFrame({"utterance": ["hi there", "hello", "bye now", "see you"],
                  "intent": ["greet", "greet", "bye", "bye"]}).to_csv(sup, index=False)
    assert main(["evaluate", "--support", str(sup), "--test", str(sup), "--json", "--text-column", "utterance",
                 "--label-column", "intent", "--model", "minilm"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0


def test_columns_named_like_text_and_label(tmp_path: Path, capsys) -> None:
    """A file headed Text,Label or utterance,intent reads as it is (a note names a column of another word); one
    whose first row is data is refused with a hint to add a header."""
    rows = {"hi there": "greet", "hello": "greet", "bye now": "bye", "see you": "bye"}
    caps, words, headless = tmp_path / "caps.csv", tmp_path / "words.csv", tmp_path / "headless.csv"
    pd.DataFrame({"Text ": list(rows), "Label": list(rows.values())}).to_csv(caps, index=False)
    pd.DataFrame({"id": range(4), "intent": list(rows.values()), "utterance": list(rows)}).to_csv(words, index=False)
    pd.DataFrame({"hi there friend": ["hello", "bye now"], "greet": ["greet", "bye"]}).to_csv(headless, index=False)
    assert main(["evaluate", "--support", str(caps), "--test", str(words), "--json", "--model", "minilm"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["accuracy"] == 1.0
    assert "reading the texts of words.csv from its column 'utterance'" in out.err
    assert "reading the labels of words.csv from its column 'intent'" in out.err
    assert "caps.csv" not in out.err  # the same words, in other case: no note
    labelled = tmp_path / "labelled.csv"
    assert main(["classify", "--support", str(caps), "--input", str(caps), "--output", str(labelled),
                 "--text-column", "text", "--model", "minilm"]) == 0  # a chosen name, case and spaces aside
    assert pd.read_csv(labelled)["predicted_label"].tolist() == list(rows.values())  # the file has a Label column
    capsys.readouterr()
    assert main(["classify", "--support", str(headless), "--text", "hello", "--model", "minilm"]) == 2
    assert re.search(r"no column 'text' \(nor sentence.*add a header row above it", capsys.readouterr().err)
    assert main(["classify", "--support", str(words), "--text-column", "message", "--text", "hi"]) == 2
    assert re.search(r"has no column 'message'.*Choose one with --text-column", capsys.readouterr().err)


def test_each_file_keeps_its_encoding_and_the_column_options_name_the_test_file(tmp_path: Path, capsys) -> None:
    """--encoding reads the files that are not UTF-8 (a UTF-8 support file stays as written, in fit too);
    --text-column / --label-column name the columns of the file classified or evaluated, the support file keeps its
    own (--support-text-column / --support-label-column where they are named otherwise)."""
    support = tmp_path / "support.csv"
    frame = pd.DataFrame({"text": ["I want my money back", "café crème refund please", "I lost my card",
                                   "my card is in the café"], "label": ["refund", "refund", "lost_card", "lost_card"]})
    frame.to_csv(support, index=False)
    test = tmp_path / "test.csv"
    test.write_bytes("Customer Message,Team\nrefund my café order,refund\nmy card is gone,lost_card\n"
                     .encode("cp1252"))
    common = ["--model", "minilm", "--encoding", "cp1252"]
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--text-column", "Customer Message",
                 "--label-column", "Team", "--json", *common]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    folder = tmp_path / "clf"
    assert main(["fit", "--support", str(support), "--out", str(folder), *common]) == 0
    assert "café crème refund please" in (folder / "examples.csv").read_text(encoding="utf-8")
    odd = tmp_path / "odd.csv"
    frame.rename(columns={"text": "Beispiel", "label": "Art"}).to_csv(odd, index=False)
    out = tmp_path / "out.csv"
    capsys.readouterr()
    assert main(["classify", "--support", str(odd), "--input", str(test), "--output", str(out),
                 "--text-column", "Customer Message", *common]) == 2
    assert re.search(r"odd.csv has no column 'text' .*Choose one with --support-text-column", capsys.readouterr().err)
    assert main(["classify", "--support", str(odd), "--support-text-column", "Beispiel", "--support-label-column",
                 "Art", "--input", str(test), "--output", str(out), "--text-column", "Customer Message", *common]) == 0
    labelled = pd.read_csv(out, encoding="utf-8-sig", dtype=str)
    assert labelled["Customer Message"].tolist()[0] == "refund my café order"
    assert labelled["label"].tolist() == ["refund", "lost_card"]
    capsys.readouterr()
    for args, said in (
            (["classify", "--support", str(support), "--input", str(test), "--output", str(out), "--label-column",
              "Team"], "classify's --input has no labels: name the support file's label column with "
                       "--support-label-column"),
            (["classify", "--classifier", str(folder), "--input", str(test), "--output", str(out),
              "--support-text-column", "x"], "--support-text-column names a column of --support; a --classifier"),
            (["fit", "--support", str(odd), "--out", str(tmp_path / "f"), "--text-column", "Beispiel",
              "--support-text-column", "other"], "both name the text column of --support")):
        assert main([*args, "--model", "minilm"]) == 2
        assert said in capsys.readouterr().err


def test_check_lists_what_to_fix(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.csv"
    pd.DataFrame({"text": ["where is my refund", "I want my money back", "refund please", "I lost my card",
                           "my card is gone", "my card is gone"],
                  "label": ["refund", "refund", "Refund", "card", "card", "card"]}).to_csv(path, index=False)
    assert main(["check", "--support", str(path), "--model", "minilm"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "6 examples of 3 labels: 4 finding(s)", captured.out
    assert {line.split(":")[0] for line in lines[1:]} == {"same_name", "single_example", "duplicate",
                                                         "closer_to_other"}
    assert "fewshot: note" not in captured.err  # fit's notes are among the findings, not said twice
    assert main(["check", "--support", str(path), "--model", "minilm", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 6 and result["labels"] == 3 and len(result["findings"]) == 4
    assert main(["check", "--support", str(path), "--model", "minilm", "--strict"]) == 1  # for CI checks
    write_support(path)
    assert main(["check", "--support", str(path), "--model", "minilm", "--strict"]) == 0
    assert capsys.readouterr().out.endswith("nothing to fix\n")


def test_a_multi_label_file_read_without_multi_label_is_named(tmp_path: Path, capsys) -> None:
    path = tmp_path / "ml.csv"
    pd.DataFrame({"text": ["where is my refund", "I want my money back", "I lost my card", "my card is gone",
                           "lost my card, refund me"],
                  "label": ["refund", "refund", "card", "card", "card;refund"]}).to_csv(path, index=False)
    assert main(["fit", "--support", str(path), "--out", str(tmp_path / "clf"), "--model", "minilm"]) == 0
    err = capsys.readouterr().err
    assert "1 label(s) hold ';' (such as 'card;refund'): if a text may carry several labels" in err
    assert "--multi-label" in err
    assert main(["check", "--support", str(path), "--model", "minilm"]) == 0
    assert "joined: 1 label(s) hold ';'" in capsys.readouterr().out


def test_finetune_options_that_cannot_apply_are_refused(support: Path, tmp_path: Path, capsys) -> None:
    out = str(tmp_path / "clf")
    assert main(["fit", "--support", str(support), "--out", out, "--finetune-seconds", "5"]) == 2
    assert "--finetune-seconds sets how --finetune runs; add --finetune" in capsys.readouterr().err
    assert main(["fit", "--support", str(support), "--out", out, "--finetune", "--multi-label"]) == 2
    assert "--finetune supports single-label classifiers" in capsys.readouterr().err
    assert not Path(out).exists()


def test_evaluate_json_reports_a_finetuning_that_was_not_kept(support: Path, tmp_path: Path, capsys) -> None:
    test = tmp_path / "test.csv"
    pd.DataFrame(QUERIES, columns=["text", "label"]).to_csv(test, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--json", "--model", "minilm",
                 "--finetune", "--finetune-steps", "1", "--finetune-seconds", "20"]) == 0
    report = json.loads(capsys.readouterr().out)["finetune"]
    assert {"kept", "steps", "seconds", "message"} <= set(report) and report["message"]


def test_info() -> None:
    res = run_cli("info", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["encoder"]["dim"] == 768 and info["encoder"]["extra_layers"] == [4] and info["versions"]["torch"]


def test_an_in_process_run_puts_the_warnings_hook_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """main() shows fewshot's warnings as notes during its run only: the caller's hook is in place afterwards."""
    import warnings

    from fewshot.cli import main

    def callers_hook(*args: object, **kwargs: object) -> None:
        pass

    monkeypatch.setattr(warnings, "showwarning", callers_hook)
    (tmp_path / "s.csv").write_text("text,label\nwhere is my refund,refund\nmy card is lost,card\n")
    assert main(["check", "--support", str(tmp_path / "s.csv")]) == 0
    assert warnings.showwarning is callers_hook


@pytest.mark.slow
@needs_mpnet
def test_info_mpnet_says_what_it_loads() -> None:
    res = run_cli("info", "--model", "mpnet", "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["encoder"]["model"] == "mpnet" and info["encoder"]["base"] == info["mpnet"]["folder"]
    assert info["encoder"]["dim"] == 1536 and info["encoder"]["extra_layers"] == [6]
    assert len(info["mpnet"]["parts"]) == 5 and info["mpnet"]["assembled"] and not info["mpnet"]["problem"]
    text = run_cli("info", "--model", "mpnet").stdout
    assert "installed (5 packages)" in text and "assembled    yes" in text


def test_info_names_a_missing_encoder() -> None:
    res = run_cli("info", "--model", "/no/such/model/folder")
    assert res.returncode == 2 and "was not found" in res.stderr and "Traceback" not in res.stderr


def test_evaluate_reports_accuracy_with_the_unknown_rule(tmp_path: Path, support: Path, capsys) -> None:
    test = tmp_path / "test.csv"
    rows = [{"text": q, "label": g} for q, g in QUERIES] + [{"text": "the weather on mars", "label": "unknown"}]
    pd.DataFrame(rows).to_csv(test, index=False)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--json", "--model", "minilm",
                 "--score-threshold", "1e9"]) == 0
    result = json.loads(capsys.readouterr().out)
    ruled = result["with_unknown"]  # everything answered unknown: only the row labelled unknown is right
    assert ruled["answered"] == 0 and ruled["in_scope_accuracy"] == 0 and ruled["unknown_recall"] == 1.0
    assert ruled["accuracy"] == pytest.approx(1 / len(rows)) and ruled["n_unknown"] == 1
    assert result["accuracy"] > ruled["accuracy"]  # the plain accuracy ignores the unknown options


def test_evaluate_oos_reports_threshold_free_measures_and_reads_together_when_asked(tmp_path: Path, support: Path,
                                                                                    capsys) -> None:
    test, oos = tmp_path / "test.csv", tmp_path / "oos.csv"
    pd.DataFrame(QUERIES, columns=["text", "label"]).to_csv(test, index=False)
    pd.DataFrame({"text": ["the weather on mars", "who won the match last night"]}).to_csv(oos, index=False)
    base = ["evaluate", "--support", str(support), "--test", str(test), "--oos", str(oos), "--model", "minilm"]
    assert main([*base, "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert 0 <= alone["oos_recall_at_cost"] <= 1 and 0 <= alone["oos_fpr_at_95"] <= 1 and alone["cost"] == 0.02
    assert alone["batch_aware"] is False
    assert main([*base, "--json", "--batch-aware"]) == 0
    captured = capsys.readouterr()
    together = json.loads(captured.out)
    assert "fewer than 50 texts" in captured.err and together["batch_aware"] is False  # 6 texts: each on its own
    assert together["oos_auroc"] == alone["oos_auroc"]
    assert main(base) == 0
    shown = capsys.readouterr().out
    assert "any threshold: recall" in shown and "one text at a time; --batch-aware reads the rows together" in shown
    assert "no unknown option is set" in shown and alone["threshold_default"] is True  # the automatic one stood in
    assert main([*base, "--auto-unknown"]) == 0
    assert "no unknown option is set" not in capsys.readouterr().out
    assert main([*base, "--batch-aware"]) == 0
    assert "one text at a time" not in capsys.readouterr().out  # asked for: no hint, even when too few to read
    assert main([*base, "--batch-aware", "--multi-label"]) == 2  # --oos is refused first, before the examples are read
    assert "--oos is not available with --multi-label" in capsys.readouterr().err
    rows = [*QUERIES, ("the weather on mars", "unknown")]  # a test row labelled unknown is an out-of-scope text too
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(test, index=False)
    assert main([*base, "--json"]) == 0
    both = json.loads(capsys.readouterr().out)
    assert both["n_oos"] == 3 and both["oos_auroc"] <= 1  # the two --oos texts and the row
    assert main(base[:5] + ["--model", "minilm", "--json"]) == 0  # no --oos: the row alone
    assert json.loads(capsys.readouterr().out)["n_oos"] == 1
    pd.DataFrame([("the weather on mars", "unknown")], columns=["text", "label"]).to_csv(test, index=False)
    assert main(base) == 2
    assert "need in-scope rows too" in capsys.readouterr().err


def test_evaluate_batch_aware_reports_one_reading_of_the_test_rows_and_the_oos_texts(tmp_path: Path, support: Path,
                                                                                     capsys) -> None:
    """Fewer than 50 test rows, 50 or more with the --oos texts: the accuracy with the unknown rule comes from the
    same reading together as the out-of-scope measures, not from the test rows read one at a time."""
    test, oos = tmp_path / "test.csv", tmp_path / "oos.csv"
    rows = [(f"{q} {tail}", g) for q, g in QUERIES for tail in ("please", "now", "thanks", "today", "asap", "ok")]
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(test, index=False)
    pd.DataFrame({"text": [f"{topic} {tail}" for topic in ("what is the capital of peru", "play some jazz music",
                                                           "book a table for two", "how tall is everest")
                           for tail in ("please", "now", "thanks", "today", "asap", "ok", "quickly")]}
                 ).to_csv(oos, index=False)
    base = ["evaluate", "--support", str(support), "--test", str(test), "--oos", str(oos), "--model", "minilm",
            "--auto-unknown", "--json"]
    assert main(base) == 0
    alone = json.loads(capsys.readouterr().out)
    assert main([*base, "--batch-aware"]) == 0
    captured = capsys.readouterr()
    together = json.loads(captured.out)
    assert together["batch_aware"] is True and "fewer than" not in captured.err  # 24 rows + 28 texts: read together
    assert together["with_unknown"]["in_scope_accuracy"] == pytest.approx(together["in_scope_accuracy"])
    assert alone["with_unknown"]["in_scope_accuracy"] == pytest.approx(alone["in_scope_accuracy"])
    assert together["in_scope_accuracy"] != alone["in_scope_accuracy"]  # the reading together changed the answers


def test_evaluate_batch_aware_reads_the_batch_once(tmp_path: Path, support: Path, monkeypatch, capsys) -> None:
    """The accuracy with the unknown rule and the out-of-scope measures share one reading together: the batch
    (test rows, one of them labelled unknown, and the --oos texts) is read once."""
    from fewshot import FewShotClassifier

    test, oos = tmp_path / "test.csv", tmp_path / "oos.csv"
    rows = [(f"{q} {tail}", g) for q, g in QUERIES for tail in ("please", "now", "thanks", "today", "asap", "ok")]
    pd.DataFrame(rows + [("how tall is everest", "unknown")], columns=["text", "label"]).to_csv(test, index=False)
    pd.DataFrame({"text": [f"play some jazz music {t}" for t in range(30)]}).to_csv(oos, index=False)
    readings = []
    real = FewShotClassifier.predict_with_scores

    def counted(self, texts, **kwargs):
        readings.append((len(texts), kwargs.get("batch_aware", False)))
        return real(self, texts, **kwargs)

    monkeypatch.setattr(FewShotClassifier, "predict_with_scores", counted)
    assert main(["evaluate", "--support", str(support), "--test", str(test), "--oos", str(oos), "--model",
                 "minilm", "--auto-unknown", "--batch-aware", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batch_aware"] is True and result["n_oos"] == 31
    assert [r for r in readings if r[1]] == [(len(rows) + 1 + 30, True)]


def _bad_inputs(tmp: Path, support: Path) -> dict[str, tuple[list[str], str]]:
    empty = tmp / "empty.csv"
    empty.write_text("")
    header_only = tmp / "header.csv"
    header_only.write_text("text,label\n")
    latin1 = tmp / "latin1.csv"
    latin1.write_bytes("text,label\ncaf\xe9,x\nna\xefve,y\n".encode("latin-1"))
    nocol = tmp / "nocol.csv"
    nocol.write_text("words,label\nhello,x\nbye,y\n")
    blank = tmp / "blank.csv"
    blank.write_text("text,label\nhello,x\n,y\n")
    one_label = tmp / "one.csv"
    one_label.write_text("text,label\nhello,x\nhey,x\n")
    cls = ["classify", "--support", str(support), "--output", str(tmp / "o.csv"), "--input"]
    return {
        "missing file": (cls + [str(tmp / "nope.csv")], "file not found"),
        "empty csv": (cls + [str(empty)], "is empty"),
        "header only": (cls + [str(header_only)], "no rows"),
        "undecodable": (cls + [str(latin1)], "not UTF-8"),
        "missing column": (cls + [str(nocol)], "no column 'text'"),
        "blank support text": (["evaluate", "--support", str(blank), "--test", str(support)], "empty on row 3"),
        "one label": (["evaluate", "--support", str(one_label), "--test", str(support)], "at least 2 labels"),
        "missing output dir": (["classify", "--support", str(support), "--input", str(support),
                                "--output", str(tmp / "no" / "o.csv")], "does not exist"),
        "layer the model lacks": (["evaluate", "--support", str(support), "--test", str(support),
                                   "--extra-layers", "9"], "--extra-layers must be distinct layer numbers from 0"),
    }


@pytest.mark.parametrize("case", ["missing file", "empty csv", "header only", "undecodable", "missing column",
                                  "blank support text", "one label", "missing output dir", "layer the model lacks"])
def test_bad_input_is_one_line_and_exit_2(case: str, support: Path, tmp_path: Path) -> None:
    args, message = _bad_inputs(tmp_path, support)[case]
    res = run_cli(*args)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("fewshot: error:")]
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_classify_reads_an_excel_workbook_and_writes_csv(support: Path, tmp_path: Path) -> None:
    book = tmp_path / "tickets.xlsx"
    pd.DataFrame({"id": [1, 2], "text": ["I lost my card", "will it rain tomorrow"]}).to_excel(book, index=False)
    out = tmp_path / "labelled.csv"
    res = run_cli("classify", "--support", str(support), "--input", str(book), "--output", str(out))
    assert res.returncode == 0, res.stderr
    labelled = pd.read_csv(out, dtype=str)
    assert labelled["id"].tolist() == ["1", "2"] and labelled["label"].tolist() == ["lost_card", "weather"]
    assert out.read_bytes().startswith(b"\xef\xbb\xbfid,text,label,")  # from Excel: opens right in Excel
    res = run_cli("classify", "--support", str(support), "--input", str(book), "--output", str(tmp_path / "o.xlsx"))
    assert res.returncode == 2 and "the output is a CSV file" in res.stderr


def test_classify_writes_its_output_as_the_input_was_written(support: Path, tmp_path: Path, capsys) -> None:
    """Same delimiter as the input; a UTF-8 byte-order mark where the input had one (a spreadsheet's export,
    which Excel opens right only with it), once however many chunks; never one on standard output."""
    rows = pd.DataFrame({"id": [1, 2, 3], "text": ["où est mon remboursement ?", "I lost my card", "Grüße"]})
    excel_like, plain = tmp_path / "excel.csv", tmp_path / "plain.csv"
    rows.to_csv(excel_like, sep=";", index=False, encoding="utf-8-sig")
    rows.to_csv(plain, index=False)
    common = ["classify", "--support", str(support), "--model", "minilm", "--chunk-size", "1", "--auto-unknown"]
    out, groups = tmp_path / "out.csv", tmp_path / "groups.csv"
    assert main([*common, "--input", str(excel_like), "--output", str(out), "--groups", str(groups)]) == 0
    written = out.read_bytes()
    assert written.startswith(b"\xef\xbb\xbfid;text;label;confidence;top_3;in_scope_score")
    assert written.count(b"\xef\xbb\xbf") == 1
    assert groups.read_bytes().startswith(b"\xef\xbb\xbfgroup;size;row;answered;text")
    labelled = pd.read_csv(out, sep=";", encoding="utf-8-sig", dtype=str)
    assert labelled["text"].tolist() == rows["text"].tolist() and labelled["label"].tolist()[1] == "lost_card"
    assert main([*common, "--input", str(out), "--output", str(tmp_path / "again.csv")]) == 0  # read back as given
    capsys.readouterr()
    assert main([*common, "--input", str(excel_like), "--output", "-"]) == 0
    assert capsys.readouterr().out.startswith("id;text;label;")  # for another program: no mark
    assert main([*common, "--input", str(plain), "--output", str(out)]) == 0
    assert out.read_bytes().startswith(b"id,text,label,confidence,")


def test_a_one_column_file_is_one_text_per_line(support: Path, tmp_path: Path) -> None:
    """A hand-written list under a ``text`` header: a comma is part of the text, and a blank line is a row kept
    unlabelled, so that the output's rows line up with the input's lines."""
    lines = tmp_path / "lines.csv"
    lines.write_text('text\nwhere is my refund\n""\nhi, I lost my card\n\n"quoted, with a comma"\nwill it rain\n')
    out = tmp_path / "out.csv"
    assert main(["classify", "--support", str(support), "--model", "minilm", "--input", str(lines),
                 "--output", str(out), "--chunk-size", "2"]) == 0
    labelled = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert labelled["text"].tolist() == ["where is my refund", "", "hi, I lost my card", "", "quoted, with a comma",
                                         "will it rain"]
    assert labelled["label"].tolist() == ["refund", "", "lost_card", "", labelled["label"][4], "weather"]


@pytest.mark.skipif(not (SHARED_DATA / "hwu64").is_dir(), reason="../shared/data is not present")
def test_evaluate_hwu64_5shot_beats_logistic_regression_baseline() -> None:
    """The default rule is at least as accurate as logistic regression on the same frozen embeddings (77.3%)."""
    res = run_cli("evaluate", "--support", str(SHARED_DATA / "hwu64/train_5.csv"),
                  "--test", str(SHARED_DATA / "hwu64/test.csv"), "--json", "--model", "minilm")
    assert res.returncode == 0, res.stderr
    result = json.loads(res.stdout)
    assert result["n"] == 1076
    assert result["accuracy"] >= 0.773


def test_classify_10000_rows(support: Path, tmp_path: Path) -> None:
    """A 10,000-row CSV streams through in chunks, with progress, keeping every input column."""
    rng = __import__("random").Random(0)
    words = ["card", "refund", "rain", "money", "stolen", "sunny", "bank", "order", "cold", "lost"]
    texts = [" ".join(rng.choice(words) for _ in range(4)) for _ in range(10_000)]
    path = tmp_path / "big.csv"
    pd.DataFrame({"row": range(10_000), "text": texts}).to_csv(path, index=False)
    out = tmp_path / "big_out.csv"
    res = run_cli("classify", "--support", str(support), "--input", str(path), "--output", str(out))
    assert res.returncode == 0, res.stderr
    assert "10000/10000" in res.stderr
    df = pd.read_csv(out)
    assert len(df) == 10_000 and df["row"].tolist() == list(range(10_000))
    assert set(df["label"]) <= {"refund", "lost_card", "weather"}


def test_mistyped_and_misplaced_options_say_what_was_meant(support: Path, tmp_path: Path, capsys) -> None:
    """A misspelt option gets its likely spelling under the command's usage; ``-`` where a file path is needed, a
    glob or folder for the local engine, an empty ``--text``, a missing classifier and the library's option names
    are each one line in the command line's own terms."""
    common = ["classify", "--support", str(support), "--model", "minilm"]
    with pytest.raises(SystemExit) as stop:
        main([*common, "--input", str(support), "--ouput", "o.csv"])
    assert stop.value.code == 2
    assert "unrecognized option --ouput; did you mean --output?" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["classify", "--suport", str(support), "--text", "hi"])  # before "one of --support --classifier"
    assert "did you mean --support?" in capsys.readouterr().err
    cases = {
        ("--input", str(support), "--output", str(tmp_path / "o.csv"), "--groups", "-"): "give --groups a file path",
        ("--input", str(tmp_path / "*.csv"), "--output", str(tmp_path / "o.csv")): "a folder or a glob is read by "
                                                                                  "--engine ray",
        ("--input", str(tmp_path), "--output", str(tmp_path / "o.csv")): "the local engine reads one file",
        ("--text", "hi", "--text", " "): "--text number 2 of 2 is empty",
        ("--text", "hi", "--score-threshold", "nan"): "--score-threshold must be a finite",
    }
    for extra, said in cases.items():
        assert main([*common, *extra]) == 2, extra
        assert said in capsys.readouterr().err, extra
    assert main(["classify", "--classifier", str(tmp_path / "nope"), "--text", "hi"]) == 2
    assert "classifier not found" in capsys.readouterr().err
    assert main(["evaluate", "--support", "-", "--test", str(support)]) == 2
    assert "give --support a file path" in capsys.readouterr().err


def test_a_stopped_reader_or_a_stop_signal_ends_quietly(support: Path, tmp_path: Path) -> None:
    """``| head`` closing standard output ends the run without a traceback or an error line; SIGTERM (a job
    scheduler's stop) ends it as Ctrl-C does, removing the half-written output."""
    import signal
    import time

    path = tmp_path / "many.csv"
    pd.DataFrame({"text": [f"where is my refund number {i}" for i in range(30_000)]}).to_csv(path, index=False)
    args = [sys.executable, "-m", "fewshot.cli", "classify", "--support", str(support), "--input", str(path)]
    run = subprocess.Popen([*args, "--output", "-"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
    assert run.stdout.readline().startswith(b"text,label,")
    run.stdout.close()  # as `head -1` does
    assert run.wait(timeout=300) == 1
    err = run.stderr.read().decode()
    assert "Traceback" not in err and "Broken pipe" not in err and "error" not in err, err
    out = tmp_path / "out.csv"
    run = subprocess.Popen([*args, "--output", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    part = tmp_path / "out.csv.part"
    deadline = time.monotonic() + 240
    while not part.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=120) == 143
    assert "fewshot: terminated" in run.stderr.read().decode()
    assert not out.exists() and not part.exists()


def test_unknown_and_int8_flags_map_to_options() -> None:
    from fewshot.cli.options import build_parser, options_from_args

    def options(*flags: str) -> dict:
        return options_from_args(build_parser().parse_args(["fit", "--support", "s.csv", "--out", "o", *flags]))

    assert options("--auto-unknown") == {"auto_unknown": True}
    assert options("--no-auto-unknown") == {"auto_unknown": False} and options() == {}
    assert options("--min-confidence", "0.4") == {"min_confidence": 0.4}
    assert options("--score-threshold", "-1.5") == {"score_threshold": -1.5}
    assert options("--threshold", "auto") == {"auto_unknown": True, "min_confidence": None}  # the old spelling
    assert options("--threshold", "0.3") == {"auto_unknown": False, "min_confidence": 0.3}
    assert options("--int8") == options("--quantize") == {"int8": True}
    with pytest.raises(SystemExit):
        options("--min-confidence", "1.5")


def test_help_lists_every_choice(capsys) -> None:
    from fewshot.config import ADAPT_METHODS, RULES

    for command in ("classify", "evaluate", "fit"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = capsys.readouterr().out
        assert "{" + ",".join(RULES) + "}" in text and "{" + ",".join(ADAPT_METHODS) + "}" in text
        assert "'mpnet'" in text
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    assert "{local,ray}" in capsys.readouterr().out
    from fewshot.meta.training_args import TRAIN_METHODS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    assert all(method in text for method in TRAIN_METHODS)


def test_finetune_help_states_the_library_defaults() -> None:
    """The CLI's --finetune-* help names the defaults FinetuneConfig really uses."""
    from fewshot.adapt.config import FinetuneConfig
    from fewshot.cli.options import build_parser

    text = " ".join(build_parser()._subparsers._group_actions[0].choices["classify"].format_help().split())
    defaults = FinetuneConfig()
    assert f"most training steps (default {defaults.steps})" in text
    assert f"time budget in seconds (default {defaults.time_budget:g})" in text


def test_output_paths_that_cannot_be_written_are_refused_before_any_work(support: Path, queries: Path,
                                                                          tmp_path: Path, capsys) -> None:
    common = ["classify", "--support", str(support), "--input", str(queries), "--model", "minilm"]
    cases = [(["--output", str(tmp_path)], f"--output {tmp_path} is a folder; name a file in it, e.g. "
                                           f"{tmp_path / 'labelled.csv'}"),
             (["--output", str(tmp_path / "out.csv"), "--groups", str(tmp_path), "--auto-unknown"],
              "--groups " + str(tmp_path) + " is a folder"),
             (["--output", str(queries / "x.csv")], "folder " + str(queries) + " does not exist")]
    if Path("/proc/self").is_dir():  # a folder where no file can be made
        cases.append((["--output", "/proc/x.csv"], "cannot write --output /proc/x.csv"))
    for extra, message in cases:
        assert main([*common, *extra]) == 2
        err = capsys.readouterr().err
        assert message in err and "encoding examples" not in err, err  # said before the examples are read
    assert not list(tmp_path.glob("*.part"))


def test_row_counts_read_as_english() -> None:
    from fewshot.cli.notes import _rows

    assert [_rows(n) for n in (0, 1, 2, 3000)] == ["0 rows", "1 row", "2 rows", "3,000 rows"]
