"""Reading the files users bring (fewshot.io.tables): which encoding a file is read with and the hint when it is
not UTF-8, the delimiter, NUL bytes, parser errors and workbooks said in the product's words, formula quoting and
its undoing. Small files written here; no model is loaded."""

from __future__ import annotations

import codecs
import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from fewshot import FewShotError, FewShotWarning
from fewshot.io.encodings import guess_encoding
from fewshot.io.formulas import neutralize_formulas
from fewshot.io.tables import check_header, count_rows, iter_chunks, read_labelled_table, read_table, sniff

ACCENTS = "text,label\ncafé crème refund please,refund\nmy card is in the café,lost_card\n"


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_utf8_file_is_read_as_utf8_whatever_encoding_says(tmp_path: Path) -> None:
    """One --encoding for a command's files: it applies to the files that are not UTF-8, so a UTF-8 (or marked)
    support file next to a Windows-1252 test file is never garbled."""
    utf8 = _write(tmp_path / "utf8.csv", ACCENTS.encode())
    marked = _write(tmp_path / "marked.csv", codecs.BOM_UTF8 + ACCENTS.encode())
    windows = _write(tmp_path / "windows.csv", ACCENTS.encode("cp1252"))
    for path in (utf8, marked, windows):
        assert read_labelled_table(path, encoding="cp1252")[0][0] == "café crème refund please", path.name
    assert sniff(utf8, "cp1252").encoding == "utf-8" and sniff(marked, "cp1252").encoding == "utf-8-sig"
    assert sniff(windows, "cp1252").encoding == "cp1252"
    # plain ASCII reads the same either way: it keeps the given encoding, so the files of a run share one format
    ascii_only = _write(tmp_path / "ascii.csv", b"text,label\nhello,greet\n")
    assert sniff(ascii_only, "cp1252").encoding == "cp1252" and sniff(ascii_only).encoding == "utf-8"
    with pytest.raises(FewShotError, match="unknown encoding 'klingon'"):
        sniff(windows, "klingon")


@pytest.mark.parametrize(("text", "encoding", "named"), [
    ("text\ncafé crème brûlée\nnaïve déjà vu\n", "cp1252", "Windows-1252"),
    ("id,text\n0,我要退款\n1,我的银行卡丢了\n2,包裹还没到\n", "gb18030", "GBK/GB18030"),
    ("text\n返金してください\nカードを紛失しました\n", "cp932", "Shift-JIS"),
    ("text\n환불해 주세요\n카드를 잃어버렸어요\n", "cp949", "EUC-KR"),
    ("text\n我要退款\n我的銀行卡丟了\n什麼時候發貨\n", "cp950", "Big5"),
])
def test_the_hint_names_the_likely_encoding(tmp_path: Path, text: str, encoding: str, named: str) -> None:
    """A file that is not UTF-8 is refused with the encoding it most likely is, not always cp1252 (following
    that for a Chinese or Japanese file garbled it silently); that encoding then reads it as written."""
    path = _write(tmp_path / "in.csv", text.encode(encoding))
    with pytest.raises(FewShotError, match=rf"is not UTF-8 text \(line 2, byte \d+: .*\); it may be {named}.*: "
                                           rf"save it as UTF-8, or pass encoding {encoding} \(--encoding {encoding}\)"):
        read_table(path, [])
    assert read_table(path, [], encoding)["text"].tolist() == [line.split(",")[-1] for line in text.splitlines()[1:]]


