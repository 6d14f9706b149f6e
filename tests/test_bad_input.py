"""The bad-input table over the CSV reader, the Python API and the CLI, plus fuzzing and atomic saves."""

from __future__ import annotations

import codecs
import json
import re
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fewshot import FewShotClassifier, FewShotError
from fewshot.errors import install_hint
from fewshot.io.tables import read_table
from fewshot.encoders.encoder import Encoder
from helpers import support_frame

ENV = {**os.environ, "FEWSHOT_MODEL": "minilm", "FEWSHOT_NO_PROGRESS": "1"}
GOOD = "text,label\nhello there,greet\nbye now,bye\n"


def _zip(files: dict[str, str]) -> bytes:
    """A zip holding ``files`` (name -> text), as bytes."""
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in files.items():
            zf.writestr(name, text)
    return buf.getvalue()


# name -> (file bytes, expected outcome: "ok" with texts, or an error substring)
CSV_CASES: dict[str, tuple[bytes, object]] = {
    "empty file": (b"", "is empty"),
    "header only": (b"text,label\n", "no rows"),
    "no text column": (b"sentence,label\nhi,a\n", "its columns are ['sentence', 'label']"),
    "undecodable bytes": (b"text,label\n\xff\xfe\xfa bad,x\nok,y\n", "not UTF-8"),
    "utf-8 with BOM": (codecs.BOM_UTF8 + GOOD.encode(), ["hello there", "bye now"]),
    "utf-16": (GOOD.encode("utf-16"), ["hello there", "bye now"]),
    "cp1252 without encoding": ("text,label\ncafé crème,x\nnaïve,y\n".encode("cp1252"), "cp1252"),
    "semicolon delimited": (b"text;label\nhello, there;greet\nbye;bye\n", ["hello, there", "bye"]),
    "tab delimited": (b"text\tlabel\nhello there\tgreet\nbye\tbye\n", ["hello there", "bye"]),
    "quoted multi-line cell": (b'text,label\n"line one\nline two",a\nx,b\n', ["line one\nline two", "x"]),
    "empty text row": (b"text,label\nhello,a\n,b\n", "empty on row 3"),
    "duplicate column names": (b"text,text,label\na,b,c\n", "more than one column named 'text'"),
    "emoji, CJK and RTL": ("text,label\n🎉 party time,fun\n你好世界,cjk\nשלום עולם,rtl\n".encode(),
                           ["🎉 party time", "你好世界", "שלום עולם"]),
    "html label": (b"text,label\nhello,<script>alert(1)</script>\nbye,b\n", ["hello", "bye"]),
    "zip archive": (b"PK\x03\x04\x14\x00\x06\x00not a workbook", "not a text CSV: it is a zip archive"),
    "saved classifier zip": (_zip({"my_clf/config.json": "{}", "my_clf/examples.csv": "text,label\n"}),
                             "is a saved classifier, not a CSV of texts: load it as one (--classifier"),
    "old excel workbook": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "an Excel workbook (.xls)"),
    "gzip file": (b"\x1f\x8b\x08\x00\x00\x00", "compressed (gzip)"),
    "binary file": (b"text,label\n\x00\x01\x02 image bytes\n", "not a text CSV (it holds binary data"),
}


@pytest.mark.parametrize("case", list(CSV_CASES))
def test_csv_reader_table(case: str, tmp_path: Path) -> None:
    data, expected = CSV_CASES[case]
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    if isinstance(expected, list):
        assert read_table(path, ["text", "label"])["text"].tolist() == expected
    else:
        with pytest.raises(FewShotError, match=re.escape(str(expected))):
            read_table(path, ["text", "label"])


def test_excel_workbook_reads_as_strings(tmp_path: Path) -> None:
    """An .xlsx is read from its first sheet: cells as strings, an empty cell "" (then refused by name where a
    text is needed), numbers as text, in every reader (whole, header check, chunks, row count)."""
    from fewshot.io.tables import check_header, count_rows, iter_chunks

    path = tmp_path / "in.xlsx"
    pd.DataFrame({"text": ["hello there", "bye now", "7"], "label": ["greet", "bye", "number"],
                  "n": [1, 2.5, None]}).to_excel(path, index=False)
    df = read_table(path, ["text", "label"])
    assert df["text"].tolist() == ["hello there", "bye now", "7"] and df["n"].tolist() == ["1", "2.5", ""]
    assert check_header(path, ["text"]) == ["text", "label", "n"] and count_rows(path) == 3
    assert [len(c) for c in iter_chunks(path, "text", chunksize=2)] == [2, 1]
    blank = tmp_path / "blank.xlsx"
    pd.DataFrame({"text": ["hello", None], "label": ["a", "b"]}).to_excel(blank, index=False)
    with pytest.raises(FewShotError, match="column 'text' is empty on row 3"):
        read_table(blank, ["text", "label"])
    twice = tmp_path / "twice.xlsx"
    pd.DataFrame([["a", "b", "x"]], columns=["text", "text", "label"]).to_excel(twice, index=False)
    with pytest.raises(FewShotError, match="more than one column named 'text'"):
        read_table(twice, ["text", "label"])
    empty = tmp_path / "empty.xlsx"
    pd.DataFrame().to_excel(empty, index=False)  # a workbook saved with nothing in it
    with pytest.raises(FewShotError, match="is an empty workbook: its first sheet needs a header row"):
        read_table(empty, ["text"])


