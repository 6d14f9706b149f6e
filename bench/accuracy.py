"""Accuracy benchmark: frozen encoder rules, logistic regression, and meta-trained heads, cross-dataset.

    python bench/accuracy.py                # MiniLM, full run (minutes on 2 CPU cores once embeddings are cached)
    python bench/accuracy.py --quick        # fewer random episodes
    python bench/accuracy.py --model mpnet  # the accurate tier -> bench/results/accuracy_mpnet.json

``--model`` names the encoder: ``minilm`` (and ``default``, whose base it is), ``mpnet``, or a folder (a
sentence-transformers folder, or a ``fewshot train`` folder, whose frozen base is then benchmarked). The
cross-dataset heads are ``--xfer`` (``{dataset}`` replaced by the scored dataset); by default
``models/xfer-no-{dataset}`` for MiniLM and ``models/mpnet-xfer-no-{dataset}`` for mpnet.

1. Standard splits (DNNC/CPFT): ``train_5`` / ``train_10`` -> ``test`` of CLINC150 and HWU64. Rows: the
   classifier's rules on the frozen encoder (``head`` = default, ``matching``, ``prototype``), sklearn
   logistic regression (C=10 and C=1) on the same frozen embeddings, and the meta-trained heads under
   the default rule. **Cross-dataset only**: HWU64 is scored with ``models/xfer-no-hwu64`` (trained
   without HWU64), CLINC150 with ``models/xfer-no-clinc150``. One more row: the frozen encoder with its
   automatic middle layer appended (what ``Encoder("minilm")`` gives by default, layer 4; layer 6 for
   ``mpnet``; ``extra_layers``), and the cross-dataset head with that layer appended after it (what a
   classifier over the head folder uses; vectors rebuilt from the cached ones, :class:`HeadThenLayers`).
2. Random N-way K-shot episodes (support drawn from ``train``, queries from ``test``): frozen vs
   meta-trained under the default rule, mean accuracy with a 95% confidence interval
   (1.96 standard errors) and the paired difference.

Every classifier row goes through :class:`fewshot.FewShotClassifier` itself (label names, centring,
L-BFGS head), fed precomputed embeddings by :class:`fewshot.meta.data.CachedEncoder`. Embeddings are cached
under ``$FEWSHOT_CACHE`` (default ``~/.cache/fewshot``; one forward pass gives both the sentence embedding
and the layered vector). Writes ``bench/results/accuracy.json`` (``accuracy_<model>.json`` for another
model than MiniLM; ``_quick`` with ``--quick``) and prints a Markdown table. Data: ``--data`` (default
``../shared/data``); skips cleanly (exit 0) when it is missing.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/common.py
from common import (  # noqa: E402
    DATASETS,
    ROOT,
    embed_once,
    environment,
    has_data,
    mean_ci,
    parser,
    read_split,
    reproducible,
    set_threads,
    write_json,
)

SHOTS = ("train_5", "train_10")
XFER = {"minilm": "xfer-no-{dataset}", "mpnet": "mpnet-xfer-no-{dataset}"}
"""Default cross-dataset head folders (under ``--models-dir``) per base encoder."""
LABELS = {"minilm": "MiniLM", "mpnet": "mpnet"}
"""How the rows name the frozen encoder."""


def base_model(model: str) -> str:
    """The frozen encoder a ``--model`` value stands for: ``default`` and MiniLM heads -> ``minilm``; a
    ``fewshot train`` folder -> its base; anything else as given."""
    import json

    from fewshot.encoders.registry import DEFAULT_MODEL, MODEL_CONFIG, models_dir

    folder = models_dir() / DEFAULT_MODEL if model == DEFAULT_MODEL else Path(model)
    if (folder / MODEL_CONFIG).is_file():
        return str(json.loads((folder / MODEL_CONFIG).read_text()).get("base", "minilm"))
    return "minilm" if model == DEFAULT_MODEL else model


def result_name(model: str, quick: bool) -> str:
    """``accuracy.json`` for MiniLM (the file the docs have always quoted), ``accuracy_<model>.json`` else."""
    tag = "" if model == "minilm" else "_" + Path(model).name.replace(" ", "_")
    return f"accuracy{tag}{'_quick' if quick else ''}.json"


class HeadThenLayers:
    """What ``Encoder(<head folder>)`` gives (the head on the sentence embedding, then the encoder's automatic
    layers appended, each part unit length, the whole re-normalised), rebuilt from the cached frozen vectors
    instead of another forward pass: equal to the encoder's own vectors up to float rounding."""

    def __init__(self, head: Any, layered: Any) -> None:
        self.head, self.layered = head, layered
        self.dim, self.name = layered.dim, head.name

    def describe(self) -> dict[str, Any]:
        return {"model": self.name, "dim": self.dim}

    def encode(self, texts: list[str], *, progress: Any = None) -> np.ndarray:
        layers = self.layered.encode(texts)[:, self.head.dim:]
        layers /= np.linalg.norm(layers, axis=1, keepdims=True)
        out = np.concatenate([self.head.encode(texts), layers], axis=1)
        return (out / np.linalg.norm(out, axis=1, keepdims=True)).astype(np.float32)


