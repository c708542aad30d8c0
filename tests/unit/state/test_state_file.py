"""The embedded store's state file: round trip, remaining lifetimes, atomic writes, and a clear refusal of foreign, damaged or future files."""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from pathlib import Path

import msgspec
import pytest

from arbiter.policies.effects import DecisionCommit, EventEffects
from arbiter.policies.snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    JourneyState,
    ProfileValue,
)
from arbiter.state import StateFile, StateFileError
from arbiter.state.memory import ManualClock, MemoryStore
from arbiter.state.state_file import (
    FORMAT_VERSION,
    StateFileHeader,
    decode_state_file,
    encode_state_file,
)

T0 = 1_700_000_000_000


def _customer(cid: str) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id=cid,
        profile={"region": ProfileValue(value="EU", updated_ms=T0, source="crm")},
        consent={"email_marketing": ConsentRecord(state="denied", updated_ms=T0, source="cmp")},
        segments=frozenset({"vip"}),
        segments_updated_ms=T0,
        journeys={
            "onboarding": JourneyState(
                status="active", stage="welcome", entered_ms=T0, stage_entered_ms=T0
            )
        },
        caps={"daily:email": [T0 - 10, T0]},
    )


async def _populated(clock: ManualClock) -> MemoryStore:
    store = MemoryStore(clock=clock)
    store.seed(_customer("c-1"))
    store.seed(_customer("c-2"))
    commit = DecisionCommit(
        customer_id="c-1", request_id="r-1", decision_id="d-1", now_ms=T0, policy_version="v"
    )
    await store.commit_decision(commit, b'{"decision":1}', ttl_s=100.0, fingerprint=b"\x01")
    event = EventEffects(
        customer_id="c-1", event_id="e-1", event_type="view", event_ms=T0, now_ms=T0, counters=()
    )
    await store.apply_event(event, dedup_ttl_s=50.0)
    return store


def test_a_restart_keeps_everything_and_the_remaining_lifetimes(tmp_path: Path) -> None:
    async def main() -> None:
        clock = ManualClock()
        store = await _populated(clock)
        path = tmp_path / "state.arb"
        assert await StateFile(path, store).save()
        clock.advance(30)  # the old process keeps running a while: no effect on the file

        later = ManualClock(start=5.0)  # a new process: another monotonic origin
        restored = MemoryStore(clock=later)
        assert StateFile(path, restored).load()
        for cid in ("c-1", "c-2"):
            assert await restored.export_customer(cid) == await store.export_customer(cid)
        later.advance(49)
        assert (await restored.export_customer("c-1"))["applied_events"] == ["e-1"]
        later.advance(2)  # 51 s after the write: the 50 s marker is gone, the 100 s record not
        doc = await restored.export_customer("c-1")
        assert doc["applied_events"] == [] and [d["request_id"] for d in doc["decisions"]] == [
            "r-1"
        ]
        later.advance(50)
        assert (await restored.export_customer("c-1"))["decisions"] == []

    asyncio.run(main())


def test_a_write_only_happens_when_something_changed_and_is_atomic(tmp_path: Path) -> None:
    async def main() -> None:
        store = await _populated(ManualClock())
        path = tmp_path / "state.arb"
        state_file = StateFile(path, store)
        assert await state_file.save()
        first = path.stat().st_mtime_ns, path.read_bytes()
        assert not await state_file.save()  # nothing changed
        assert path.read_bytes() == first[1]
        await store.forget_customer("c-2")
        assert await state_file.save()
        assert os.listdir(tmp_path) == ["state.arb"]  # the temporary file was renamed
        again = MemoryStore()
        StateFile(path, again).load()
        assert len(again) == 1 and (await again.export_customer("c-2"))["profile"] == {}

    asyncio.run(main())


