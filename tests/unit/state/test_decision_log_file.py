"""The JSON Lines decision log sink: append, rotate, find by id (newest first, the record's own id only), read and follow."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from arbiter.state import JsonlSink, find_in_file, follow_file, read_file


def _line(decision_id: str, **extra: object) -> bytes:
    return json.dumps(
        {"schema": 1, "kind": "decide", "decision_id": decision_id, **extra}, separators=(",", ":")
    ).encode()


def test_records_are_appended_one_per_line_and_found_by_id(tmp_path: Path) -> None:
    path = tmp_path / "log" / "decisions.jsonl"

    async def run() -> None:
        sink = JsonlSink(path)
        await sink.write([("d1", _line("d1", n=1)), ("d2", _line("d2"))])
        await sink.write([("d1", _line("d1", n=2))])
        assert await sink.find("d1") == _line("d1", n=2)  # the newest
        assert await sink.find("d3") is None
        await sink.close()

    asyncio.run(run())
    assert list(read_file(path)) == [_line("d1", n=1), _line("d2"), _line("d1", n=2)]


def test_find_skips_a_record_that_only_mentions_the_id(tmp_path: Path) -> None:
    """A Check's query names the Decide it belongs to; find returns the Decide itself."""
    path = tmp_path / "d.jsonl"
    decide = _line("d1")
    check = json.dumps(
        {"kind": "check", "decision_id": "c9", "query": {"decision_id": "d1"}},
        separators=(",", ":"),
    ).encode()
    path.write_bytes(decide + b"\n" + check + b"\n")
    assert find_in_file(path, "d1") == decide
    assert find_in_file(path, "c9") == check


def test_the_file_rotates_past_its_size_and_both_generations_are_read(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"

    async def run() -> None:
        sink = JsonlSink(path, max_bytes=200)
        for i in range(10):
            await sink.write([(f"d{i}", _line(f"d{i}", pad="x" * 30))])
        await sink.close()

    asyncio.run(run())
    rotated = tmp_path / "d.jsonl.1"
    assert rotated.exists() and rotated.stat().st_size >= 200
    assert path.stat().st_size < 200  # bounded: at most about twice max_bytes in all
    kept = [json.loads(line)["decision_id"] for line in read_file(path)]
    assert kept == sorted(kept, key=lambda d: int(d[1:]))  # oldest first, across generations
    assert kept[-1] == "d9" and find_in_file(path, kept[0]) is not None
    assert "d0" not in kept and find_in_file(path, "d0") is None  # rotated away


def test_follow_sees_new_records_across_a_rotation(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(_line("old") + b"\n")

    async def run() -> list[str]:
        seen: list[str] = []

        async def reader() -> None:
            async for line in follow_file(path, poll_s=0.01):
                seen.append(json.loads(line)["decision_id"])
                if len(seen) == 3:
                    return

        task = asyncio.create_task(reader())
        await asyncio.sleep(0.05)
        sink = JsonlSink(path, max_bytes=10)  # every write rotates
        await sink.write([("a", _line("a"))])
        await asyncio.sleep(0.05)
        await sink.write([("b", _line("b")), ("c", _line("c"))])
        await asyncio.wait_for(task, 5)
        await sink.close()
        return seen

    assert asyncio.run(run()) == ["a", "b", "c"]  # not "old": tail starts at the end


def test_a_customers_records_are_listed_and_erased_in_both_generations(tmp_path: Path) -> None:
    """Privacy export and erasure: only records whose own customer_id matches (not one that
    merely mentions it, not a customer whose id it prefixes), in the rotated file too; the
    sink keeps appending; readers skip the blanked records."""
    path = tmp_path / "d.jsonl"
    mine = [_line(f"m{i}", customer_id="c-1") for i in range(3)]
    others = [
        _line("o1", customer_id="c-10"),
        _line("o2", customer_id="c-2", request={"context": {"customer_id": "c-1"}}),
    ]

    async def run() -> None:
        sink = JsonlSink(path, max_bytes=1)
        await sink.write([("m0", mine[0]), ("o1", others[0])])  # rotated to d.jsonl.1
        sink.max_bytes = 1 << 20
        await sink.write([("m1", mine[1]), ("o2", others[1]), ("m2", mine[2])])
        assert await sink.customer_records("c-1") == mine
        before = path.stat()
        assert await sink.forget_customer("c-1") == 3
        after = path.stat()  # erased in place: same file, same size, offsets unchanged
        assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
        assert await sink.customer_records("c-1") == []
        assert await sink.forget_customer("c-1") == 0
        await sink.write([("o3", _line("o3", customer_id="c-3"))])
        await sink.close()

    asyncio.run(run())
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind
    assert list(read_file(path)) == [*others, _line("o3", customer_id="c-3")]
    assert (tmp_path / "d.jsonl.1").exists()


def test_a_follower_carries_on_across_an_erasure(tmp_path: Path) -> None:
    """`arbiter decisions tail` running while a customer is forgotten: nothing is emitted
    twice, nothing erased is emitted afterwards, new records keep coming."""
    path = tmp_path / "d.jsonl"

    async def run() -> list[bytes]:
        sink = JsonlSink(path)
        await sink.write([("a1", _line("a1", customer_id="c-1")), ("b1", _line("b1"))])
        seen: list[bytes] = []
        follower = follow_file(path, from_start=True, poll_s=0.01)

        async def consume() -> None:
            async for line in follower:
                seen.append(line)

        task = asyncio.create_task(consume())
        await asyncio.sleep(0.1)
        await sink.write([("a2", _line("a2", customer_id="c-1"))])
        await sink.forget_customer("c-1")
        await sink.write([("b2", _line("b2"))])
        await asyncio.sleep(0.2)
        task.cancel()
        await sink.close()
        return seen

    seen = asyncio.run(run())
    assert seen[:2] == [_line("a1", customer_id="c-1"), _line("b1")]
    assert seen[-1] == _line("b2") and len(seen) in (3, 4)  # a2 only if read before erasure
    assert seen.count(_line("b1")) == 1
