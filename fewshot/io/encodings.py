"""Which encoding a user's file is in: a byte-order mark's, UTF-8 where the bytes are valid UTF-8, else the one the
user names; files that are neither are refused naming the line and the likely encoding."""

from __future__ import annotations

import codecs
import functools
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

from ..errors import FewShotError, FewShotWarning, user_stacklevel

SAMPLE_BYTES = 64 * 1024
"""The start of a file read to sniff its format (and guess its encoding where it is not UTF-8)."""

WIDE_ENCODINGS = ("utf-16", "utf-32")
"""Encodings whose text holds NUL bytes (an ASCII letter is one byte and a NUL)."""


def codec_name(encoding: str) -> str:
    """Python's name of ``encoding`` (``latin-1``: ``iso8859-1``), or a FewShotError naming it."""
    try:
        return codecs.lookup(encoding).name
    except LookupError as exc:
        raise FewShotError(f"unknown encoding {encoding!r}; try utf-8, utf-16, cp1252, gb18030 or cp932") from exc


def file_encoding(path: str | Path, encoding: str | None = None, raw: bytes | None = None) -> str:
    """The encoding to read ``path`` with: a byte-order mark's (UTF-8, UTF-16), else UTF-8 for a file that is valid
    UTF-8, else ``encoding`` (the command line's ``--encoding``), which is thus for the files that are not UTF-8: one
    option for a run's files can never garble a UTF-8 file among them (a file of plain ASCII, which reads the same
    either way, keeps ``encoding``). A file that ``encoding`` cannot read either, or that holds a NUL byte (binary
    data; UTF-16 or UTF-32 text without a mark when ``encoding`` says so), is refused naming the line and the likely
    encoding (:func:`guess_encoding`). The whole file is checked (once per version of it), so nothing undecodable
    is found half-way through a long run."""
    path = Path(path)
    given = codec_name(encoding) if encoding is not None else None
    if raw is None:
        with open(path, "rb") as fh:
            raw = fh.read(SAMPLE_BYTES)
    if raw.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    nul = _nul_line(path)
    if nul is None and _first_undecodable(path, "utf-8") is None:
        if given is not None and _ascii_compatible(given) and _first_undecodable(path, "ascii") is None:
            return encoding  # plain ASCII reads the same in both: the files of a run keep one format (Ray reads so)
        return "utf-8"
    if nul is not None and given is not None and given.startswith(WIDE_ENCODINGS):
        return encoding  # UTF-16 without a byte-order mark, as the user says: its NULs are its text
    if nul is not None:
        wide = _wide_guess(raw)
        if wide:
            raise NotTextError(f"{path} is not UTF-8 text (it holds NUL bytes from line {nul})",
                               "UTF-16 without a byte-order mark", wide)
        raise FewShotError(f"{path} is not a text CSV (it holds binary data, as a spreadsheet, archive or image does: "
                           f"a NUL byte on line {nul}): save or export it as CSV (UTF-8), or delete that byte if the "
                           "rest of the file is text")
    if given is None or given in ("utf-8", "utf-8-sig") or given.startswith(WIDE_ENCODINGS):
        raise not_text_error(path, "utf-8")
    if _first_undecodable(path, given) is None:
        note = _misread_note(path, given, encoding)
        if note:
            warnings.warn(note, FewShotWarning, stacklevel=user_stacklevel())
        return encoding
    raise not_text_error(path, given, encoding)


WESTERN_CODECS = ("cp1252", "iso8859-1", "iso8859-15", "latin-1")
"""Python's names of the encodings read by the Windows-1252 rules of :func:`_plausibility`."""


def _misread_note(path: Path, codec: str, given: str) -> str | None:
    """What to say when ``path`` decodes as ``codec`` (the ``--encoding`` ``given``) but reads as the garble of
    another encoding's text (GBK read as cp1252: ``ÎÒÒªÍË¿î``) where :func:`guess_encoding` reads it as text."""
    found = _misread(*_stamp(path), codec)
    if found is None:
        return None
    guess, garble = found
    return (f"{path} read as {given} looks garbled ({garble!r}); it may be {dict(GUESSES)[guess]}: pass encoding "
            f"{guess} (--encoding {guess}) instead")


@functools.lru_cache(maxsize=64)
def _misread(path: str, size: int, mtime_ns: int, codec: str) -> tuple[str, str] | None:
    """See :func:`_misread_note`: (the likely encoding, the start of the garbled text), or None."""
    family = "cp1252" if codec in WESTERN_CODECS else codec
    if family not in dict(GUESSES):
        return None  # an encoding the guesses do not judge
    where = _undecodable_of(path, size, mtime_ns, "utf-8")
    sample = _sample_at(Path(path), where[1] if where else 0)
    text = codecs.getincrementaldecoder(codec)().decode(sample, final=False)
    if _plausibility(text, family) >= 0.5:
        return None
    scores = _guess_scores(sample, exclude=(codec, family))
    guess = max(scores, key=lambda enc: scores[enc], default=None)
    if guess is None or scores[guess] < 0.9:
        return None
    line = next((ln for ln in text.splitlines() if re.search(r"[^\x00-\x7f]", ln)), "")
    return guess, line[:40]


