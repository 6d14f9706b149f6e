"""The app's encoder choice per session: "Fast" (the default MiniLM model) or "Accurate" (all-mpnet-base-v2).

A visitor picks one at the top of the page (an API client passes ``encoder="fast"`` or ``"accurate"``). The
accurate tier comes from the optional extra ``pip install "fewshot[mpnet]"``; when its parts are missing,
:func:`problem` says so in one sentence and the session stays on Fast. No Gradio and no torch here.

Environment: ``FEWSHOT_MODEL`` (the fast tier's model, default ``"default"``), ``FEWSHOT_ACCURATE_MODEL``
(the accurate tier's model, default ``"mpnet"``).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import FewShotError

FAST = "fast"
ACCURATE = "accurate"
CHOICES: tuple[tuple[str, str], ...] = (("Fast", FAST), ("Accurate", ACCURATE))
"""(shown name, value) of each choice, in the order the page shows them."""
HINT = "Fast answers at once. Accurate is better on close labels, about 5x slower; switching re-reads your examples."
ACCURATE_ENV = "FEWSHOT_ACCURATE_MODEL"
FAST_ENV = "FEWSHOT_MODEL"
ACCURATE_DEFAULT = "mpnet"


def choice(value: Any) -> str:
    """The encoder choice of a request (a browser or API client may send anything); None means fast."""
    if value is None or value == "":
        return FAST
    value = str(value).strip().lower()
    if value not in (FAST, ACCURATE):
        raise FewShotError(f"encoder must be {FAST!r} or {ACCURATE!r}, got {value!r:.40}")
    return value


def model_for(tier: str) -> str | None:
    """The model name of a tier, for :class:`~fewshot.encoders.encoder.Encoder` (None: the library's default)."""
    if tier == ACCURATE:
        return os.environ.get(ACCURATE_ENV) or ACCURATE_DEFAULT
    return os.environ.get(FAST_ENV) or None


def problem(tier: str) -> str:
    """Why ``tier`` cannot be used on this server ("" when it can); cheap: checks files, loads nothing.

    Only the accurate tier's default model (``mpnet``) can be missing: its weights come from optional part
    packages (or a download, when ``FEWSHOT_ALLOW_DOWNLOAD=1``).
    """
    if tier != ACCURATE or model_for(tier) != ACCURATE_DEFAULT:
        return ""
    from ..encoders import parts

    try:
        parts.part_files()
    except parts.MissingPartsError:
        if os.environ.get(parts.ALLOW_DOWNLOAD_ENV, "").strip() == "1":
            return ""
        return ("The Accurate encoder is not installed on this server, so this session stays on Fast (whoever runs "
                f"the server can add it: {parts.INSTALL_HINT}, then restart the app).")
    except FewShotError as exc:  # damaged pieces: say which
        return f"The Accurate encoder cannot be used: {exc}. This session stays on Fast."
    return ""


def check(tier: Any) -> str:
    """:func:`choice`, refusing a tier this server cannot use (a :class:`FewShotError` with :func:`problem`)."""
    tier = choice(tier)
    why = problem(tier)
    if why:
        raise FewShotError(why)
    return tier
