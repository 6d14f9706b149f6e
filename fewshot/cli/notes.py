"""What a command says on stderr besides its answers: ``fewshot: note:`` lines, row counts, progress bars, and
fewshot's own warnings shown as notes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from ..errors import FewShotWarning


def _progress_bar(desc: str, total: int | None = None, unit: str = "text") -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True,
                mininterval=0.5, disable=bool(os.environ.get("FEWSHOT_NO_PROGRESS")))


def _rows(n: int) -> str:
    """``"1 row"``, ``"1,234 rows"``."""
    return f"{n:,} row" + ("" if n == 1 else "s")


def _note(message: str | None) -> None:
    """One ``fewshot: note:`` line on stderr (none for None), above a progress bar that is showing (tqdm.write),
    not inside its line."""
    if message:
        from tqdm import tqdm

        tqdm.write(f"fewshot: note: {message}", file=sys.stderr)


def _note_over_length(count: int, limit: int | None) -> None:
    """Say on stderr how many texts were longer than the encoder reads (only their start counted)."""
    if count:
        from ..encoders.encoder import over_length_note

        _note(over_length_note(count, limit))


def _note_batch_aware(args: argparse.Namespace, n_texts: int) -> None:
    """Tell the user when ``--batch-aware`` had too few texts to read them together."""
    from ..batch_reading import BATCH_MIN_TEXTS, reads_together

    if args.batch_aware and not reads_together(n_texts):
        print(f"--batch-aware: fewer than {BATCH_MIN_TEXTS} texts, too few for a topic to repeat; each row was read "
              "on its own", file=sys.stderr)


def _warnings_as_notes(shown: Callable[..., None]) -> Callable[..., None]:
    """A ``warnings.showwarning`` for a command's run: fewshot's own warnings (truncated texts, duplicate examples,
    examples in another language) as ``fewshot:`` notes, each once however often a file is read, other libraries'
    user warnings left out of the command's output, the rest to ``shown`` (the hook in place before the run, put
    back after it)."""
    said: set[str] = set()

    def show(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, FewShotWarning | FutureWarning):
            if str(message) not in said:
                said.add(str(message))
                _note(str(message))
        elif not issubclass(category, UserWarning):
            shown(message, category, *args, **kwargs)
    return show