@functools.lru_cache(maxsize=16)
def _ascii_compatible(codec: str) -> bool:
    """Whether ``codec`` reads the 128 ASCII bytes as ASCII (cp1252, gb18030, cp932 do; UTF-16 does not)."""
    try:
        return bytes(range(128)).decode(codec) == bytes(range(128)).decode("ascii")
    except UnicodeDecodeError:
        return False


def _wide_guess(raw: bytes) -> str | None:
    """``utf-16-le`` / ``utf-16-be`` when the NUL bytes of ``raw`` fall on every other byte, as UTF-16 text of
    mostly ASCII letters without a byte-order mark has them; else None (binary data)."""
    pairs = len(raw) // 2
    even, odd = raw[0:2 * pairs:2].count(0), raw[1:2 * pairs:2].count(0)
    if pairs and odd > 0.3 * pairs and even < 0.05 * pairs:
        return "utf-16-le"
    if pairs and even > 0.3 * pairs and odd < 0.05 * pairs:
        return "utf-16-be"
    return None


class NotTextError(FewShotError):
    """A file that is not text in the encoding it was read with: ``problem`` (the file, the line and byte) and the
    encoding it may be instead (``likely``, in words, and ``codec``, Python's name; None when no guess reads it).
    Its message advises the command line's ``--encoding`` (``given``: the one the user passed); a front end without
    that option builds its own advice from the parts."""

    def __init__(self, problem: str, likely: str | None = None, codec: str | None = None,
                 given: str | None = None) -> None:
        self.problem, self.likely, self.codec = problem, likely, codec
        if codec is None:
            advice = ("save it as UTF-8, or pass the encoding it was saved in "
                      + ("(--encoding NAME)" if given is None else "with --encoding"))
        elif given is None:
            advice = f"it may be {likely}: save it as UTF-8, or pass encoding {codec} (--encoding {codec})"
        else:
            advice = f"it may be {likely}: pass encoding {codec} (--encoding {codec}), or save it as UTF-8"
        super().__init__(f"{problem}; {advice}")


def not_text_error(path: str | Path, codec: str, given: str | None = None) -> NotTextError:
    """Why ``path`` cannot be read as ``codec`` (``given``: the ``--encoding`` the user gave, read besides UTF-8),
    with the line and byte, and which encoding it may be instead (:func:`guess_encoding`)."""
    path = Path(path)
    where = _first_undecodable(path, codec)
    place = f"line {where[0]}, byte {where[1]}: {where[2]}" if where else "its bytes"
    if given is None:
        problem = f"{path} is not {codec.upper()} text ({place})"
    else:
        problem = f"{path} is neither UTF-8 nor {given} text ({place})"
    sample = _sample_at(path, where[1] if where else 0)
    guess = guess_encoding(sample, exclude=(codec,))
    return NotTextError(problem, None if guess is None else dict(GUESSES)[guess], guess, given)


def _sample_at(path: Path, offset: int) -> bytes:
    """:data:`SAMPLE_BYTES` of ``path`` from the start of the line holding byte ``offset`` (where the text that is
    not UTF-8 begins: a file's first lines may be plain ASCII), or from that byte when the line is very long."""
    start = max(offset - 4096, 0)
    with path.open("rb") as f:
        f.seek(start)
        before = f.read(offset - start)
        rest = f.read(SAMPLE_BYTES)
    cut = before.rfind(b"\n")
    if cut >= 0:
        before = before[cut + 1:]
    elif start > 0:  # no line start in reach: a cut there could split a character
        before = b""
    return before + rest


GUESSES = (
    ("cp1252", "Windows-1252/Latin-1 (Western European)"),
    ("cp949", "EUC-KR (Korean)"),
    ("cp932", "Shift-JIS (Japanese)"),
    ("gb18030", "GBK/GB18030 (Simplified Chinese)"),
    ("cp950", "Big5 (Traditional Chinese)"),
)
"""The encodings :func:`guess_encoding` tries (Windows' names: each reads what its standard one does, and more), in
the order that wins a tie (a Korean text reads as Chinese characters in GB18030, never the other way round)."""
WESTERN_MARKS = frozenset("‘’‚“”„–—…€«»°£§©®·¿¡")
"""Characters besides letters that Windows-1252 text holds (quotes, dashes, currency)."""


def guess_encoding(sample: bytes, exclude: Sequence[str] = ()) -> str | None:
    """The encoding of :data:`GUESSES` (but ``exclude``'s) whose reading of ``sample`` looks most like text
    (:func:`_plausibility`: letters of the script the encoding is for, common ones more), or None when none reads it
    so (binary data, or an encoding not tried). Only for a hint: the file is never read with a guess."""
    scores = _guess_scores(sample, exclude)
    best = max(scores, key=lambda enc: scores[enc], default=None)  # the first of a tie, in the order of GUESSES
    return best if best is not None and scores[best] > 0.5 else None  # below that, a name would mislead


