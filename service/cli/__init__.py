"""The ``zhsearch`` command line. Each module registers its commands on ``app`` when imported."""

from . import access, documents, evaluate, model, serve
from .app import app

__all__ = ["app", "main"]

# The command modules register themselves; listing them keeps the imports explicit.
_COMMANDS = (access, documents, evaluate, model, serve)


def main() -> None:
    app()
