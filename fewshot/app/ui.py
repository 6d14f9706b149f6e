"""What the tabs' event handlers share: errors turned into messages, user text escaped for Markdown, progress
bars, the session's classifier, the marks on results made with an earlier label set or the other encoder, and the
words of the controls several tabs show.

Every handler is thin: it calls the modules without Gradio (which call the library), renders the result and turns
:class:`~fewshot.FewShotError` into a ``gr.Error`` toast; a failed action never changes the label set. The
session's label set and classifier come in as arguments and go out as return values (:mod:`fewshot.app.views`).
"""

from __future__ import annotations

import functools
import html
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr
import pandas as pd

from ..errors import FewShotError
from ..batch_reading import BATCH_MIN_TEXTS
from . import session_classifier as sc
from . import state as st
from . import tiers, uploads, warmup

log = logging.getLogger("fewshot.app")
F = TypeVar("F", bound=Callable[..., Any])


def friendly(fn: F) -> F:
    """Turn library errors into a clear ``gr.Error`` and unexpected ones into a short message (logged)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except FewShotError as exc:
            raise gr.Error(str(exc), print_exception=False) from exc
        except Exception as exc:  # noqa: BLE001 - the user gets one line, the log gets the traceback
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error(f"Something went wrong ({type(exc).__name__}). Your labels are unchanged; "
                           "please try again or check the input.", print_exception=False) from exc

    return wrapper  # type: ignore[return-value]


def pct(value: float | None, places: int = 0) -> str:
    """A share as a percentage with ``places`` decimals; ``n/a`` where there was nothing to count (None)."""
    return "n/a" if value is None else f"{value:.{places}%}"


def esc(text: Any) -> str:
    """User text made inert for Markdown/HTML display."""
    out = html.escape(str(text), quote=False)
    for ch in "\\`*_[]|#~":
        out = out.replace(ch, "\\" + ch)
    return " ".join(out.split())


def progress_fn(progress: gr.Progress | None, desc: str, unit: str = "texts"
                ) -> Callable[[int, int], None] | None:
    """Adapt ``gr.Progress`` to the library's ``progress(done, total)`` callback (``unit``: what it counts)."""
    if progress is None:
        return None

    def update(done: int, total: int) -> None:
        if total:
            progress((done, total), desc=desc, unit=unit)

    return update


NO_CSV = "no file uploaded; choose a CSV file first"
NO_BATCH = "no file uploaded and no texts pasted; choose a CSV file, or paste texts, one per line"
NO_LABELLED = "no file uploaded; choose a CSV file with the true labels first"
NO_ZIP = "no file uploaded; choose a classifier zip (saved with Save classifier) first"
NO_EXAMPLES = "no file uploaded; choose a CSV file of examples (text,label) first"


def file_path(file: Any, missing: str = NO_CSV) -> str:
    """The path of an uploaded file (``gr.File`` gives a str; some clients send a dict); ``missing``: what to say
    when there is none, in the words of the tab that asked."""
    if isinstance(file, dict):
        file = file.get("path") or file.get("name")
    if not file:
        raise FewShotError(missing)
    return str(file)


def fitted(state: dict[str, Any], cache: Any, progress: gr.Progress | None = None,
           int8: Any = None, encoder: Any = None) -> sc.Fitted:
    """The session's classifier (refitted only when the label set or the encoder changed); ``encoder``: the
    encoder choice (:mod:`fewshot.app.tiers`), refused with a clear message when this server lacks it."""
    flag, tier = sc.int8_flag(int8), tiers.check(encoder)
    if progress is not None and not warmup.is_ready(flag, tier):
        progress(None, desc=f"Preparing the {tier} encoder (first use)")
    fit = sc.fitted_classifier(state, cache, progress_fn(progress, "Encoding examples"), int8=flag, tier=tier)
    if fit is not cache:  # said once, when the classifier is fitted
        if fit.note:
            gr.Warning(f"Encoded again with the {tier}{' int8' if flag else ''} encoder: {fit.note}", duration=10)
        if fit.left_out:
            gr.Info(sc.left_out_note(fit.left_out), duration=8)
    return fit


OLD_LABEL_SET = "an earlier label set (it changed since)"


def marked(text: Any, note: str, on: bool) -> Any:
    """``text`` (a result's Markdown) with ``note`` put in front (``on``) or taken out; no change: ``gr.skip()``."""
    if not isinstance(text, str):
        return gr.skip()
    if on and note not in text:
        return note + text
    if not on and note in text:
        return text.replace(note, "", 1)
    return gr.skip()


def is_stale(result: Any, state: dict[str, Any]) -> bool:
    """Whether a result (Classify's answer, a batch, an evaluation) is about another label set than ``state``'s
    (:func:`st.label_set_id`: another example, label or mode); a result that records none is not judged."""
    about = result.get("label_set") if isinstance(result, dict) else None
    return bool(about) and about != st.label_set_id(state)


BATCH_AWARE_LABEL = "Unknown: read the rows together"
BATCH_AWARE_INFO = ("also answer 'unknown' where a text and the rows most like it sit apart from your examples: a "
                    "topic no label covers, repeated in the file, is caught more often; each answer then depends "
                    "on the other rows")
TOO_FEW_TO_READ_TOGETHER = (f"Read together: the file has fewer than {BATCH_MIN_TEXTS} rows, too few for a topic to "
                            "repeat; each row was read on its own")
EVAL_TOGETHER_INFO = ("score the file's rows as Batch does with this option: to see, and choose on the curve below, "
                      "what it does to the unknown answers")
AUTO_LABEL = "Unknown: automatic (from your examples)"
AUTO_INFO = ("answer 'unknown' when a text scores below nearly all of your own examples (the threshold that "
             "costs about 2% of accuracy on them, by cross-validation); untick to set a confidence threshold yourself")
INT8_LABEL = "int8 encoder"
INT8_INFO = ("on 2 cores about twice the throughput of fp32 (CSVs), the same time for one sentence, 5-shot "
             "accuracy within 0.3 points; switching encodes your examples again")


def text_column_warning(df: pd.DataFrame, name: str, exclude: str | None = None) -> None:
    """Warn when no column of the upload ``name`` looks like text, so that the person picks the text column rather
    than have numbers classified."""
    if note := uploads.text_column_note(df, name, exclude):
        gr.Warning(note, duration=10)


def current_tier(encoder: Any, default: str) -> str:
    """The encoder choice of a request, ``default`` when it is not one (a freshness check never fails)."""
    try:
        return tiers.choice(encoder) if encoder is not None else default
    except FewShotError:
        return default


def other_tier(result: Any) -> str:
    """The encoder choice a result (a batch, an evaluation) was made with ("" when it records none)."""
    tier = result.get("tier") if isinstance(result, dict) else None
    return tier if tier in (tiers.FAST, tiers.ACCURATE) else ""


def other_tier_note(tier: str, kind: str) -> str:
    """The mark of a result made with the encoder ``tier`` while the other one is chosen (``kind``: "batch",
    "eval" or "point")."""
    again = {"batch": "press **Classify** to label the texts with the current one",
             "eval": "press **Evaluate** to measure the current one",
             "point": "press **Evaluate** again to choose a threshold for the current one"}[kind]
    what = {"batch": "These answers were", "eval": "These results were", "point": "This curve was"}[kind]
    return f"_{what} made with the {tier} encoder: {again}._\n\n"


def remark(text: Any, done: Any, note: str, on: bool) -> Any:
    """``marked`` once more, on ``done`` (a text already re-marked) or else ``text``."""
    base = done if isinstance(done, str) else text
    again = marked(base, note, on)
    return again if isinstance(again, str) else done