def _guess_scores(sample: bytes, exclude: Sequence[str] = ()) -> dict[str, float]:
    """:func:`_plausibility` of ``sample`` read as each encoding of :data:`GUESSES` that decodes it."""
    scores = {}
    for enc, _ in GUESSES:
        if enc in exclude:
            continue
        try:
            text = codecs.getincrementaldecoder(enc)().decode(sample, final=False)
        except UnicodeDecodeError:
            continue
        scores[enc] = _plausibility(text, enc)
    return scores


def _plausibility(text: str, encoding: str) -> float:
    """The mean weight of the non-ASCII characters of ``text`` read as ``encoding``: 1 for a character of the
    script that encoding is for (a Western letter between ASCII ones for cp1252; a common Chinese character for
    gb18030 and cp950, less for a rare one; kana and kanji for cp932; Hangul for cp949), 0 for others (what
    another encoding's bytes read as). 0 for a text of ASCII only."""
    weights: list[float] = []
    for run in re.findall(r"[^\x00-\x7f]+", text):
        for ch in run:
            if encoding == "cp1252":  # another encoding's text reads as long runs of accented letters and signs
                weights.append(float(len(run) <= 2 and (ch.isalpha() or ch in WESTERN_MARKS)))
            else:
                weights.append(_cjk_weight(ch, encoding))
    return sum(weights) / len(weights) if weights else 0.0


def _cjk_weight(ch: str, encoding: str) -> float:
    """How plausible ``ch`` is in a text written in the East Asian ``encoding`` (see :func:`_plausibility`)."""
    if "\u3000" <= ch <= "\u303f" or "\uff01" <= ch <= "\uff5e":  # CJK punctuation, full-width ASCII
        return 1.0
    ideograph = "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"
    if encoding == "cp932":
        if "\u3040" <= ch <= "\u30ff":  # hiragana, katakana
            return 1.0
        return (1.0 if _lead(ch, "cp932") <= 0x98 else 0.6) if ideograph else 0.0
    if encoding == "cp949":
        if "\uac00" <= ch <= "\ud7a3":  # Hangul: the 2,350 syllables of EUC-KR, the others of Windows' extension
            return 1.0 if _lead(ch, "cp949") >= 0xB0 else 0.5
        return 0.2 if ideograph else 0.0  # Hanja: rare in today's Korean
    if not ideograph:
        return 0.0
    if encoding == "gb18030":  # GB2312's first level (leads B0-D7): the 3,755 common characters
        lead = _lead(ch, "gb2312")
        return 1.0 if 0xB0 <= lead <= 0xD7 else 0.6 if 0xD8 <= lead <= 0xF7 else 0.2
    return 1.0 if 0xA4 <= _lead(ch, "cp950") <= 0xC6 else 0.6  # Big5's common characters (leads A4-C6)


def _lead(ch: str, encoding: str) -> int:
    """The first byte of ``ch`` in ``encoding`` (0x100 when it has none)."""
    try:
        return ch.encode(encoding)[0]
    except UnicodeEncodeError:
        return 0x100


def _stamp(path: Path) -> tuple[str, int, int]:
    """What identifies a version of a file for the caches below: its path, size and modification time."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns


def _nul_line(path: Path) -> int | None:
    """The line of the first NUL byte of ``path`` (1 = the first line), or None when it has none."""
    return _nul_line_of(*_stamp(path))


@functools.lru_cache(maxsize=64)
def _nul_line_of(path: str, size: int, mtime_ns: int, block: int = 1 << 20) -> int | None:
    line = 1
    with open(path, "rb") as f:
        while chunk := f.read(block):
            at = chunk.find(b"\x00")
            if at >= 0:
                return line + chunk[:at].count(b"\n")
            line += chunk.count(b"\n")
    return None


def _first_undecodable(path: Path, encoding: str) -> tuple[int, int, str] | None:
    """(line, byte offset in the file, reason) of the first bytes of ``path`` that ``encoding`` cannot decode, or
    None when it decodes the whole file."""
    return _undecodable_of(*_stamp(path), encoding)


@functools.lru_cache(maxsize=64)
def _undecodable_of(path: str, size: int, mtime_ns: int, encoding: str, block: int = 1 << 20
                    ) -> tuple[int, int, str] | None:
    """See :func:`_first_undecodable`; read in blocks, where the decoder's own offset counts from the bytes it
    holds (those carried over from the block before, then this one), not from the start of the file."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset, line = 0, 1
    with open(path, "rb") as f:
        while True:
            chunk = f.read(block)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                bad = max(offset + len(chunk) - len(exc.object) + exc.start, 0)
                return line + chunk[:max(bad - offset, 0)].count(b"\n"), bad, exc.reason
            if not chunk:
                return None
            offset, line = offset + len(chunk), line + chunk.count(b"\n")
