"""Which models clients may use: ``[models] allowed``, names or fnmatch patterns; empty = any.

The name checked is the one the client sees: the model it sent (an alias, not the alias's
target: listing an alias is the operator's grant of its target), or the configured model of
an Alice kind when the client names none. A model outside the list is ``ModelNotFound``
(404 ``model_not_found``), raised before anything is sent upstream.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from alice_py.config import ModelsConfig
from alice_py.errors import ModelNotFound

PATTERN_CHARS = frozenset("*?[")


def is_allowed(models: ModelsConfig, name: str) -> bool:
    # Case-sensitive, as model names are upstream.
    return not models.allowed or any(fnmatchcase(name, pattern) for pattern in models.allowed)


def check_model(models: ModelsConfig, name: str) -> str:
    """``name`` itself, or ``ModelNotFound`` when the allow-list leaves it out."""
    if not is_allowed(models, name):
        raise ModelNotFound(name)
    return name


def visible_models(models: ModelsConfig, names: Iterable[str]) -> list[str]:
    """``names`` that are allowed, then the allow-list's plain names (not patterns); each once."""
    plain = [name for name in models.allowed if not PATTERN_CHARS.intersection(name)]
    return [name for name in dict.fromkeys([*names, *plain]) if is_allowed(models, name)]
