"""``python -m fewshot.app``: the web app from an installed package (``python app.py`` in a checkout)."""

from . import create_app, launch

launch(create_app())
