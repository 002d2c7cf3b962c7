"""The two building blocks of every settings class: :func:`setting` and :class:`ConfigError`.

A module of its own (no imports from the package) so that :mod:`mgrl.estimators`, which owns the
scheme settings, and :mod:`mgrl.config`, which owns the rest and loads them, share them without
importing each other both ways.
"""

from __future__ import annotations

import dataclasses
from typing import Any

META_OPTIMIZERS = ("adam", "sgd")
"""The meta-optimisers (``meta.optimizer``, ``schemes.<name>.meta_optimizer``)."""


class ConfigError(ValueError):
    """An invalid configuration; the message starts with the dotted key at fault."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"config key '{key}': {message}")


def setting(default: Any, doc: str, **constraints: Any) -> Any:
    """A settings field: default, one-line description and JSON-schema constraints (``minimum``,
    ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``, ``enum``, ``minItems``, ``uniqueItems``,
    ``items``: the constraints of every list item), checked by :func:`mgrl.config.validate`."""
    if isinstance(default, dict):  # mutable: each instance gets its own copy
        return dataclasses.field(default_factory=lambda: dict(default),
                                 metadata={"doc": doc, **constraints})
    return dataclasses.field(default=default, metadata={"doc": doc, **constraints})
