"""Who may read a document: its ``access`` groups.

A document may carry ``access: [group, …]`` (stored as the metadata field ``access``).
Without it, everyone who may read the collection reads the document; with it, a
reader must belong to one of those groups; ``[]`` leaves it to readers who see every
document (a collection's writers, the admin). A search is restricted to readable
documents inside retrieval (``Filters.groups``, ``Snapshot.admitted``), so ``k``
readable hits come back whenever ``k`` readable passages match.

A value that is not a list of group names (an index written before access existed
may hold anything under ``access``) is read as no group at all: it fails closed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from .errors import InvalidInputError

#: The metadata field that holds a document's groups.
ACCESS = "access"
#: A group's name: letters (any script), digits, ``_``, ``.``, ``-``; at most 64 characters.
GROUP_NAME = re.compile(r"[^\W][\w.-]{0,63}")
MAX_GROUPS = 100


def check_group(name: object, where: str = "access") -> str:
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
        raise InvalidInputError(
            f"{where}: {str(name)[:80]!r} is not a group name (letters, digits, _ . -, at most 64 characters)"
        )
    return name


def check_access(value: object, where: str = "access") -> list[str]:
    """A document's ``access`` as given by a client: a list of group names (InvalidInputError otherwise)."""
    if not isinstance(value, list):
        raise InvalidInputError(f'{where}: a list of group names, such as ["hr"]')
    if len(value) > MAX_GROUPS:
        raise InvalidInputError(f"{where}: {len(value)} groups; the limit is {MAX_GROUPS}")
    return sorted({check_group(name, where) for name in value})


def document_groups(metadata: Mapping[str, Any]) -> frozenset[str] | None:
    """The groups that may read a document (None: everyone who may read its collection)."""
    if ACCESS not in metadata:
        return None
    value = metadata[ACCESS]
    if not isinstance(value, list):
        return frozenset()
    return frozenset(name for name in value if isinstance(name, str) and GROUP_NAME.fullmatch(name))


def readable(metadata: Mapping[str, Any] | None, groups: AbstractSet[str] | None) -> bool:
    """Whether a reader of ``groups`` (None: every document) may read a document with ``metadata``."""
    if groups is None:
        return True
    held = document_groups(metadata or {})
    return held is None or not held.isdisjoint(groups)


#: The key under which documents open to every reader are held (``access_keys``); not a group name.
OPEN = ""


def access_keys(metadata: Mapping[str, Any]) -> Iterable[str]:
    """The keys a document is held under for admission: each of its groups, or ``OPEN``."""
    held = document_groups(metadata)
    return (OPEN,) if held is None else held
