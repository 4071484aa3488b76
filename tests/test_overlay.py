"""Overlays against plain dicts given the same changes; older overlays never change."""

import random

import pytest

from index.storage.record import overlay
from index.storage.record.overlay import Overlay


@pytest.mark.parametrize("flatten_min", [3, 1000])
def test_overlay_matches_a_dict_and_keeps_old_versions(monkeypatch: pytest.MonkeyPatch, flatten_min: int) -> None:
    monkeypatch.setattr(overlay, "FLATTEN_MIN", flatten_min)
    rng = random.Random(11)
    reference = {n: f"v{n}" for n in range(50)}
    current: Overlay[int, str] = Overlay(dict(reference))
    history = [(current, dict(reference))]
    for step in range(300):
        removed = [rng.randrange(80) for _ in range(rng.randrange(3))]
        added = {rng.randrange(80): f"s{step}" for _ in range(rng.randrange(3))}
        current = current.updated(removed, added)
        for key in removed:
            reference.pop(key, None)
        reference.update(added)
        history.append((current, dict(reference)))
    for version, expected in history:
        assert dict(version) == expected and len(version) == len(expected)
        assert all((key in version) == (key in expected) for key in range(80))
        assert version.get(999) is None
