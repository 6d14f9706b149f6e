"""fewshot: few-shot text classification from a handful of examples per label, in the browser or the CLI.

The public names load on first use (PEP 562), so ``import fewshot`` stays light: it imports no torch,
Gradio, Ray, matplotlib or training code and changes no process-wide setting.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "FewShotClassifier": "fewshot.classifier",
    "Match": "fewshot.classifier",
    "Prediction": "fewshot.classifier",
    "ClassifierConfig": "fewshot.config",
    "FewShotError": "fewshot.errors",
    "FewShotWarning": "fewshot.errors",
    "uncovered_groups": "fewshot.uncovered",
}

__all__ = ["ClassifierConfig", "FewShotClassifier", "FewShotError", "FewShotWarning", "Match", "Prediction",
           "__version__", "uncovered_groups"]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'fewshot' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
