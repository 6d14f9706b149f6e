"""Cross-dataset accuracy of encoders trained with ``fewshot train --encoder`` beside the frozen MiniLM and mpnet.

    python bench/distill.py --student RECIPE hwu64=FOLDER clinc150=FOLDER [--student ...] [--split test]

Each student folder must have been trained **without** the dataset it is scored on (``hwu64=`` a folder
trained on CLINC150 only, and the reverse). Standard splits: ``train_5`` / ``train_10`` -> ``--split``,
through :class:`fewshot.FewShotClassifier` with the default rule, each encoder with its sentence embedding
alone and with its default appended layer (layer 4 for MiniLM and its students, layer 6 for mpnet). The
frozen encoders' vectors come from the shared embedding cache (``$FEWSHOT_CACHE/embeddings``); students are
encoded through ``Encoder(model=FOLDER)`` itself (a private cache, so a retrained folder is never stale).
Writes ``bench/results/distill.json`` (``--out``) and prints a Markdown table.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import (  # noqa: E402
    DATASETS,
    embed_once,
    environment,
    has_data,
    parser,
    read_split,
    reproducible,
    set_threads,
    write_json,
)

SHOTS = ("train_5", "train_10")


def parse_args(argv: list[str] | None = None) -> Any:
    p = parser(__doc__.split("\n\n")[0], out="distill.json")
    p.add_argument("--student", nargs="+", action="append", default=[], metavar="ARG",
                   help="RECIPE DATASET=FOLDER ...: a recipe's folders, each trained without the dataset it scores")
    p.add_argument("--split", default="test", choices=["test", "valid"], help="evaluation split (select on valid)")
    p.add_argument("--no-mpnet", action="store_true", help="leave out the frozen mpnet rows")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    args = p.parse_args(argv)
    students = []
    for recipe, *pairs in args.student:
        folders = {}
        for pair in pairs:
            ds, _, folder = pair.partition("=")
            if ds not in DATASETS or not folder:
                p.error(f"--student {recipe}: expected DATASET=FOLDER with DATASET in {DATASETS}, got {pair!r}")
            folders[ds] = folder
        students.append((recipe, folders))
    args.students = students
    return args


def score_rows(encoders: dict[str, Any], frames: dict[tuple[str, str], Any], split: str,
               datasets: tuple[str, ...] = DATASETS) -> dict[str, float]:
    """Accuracy per ``"<dataset> <k>-shot"`` of one row (``encoders``: dataset -> CachedEncoder)."""
    from fewshot.meta.data import evaluate_csv

    out = {}
    for ds in datasets:
        if ds not in encoders:
            continue
        for shots in SHOTS:
            support, test = frames[ds, shots], frames[ds, split]
            out[f"{ds} {shots.split('_')[1]}-shot"] = evaluate_csv(
                encoders[ds], (support.text.tolist(), support.label.tolist()), (test.text.tolist(), test.label.tolist()))
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not has_data(args.data, split=args.split):
        return 0
    from fewshot.encoders.encoder import Encoder
    from fewshot.meta.data import CachedEncoder, default_cache_dir, embed_texts

    reproducible()
    set_threads(args.threads)
    started = time.perf_counter()
    frames = {(ds, split): read_split(args.data, ds, split) for ds in DATASETS for split in (*SHOTS, args.split)}
    lists = {f"{ds}/{split}": df.text.tolist() for (ds, split), df in frames.items()}

    def cached_rows(encoders: list[Any], cache: Path, desc: str, datasets: tuple[str, ...] = DATASETS
                    ) -> list[CachedEncoder]:
        wanted = {name: texts for name, texts in lists.items() if name.split("/")[0] in datasets}
        embed_once(wanted, encoders, cache_dir=cache, desc=desc)
        out = []
        for enc in encoders:
            row = CachedEncoder(enc, name=enc.name)
            for texts in wanted.values():
                row.add(texts, embed_texts(texts, enc, cache_dir=cache))
            out.append(row)
        return out

    rows: dict[str, dict[str, float]] = {}
    frozen = ["minilm"] + ([] if args.no_mpnet else ["mpnet"])
    for name in frozen:
        plain, layered = cached_rows([Encoder(name, extra_layers=()), Encoder(name)], default_cache_dir(), name)
        layer = {"minilm": "layer 4 (the library's `minilm`)", "mpnet": "layer 6 (the library's `mpnet`)"}[name]
        rows[f"frozen {name}, sentence embedding only"] = score_rows({ds: plain for ds in DATASETS}, frames, args.split)
        rows[f"frozen {name} + {layer}"] = score_rows({ds: layered for ds in DATASETS}, frames, args.split)
    students = {}
    for recipe, folders in args.students:
        plain_rows, layered_rows = {}, {}
        for ds, folder in folders.items():
            with tempfile.TemporaryDirectory() as tmp:  # never reuse vectors of an older folder at this path
                plain_rows[ds], layered_rows[ds] = cached_rows(
                    [Encoder(folder, extra_layers=()), Encoder(folder)], Path(tmp), f"{recipe} ({ds})", (ds,))
        rows[f"{recipe}, sentence embedding only"] = score_rows(plain_rows, frames, args.split)
        rows[f"{recipe} + layer 4"] = score_rows(layered_rows, frames, args.split)
        students[recipe] = folders
    columns = [f"{ds} {k}-shot" for ds in DATASETS for k in (5, 10)]
    lines = [f"| encoder ({args.split}) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * row[c]:.2f}" if c in row else "" for c in columns) + " |")
    table = "\n".join(lines)
    print(table)
    write_json(args.out, {"command": "python bench/distill.py " + " ".join(sys.argv[1:] if argv is None else argv),
                          "split": args.split, "rows": rows, "students": students, "table_markdown": table,
                          "seconds": round(time.perf_counter() - started, 1), "environment": environment()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
