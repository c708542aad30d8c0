"""What the embedded state file, privacy export/erasure and the decision log's customer index cost.

Run from the repository root (``make bench-privacy``)::

    .venv/bin/python -m benchmarks.privacy_bench [--customers 10000,50000] [--history 1000]
        [--records 20000] [--json]

Three measurements, each printed as a table (``--json``: one object):

1. **State file** (``--state-file``): a ``MemoryStore`` seeded with
   ``--customers`` realistic customers (5 traits, 3 consents, a journey, 2 cap
   keys with grants, 5 stored decisions of ~1 KB). Per size: ``dump_state``
   alone (the copy of the store), a whole write (copy + encode + atomic
   write, in a worker thread) and the longest event-loop stall seen by a 1 ms
   ticker during it, the file size, and the read on start (decode +
   ``restore_state``).
2. **Export / forget** of one customer with ``--history`` stored decisions
   and as many applied event ids, on the embedded store and on a private
   ``redis-server``: the store's own export, the export through the paged
   RPC logic at page size 100 and 1000 (every page re-reads the store), and
   the erasure.
3. **Decision log on Redis**: ``--records`` records written in batches of 256
   to a private Redis stream, once without a customer id (the index is
   skipped: the baseline) and once with one (per-record index update), same
   run; then a customer's records read and erased through the index.

Timings are wall-clock on a shared machine: compare rows of one run, not
across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Final

import msgspec

from arbiter.policies.effects import DecisionCommit, EventEffects
from arbiter.policies.snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    JourneyState,
    ProfileValue,
)
from arbiter.state import MemoryStore, StateFile

ROOT: Final = Path(__file__).resolve().parents[1]
T0: Final = 1_750_000_000_000
RECORD: Final = b'{"decision":"' + b"x" * 1000 + b'"}'


def _snapshot(cid: str) -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id=cid,
        profile={
            name: ProfileValue(value=f"{name}-{cid}", updated_ms=T0, source="crm")
            for name in ("region", "plan", "timezone", "first_name", "tier")
        },
        consent={
            p: ConsentRecord(state="granted", updated_ms=T0, source="cmp")
            for p in ("email_marketing", "push_marketing", "personalization")
        },
        journeys={
            "onboarding": JourneyState(
                status="active", stage="welcome", entered_ms=T0, stage_entered_ms=T0
            )
        },
        caps={"daily:email": [T0 - 1000, T0], "weekly:any": [T0 - 5000, T0 - 1000, T0]},
    )


async def _seeded(customers: int, decisions: int = 5) -> MemoryStore:
    store = MemoryStore(max_decisions_per_customer=100_000, max_events_per_customer=100_000)
    for i in range(customers):
        cid = f"c-{i}"
        store.seed(_snapshot(cid))
        for d in range(decisions):
            commit = DecisionCommit(
                customer_id=cid,
                request_id=f"r-{d}",
                decision_id=f"d-{i}-{d}",
                now_ms=T0,
                policy_version="v",
            )
            await store.commit_decision(commit, RECORD)
    return store


async def state_file_rows(sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    directory = Path(tempfile.mkdtemp(prefix="arbiter-state-bench-"))
    try:
        for customers in sizes:
            store = await _seeded(customers)
            path = directory / f"state-{customers}.arb"
            started = time.perf_counter()
            store.dump_state()
            dump_s = time.perf_counter() - started
            stalls: list[float] = []
            probing = asyncio.Event()

            async def probe(stalls: list[float] = stalls, probing: asyncio.Event = probing) -> None:
                while not probing.is_set():
                    before = time.perf_counter()
                    await asyncio.sleep(0.001)
                    stalls.append(time.perf_counter() - before - 0.001)

            prober = asyncio.create_task(probe())
            started = time.perf_counter()
            await StateFile(path, store).save(force=True)
            save_s = time.perf_counter() - started
            probing.set()
            await prober
            data = path.read_bytes()
            started = time.perf_counter()
            restored = MemoryStore()
            assert StateFile(path, restored).load()
            load_s = time.perf_counter() - started
            assert len(restored) == customers
            rows.append(
                {
                    "customers": customers,
                    "dump_ms": round(dump_s * 1000, 1),
                    "save_ms": round(save_s * 1000, 1),
                    "max_loop_stall_during_save_ms": round(max(stalls, default=0.0) * 1000, 1),
                    "file_mb": round(len(data) / 1e6, 1),
                    "read_on_start_ms": round(load_s * 1000, 1),
                }
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return rows


class _Context:
    async def abort(self, code: Any, details: str) -> None:
        raise RuntimeError(f"{code}: {details}")


async def _history(store: Any, cid: str, history: int) -> None:
    store.seed(_snapshot(cid)) if isinstance(store, MemoryStore) else await store.seed(
        _snapshot(cid)
    )
    for start in range(0, history, 250):
        await asyncio.gather(
            *(
                store.commit_decision(
                    DecisionCommit(
                        customer_id=cid,
                        request_id=f"r-{n}",
                        decision_id=f"d-{n}",
                        now_ms=T0,
                        policy_version="v",
                    ),
                    RECORD,
                )
                for n in range(start, min(start + 250, history))
            ),
            *(
                store.apply_event(
                    EventEffects(
                        customer_id=cid,
                        event_id=f"e-{n}",
                        event_type="view",
                        event_ms=T0,
                        now_ms=T0,
                        counters=(),
                    )
                )
                for n in range(start, min(start + 250, history))
            ),
        )


async def export_rows(history: int, redis_url: str) -> list[dict[str, Any]]:
    from arbiter.server import privacy
    from arbiter.server.registry import PolicyRegistry
    from arbiter.state import RedisStore
    from arbiter.v1 import admin_pb2

    rows = []
    stores: list[tuple[str, Any]] = [
        ("memory", MemoryStore(max_decisions_per_customer=100_000, max_events_per_customer=100_000))
    ]
    if redis_url:
        redis_store = RedisStore.from_url(redis_url, default_timeout_s=30.0)
        big = RedisStore(
            redis_store.client,
            default_timeout_s=30.0,
            max_decisions_per_customer=100_000,
            max_events_per_customer=100_000,
        )
        await big.init_state()
        stores.append(("redis", big))
    for name, store in stores:
        cid = f"big-{name}"
        await _history(store, cid, history)
        started = time.perf_counter()
        doc = await store.export_customer(cid)
        raw_s = time.perf_counter() - started
        row: dict[str, Any] = {
            "store": name,
            "history": len(doc["decisions"]) + len(doc["applied_events"]),
            "store_export_ms": round(raw_s * 1000, 1),
        }
        for size in (100, 1000):
            token, pages = "", 0
            started = time.perf_counter()
            while True:
                page = await privacy.export_customer(
                    store,
                    PolicyRegistry(),
                    admin_pb2.ExportCustomerRequest(
                        customer_id=cid, page_size=size, page_token=token
                    ),
                    _Context(),
                )
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            row[f"rpc_export_pages_{size}"] = pages
            row[f"rpc_export_ms_{size}"] = round((time.perf_counter() - started) * 1000, 1)
        started = time.perf_counter()
        removed = await store.forget_customer(cid)
        row["forget_ms"] = round((time.perf_counter() - started) * 1000, 1)
        row["forget_removed"] = removed
        rows.append(row)
        await store.close()
    return rows


async def decision_log_rows(records: int, redis_url: str) -> list[dict[str, Any]]:
    from arbiter.state import RedisStreamSink

    rows = []
    for label, with_customer in (
        ("no customer id (baseline)", False),
        ("indexed by customer", True),
    ):
        sink = RedisStreamSink.from_url(redis_url, prefix=f"bench-{int(with_customer)}")
        batch: list[tuple[str, bytes]] = []
        started = time.perf_counter()
        for n in range(records):
            doc = {"schema": 1, "decision_id": f"d-{n}", "pad": "x" * 1500}
            if with_customer:
                doc["customer_id"] = f"c-{n % 1000}"
            batch.append((f"d-{n}", msgspec.json.encode(doc)))
            if len(batch) == 256:
                await sink.write(batch)
                batch = []
        if batch:
            await sink.write(batch)
        write_s = time.perf_counter() - started
        row: dict[str, Any] = {
            "records": label,
            "write_records_per_s": round(records / write_s),
        }
        if with_customer:
            started = time.perf_counter()
            mine = await sink.customer_records("c-7")
            row["customer_records"] = len(mine)
            row["read_customer_ms"] = round((time.perf_counter() - started) * 1000, 2)
            started = time.perf_counter()
            row["forgot"] = await sink.forget_customer("c-7")
            row["forget_customer_ms"] = round((time.perf_counter() - started) * 1000, 2)
        rows.append(row)
        await sink.close()
    return rows


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(skipped)"
    keys = list(rows[0])
    for row in rows[1:]:
        keys += [k for k in row if k not in keys]
    widths = {k: max(len(k), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    lines = ["  ".join(k.ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", default="10000,50000", help="state file sizes")
    parser.add_argument("--history", type=int, default=1000, help="export/forget history")
    parser.add_argument("--records", type=int, default=20000, help="decision log records")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    import redis_support

    redis_server = None
    if shutil.which("redis-server"):
        redis_server = redis_support.RedisServer().start()
    url = redis_server.url if redis_server is not None else ""
    try:
        result = {
            "machine": f"{platform.machine()} {platform.python_implementation()} "
            f"{platform.python_version()} (shared: compare rows of one run)",
            "state_file": asyncio.run(state_file_rows([int(n) for n in args.customers.split(",")])),
            "export_forget": asyncio.run(export_rows(args.history, url)),
            "decision_log_redis": asyncio.run(decision_log_rows(args.records, url)) if url else [],
        }
    finally:
        if redis_server is not None:
            redis_server.close()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(result["machine"])
    for name in ("state_file", "export_forget", "decision_log_redis"):
        print(f"\n{name}:\n{_table(result[name])}")


if __name__ == "__main__":
    main()
