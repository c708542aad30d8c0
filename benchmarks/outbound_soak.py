"""Outbound soak: timed journey steps through two ``arbiter worker`` processes to fake providers.

Starts a private redis-server, a fake HTTP provider (fails 30 % of calls,
answers some with 429 + ``Retry-After``, goes down for ``--outage`` seconds,
rejects the poison customers' payloads until "fixed"), an ``aiosmtpd`` SMTP
server, and two ``arbiter worker`` processes on ``examples/outbound``. Signs
``--customers`` customers up (Track, spread over ``--spread`` seconds) into a
journey that sends a push 2 s later and an email 2 s after that; revokes
consent of a few customers while their first step waits; ``SIGKILL``s one
worker mid-run. Prints, counted at the receivers: lost and duplicate
deliveries per idempotency key, the largest number of provider calls in any
second against the configured rate, the poison messages in the DLQ and
their delivery after ``arbiter outbox dlq retry``, the due-to-fire lag
(p50/p99, steady state and overall), the backlog drain time after the
outage, and whether the opted-out customers got anything.

    make outbound-soak                                  # 10,000 customers
    python -m benchmarks.outbound_soak --customers 500 --outage 3 --spread 5

The machine is shared: timings are indicative, not thresholds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parents[1]
for _p in (ROOT / "tests",):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import redis_support  # noqa: E402

POLICIES: Final = ROOT / "examples" / "outbound" / "policies"
CONFIG: Final = ROOT / "examples" / "outbound" / "outbound.yaml"


def write_policies(directory: Path, step_s: float) -> Path:
    """The example policy with each outbound step ``step_s`` after the previous one."""
    target = directory / "policies"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(POLICIES, target)
    doc = target / "policy.yaml"
    doc.write_text(doc.read_text().replace("after: 2s", f"after: {round(step_s * 1000)}ms"))
    return target


@dataclass
class Receiver:
    """What the fake providers saw."""

    accepted: Counter[str] = field(default_factory=Counter)  # idempotency key -> 2xx answers
    meta: dict[str, tuple[str, str, int, int]] = field(
        default_factory=dict
    )  # key -> cust, dest, due, fired
    calls_per_second: Counter[int] = field(default_factory=Counter)  # webhook calls, all answers
    first_seen: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, key: str, customer: str, dest: str, due: int, fired: int) -> bool:
        with self.lock:
            self.accepted[key] += 1
            if key not in self.meta:
                self.meta[key] = (customer, dest, due, fired)
                self.first_seen[key] = time.time()
                return True
            return False


class FakeHttpProvider:
    """A minimal HTTP/1.1 server (keep-alive) playing a flaky push provider."""

    def __init__(
        self, receiver: Receiver, *, fail_rate: float, throttle_rate: float, seed: int
    ) -> None:
        self.receiver = receiver
        self.fail_rate = fail_rate
        self.throttle_rate = throttle_rate
        self.rng = random.Random(seed)
        self.down_until = 0.0
        self.poison_fixed = False
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._conn, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def _conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = time.time()
                if now < self.down_until:  # the outage: connections are dropped
                    writer.close()
                    return
                self.receiver.calls_per_second[int(now)] += 1
                status, extra = self._answer(headers, body)
                text = b'{"ok":true}' if status == 200 else b'{"error":"nope"}'
                writer.write(
                    f"HTTP/1.1 {status} X\r\ncontent-length: {len(text)}\r\n{extra}\r\n".encode()
                    + text
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    def _answer(self, headers: dict[str, str], body: bytes) -> tuple[int, str]:
        doc = json.loads(body)
        key = headers.get("idempotency-key", "")
        if key in self.receiver.accepted:  # idempotent: a key seen before answers 200 again
            self.receiver.accept(key, doc["customer_id"], "push", 0, 0)
            return 200, ""
        if doc["customer_id"].startswith("poison") and not self.poison_fixed:
            return 422, ""
        roll = self.rng.random()
        if roll < self.throttle_rate:
            return 429, "retry-after: 1\r\n"
        if roll < self.throttle_rate + self.fail_rate:
            return 500, ""
        self.receiver.accept(key, doc["customer_id"], "push", doc["due_ms"], doc["fired_ms"])
        return 200, ""


def start_smtp(receiver: Receiver) -> Any:
    from aiosmtpd.controller import Controller

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email

            message = email.message_from_bytes(envelope.content)
            key = message["X-Idempotency-Key"]
            customer = envelope.rcpt_tos[0].split("@")[0]
            due, fired = int(message["X-Arbiter-Due"]), int(message["X-Arbiter-Fired"])
            receiver.accept(key, customer, "mail", due, fired)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=redis_support.free_port())
    controller.start()
    return controller


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["ARBITER_PUSH_HOOK_SECRET"] = "soak-secret"
    return env


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "arbiter.server.cli", *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_config(directory: Path, http_port: int, smtp_port: int, rate: float) -> Path:
    doc = yaml.safe_load(CONFIG.read_text())
    for dest in doc["destinations"]:
        if dest["kind"] == "webhook":
            dest["url"] = f"http://127.0.0.1:{http_port}/push"
            dest["rate_per_s"] = rate
            dest["max_attempts"] = 10
            dest["backoff"] = {"base_s": 0.2, "max_s": 2}
        else:
            dest["port"] = smtp_port
    path = directory / "outbound.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def start_worker(
    config: Path, policies: Path, redis_url: str, log: Path
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return _popen(config, policies, redis_url, out)


def _popen(config: Path, policies: Path, redis_url: str, out: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "arbiter.server.cli",
            "worker",
            "--config",
            str(config),
            "--policies",
            str(policies),
            "--redis-url",
            redis_url,
            "--reclaim-idle",
            "3",
        ],
        cwd=ROOT,
        env=_env(),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


async def _signups(core: Any, customers: list[str], spread_s: float, opt_out: set[str]) -> None:
    from arbiter.server.service import Call
    from arbiter.v1 import decision_pb2

    start = time.monotonic()
    for i in range(0, len(customers), 50):
        batch = customers[i : i + 50]
        events = []
        for c in batch:
            event = decision_pb2.Event(event_id=f"signup.{c}", customer_id=c, type="signed_up")
            event.timestamp.GetCurrentTime()
            events.append(event)
        await asyncio.gather(
            *(
                core.track_results(decision_pb2.TrackRequest(events=[e]), Call.with_timeout(10))
                for e in events
            )
        )
        for c in batch:  # an opt-out recorded while the first step (2 s) waits
            if c in opt_out:
                update = decision_pb2.UpdateProfileRequest(
                    request_id=f"optout.{c}", customer_id=c, source="soak"
                )
                update.timestamp.GetCurrentTime()
                for purpose in ("push_marketing", "email_marketing"):
                    update.consents.add(purpose=purpose, state=decision_pb2.CONSENT_STATE_DENIED)
                await core.update_profile(update, Call.with_timeout(10))
        target = start + spread_s * (i + len(batch)) / len(customers)
        await asyncio.sleep(max(0.0, target - time.monotonic()))


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as redis_asyncio

    from arbiter.server.registry import PolicyRegistry
    from arbiter.server.service import DecisionCore
    from arbiter.state import open_store

    tmp = Path(args.workdir or redis_support.tempfile.mkdtemp(prefix="outbound-soak-"))
    tmp.mkdir(parents=True, exist_ok=True)
    server = redis_support.RedisServer().start()
    receiver = Receiver()
    provider = FakeHttpProvider(
        receiver, fail_rate=args.fail_rate, throttle_rate=args.throttle_rate, seed=7
    )
    await provider.start()
    smtp = start_smtp(receiver)
    workers: list[subprocess.Popen[bytes]] = []
    client: Any = redis_asyncio.Redis.from_url(server.url)
    store: Any = None
    try:
        out = _cli("state", "init", "--redis-url", server.url)
        assert out.returncode == 0, out.stderr
        config = write_config(tmp, provider.port, smtp.port, args.rate)
        policies = write_policies(tmp, args.step)
        workers = [
            start_worker(config, policies, server.url, tmp / f"worker{i}.log") for i in range(2)
        ]
        ready_deadline = time.time() + 60
        while time.time() < ready_deadline and not all(
            "worker up" in (tmp / f"worker{i}.log").read_text() for i in range(2)
        ):
            await asyncio.sleep(0.2)
        registry = PolicyRegistry()
        registry.load(policies)
        store = open_store(server.url, default_timeout_s=5.0)
        core = DecisionCore(registry, store, store_timeout_s=5.0, max_concurrent_calls=64)

        n = args.customers
        poison = [f"poison-{i}" for i in range(args.poison)]
        customers = [f"c{i}" for i in range(n)] + poison
        random.Random(1).shuffle(customers)
        opt_out = {c for c in customers[: args.opt_out] if not c.startswith("poison")}
        expected = {
            f"{c}.push" for c in customers if c not in opt_out and not c.startswith("poison")
        }
        expected |= {f"{c}.mail" for c in customers if c not in opt_out}

        t0 = time.time()
        samples: list[tuple[float, int]] = []
        stop = asyncio.Event()

        async def sample() -> None:
            while not stop.is_set():
                try:
                    backlog = await client.xlen("arb:{o:push_hook}:outbox") + await client.zcard(
                        "arb:{o:push_hook}:retry"
                    )
                    samples.append((time.time(), int(backlog)))
                except Exception:
                    pass
                await asyncio.sleep(0.2)

        sampler = asyncio.create_task(sample())
        signups = asyncio.create_task(_signups(core, customers, args.spread, opt_out))
        # The outage and the kill, part-way through the signups.
        await asyncio.sleep(args.spread * 0.4)
        outage_start = time.time()
        provider.down_until = outage_start + args.outage
        kill_at = time.time()
        workers[0].send_signal(signal.SIGKILL)
        await signups
        await asyncio.sleep(max(0.0, provider.down_until - time.time()))
        outage_end = time.time()

        def by_customer_action() -> set[str]:
            with receiver.lock:  # the SMTP server writes from its own thread
                values = list(receiver.meta.values())
            return {f"{cust}.{dest}" for cust, dest, _, _ in values}

        deadline = time.time() + args.timeout
        want = {k for k in expected if not k.startswith("poison")}
        while time.time() < deadline and not want <= by_customer_action():
            await asyncio.sleep(0.5)
        drained_at = time.time()

        # Poison: wait for the DLQ, fix the provider, retry from the CLI.
        dlq_entries: list[dict[str, Any]] = []
        poison_deadline = time.time() + args.timeout
        while time.time() < poison_deadline:
            listed = _cli(
                "outbox", "dlq", "list", "--config", str(config), "--redis-url", server.url
            )
            dlq_entries = [json.loads(line) for line in listed.stdout.splitlines() if line.strip()]
            if len([e for e in dlq_entries if e["customer_id"].startswith("poison")]) >= len(
                poison
            ):
                break
            await asyncio.sleep(1.0)
        provider.poison_fixed = True
        retried = _cli("outbox", "dlq", "retry", "--config", str(config), "--redis-url", server.url)
        poison_keys = {f"{p}.push" for p in poison}
        retry_deadline = time.time() + 30
        while time.time() < retry_deadline and not poison_keys <= by_customer_action():
            await asyncio.sleep(0.5)
        stop.set()
        await sampler

        got = by_customer_action()
        lost = sorted((expected | poison_keys) - got)
        if lost and args.debug:
            for key in lost[:5]:
                cust = key.rsplit(".", 1)[0]
                wakes = [
                    m
                    for m in await client.zrange("arb:{w}:wake", 0, -1, withscores=True)
                    if m[0].decode().startswith(cust + "|")
                ]
                leases = [
                    m
                    for m in await client.zrange("arb:{w}:lease", 0, -1, withscores=True)
                    if m[0].decode().startswith(cust + "|")
                ]
                journeys = await client.hgetall(f"arb:{{c:{cust}}}:j")
                records = await client.hkeys(f"arb:{{c:{cust}}}:r")
                print("LOST", key, wakes, leases, journeys, records, file=sys.stderr)
        # A key accepted again is a re-delivery the provider absorbed by its idempotency key
        # (at-least-once: a worker killed between the provider's 2xx and its XACK); a step
        # reaching the customer twice would be two keys for one customer and step.
        with receiver.lock:
            accepted = dict(receiver.accepted)
            meta = list(receiver.meta.values())
            calls = dict(receiver.calls_per_second)
        redelivered = sum(max(0, c - 1) for c in accepted.values())
        per_step = Counter(f"{cust}.{dest}" for cust, dest, _, _ in meta)
        duplicates = sum(c - 1 for c in per_step.values() if c > 1)
        opted_out_sent = sorted(k for k in got if k.rsplit(".", 1)[0] in opt_out)
        wrong_customer = sum(1 for k in got if k not in expected and k not in poison_keys)
        # Due-to-fire lag, from the entries as received; steady state excludes the window in
        # which the killed worker's claims waited for their lease.
        lease_s = 5.0
        lags_all, lags_steady = [], []
        for _cust, _dest, due, fired in meta:
            if not due:
                continue
            lag = (fired - due) / 1000
            lags_all.append(lag)
            if not (kill_at - 1 <= due / 1000 <= kill_at + lease_s + 2):
                lags_steady.append(lag)
        peak_rate = max(calls.values(), default=0)
        over = {s - int(t0): c for s, c in calls.items() if c > args.rate}
        steady_backlog = max((b for t, b in samples if t < outage_start), default=0)
        drain = next(
            (
                t - outage_end
                for t, b in samples
                if t >= outage_end and b <= max(steady_backlog, 10)
            ),
            float("nan"),
        )
        return {
            "customers": n,
            "poison_customers": len(poison),
            "expected_deliveries": len(expected) + len(poison_keys),
            "delivered_keys": len(got),
            "lost": len(lost),
            "lost_sample": lost[:10],
            "duplicates_at_receiver": duplicates,
            "redeliveries_absorbed_by_key": redelivered,
            "unexpected_deliveries": wrong_customer,
            "rate_limit_per_s": args.rate,
            "peak_provider_calls_in_any_second": peak_rate,
            "seconds_over_limit": over,
            "dlq_poison_entries": len(
                [e for e in dlq_entries if e["customer_id"].startswith("poison")]
            ),
            "dlq_attempts": sorted({e["attempts"] for e in dlq_entries}),
            "dlq_last_error": dlq_entries[0]["last_error"] if dlq_entries else "",
            "dlq_retry_cli": retried.stderr.strip(),
            "poison_delivered_after_retry": len(poison_keys & got),
            "fire_lag_p50_s": round(_pct(lags_steady, 0.5), 3),
            "fire_lag_p99_steady_s": round(_pct(lags_steady, 0.99), 3),
            "fire_lag_p99_all_s": round(_pct(lags_all, 0.99), 3),
            "fire_lag_max_s": round(max(lags_all, default=float("nan")), 3),
            "outage_s": args.outage,
            "backlog_drain_after_outage_s": round(drain, 2),
            "all_delivered_after_outage_s": round(drained_at - outage_end, 2),
            "opted_out_customers": len(opt_out),
            "opted_out_deliveries": len(opted_out_sent),
            "run_s": round(time.time() - t0, 1),
            "worker_killed": "SIGKILL worker 0 at +%.1f s" % (kill_at - t0),
        }
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(10)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
        for w in workers:
            for stream in (w.stdout, w.stderr):
                if stream is not None:
                    stream.close()
        await client.aclose()
        if store is not None:
            await store.close()
        if provider.server is not None:
            provider.server.close()
            await provider.server.wait_closed()
        smtp.stop()
        server.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument(
        "--spread", type=float, default=240.0, help="seconds over which customers sign up"
    )
    parser.add_argument("--outage", type=float, default=10.0)
    parser.add_argument(
        "--step", type=float, default=2.0, help="seconds between the journey's steps (example: 2)"
    )
    parser.add_argument("--rate", type=float, default=200.0, help="webhook rate limit per second")
    parser.add_argument("--fail-rate", type=float, default=0.30)
    parser.add_argument("--throttle-rate", type=float, default=0.05, help="share answered 429")
    parser.add_argument("--poison", type=int, default=3)
    parser.add_argument("--opt-out", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--workdir", default="")
    parser.add_argument("--debug", action="store_true", help="print the Redis state of lost keys")
    args = parser.parse_args(argv)
    result = asyncio.run(soak(args))
    for key, value in result.items():
        print(f"{key:40s} {value}")
    ok = (
        not result["lost"]
        and not result["duplicates_at_receiver"]
        and not result["opted_out_deliveries"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
