"""The app's shared encoders: made once per process, prepared in a background thread, with a status to show.

Loading the model, quantising it to int8 and compiling the quantiser take tens of seconds on a small
machine, so the server starts first (the page answers within seconds) and :func:`start` prepares the
encoders (the default kind first, then the other) in a daemon thread. A request that needs an encoder
before then waits for it (:func:`shared_encoder` blocks on the same lock), and the page shows
:func:`status` meanwhile.
The encoders are the only thing shared between sessions: read-only weights and a text -> vector cache.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..encoders.encoder import Encoder

log = logging.getLogger("fewshot.app")

MODEL_ENV = "FEWSHOT_MODEL"
INT8_ENV = "FEWSHOT_INT8"


def int8_default() -> bool:
    """``FEWSHOT_INT8`` (1/0); on when unset: on 2 cores the int8 encoder measured 2.0x fp32 throughput, 5-shot
    accuracy within 0.3 points and the same single-sentence time over HTTP (``bench/speed.py``)."""
    return os.environ.get(INT8_ENV, "1").strip().lower() not in {"0", "false", "no", "off"}


INT8_DEFAULT = int8_default()
"""Where the app's "int8 encoder" box starts (each session may change it)."""

_lock = threading.RLock()  # one at a time: the int8 encoder is built on the fp32 model's weights
_encoders: dict[bool, Encoder] = {}


@dataclass(frozen=True)
class Status:
    """Where the encoder preparation stands: ``idle`` (not started), ``preparing``, ``ready`` or ``failed``."""

    state: str
    int8: bool = INT8_DEFAULT
    seconds: float | None = None  # how long the preparation took (``ready``)
    error: str = ""  # what went wrong (``failed``; the next request tries again)


_status = Status("idle")
_thread: threading.Thread | None = None
_start_lock = threading.Lock()


def shared_encoder(int8: bool = False) -> Encoder:
    """The process's encoder (fp32 or int8); the first call makes both (:func:`prepare`), later ones wait
    while another thread is making them."""
    with _lock:
        if int8 not in _encoders:
            prepare()
        return _encoders[int8]


def is_ready(int8: bool) -> bool:
    """Whether the encoder of this kind is made (asking never waits)."""
    return int8 in _encoders


def status() -> Status:
    """The preparation's current status (never waits)."""
    return _status


def prepare(int8: bool = INT8_DEFAULT) -> Status:
    """Make both encoders now, the default kind first, unless they exist; returns the final status.

    Both at once, under the lock, before any is handed out: the int8 encoder is a quantised copy of the fp32
    model, and a copy taken while another thread runs that model is wrong (and breaks that run). Also
    imports the classifier's modules, so the first fit does not pay for them. An error is kept in the
    status and raised; the next request that needs an encoder tries again.
    """
    global _status
    with _lock:
        if all(kind in _encoders for kind in (True, False)):
            return _status
        _status = Status("preparing", int8)
        start = time.perf_counter()
        try:
            from .. import classifier  # noqa: F401  (torch, faiss and the rules: imported once, here)
            from ..encoders.encoder import Encoder

            for kind in (int8, not int8):
                if kind not in _encoders:
                    _encoders[kind] = Encoder(os.environ.get(MODEL_ENV) or None, int8=kind)
        except Exception as exc:  # noqa: BLE001 - shown on the page and raised again at the next request
            _status = Status("failed", int8, error=f"{type(exc).__name__}: {exc}"[:300])
            raise
        _status = Status("ready", int8, seconds=time.perf_counter() - start)
        return _status


def start(int8: bool = INT8_DEFAULT, on_done: Callable[[Status], None] | None = None) -> bool:
    """Start :func:`prepare` in a daemon thread unless it ran or runs already; True when this call started it.

    ``on_done(status)`` runs in that thread when it finishes (ready or failed), e.g. to print a line.
    """
    global _thread
    with _start_lock:
        if _thread is not None:
            return False

        def run() -> None:
            try:
                prepare(int8)
            except Exception:  # noqa: BLE001 - kept in the status for the page; the traceback goes to the log
                log.exception("preparing the encoder failed")
            if on_done is not None:
                on_done(_status)

        _thread = threading.Thread(target=run, name="fewshot-encoder-warmup", daemon=True)
        _thread.start()
        return True

