"""The web app (Gradio): label sets, Classify, Batch and Evaluate tabs over the library.

Modules: :mod:`~fewshot.app.server` (start-up: settings from the environment, :func:`create_app`,
:func:`launch`), :mod:`~fewshot.app.views` (the page's layout), :mod:`~fewshot.app.handlers` (what each
action does), :mod:`~fewshot.app.state` (session state and the logic without Gradio) and
:mod:`~fewshot.app.warmup` (the shared encoders, prepared in the background), :mod:`~fewshot.app.tiers` (the
Fast / Accurate encoder choice), :mod:`~fewshot.app.review` (reviewing the last batch) and
:mod:`~fewshot.app.browser` (the browser copy's secret and checks), :mod:`~fewshot.app.settings` (whole-number
settings from the environment, checked). Needs the ``[app]`` extra.
Importing this package imports neither Gradio nor torch; :func:`create_app` imports Gradio.
"""

from __future__ import annotations

from .server import create_app, launch, parse_args

__all__ = ["create_app", "launch", "parse_args"]