def test_the_given_encoding_is_named_when_it_cannot_read_the_file_either(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.csv", "id,text\n0,返金してください\n1,カードを紛失しました\n".encode("cp932"))
    with pytest.raises(FewShotError) as err:
        read_table(path, [], encoding="cp1252")
    message = str(err.value)
    assert re.search(r"is neither UTF-8 nor cp1252 text \(line \d, byte \d+: .*\); it may be Shift-JIS", message)
    assert "--encoding cp932" in message and "--encoding cp1252" not in message and "CHARMAP" not in message


def test_an_encoding_that_reads_garble_is_noted(tmp_path: Path) -> None:
    """cp1252 decodes any bytes: a Chinese file read with it is garbled, which a note says, naming the likely one."""
    path = _write(tmp_path / "in.csv", "id,text\n0,我要退款\n1,我的银行卡丢了\n".encode("gbk"))
    with pytest.warns(FewShotWarning, match=r"read as cp1252 looks garbled .*it may be GBK/GB18030.*--encoding "
                                            r"gb18030"):
        read_table(path, [], encoding="cp1252")
    latin = _write(tmp_path / "latin.csv", ACCENTS.encode("cp1252"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_table(latin, [], encoding="cp1252")  # Western text read as such: no note


def test_a_late_undecodable_byte_is_refused_before_any_row_is_read(tmp_path: Path) -> None:
    """The whole file is checked up front, so a long run does not stop half-way; the message names the line."""
    data = b"text\n" + b"".join(b"row %d\n" % i for i in range(30_000)) + "caf\xe9\n".encode("latin-1")
    path = _write(tmp_path / "in.csv", data)
    with pytest.raises(FewShotError, match=r"line 30002, byte \d+: .*it may be Windows-1252"):
        next(iter_chunks(path, "text", chunksize=10))
    assert len(pd.concat(iter_chunks(path, "text", 4096, encoding="cp1252"))) == 30_001


def test_nul_bytes_are_refused_wherever_they_are_naming_the_line(tmp_path: Path) -> None:
    late = _write(tmp_path / "late.csv", b"text\n" + b"a fine row\n" * 9_000 + b"bad\x00row\n")
    for encoding in (None, "utf-8", "cp1252"):
        with pytest.raises(FewShotError, match=r"not a text CSV \(it holds binary data.*a NUL byte on line 9002\)"):
            read_table(late, [], encoding)
    assert count_rows(late) is None  # the progress bar gets no total; the read is refused as above


def test_utf16_without_a_mark_is_named_and_read_when_given(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.csv", "text,label\nhello there,greet\nbye now,bye\n".encode("utf-16-le"))
    with pytest.raises(FewShotError, match=r"it may be UTF-16 without a byte-order mark: .*--encoding utf-16-le"):
        read_table(path, [])
    assert read_table(path, [], "utf-16-le")["text"].tolist() == ["hello there", "bye now"]


@pytest.mark.parametrize(("data", "sep", "columns"), [
    ('id;"Nachricht, Kunde";Datum, Zeit\n1;wo ist meine Erstattung;2024\n2;Karte weg;2025\n', ";",
     ["id", "Nachricht, Kunde", "Datum, Zeit"]),
    ('"Nachricht, Kunde";Kategorie\nwo ist meine Erstattung;refund\nKarte weg, bitte;card\n', ";",
     ["Nachricht, Kunde", "Kategorie"]),
    ("text;amount\nrefund, please, now;3,50\ncard lost;-2,5\n", ";", ["text", "amount"]),
    ("text,note\nhello; there,a\nbye,b\n", ",", ["text", "note"]),
    ("text\tlabel\nhello, there\tgreet\n", "\t", ["text", "label"]),
    ("a,b;c,d\n1,2;3,4\n", ",", ["a", "b;c", "d"]),  # consistent either way: the more columns
])
def test_the_delimiter_is_counted_outside_quotes(tmp_path: Path, data: str, sep: str, columns: list[str]) -> None:
    """A delimiter inside a quoted header name does not count, and the rows that follow decide: the one giving the
    header's number of fields on them wins (the app classified the wrong text of such a file)."""
    path = _write(tmp_path / "in.csv", data.encode())
    assert sniff(path).sep == sep
    assert check_header(path, []) == columns


def test_a_quoted_name_with_a_comma_alone_is_one_column(tmp_path: Path) -> None:
    path = _write(tmp_path / "in.csv", b'"Nachricht, Kunde"\nhallo, Welt\nwo ist mein Geld\n')
    assert sniff(path).one_column
    assert read_table(path, [])["Nachricht, Kunde"].tolist() == ["hallo, Welt", "wo ist mein Geld"]


@pytest.mark.parametrize(("data", "message"), [
    (b'id,text,date\n1,where is my refund,2024\n2,"refund please,2024\n3,card lost,2024\n',
     "a quote opened on row 3 is never closed"),
    (b"id,text,date\n1,where is my refund,2024\n2,refund, please,2024\n",
     "row 3 has 4 fields where the header has 3: a comma inside a text that is not in quotes?"),
    (b'text;label\n"one\nline two";a\nb;c\nrefund; please;d\n',
     "row 4 has 3 fields where the header has 2: a semicolon inside a text"),
])
def test_parser_errors_name_the_spreadsheet_row(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path / "in.csv", data)
    for read in (lambda: read_table(path, []), lambda: list(iter_chunks(path, "text", 1))):
        with pytest.raises(FewShotError, match=re.escape(message)) as err:
            read()
        assert "C error" not in str(err.value) and "tokenizing" not in str(err.value)


@pytest.mark.parametrize(("suffix", "what"), [(".json", "a JSON file"), (".jsonl", "a JSON Lines file"),
                                              (".ndjson", "a JSON Lines file"), (".parquet", "a Parquet file")])
def test_other_table_formats_are_refused_by_name(tmp_path: Path, suffix: str, what: str) -> None:
    path = _write(tmp_path / f"examples{suffix}", b'[{"text": "where is my refund", "label": "refund"}]\n')
    with pytest.raises(FewShotError, match=rf"examples{suffix} is {what}; fewshot reads CSV files .*save it as CSV"):
        read_labelled_table(path)


def test_workbooks_say_where_their_table_is(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    low = tmp_path / "low.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Data"
    for row in ([None, None], [None, None], ["text", "label"], ["where is my refund", "refund"]):
        book.active.append(row)
    book.save(low)
    with pytest.raises(FewShotError, match=r"the first row of its first sheet \('Data'\) is empty, and fewshot reads "
                                           r"the header .* from the first row of the first sheet; the table seems to "
                                           r"start on row 3"):
        read_table(low, [])
    later = tmp_path / "later.xlsx"
    book = openpyxl.Workbook()
    book.active.title = "Empty"
    data = book.create_sheet("Data")
    data.append(["text", "label"])
    data.append(["where is my refund", "refund"])
    book.save(later)
    with pytest.raises(FewShotError, match=r"its first sheet \('Empty'\) is empty.*the workbook's sheets are "
                                           r"\['Empty', 'Data'\], 'Data' holding data"):
        read_table(later, [])


def test_decimal_comma_numbers_stay_numbers_formulas_get_the_quote() -> None:
    cells = ["-2,5", "-7", "-1.234,5", "-1,234.5", "+3,50", "-1 234,5", "-5%", "-1+1", "=2+3", "@SUM(A1)",
             "-refund", "+33 delivery", "-1,2,3"]
    assert neutralize_formulas(pd.DataFrame({"x": cells}))["x"].tolist() == [
        "-2,5", "-7", "-1.234,5", "-1,234.5", "+3,50", "-1 234,5", "-5%", "'-1+1", "'=2+3", "'@SUM(A1)",
        "'-refund", "'+33 delivery", "'-1,2,3"]


def test_an_exported_label_set_reads_back_as_it_was(tmp_path: Path) -> None:
    """The app's export quotes formula-like examples; reading the examples drops that quote (a spreadsheet's too),
    so that the round trip gives the examples back."""
    examples = pd.DataFrame({"text": ['=HYPERLINK("http://evil","refund")', "-5 euros refund", "@card lost",
                                      "+33 delivery", "\tindented", "-5", "'quoted already", "it's fine",
                                      "'@john' mentioned you", "'=1+1"],
                             "label": ["refund", "refund", "lost_card", "delivery", "x", "refund", "y", "-z", "a",
                                       "b"]})
    path = tmp_path / "label_set.csv"
    neutralize_formulas(examples).to_csv(path, index=False, encoding="utf-8-sig")
    assert "'=HYPERLINK" in path.read_text(encoding="utf-8-sig")
    texts, labels = read_labelled_table(path)
    assert texts == examples["text"].tolist() and labels == examples["label"].tolist()


def test_guess_encoding_names_none_for_binary_or_plain_ascii() -> None:
    assert guess_encoding(b"text\nplain ascii only\n") is None
    assert guess_encoding(bytes(range(0x80, 0x100)) * 4) is None


def test_the_labelled_output_ends_lines_with_lf_on_every_system(tmp_path: Path) -> None:
    from fewshot.io.output import csv_options

    path = _write(tmp_path / "in.csv", b"text;label\r\nhello;a\r\n")
    options = csv_options(sniff(path))
    assert options == {"sep": ";", "encoding": "utf-8", "lineterminator": "\n"}
    out = tmp_path / "out.csv"
    read_table(path, []).to_csv(out, index=False, **options)
    assert out.read_bytes() == b"text;label\nhello;a\n"