def test_excel_without_openpyxl_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "in.xlsx"
    pd.DataFrame({"text": ["hello"], "label": ["a"]}).to_excel(path, index=False)
    monkeypatch.setitem(sys.modules, "openpyxl", None)  # an import of it now fails
    with pytest.raises(FewShotError, match=re.escape(install_hint("excel") + ", or save it as CSV")):
        read_table(path, ["text", "label"])


def test_cp1252_reads_when_named(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(CSV_CASES["cp1252 without encoding"][0])
    assert read_table(path, ["text"], encoding="cp1252")["text"].tolist() == ["café crème", "naïve"]


def test_undecodable_bytes_are_located_in_the_file(tmp_path: Path) -> None:
    """The error names the line and byte offset of the first bad byte in the whole file, not in the block that
    pandas or the decoder happened to be reading (a block boundary falls inside the first rows here)."""
    rows = b"".join(b"row %d,a\n" % i for i in range(20_000))
    data = b"text,label\n" + rows + b"caf\xe9 cr\xe8me,b\n"
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    bad = data.index(b"\xe9")
    with pytest.raises(FewShotError, match=f"line 20002, byte {bad}: "):
        read_table(path, ["text", "label"])


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder("minilm")


def test_api_table(encoder: Encoder) -> None:
    """Each bad call raises FewShotError naming the problem; odd-but-valid input just works."""
    bad = [
        (lambda: FewShotClassifier(encoder=encoder).fit(["a"], ["x"]), "at least 2 labels"),
        (lambda: FewShotClassifier(encoder=encoder).fit(["a", None], ["x", "y"]), r"texts\[1\] must be a string"),
        (lambda: FewShotClassifier(encoder=encoder).fit(["a", "b"], ["x", float("nan")]), r"labels\[1\]"),
        (lambda: FewShotClassifier(encoder=encoder).predict(["a"]), "at least 2 labels"),
        (lambda: FewShotClassifier(encoder=encoder, k=0), "k must be >= 1"),
    ]
    for call, message in bad:
        with pytest.raises(FewShotError, match=message):
            call()
    clf = FewShotClassifier(encoder=encoder)
    with pytest.warns(UserWarning, match="under two labels"):
        clf.fit(["same text", "same text", "other"], ["a", "b", "b"])
    long_text = "refund " * 20_000  # 140,000 characters
    with pytest.warns(UserWarning, match="cut to that length"):
        assert clf.predict([long_text])[0] in {"a", "b"}
    labels = ["<script>alert(1)</script>", "🎉", "שלום"]
    clf = FewShotClassifier(encoder=encoder).fit(["hi", "party", "peace"], labels)
    assert set(clf.predict(["你好", "🎉🎉"])) <= set(labels)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_fuzz_csv_reader_raises_only_fewshot_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    try:
        df = read_table(path, ["text"])
    except FewShotError:
        return
    assert "text" in df.columns and len(df) > 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(st.text(min_size=0, max_size=30), min_size=0, max_size=8),
       labels=st.lists(st.sampled_from(["a", "b", "c", "", " ", "ünï", "a/b"]), min_size=0, max_size=8),
       queries=st.lists(st.text(max_size=30), max_size=4))
def test_fuzz_fit_predict(encoder: Encoder, texts: list[str], labels: list[str], queries: list[str]) -> None:
    clf = FewShotClassifier(encoder=encoder, head_steps=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            clf.fit(texts, labels)
        except FewShotError:
            return
        try:
            probs = clf.predict_proba(queries)
        except FewShotError:
            return
    assert probs.shape == (len(queries), len(clf.classes_))
    assert np.all(np.isfinite(probs))


def test_interrupted_save_keeps_the_previous_one(encoder: Encoder, tmp_path: Path, monkeypatch) -> None:
    df = support_frame()
    clf = FewShotClassifier(encoder=encoder).fit(df.text.tolist(), df.label.tolist())
    folder = tmp_path / "clf"
    clf.save(folder)
    clf.add_examples("greeting", ["hello", "hi there"])

    def boom(*_args, **_kwargs):
        raise KeyboardInterrupt("killed midway")

    monkeypatch.setattr("fewshot.support.SupportIndex.save", boom)
    with pytest.raises(KeyboardInterrupt):
        clf.save(folder)
    monkeypatch.undo()
    back = FewShotClassifier.load(folder, encoder=encoder)
    assert "greeting" not in back.classes_ and len(back.examples) == len(df)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".clf.")]  # no staging left behind


