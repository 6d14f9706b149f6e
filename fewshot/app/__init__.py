"""The web app (Gradio): label sets, Classify, Batch and Evaluate tabs over the library.

Modules: :mod:`~fewshot.app.server` (start-up: settings from the environment, :func:`create_app`,
:func:`launch`), :mod:`~fewshot.app.views` (the page's layout). What each action does, one module per tab:
:mod:`~fewshot.app.labels_tab`, :mod:`~fewshot.app.classify_tab`, :mod:`~fewshot.app.batch_tab`,
:mod:`~fewshot.app.review_tab`, :mod:`~fewshot.app.evaluate_tab`, :mod:`~fewshot.app.finetune` (the fine-tuning
panel), :mod:`~fewshot.app.encoder_choice` (the encoder status and choice), over :mod:`~fewshot.app.ui` (what they
share). The logic without Gradio: :mod:`~fewshot.app.state` (the label set, its undo history),
:mod:`~fewshot.app.label_edits` (edits of it), :mod:`~fewshot.app.session_classifier` (the session's classifier),
:mod:`~fewshot.app.uploads` (reading uploads), :mod:`~fewshot.app.downloads` (CSV downloads),
:mod:`~fewshot.app.classifier_zip` (saving and loading a classifier), :mod:`~fewshot.app.evaluate` (scoring a
labelled file), :mod:`~fewshot.app.review` (reviewing the last batch), :mod:`~fewshot.app.browser` (the browser
copy's secret and checks), :mod:`~fewshot.app.warmup` (the shared encoders, prepared in the background),
:mod:`~fewshot.app.tiers` (the Fast / Accurate encoder choice) and :mod:`~fewshot.app.settings` (whole-number
settings from the environment, checked). Needs the ``[app]`` extra.
Importing this package imports neither Gradio nor torch; :func:`create_app` imports Gradio.
"""

from __future__ import annotations

from .server import create_app, launch, parse_args

__all__ = ["create_app", "launch", "parse_args"]
