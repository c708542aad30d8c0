"""settle_heap: what exists once the server serves is out of the collector's sight."""

from __future__ import annotations

import gc

from arbiter.server.app import settle_heap


class _Node:
    """A tracked container with a cycle, like the compiled policy set's objects."""

    def __init__(self) -> None:
        self.me = self


def test_objects_alive_when_serving_starts_are_no_longer_walked_by_collections() -> None:
    before = _Node()
    assert any(o is before for o in gc.get_objects())
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        assert not any(o is before for o in gc.get_objects())  # a full collection skips it
        after = _Node()
        assert any(o is after for o in gc.get_objects())  # later objects are collected as usual
    finally:
        gc.unfreeze()
