"""``python -m fewshot.cli``: the ``fewshot`` command."""

import sys

from . import main

sys.exit(main())
