"""The Ray engine (``fewshot classify --engine ray``) against the local engine, on a local 2-CPU Ray instance.

The output files must be byte-identical: same rows, columns, labels and confidences, although the actors
run torch on 1 thread and see other batches than the local engine (a row's vector and probabilities do
not depend on its batch or on the thread count; see ``fewshot.encoders.determinism``).
"""

from __future__ import annotations

import csv
import logging
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from helpers import write_support

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")

from fewshot.classifier import FewShotClassifier  # noqa: E402
from fewshot.cli import main  # noqa: E402
from fewshot.distributed.ray_engine import classify_with_ray, resolve_inputs  # noqa: E402
from fewshot.errors import FewShotError  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

N_ROWS = 3000
WORDS = {"refund": "refund money back order returned paid charge", "lost_card": "card lost stolen missing bank block",
         "weather": "rain sunny cold umbrella weather outside forecast"}
FILLER = "please my the is where today can I you how".split()
TRICKY = ["NA", "", "null", "007", "1e3", "=SUM(A1)", "x, y", "two\nlines", " padded ", "N/A", "True", "ünïcödé"]


def _rows(n: int, seed: int = 0) -> list[dict[str, str]]:
    rng = random.Random(seed)
    vocab = [w for ws in WORDS.values() for w in ws.split()]
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(vocab, k=rng.randint(1, 4)) + rng.choices(FILLER, k=rng.randint(0, 5)))
        if i % 97 == 5:
            text = rng.choice(["", "   "])  # blank rows stay, with an empty label
        rows.append({"id": f"{i:06d}", "text": text, "note": rng.choice(TRICKY)})
    return rows


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_same_output(local: Path, distributed: Path) -> None:
    """Byte-identical files; on a difference, say which columns differ on how many rows."""
    if local.read_bytes() == distributed.read_bytes():
        return
    a, b = _read(local), _read(distributed)
    assert list(a.columns) == list(b.columns)
    assert len(a) == len(b)
    differ = {col: int((a[col] != b[col]).sum()) for col in a.columns if not a[col].equals(b[col])}
    raise AssertionError(f"outputs differ; rows per column: {differ}")


def _local_and_ray_agree(folder: Path, rows: Path, stem: Path) -> Path:
    """Classify ``rows`` with the saved classifier ``folder`` locally and on Ray; assert the same bytes; the
    local output's path."""
    local, distributed = stem.with_name(stem.name + "_local.csv"), stem.with_name(stem.name + "_ray.csv")
    assert main(["classify", "--classifier", str(folder), "--input", str(rows), "--output", str(local)]) == 0
    assert main(["classify", "--engine", "ray", "--classifier", str(folder), "--input", str(rows),
                 "--output", str(distributed), "--chunk-size", "64"]) == 0
    assert_same_output(local, distributed)
    return local


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    old = os.environ.get("FEWSHOT_NO_PROGRESS")
    os.environ["FEWSHOT_NO_PROGRESS"] = "1"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("FEWSHOT_NO_PROGRESS", None)
    else:
        os.environ["FEWSHOT_NO_PROGRESS"] = old


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ray")
    support = write_support(d / "support.csv")
    assert main(["fit", "--support", str(support), "--model", "minilm", "--out", str(d / "clf")]) == 0
    rows = _write(d / "in.csv", _rows(N_ROWS))
    assert main(["classify", "--classifier", str(d / "clf"), "--input", str(rows),
                 "--output", str(d / "local.csv")]) == 0
    return {"dir": d, "support": support, "clf": d / "clf", "input": rows, "local": d / "local.csv"}