def test_save_killed_by_signal_keeps_the_previous_one(tmp_path: Path) -> None:
    """A real process killed (SIGKILL) while saving in a loop: the folder always loads."""
    folder = tmp_path / "clf"
    script = (
        "import sys; from fewshot import FewShotClassifier\n"
        "c = FewShotClassifier('minilm').fit(['hi', 'hello', 'bye', 'see you'], ['g', 'g', 'b', 'b'])\n"
        "c.save(sys.argv[1]); print('saved', flush=True)\n"
        "i = 0\n"
        "while True:\n"
        "    c.add_examples('g', [f'hey {i}']); c.save(sys.argv[1]); i += 1\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "saved"
    import time

    time.sleep(1.5)
    proc.kill()
    proc.wait()
    back = FewShotClassifier.load(folder)
    assert set(back.classes_) == {"g", "b"}


def _corrupt(folder: Path, how: str) -> None:
    if how == "config not json":
        (folder / "config.json").write_text("{not json")
    elif how == "examples missing":
        (folder / "examples.csv").unlink()
    elif how == "index truncated":
        data = (folder / "index.faiss").read_bytes()
        (folder / "index.faiss").write_bytes(data[: len(data) // 3])
    elif how == "another encoder":
        meta = json.loads((folder / "config.json").read_text())
        meta["encoder"]["model"] = "some-other/encoder"
        (folder / "config.json").write_text(json.dumps(meta))
    elif how == "path in model":
        meta = json.loads((folder / "config.json").read_text())
        meta["config"]["model"] = "../../../etc"
        (folder / "config.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("how", "outcome"), [
    ("config not json", "damaged saved classifier"),
    ("examples missing", "damaged saved classifier"),
    ("index truncated", "loads"),  # rebuilt from the examples
    ("another encoder", "saved with the encoder 'some-other/encoder'"),  # refused: reencode=True on purpose
    ("path in model", "only 'default', 'minilm' or a hub id"),
])
def test_damaged_saved_folders(encoder: Encoder, tmp_path: Path, how: str, outcome: str) -> None:
    df = support_frame()
    FewShotClassifier(encoder=encoder).fit(df.text.tolist(), df.label.tolist()).save(tmp_path / "c")
    _corrupt(tmp_path / "c", how)
    if outcome == "loads":
        back = FewShotClassifier.load(tmp_path / "c", encoder=encoder, allow_model_paths=False)
        assert back.predict(["I lost my card"])[0] == "lost_card"
    else:
        with pytest.raises(FewShotError, match=outcome):
            FewShotClassifier.load(tmp_path / "c", encoder=encoder, allow_model_paths=False)


def test_another_encoder_reencodes_only_on_purpose(encoder: Encoder, tmp_path: Path) -> None:
    df = support_frame()
    FewShotClassifier(encoder=encoder).fit(df.text.tolist(), df.label.tolist()).save(tmp_path / "c")
    _corrupt(tmp_path / "c", "another encoder")
    back = FewShotClassifier.load(tmp_path / "c", encoder=encoder, allow_model_paths=False, reencode=True)
    assert back.predict(["I lost my card"])[0] == "lost_card"


@pytest.mark.parametrize("case", ["utf-16", "semicolon delimited", "undecodable bytes", "duplicate column names"])
def test_cli_reads_or_refuses_in_one_line(case: str, tmp_path: Path) -> None:
    data, expected = CSV_CASES[case]
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    support = tmp_path / "s.csv"
    support_frame().to_csv(support, index=False)
    out = tmp_path / "out.csv"
    res = subprocess.run([sys.executable, "-m", "fewshot.cli", "classify", "--support", str(support), "--input",
                          str(path), "--output", str(out)], capture_output=True, text=True, env=ENV, timeout=300)
    assert "Traceback" not in res.stderr
    if isinstance(expected, list):
        assert res.returncode == 0, res.stderr
        sep = ";" if case == "semicolon delimited" else ","  # written back with the input's delimiter
        assert pd.read_csv(out, sep=sep, encoding="utf-8-sig")["text"].tolist() == expected
    else:
        assert res.returncode == 2 and expected in res.stderr
