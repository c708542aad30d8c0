"""Due steps: claim the wake-ups that came due, decide through the service core, fill the outbox.

One claim (:data:`.redis_ops.CLAIM`, atomic) moves up to ``batch`` due
wake-ups into the lease set (``now + lease_s``); a claim whose lease ran out
-- its worker crashed or stalled -- is claimed again by any worker. Each
claimed wake-up ``<customer>|<journey>|<fire ms>|<stage ms>``:

1. **Which step?** The journey state is read and its timers applied up to
   now (as the decision will). The wake-up is for the step whose stage was
   entered at ``<stage ms>``: when the journey is in that stage, decide;
   when it has moved on by time (the claim came after the next step was
   due), this step is skipped and the current step's wake-up is recorded;
   when it left the journey or moved on by an event, nothing is sent.
2. **Decide**: a ``DecideRequest`` for the destinations' channels with
   request id ``wake.<journey>.<stage ms>`` (a deferred send:
   ``...<stage ms>.<fire ms>``), through :meth:`DecisionCore.decide_answer`
   -- the same engine, consent, caps, quiet hours, pauses and idempotency
   as any ``Decide``. Any re-run of the same step (a crash after the commit,
   a lease that ran out) replays the stored decision.
3. **Outbox**: each chosen action on an outbound channel is appended to its
   destination's stream with idempotency key ``<tracking id>`` (the decision
   id and the action), at most once per key (:data:`.redis_ops.APPEND`).
4. **Not committed** (the decision was answered fail-safe: state unreadable,
   commit failed): nothing is sent and the wake-up fires again a second
   later -- never settled as done.
5. **Defer or settle**: when nothing of the journey was chosen and the
   decision says when a refused candidate may go (``not_before``: quiet
   hours, a full cap), the wake-up is rescheduled then -- never dropped --
   in the same step that settles the claim.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from arbiter.policies import SnapshotNeeds, advance_timers
from arbiter.server.outbound.config import OutboundConfig
from arbiter.server.outbound.metrics import OUTBOUND
from arbiter.server.outbound.redis_ops import Entry, Scripts, encode_entry, outbox_keys
from arbiter.server.service import Call, DecisionCore
from arbiter.state import wake_key, wake_member
from arbiter.v1 import decision_pb2

__all__ = ["DEDUP_TTL_MS", "DueWorker", "parse_member"]

_log = logging.getLogger("arbiter.outbound")

DEDUP_TTL_MS = 7 * 86_400_000  # an idempotency key is appended at most once within this
_JOURNEYS = SnapshotNeeds(parts=frozenset({"journeys"}))
_RETRY_MS = 1000  # a wake-up whose decision could not be committed fires again after this


def parse_member(member: str) -> tuple[str, str, int, int]:
    """``(customer, journey, fire ms, stage ms)`` of a wake-up member."""
    customer, journey, fire, stage = member.split("|")
    return customer, journey, int(fire), int(stage)


class DueWorker:
    """The due-step loop of one ``arbiter worker`` (see the module docstring)."""

    def __init__(self, core: DecisionCore, client: Any, config: OutboundConfig) -> None:
        self.core = core
        self.client = client
        self.config = config
        self.scripts = Scripts(client)
        self.wake = wake_key(config.prefix)
        self.lease = self.wake.removesuffix(":wake") + ":lease"
        self.channels = config.channels()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        settings = self.config.worker
        limit = asyncio.Semaphore(settings.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            try:
                reply = await self.scripts.claim(
                    keys=[self.wake, self.lease],
                    args=[round(settings.lease_s * 1000), settings.batch],
                )
            except Exception as exc:
                _log.warning("claiming wake-ups failed: %s", exc)
                await self._sleep(1.0)
                continue
            now_ms = int(reply[0])
            claimed = [_text(m) for m in reply[1::2]]
            for member in claimed:
                await limit.acquire()
                task = asyncio.create_task(self._fire(member, now_ms))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                task.add_done_callback(lambda _t: limit.release())
            if len(claimed) < settings.batch:
                await self._sleep(settings.poll_interval_s)
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _fire(self, member: str, now_ms: int) -> None:
        try:
            await self.fire(member, now_ms)
        except Exception:
            # The lease runs out and another claim retries it: never dropped.
            OUTBOUND.wakeups.labels("error").inc()
            _log.exception("wake-up %s failed; it is retried after its lease", member)

    async def fire(self, member: str, now_ms: int) -> str:
        """Handle one claimed wake-up; returns what happened (``stale``, ``sent``, ``deferred``,
        ``nothing``)."""
        customer, journey_id, fire_ms, stage_ms = parse_member(member)
        OUTBOUND.due_lag.observe(max(0, now_ms - fire_ms) / 1000)
        active = self.core.registry.require()
        journey = active.policy.journeys.get(journey_id)
        timeout = self.config.worker.decide_timeout_s
        loaded = await self.core.store.load(customer, _JOURNEYS, now_ms, timeout_s=timeout)
        state = loaded.snapshot.journeys.get(journey_id)
        now_ms = now_ms if loaded.now_ms is None else loaded.now_ms
        if journey is None or state is None:
            return await self._settle(member, "stale")
        # Where the journey is now (timers applied as the decision will; an `after` with a
        # `when` counts as not firing here -- the decision evaluates it for real).
        current = advance_timers(active.policy, {journey_id: state}, {}, now_ms)[0][journey_id]
        if current.status != "active":
            return await self._settle(member, "stale")
        if current.stage_entered_ms != stage_ms:
            if current.stage_entered_ms > stage_ms and current.stage_entered_ms <= now_ms:
                # Claimed after the next step was due: this step is skipped (the customer is
                # no longer in its stage); make sure the current step has its wake-up.
                step = wake_member(customer, journey_id, current.stage_entered_ms)
                await self.scripts.settle(
                    keys=[self.wake, self.lease], args=[member, step, current.stage_entered_ms]
                )
                OUTBOUND.wakeups.labels("skipped").inc()
                return "skipped"
            return await self._settle(member, "stale")
        # One request id per journey step (the instant its stage was entered): any wake-up of
        # the same step -- a re-claim, a re-created one -- replays the same decision. A deferred
        # send is a new decision at its own time.
        suffix = "" if fire_ms == stage_ms else f".{fire_ms}"
        request = decision_pb2.DecideRequest(
            request_id=f"wake.{journey_id}.{stage_ms}{suffix}",
            customer_id=customer,
            channels=self.channels,
        )
        answer = await self.core.decide_answer(request, Call.with_timeout(timeout))
        decision = answer.decision
        if not (answer.recorded or answer.replayed):
            # Decided fail-safe (state unreadable, the commit failed or timed out): nothing was
            # committed, so nothing may be sent -- but the step must not be dropped either.
            # Fire it again shortly, same member, same request id.
            again = now_ms + _RETRY_MS
            await self.scripts.settle(keys=[self.wake, self.lease], args=[member, member, again])
            OUTBOUND.wakeups.labels("retry").inc()
            return "retry"
        fired_ms = decision.decided_ms
        appended = 0
        mine = False
        for chosen in decision.actions:
            dest = self.config.destination_for(chosen.channel)
            if dest is None:
                continue
            if chosen.journey == journey_id and chosen.stage != current.stage:
                # The stage changed between the check above and the decision (a worker slower
                # than the gap between steps): the next step's own wake-up sends that stage's
                # actions; sending it here too would send it twice.
                OUTBOUND.wakeups.labels("stage_moved").inc()
                continue
            mine = mine or chosen.journey == journey_id
            entry = Entry(
                key=chosen.tracking_id,
                destination=dest.id,
                customer_id=customer,
                action=chosen.action,
                channel=chosen.channel,
                decision_id=decision.decision_id,
                tracking_id=chosen.tracking_id,
                payload=dict(chosen.payload),
                due_ms=fire_ms,
                fired_ms=fired_ms,
            )
            keys = outbox_keys(self.config.prefix, dest.id)
            appended += int(
                await self.scripts.append(
                    keys=[keys.stream, keys.dedup_prefix + entry.key],
                    args=[DEDUP_TTL_MS, encode_entry(entry)],
                )
            )
        nb = decision.not_before_ms
        if not mine and nb is not None and nb > fired_ms:
            later = wake_member(customer, journey_id, nb, stage_ms)
            await self.scripts.settle(keys=[self.wake, self.lease], args=[member, later, nb])
            OUTBOUND.wakeups.labels("deferred").inc()
            return "deferred"
        OUTBOUND.appended.inc(appended)
        return await self._settle(member, "sent" if appended else "nothing")

    async def _settle(self, member: str, outcome: str) -> str:
        await self.scripts.settle(keys=[self.wake, self.lease], args=[member])
        OUTBOUND.wakeups.labels(outcome).inc()
        return outcome


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
