"""fewshot: few-shot text classification from a handful of examples per label, in the browser or the CLI."""

__version__ = "0.1.0"

from .classifier import ClassifierConfig, FewShotClassifier, Match, Prediction  # noqa: E402
from .errors import FewShotError, FewShotWarning  # noqa: E402

__all__ = ["ClassifierConfig", "FewShotClassifier", "FewShotError", "FewShotWarning", "Match", "Prediction", "__version__"]
