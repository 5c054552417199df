"""actscope's activation telemetry inside other loops: a plain loop, Lightning, the HF Trainer.

``watch.py`` is ``actscope.watch(model)`` for a hand-written loop (re-exported from ``actscope``;
a top-level ``actscope/watch.py`` would be shadowed by that function). The trainers' integrations
are callbacks of that trainer, built on the shared step recorder (``recording.py``); import
each from its own module (``actscope.integrations.lightning``, ``...transformers``), which needs
the matching extra (``pip install 'actscope[lightning]'`` / ``'actscope[transformers]'``).
This package imports neither trainer.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from actscope.errors import ActscopeError

__all__ = ["MissingExtraError", "REPORT_SUBDIR", "require"]

# Both integrations write into this sub-folder of the trainer's own folder, so the report never
# meets the trainer's files of the same names (Lightning's metrics.csv, a model's config.json).
REPORT_SUBDIR = "actscope"


class MissingExtraError(ActscopeError, ImportError):
    """An integration was imported without the package it integrates with."""


def require(package: str, extra: str) -> ModuleType:
    """Import ``package``, or raise ``MissingExtraError`` saying which extra installs it."""
    try:
        return importlib.import_module(package)
    except ImportError as e:
        raise MissingExtraError(
            f"actscope.integrations.{extra} needs the {package!r} package, which is not "
            f"importable ({e}); install it with: pip install 'actscope[{extra}]'") from e
