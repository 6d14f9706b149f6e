"""Progress reporting as the library takes it: a ``progress(done, total)`` callback, or ``True`` for a tqdm bar."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

ProgressFn = Callable[[int, int], None]
"""Called as ``progress(done, total)`` while texts are encoded (the CLI feeds tqdm, the app gr.Progress)."""
Progress = ProgressFn | bool | None
"""What the library's ``progress=`` takes: a :data:`ProgressFn`, ``True`` for a tqdm bar, or None/False."""


def tqdm_progress(bar: Any) -> ProgressFn:
    """A ``progress(done, total)`` callback that moves the tqdm ``bar``; nothing to do (every text already encoded,
    in the encoder's cache) fills the bar instead of resetting it to an empty "0 texts"."""
    def update(done: int, total: int) -> None:
        if total == 0:
            bar.update((bar.total or 0) - bar.n)
            return
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)  # update, not refresh: keeps tqdm's mininterval (one line per step in a log)
    return update


Method = TypeVar("Method", bound=Callable[..., Any])


def takes_progress_bar(desc: str, unit: str = "text") -> Callable[[Method], Method]:
    """Let a method's ``progress=`` keyword be ``True`` for a tqdm bar (a notebook's widget where there is one,
    closed when the work ends), as sentence-transformers' ``show_progress_bar``; a callback or None passes through
    unchanged. The bar appears with the first work to do: a call with nothing to do (every text in the encoder's
    cache) shows none."""
    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        def run(*args: Any, progress: Progress = None, **kwargs: Any) -> Any:
            if progress is not True:  # the common case, on the encoder's hot path: no context to enter
                return method(*args, progress=progress or None, **kwargs)
            from tqdm.auto import tqdm

            bars: list[Any] = []

            def update(done: int, total: int) -> None:
                if not bars:
                    if total == 0:
                        return
                    bars.append(tqdm(desc=desc, unit=unit, total=total))
                tqdm_progress(bars[0])(done, total)

            try:
                return method(*args, progress=update, **kwargs)
            finally:
                for bar in bars:
                    bar.close()
        return run  # type: ignore[return-value]
    return wrap
