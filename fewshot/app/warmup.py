"""The app's shared encoders: made once per process, prepared in a background thread, with a status to show.

Loading the model and quantising it to int8 take tens of seconds on a small
machine, so the server starts first (the page answers within seconds) and :func:`start` prepares the
encoders of the fast tier (the default kind first, then the other) in a daemon thread; the accurate tier
(:mod:`fewshot.app.tiers`) is prepared the same way, when a visitor first chooses it, never at start-up. A request that needs an encoder
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

from . import tiers

if TYPE_CHECKING:
    from ..encoders.encoder import Encoder

log = logging.getLogger("fewshot.app")

MODEL_ENV = tiers.FAST_ENV
INT8_ENV = "FEWSHOT_INT8"


INT8_VALUES = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
"""What ``FEWSHOT_INT8`` may say (any case); unset or empty means on."""


def _int8_env() -> str:
    """``FEWSHOT_INT8`` as it is compared with :data:`INT8_VALUES` ("" when unset)."""
    return os.environ.get(INT8_ENV, "").strip().lower()


def int8_default() -> bool:
    """``FEWSHOT_INT8`` (1/0); on when unset: on 2 cores the int8 encoder measured 2.0x fp32 throughput, 5-shot
    accuracy within 0.3 points and the same single-sentence time over HTTP (``bench/speed.py``)."""
    return INT8_VALUES.get(_int8_env(), True)


def check_int8_env() -> None:
    """Stop the app at start, in one line, on a ``FEWSHOT_INT8`` it cannot read (``maybe`` would mean on)."""
    value = _int8_env()
    if value and value not in INT8_VALUES:
        raise SystemExit(f"fewshot: {INT8_ENV} must be 1 or 0 (or true/false, yes/no, on/off), got {value!r}")


INT8_DEFAULT = int8_default()
"""Where the app's "int8 encoder" box starts (each session may change it)."""

_lock = threading.RLock()  # one at a time: the int8 encoder is built on the fp32 model's weights
_encoders: dict[tuple[str, bool], Encoder] = {}


@dataclass(frozen=True)
class Status:
    """Where the encoder preparation stands: ``idle`` (not started), ``preparing``, ``ready`` or ``failed``."""

    state: str
    int8: bool = INT8_DEFAULT
    seconds: float | None = None  # how long the preparation took (``ready``)
    error: str = ""  # what went wrong (``failed``; the next request tries again)
    tier: str = tiers.FAST  # which encoder choice (see :mod:`fewshot.app.tiers`)


_statuses: dict[str, Status] = {tiers.FAST: Status("idle"), tiers.ACCURATE: Status("idle", tier=tiers.ACCURATE)}
_threads: dict[str, threading.Thread] = {}
_start_lock = threading.Lock()


def shared_encoder(int8: bool = False, tier: str = tiers.FAST) -> Encoder:
    """The process's encoder of a tier (fp32 or int8); the first call makes both kinds (:func:`prepare`), later
    ones wait while another thread is making them."""
    with _lock:
        if (tier, int8) not in _encoders:
            prepare(int8, tier)
        return _encoders[(tier, int8)]


def is_ready(int8: bool, tier: str = tiers.FAST) -> bool:
    """Whether the encoder of this kind is made (asking never waits)."""
    return (tier, int8) in _encoders


def status(tier: str = tiers.FAST) -> Status:
    """The preparation's current status for a tier (never waits)."""
    return _statuses[tier]


def prepare(int8: bool = INT8_DEFAULT, tier: str = tiers.FAST) -> Status:
    """Make both encoders of a tier now, the asked kind first, unless they exist; returns the final status.

    Both at once, under the lock, before any is handed out: the int8 encoder is a quantised copy of the fp32
    model, and a copy taken while another thread runs that model is wrong (and breaks that run). Also
    imports the classifier's modules, so the first fit does not pay for them. An error is kept in the
    status and raised; the next request that needs an encoder tries again.
    """
    with _lock:
        if all((tier, kind) in _encoders for kind in (True, False)):
            return _statuses[tier]
        _statuses[tier] = Status("preparing", int8, tier=tier)
        start = time.perf_counter()
        try:
            from .. import classifier  # noqa: F401  (torch, faiss and the rules: imported once, here)
            from ..encoders.encoder import Encoder

            for kind in (int8, not int8):
                if (tier, kind) not in _encoders:
                    _encoders[(tier, kind)] = Encoder(tiers.model_for(tier), int8=kind)
        except Exception as exc:  # noqa: BLE001 - shown on the page and raised again at the next request
            _statuses[tier] = Status("failed", int8, error=f"{type(exc).__name__}: {exc}"[:300], tier=tier)
            raise
        _statuses[tier] = Status("ready", int8, seconds=time.perf_counter() - start, tier=tier)
        return _statuses[tier]


def start(int8: bool = INT8_DEFAULT, on_done: Callable[[Status], None] | None = None,
          tier: str = tiers.FAST) -> bool:
    """Start :func:`prepare` of a tier in a daemon thread unless it ran or runs already; True when this call
    started it. The fast tier starts with the server; the accurate one when a visitor first chooses it.

    ``on_done(status)`` runs in that thread when it finishes (ready or failed), e.g. to print a line.
    """
    with _start_lock:
        if tier in _threads:
            return False

        def run() -> None:
            try:
                prepare(int8, tier)
            except Exception:  # noqa: BLE001 - kept in the status for the page; the traceback goes to the log
                log.exception("preparing the %s encoder failed", tier)
            if on_done is not None:
                on_done(_statuses[tier])

        _threads[tier] = threading.Thread(target=run, name=f"fewshot-encoder-warmup-{tier}", daemon=True)
        _threads[tier].start()
        return True