def parse_args(argv: list[str] | None = None) -> Any:
    p = parser(__doc__.split("\n\n")[0], out=None)
    p.add_argument("--model", default="minilm",
                   help="encoder: minilm (default), default (its base: minilm), mpnet, or a folder")
    p.add_argument("--models-dir", type=Path, default=ROOT / "models", help="where the cross-dataset heads live")
    p.add_argument("--xfer", default=None,
                   help="cross-dataset head folders under --models-dir, {dataset} = the scored dataset "
                        "(default: xfer-no-{dataset} for minilm, mpnet-xfer-no-{dataset} for mpnet)")
    p.add_argument("--split", default="test", choices=["test", "valid"], help="evaluation split (tune on valid)")
    p.add_argument("--episodes", type=int, default=100,
                   help="random episodes per dataset and shot count (0: only the standard splits; `train` is not read)")
    p.add_argument("--n-way", type=int, default=10, help="labels per random episode")
    p.add_argument("--queries", type=int, default=10, help="test queries per label per episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="20 episodes instead of --episodes")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1: shared machines)")
    args = p.parse_args(argv)
    args.base = base_model(args.model)
    if args.xfer is None:
        args.xfer = XFER.get(args.base)
    if args.out is None:
        args.out = ROOT / "bench" / "results" / result_name(args.base, args.quick)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not has_data(args.data):
        return 0
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from fewshot.encoders.encoder import Encoder
    from fewshot.encoders.heads import load_head
    from fewshot.meta.data import CachedEncoder, default_cache_dir, embed_texts, evaluate_csv

    reproducible()
    set_threads(args.threads)
    episodes = 20 if args.quick and args.episodes else args.episodes
    started = time.perf_counter()
    base = Encoder(args.base, extra_layers=())
    auto = Encoder(args.base)  # extra_layers="auto": + layer 4 for MiniLM, layer 6 for mpnet, none elsewhere
    label = LABELS.get(args.base, f"`{args.base}`")
    cache = default_cache_dir()
    frames: dict[tuple[str, str], pd.DataFrame] = {}
    for ds in DATASETS:
        for split in (*SHOTS, args.split, *(("train",) if episodes else ())):
            frames[ds, split] = read_split(args.data, ds, split)
    lists = {f"{ds}/{split}": df.text.tolist() for (ds, split), df in frames.items()}
    embed_once(lists, [base, auto] if auto.extra_layers else [base], cache_dir=cache, desc=f"encoding ({args.base})")
    vectors = {key: embed_texts(df.text.tolist(), base, cache_dir=cache) for key, df in frames.items()}
    frozen = CachedEncoder(base, name=args.base)
    for key, df in frames.items():
        frozen.add(df.text.tolist(), vectors[key])
    layered = CachedEncoder(auto, name=args.base) if auto.extra_layers else None
    if layered is not None:
        for key, df in frames.items():
            if key[1] != "train":
                layered.add(df.text.tolist(), embed_texts(df.text.tolist(), auto, cache_dir=cache))
    heads: dict[str, Any] = {}
    xfer: dict[str, Path] = {}
    for ds in DATASETS if args.xfer else ():
        path = args.models_dir / args.xfer.format(dataset=ds)
        if (path / "fewshot_model.json").is_file():
            heads[ds] = CachedEncoder(base, frozen.vectors, head=load_head(path, head_only=True), name=str(path))
            xfer[ds] = path
        else:
            print(f"note: {path} missing; no meta-trained row for {ds}", file=sys.stderr)

    def pair(ds: str, split: str) -> tuple[list[str], list[str]]:
        return frames[ds, split].text.tolist(), frames[ds, split].label.tolist()

    rows: dict[str, dict[str, float]] = {}
    for ds in DATASETS:
        test = pair(ds, args.split)
        for shot in SHOTS:
            col = f"{ds} {shot.split('_')[1]}-shot"
            support = pair(ds, shot)
            for rule in ("head", "matching", "prototype"):
                name = f"frozen {label}, sentence embedding only, rule={rule}" + \
                    (" (default)" if rule == "head" else "")
                rows.setdefault(name, {})[col] = evaluate_csv(frozen, support, test, rule=rule)
            for c in (10.0, 1.0):
                lr = LogisticRegression(C=c, max_iter=2000).fit(vectors[ds, shot], support[1])
                acc = float(np.mean(lr.predict(vectors[ds, args.split]) == np.asarray(test[1], dtype=object)))
                rows.setdefault(f"frozen {label}, logistic regression C={c:g}", {})[col] = acc
            if ds in heads:
                pattern = args.xfer.replace("{dataset}", "<dataset>")
                name = f"meta-trained head, cross-dataset (models/{pattern}), rule=head"
                rows.setdefault(name, {})[col] = evaluate_csv(heads[ds], support, test)
            if layered is not None:
                layers = ", ".join(map(str, auto.extra_layers))
                name = f"frozen {label} + layer {layers} (the library's `{args.base}`), rule=head"
                rows.setdefault(name, {})[col] = evaluate_csv(layered, support, test)
            if layered is not None and ds in heads:
                name = f"meta-trained head + layer {layers}, cross-dataset (models/{pattern}), rule=head"
                rows.setdefault(name, {})[col] = evaluate_csv(HeadThenLayers(heads[ds], layered), support, test)
            print(f"done {col}", file=sys.stderr)

    # random N-way K-shot episodes: support from train, queries from the evaluation split
    rng = np.random.default_rng(args.seed)
    episode_results: dict[str, Any] = {}
    for ds in DATASETS:
        if ds not in heads or not episodes:
            continue
        train, test = frames[ds, "train"], frames[ds, args.split]
        tr_by = train.groupby("label").indices
        te_by = test.groupby("label").indices
        labels = sorted(set(tr_by) & set(te_by))
        for k in (5, 10):
            scores: dict[str, list[float]] = {"frozen": [], "meta-trained": []}
            for _ in range(episodes):
                chosen = rng.choice(labels, size=min(args.n_way, len(labels)), replace=False)
                s_rows = np.concatenate([rng.choice(tr_by[c], size=k, replace=False) for c in chosen])
                q_rows = np.concatenate([rng.choice(te_by[c], size=min(args.queries, len(te_by[c])), replace=False)
                                         for c in chosen])
                support = (train.text.iloc[s_rows].tolist(), train.label.iloc[s_rows].tolist())
                query = (test.text.iloc[q_rows].tolist(), test.label.iloc[q_rows].tolist())
                scores["frozen"].append(evaluate_csv(frozen, support, query))
                scores["meta-trained"].append(evaluate_csv(heads[ds], support, query))
            diff = [b - a for a, b in zip(scores["frozen"], scores["meta-trained"])]
            episode_results[f"{ds} {args.n_way}-way {k}-shot"] = {
                "frozen": mean_ci(scores["frozen"]), "meta_trained": mean_ci(scores["meta-trained"]),
                "difference": mean_ci(diff), "model": str(xfer[ds])}
            print(f"done episodes {ds} {k}-shot", file=sys.stderr)

    columns = [f"{ds} {s.split('_')[1]}-shot" for ds in DATASETS for s in SHOTS]
    command = "python bench/accuracy.py" + (f" --model {args.model}" if args.model != "minilm" else "") + \
        (f" --models-dir {args.models_dir}" if args.models_dir != ROOT / "models" else "") + \
        (" --quick" if args.quick else "") + (f" --split {args.split}" if args.split != "test" else "") + \
        (f" --episodes {args.episodes}" if args.episodes != 100 and not args.quick else "")
    lines = [f"Accuracy on the `{args.split}` split, standard few-shot supports (`{command}`):", "",
             "| method | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for name, vals in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{100 * vals[c]:.2f}" if c in vals else "-" for c in columns) + " |")
    if episode_results:
        lines += ["", f"Random episodes ({episodes} per row; support from `train`, {args.queries} queries per label "
                  f"from `{args.split}`), mean ± 95% CI, default rule:", "",
                  "| episodes | frozen | meta-trained (cross-dataset) | difference |", "|---|---|---|---|"]
        for key, r in episode_results.items():
            f, m, d = r["frozen"], r["meta_trained"], r["difference"]
            lines.append(f"| {key} | {100 * f['mean']:.2f} ± {100 * f['ci95']:.2f} | "
                         f"{100 * m['mean']:.2f} ± {100 * m['ci95']:.2f} | {100 * d['mean']:+.2f} ± {100 * d['ci95']:.2f} |")
    table = "\n".join(lines)
    print(table)
    result = {"command": command, "model": args.model, "base": args.base, "split": args.split, "standard_splits": rows, "episodes": episode_results,
              "episodes_per_row": episodes, "n_way": args.n_way, "seed": args.seed, "table_markdown": table,
              "seconds": round(time.perf_counter() - started, 1), "python": environment()["python"],
              "models": {ds: str(path) for ds, path in xfer.items()}}
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