def test_a_missing_file_is_an_empty_start(tmp_path: Path) -> None:
    store = MemoryStore()
    assert not StateFile(tmp_path / "none.arb", store).load()
    assert len(store) == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not an Arbiter state file"),
        (b'{"customers": []}\n', "not an Arbiter state file"),
        (b"arbiter-state one two three\nxx", "damaged state file header"),
        (
            f"arbiter-state {FORMAT_VERSION + 1} 2 00000000\n".encode() + b"xx",
            f"state file format {FORMAT_VERSION + 1}",
        ),
    ],
)
def test_foreign_and_future_files_are_refused_naming_the_file(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "state.arb"
    path.write_bytes(content)
    with pytest.raises(StateFileError) as refused:
        StateFile(path, MemoryStore()).load()
    assert str(refused.value).startswith(f"{path}: ") and message in str(refused.value)


def test_a_truncated_or_altered_file_is_refused(tmp_path: Path) -> None:
    async def main() -> bytes:
        store = await _populated(ManualClock())
        path = tmp_path / "good.arb"
        await StateFile(path, store).save()
        return path.read_bytes()

    good = asyncio.run(main())
    for name, data in (
        ("truncated", good[:-5]),
        ("altered", good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:]),
    ):
        path = tmp_path / f"{name}.arb"
        path.write_bytes(data)
        store = MemoryStore()
        with pytest.raises(StateFileError, match=f"{path}: damaged state file"):
            StateFile(path, store).load()
        assert len(store) == 0  # nothing half-loaded


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([msgspec.msgpack.encode({"written_ms": "yesterday"})], "Expected `int`"),
        ([msgspec.msgpack.encode({"written_ms": 1, "customers": 2})], "0 customers, the header"),
        ([], "no header frame"),
    ],
)
def test_a_well_framed_body_that_does_not_add_up_is_refused(
    tmp_path: Path, frames: list[bytes], message: str
) -> None:
    body = b"".join(struct.pack(">I", len(f)) + f for f in frames)
    path = tmp_path / "odd.arb"
    path.write_bytes(
        f"arbiter-state {FORMAT_VERSION} {len(body)} {zlib.crc32(body):08x}\n".encode() + body
    )
    with pytest.raises(StateFileError, match="unreadable state file") as refused:
        StateFile(path, MemoryStore()).load()
    assert message in str(refused.value)


def test_sections_of_other_components_round_trip_and_unknown_ones_are_kept(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        path = tmp_path / "state.arb"
        pauses = {"value": b"journey:upsell"}
        writer = StateFile(path, MemoryStore())
        writer.add_section("pauses", lambda: pauses["value"], lambda _data: None)
        writer.add_section("future", lambda: b"from a newer server", lambda _data: None)
        await writer.save(force=True)

        loaded: list[bytes] = []
        reader = StateFile(path, MemoryStore())
        reader.add_section("pauses", lambda: b"", loaded.append)
        assert reader.load()
        assert loaded == [b"journey:upsell"]
        await reader.save(force=True)  # "future" is not registered here: written back unchanged
        again = StateFile(path, MemoryStore())
        seen: list[bytes] = []
        again.add_section("future", lambda: b"", seen.append)
        again.load()
        assert seen == [b"from a newer server"]

    asyncio.run(main())


def test_the_encoding_is_versioned_and_framed() -> None:
    async def main() -> None:
        store = await _populated(ManualClock())
        chunks = list(store.dump_chunks(chunk=1))
        assert [len(c) for c in chunks] == [1, 1]
        data = encode_state_file(StateFileHeader(written_ms=T0), chunks)
        assert data.startswith(f"arbiter-state {FORMAT_VERSION} ".encode())
        header, customers = decode_state_file(data, "x")
        assert header.customers == 2 and header.written_ms == T0
        assert customers == store.dump_state().customers

    asyncio.run(main())


def test_a_write_cancelled_midway_finishes_before_the_next_one_starts(tmp_path: Path) -> None:
    """Shutdown cancels the periodic writer and writes once more: the two writes must not
    share the temporary file (a thread cannot be cancelled)."""

    async def main() -> None:
        store = await _populated(ManualClock())
        path = tmp_path / "state.arb"
        state_file = StateFile(path, store)
        entered = asyncio.Event()
        release = asyncio.Event()
        loop = asyncio.get_running_loop()
        real_write = state_file._write
        active: list[int] = []

        def slow_write(sections: dict[str, bytes]) -> None:
            active.append(1)
            assert len(active) == 1, "two writes at once"
            loop.call_soon_threadsafe(entered.set)
            asyncio.run_coroutine_threadsafe(release.wait(), loop).result(10)
            real_write(sections)
            active.pop()

        state_file._write = slow_write  # type: ignore[method-assign]
        first = asyncio.create_task(state_file.save(force=True))
        await entered.wait()
        first.cancel()
        second = asyncio.create_task(state_file.save(force=True))
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(asyncio.CancelledError):
            await first
        assert await second
        restored = MemoryStore()
        assert StateFile(path, restored).load() and len(restored) == 2

    asyncio.run(main())


def test_a_changed_section_alone_makes_a_write_and_a_bad_one_refuses_the_file(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        path = tmp_path / "state.arb"
        value = {"pauses": b"{}"}
        writer = StateFile(path, MemoryStore())
        writer.add_section("governance", lambda: value["pauses"], lambda _data: None)
        assert await writer.save()
        assert not await writer.save()  # neither the store nor the section changed
        value["pauses"] = b'{"journey:upsell": {}}'
        assert await writer.save()  # only the section changed

        def refuse(_data: bytes) -> None:
            raise ValueError("not a governance dump")

        reader = StateFile(path, MemoryStore())
        reader.add_section("governance", lambda: b"", refuse)
        with pytest.raises(StateFileError, match="section 'governance' is unreadable"):
            reader.load()

    asyncio.run(main())
