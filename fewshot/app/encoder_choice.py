"""The encoder status line under the title, the timer that refreshes it while an encoder is being prepared, and
the visitor's choice between the Fast and Accurate encoders.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from . import session_classifier as sc
from . import tiers, ui, warmup


def status_md(status: warmup.Status, accurate: warmup.Status | None = None) -> str:
    """The one-line encoder status under the title (the accurate tier's, once a visitor chose it)."""
    kind = "int8" if status.int8 else "fp32"
    if status.state == "ready":
        line = f"✓ Encoder ready ({kind}, prepared in {status.seconds:.0f} s)"
    elif status.state == "failed":
        line = f"✗ The encoder could not be prepared ({ui.esc(status.error)}); the next request tries again"
    else:
        line = (f"Preparing the encoder ({kind}: loading the model"
                + (" and quantising it" if status.int8 else "")
                + ")… You can edit labels meanwhile; classifying waits until it is ready.")
    if accurate is not None and accurate.state == "preparing":
        line += " · Preparing the Accurate encoder (first use: about a minute)…"
    elif accurate is not None and accurate.state == "ready":
        line += f" · Accurate encoder ready (prepared in {accurate.seconds:.0f} s)"
    elif accurate is not None and accurate.state == "failed":
        line += f" · ✗ The Accurate encoder could not be prepared ({ui.esc(accurate.error)})"
    return f"<small>{line}</small>"


def encoder_status() -> tuple[str, Any]:
    """The status line, and the timer that refreshes it while an encoder is being prepared.

    Also starts the preparation when nothing did (an app started by ``gradio app.py`` rather than
    :func:`fewshot.app.launch`), so the first visitor's page sets it going.
    """
    warmup.start()
    fast, accurate = warmup.status(), warmup.status(tiers.ACCURATE)
    busy = fast.state in ("idle", "preparing") or accurate.state == "preparing"
    return status_md(fast, accurate if accurate.state != "idle" else None), gr.Timer(active=busy)


def choose_encoder(encoder: str, int8: Any) -> tuple[Any, ...]:
    """The visitor chose an encoder: the accurate one starts being prepared in the background (first use); when
    this server lacks it, the choice goes back to Fast and the status line under it says why (this event is not
    queued, so a pop-up message would never be shown)."""
    tier = tiers.choice(encoder)
    why = tiers.problem(tier)
    if why:
        status, timer = encoder_status()
        return gr.Radio(value=tiers.FAST), f"⚠ {ui.esc(why)}  \n{status}", timer
    if tier == tiers.ACCURATE:
        warmup.start(sc.int8_flag(int8), tier=tiers.ACCURATE)
    return (gr.skip(), *encoder_status())