def test_cli_ray_engine_matches_local_engine(ray_local: None, data: dict[str, Path],
                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = data["dir"] / "ray.csv"
    rc = main(["classify", "--engine", "ray", "--classifier", str(data["clf"]), "--input", str(data["input"]),
               "--output", str(out), "--chunk-size", "500"])
    assert rc == 0, capsys.readouterr().err
    assert f"wrote {N_ROWS:,} rows" in capsys.readouterr().err
    assert_same_output(data["local"], out)
    ray_df = _read(out)
    assert set(ray_df["note"]) == set(TRICKY)  # 007, NA, null, 1e3 ... come back as written
    blank = ray_df["text"].str.strip() == ""
    assert blank.any() and (ray_df.loc[blank, "label"] == "").all()
    assert not (data["dir"] / "ray.csv.part").exists()


def test_folder_and_glob_input_keep_file_order(ray_local: None, data: dict[str, Path]) -> None:
    """Three files (with a ``label`` column: output gets ``predicted_*``), given as a folder and as a glob."""
    rows = _rows(300, seed=1)
    for r in rows:
        r["label"] = "gold"
    parts = data["dir"] / "parts"
    parts.mkdir()
    for i in range(3):  # names sort in this order; rows must come back file by file
        _write(parts / f"part-{i}.csv", rows[i * 100:(i + 1) * 100])
    (parts / "README.md").write_text("not a CSV: skipped")
    assert [p.name for p in resolve_inputs(parts)] == ["part-0.csv", "part-1.csv", "part-2.csv"]
    whole = _write(data["dir"] / "whole.csv", rows)
    local = data["dir"] / "whole_local.csv"
    assert main(["classify", "--classifier", str(data["clf"]), "--input", str(whole), "--output", str(local)]) == 0

    clf = FewShotClassifier.load(data["clf"])  # an in-memory classifier is saved and shipped to the actors
    from_dir = data["dir"] / "from_dir.csv"
    assert classify_with_ray(parts, from_dir, classifier=clf, num_workers=2, batch_size=64) == 300
    assert_same_output(local, from_dir)
    assert list(_read(from_dir).columns)[-4:] == ["predicted_label", "predicted_confidence", "predicted_top_3",
                                                  "predicted_in_scope_score"]

    from_glob = data["dir"] / "from_glob.csv"
    ctx, logger = ray.data.DataContext.get_current(), logging.getLogger("ray.data")
    ctx.enable_progress_bars, ctx.execution_options.preserve_order = True, False  # the caller's own settings
    logger.setLevel(logging.DEBUG)
    assert classify_with_ray(str(parts / "part-*.csv"), from_glob, classifier=data["clf"], num_workers=1) == 300
    assert ctx.enable_progress_bars and not ctx.execution_options.preserve_order  # put back after the run
    assert logger.level == logging.DEBUG
    logger.setLevel(logging.NOTSET)
    assert_same_output(local, from_glob)

    from_zip = data["dir"] / "from_zip.csv"  # a zip of the folder (the app's Save classifier)
    zipped = clf.save(data["dir"] / "clf.zip")
    assert classify_with_ray(whole, from_zip, classifier=zipped, num_workers=1) == 300
    assert_same_output(local, from_zip)


def test_input_errors_are_one_line(ray_local: None, data: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(FewShotError, match="no file matches"):
        classify_with_ray(str(tmp_path / "nothing-*.csv"), tmp_path / "o.csv", classifier=data["clf"])
    other = tmp_path / "other"
    other.mkdir()
    _write(other / "a.csv", [{"text": "hi", "x": "1"}])
    _write(other / "b.csv", [{"text": "hi", "y": "1"}])
    with pytest.raises(FewShotError, match="has the columns"):
        classify_with_ray(other, tmp_path / "o.csv", classifier=data["clf"])
    with pytest.raises(FewShotError, match="k must be >= 1"):  # checked on the driver, before any actor
        classify_with_ray(data["input"], tmp_path / "o.csv", classifier=data["clf"], overrides={"k": 0})
    with pytest.raises(FewShotError, match="is not a saved classifier"):
        classify_with_ray(data["input"], tmp_path / "o.csv", classifier=tmp_path)
    with pytest.raises(FewShotError, match="the output file .*in.csv is one of the input files"):
        classify_with_ray(data["input"], data["input"], classifier=data["clf"])


def test_missing_ray_says_how_to_install(monkeypatch: pytest.MonkeyPatch, data: dict[str, Path],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    monkeypatch.setitem(sys.modules, "ray.data", None)
    rc = main(["classify", "--engine", "ray", "--classifier", str(data["clf"]), "--input", str(data["input"]),
               "--output", str(data["dir"] / "never.csv")])
    err = capsys.readouterr().err
    assert rc == 2
    assert 'pip install "fewshot[ray]" (in a checkout of fewshot: pip install -e ".[ray]")' in err
    assert err.count("\n") == 1
    with pytest.raises(FewShotError, match=r"fewshot\[ray\]"):
        classify_with_ray(data["input"], data["dir"] / "never.csv", classifier=data["clf"])
    assert not (data["dir"] / "never.csv").exists()


def test_matching_rule_is_identical_too(ray_local: None, data: dict[str, Path]) -> None:
    """``--rule matching`` reads FAISS similarities, recomputed per text so batches of 64 match one of 300."""
    whole = data["dir"] / "whole.csv" if (data["dir"] / "whole.csv").exists() else \
        _write(data["dir"] / "whole_m.csv", _rows(300, seed=2))
    common = ["--support", str(data["support"]), "--model", "minilm", "--rule", "matching", "--input", str(whole)]
    local, distributed = data["dir"] / "matching_local.csv", data["dir"] / "matching_ray.csv"
    assert main(["classify", *common, "--output", str(local)]) == 0
    assert main(["classify", "--engine", "ray", *common, "--output", str(distributed), "--chunk-size", "64"]) == 0
    assert_same_output(local, distributed)


def test_a_spreadsheets_csv_is_written_back_as_the_local_engine_writes_it(ray_local: None,
                                                                          data: dict[str, Path]) -> None:
    """A ``;``-delimited file with a UTF-8 byte-order mark (Excel's export where the decimal mark is a comma): both
    engines write it back with ``;`` and the mark, byte for byte alike."""
    rows = data["dir"] / "excel_like.csv"
    _read(data["input"]).head(200).to_csv(rows, sep=";", index=False, encoding="utf-8-sig")
    local = _local_and_ray_agree(data["clf"], rows, data["dir"] / "excel_like")
    assert local.read_bytes().startswith(b"\xef\xbb\xbf") and b";label;confidence;" in local.read_bytes()[:200]


def test_a_one_column_file_is_read_as_the_local_engine_reads_it(ray_local: None, data: dict[str, Path]) -> None:
    """One text per line: commas inside a line and blank lines (rows kept unlabelled) as locally."""
    rows = data["dir"] / "lines.csv"
    rows.write_text('text\nwhere is my refund\n\nhi, I lost my card\n""\nwill it rain, or not\n')
    local = _local_and_ray_agree(data["clf"], rows, data["dir"] / "lines")
    assert len(_read(local)) == 5


def test_texts_longer_than_the_encoder_reads_get_the_same_note(ray_local: None, data: dict[str, Path],
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    """The actors count the texts past the encoder's 256 word pieces; the output file is unchanged by it."""
    rows = _rows(200, seed=4)
    for i in (3, 77, 150):
        rows[i]["text"] = "my card was stolen yesterday and " * 60
    stem = _write(data["dir"] / "long_in.csv", rows)
    _local_and_ray_agree(data["clf"], stem, data["dir"] / "long")
    err = capsys.readouterr().err
    assert err.count("3 texts are longer than the encoder reads (256 word pieces") == 2, err


def test_rows_that_do_not_look_english_get_the_same_note(ray_local: None, data: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The driver reads the first rows of the first file, and a --classifier folder without loading it."""
    rows = [{"id": str(i), "text": text, "note": ""} for i, text in enumerate(
        ["¿dónde está mi reembolso?", "perdí mi tarjeta de crédito", "quiero que me devuelvan el dinero",
         "me robaron la tarjeta ayer"] * 5)]
    stem = _write(data["dir"] / "es_in.csv", rows)
    _local_and_ray_agree(data["clf"], stem, data["dir"] / "es")
    err = capsys.readouterr().err
    assert err.count("the rows of es_in.csv do not look like English") == 2, err
    answers = [line for line in err.splitlines() if line.startswith("answers: ")]
    assert len(answers) == 2 and answers[0] == answers[1], err  # what the file was answered, the same from both
    _local_and_ray_agree(data["clf"], data["input"], data["dir"] / "en")
    assert "do not look like English" not in capsys.readouterr().err


def test_int8_encoder_is_identical_too(ray_local: None, data: dict[str, Path]) -> None:
    """``--int8``: the actors' int8 vectors (one worker each) are the local engine's (two workers) bit for bit."""
    rows = _write(data["dir"] / "int8_in.csv", _rows(400, seed=3))
    common = ["--support", str(data["support"]), "--model", "minilm", "--int8", "--input", str(rows)]
    local, distributed = data["dir"] / "int8_local.csv", data["dir"] / "int8_ray.csv"
    assert main(["classify", *common, "--output", str(local)]) == 0
    assert main(["classify", "--engine", "ray", *common, "--output", str(distributed), "--chunk-size", "150"]) == 0
    assert_same_output(local, distributed)


def test_finetuned_classifier_is_identical_too(ray_local: None, data: dict[str, Path]) -> None:
    """A fine-tuned classifier: the actors load its adapted weights (``finetune.safetensors`` ships with the
    folder) and write the local engine's bytes; without them the labels would be the instant encoder's."""
    from fewshot.adapt import FinetuneConfig

    clf = FewShotClassifier.load(data["clf"])
    assert clf.finetune(FinetuneConfig(steps=2, folds=0, time_budget=None)).kept  # 2 steps: short, always kept
    folder = clf.save(data["dir"] / "clf_finetuned")
    assert (folder / "finetune.safetensors").is_file()
    rows = _write(data["dir"] / "finetuned_in.csv", _rows(300, seed=4))
    local = _local_and_ray_agree(folder, rows, data["dir"] / "finetuned")
    instant = data["dir"] / "finetuned_instant.csv"
    assert main(["classify", "--classifier", str(data["clf"]), "--input", str(rows), "--output", str(instant)]) == 0
    assert local.read_bytes() != instant.read_bytes()  # the adapted weights were used


def test_multi_label_classifier_is_identical_too(ray_local: None, data: dict[str, Path]) -> None:
    """``--multi-label``: the actors write the same ``labels`` column (``;``-joined label sets) as the local engine."""
    support = data["dir"] / "ml_support.csv"
    pd.DataFrame({"text": ["refund my order", "money back please", "my card was stolen", "lost my bank card",
                           "is it sunny today", "rain forecast tomorrow", "refund the charge on my stolen card"],
                  "label": ["refund", "refund", "lost_card", "lost_card", "weather", "weather", "refund;lost_card"]}
                 ).to_csv(support, index=False)
    folder = data["dir"] / "ml_clf"
    assert main(["fit", "--support", str(support), "--model", "minilm", "--multi-label", "--out", str(folder)]) == 0
    rows = _write(data["dir"] / "ml_in.csv", _rows(200, seed=5))
    local = _local_and_ray_agree(folder, rows, data["dir"] / "ml")
    assert "labels" in _read(local).columns


def test_excel_input_is_for_the_local_engine(tmp_path: Path) -> None:
    from fewshot.distributed.ray_engine import check_inputs

    book = tmp_path / "in.xlsx"
    pd.DataFrame({"text": ["hello"]}).to_excel(book, index=False)
    with pytest.raises(FewShotError, match="the local engine reads those; save it as CSV for --engine ray"):
        check_inputs([book], "text", None)
