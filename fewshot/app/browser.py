"""The label set kept in the visitor's browser (``gr.BrowserState``): its encryption key and its validation.

The browser copy is encrypted with a secret. ``FEWSHOT_STATE_SECRET`` sets it; otherwise a random one is
made once per deployment and kept (mode 0600) in the user's data folder
(``$FEWSHOT_CACHE/state-secret``, default ``~/.cache/fewshot/state-secret``), so browser copies survive a
restart but a copy made for another deployment cannot be replayed here. What comes back from a browser is
untrusted: :func:`restored_state` checks it like an upload (types, sizes) and explains a refusal instead of
failing. No Gradio and no torch here.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

from ..encoders.registry import cache_root
from ..text import label_name
from . import state as st

SECRET_ENV = "FEWSHOT_STATE_SECRET"
SECRET_FILE = "state-secret"


def secret_path() -> Path:
    """Where the generated secret is kept: ``<cache_root()>/state-secret``."""
    return cache_root() / SECRET_FILE


def state_secret() -> str:
    """``FEWSHOT_STATE_SECRET``, else this deployment's generated secret (made on first use, kept across restarts).

    Created atomically with mode 0600 (``O_CREAT | O_EXCL``), so two processes starting at once agree on one.
    """
    value = os.environ.get(SECRET_ENV, "").strip()
    if value:
        return value
    path = secret_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(50):
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = ""
        if text:
            return text
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process is writing it: read it again
            time.sleep(0.05)
            continue
        value = secrets.token_urlsafe(32)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(value)
        return value
    raise OSError(f"{path} stays empty; delete it, or set {SECRET_ENV}")


def restored_state(saved: Any) -> tuple[dict[str, Any], str]:
    """A label-set state from a browser's copy, and "" or why it was refused (then the state is empty).

    The same limits as an upload: a dict with ``rows`` (a list of at most ``MAX_EXAMPLES`` ``[label, text]``
    string pairs, labels at most ``MAX_LABEL_CHARS``, texts cut to ``MAX_INPUT_CHARS``) and bounded
    ``options`` (:func:`fewshot.app.state.safe_options`).
    """
    if saved is None or saved == {} or saved == "":
        return st.empty_state(), ""
    why = _problem(saved)
    if why:
        return st.empty_state(), f"The label set kept in this browser was not restored ({why}); starting empty."
    rows = [[label_name(label), text.strip()[:st.MAX_INPUT_CHARS]] for label, text in saved.get("rows") or []]
    state: dict[str, Any] = {"rows": [r for r in rows if r[0] or r[1]],
                             "options": st.safe_options(saved.get("options"))}
    if point := st.state_point(saved):  # a malformed operating point is dropped (the automatic one applies)
        state["point"] = point
    return state, ""


def _problem(saved: Any) -> str:
    if not isinstance(saved, dict):
        return f"expected a label set, got {type(saved).__name__}"
    rows = saved.get("rows")
    if rows is None:
        rows = []
    if not isinstance(rows, list):
        return f"its rows are a {type(rows).__name__}, not a list"
    if len(rows) > st.MAX_EXAMPLES:
        return f"{len(rows)} examples, more than the {st.MAX_EXAMPLES} allowed"
    for i, row in enumerate(rows):
        if not (isinstance(row, list) and len(row) == 2 and all(isinstance(c, str) for c in row)):
            return f"row {i + 1} is not a [label, text] pair of texts"
        if len(row[0]) > st.MAX_LABEL_CHARS:
            return f"row {i + 1} has a label longer than {st.MAX_LABEL_CHARS} characters"
        if len(row[1]) > 10 * st.MAX_INPUT_CHARS:
            return f"row {i + 1} has a text of {len(row[1]):,} characters"
    if saved.get("options") is not None and not isinstance(saved.get("options"), dict):
        return "its options are not a mapping"
    return ""
