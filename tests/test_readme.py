"""The README's Python example prints what its comment shows, with the default encoder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_python_example_prints_what_it_says() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S).group(1)
    code, shown = block.rsplit("\n# ", 1)
    *setup, last = code.strip().splitlines()
    namespace: dict = {}
    exec("\n".join(setup), namespace)  # noqa: S102 - the README's own example
    assert last.startswith("print(") and last.endswith(")")
    got = eval(last[len("print("):-1], namespace)  # noqa: S307 - what the last line prints
    assert str(got) == shown.strip()
