"""Admission control: the limit, FIFO hand-over, refusals by deadline and queue length, no leaked slots."""

from __future__ import annotations

import asyncio
import time

import pytest

from arbiter.server.admission import Admission, Overloaded


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_calls_under_the_limit_enter_at_once() -> None:
    async def main() -> None:
        admission = Admission(2)
        await admission.enter(None)
        await admission.enter(0.001)  # a tight deadline is fine when nobody waits
        assert admission.active == 2
        assert admission.queued == 0

    asyncio.run(main())


def test_a_call_whose_deadline_cannot_be_met_behind_the_line_is_refused_at_once() -> None:
    async def main() -> None:
        admission = Admission(1, clock=Clock())
        admission.service_s = 0.010
        await admission.enter(None)  # the one slot is busy
        waiting = asyncio.create_task(admission.enter(1.0))
        await asyncio.sleep(0)
        assert admission.queued == 1
        # Second in line: expected wait 2 x 10 ms, plus its own service time and margin.
        with pytest.raises(Overloaded) as refused:
            await admission.enter(0.030)
        assert refused.value.reason == "deadline"
        assert "cannot be met" in refused.value.detail
        assert admission.queued == 1  # the refused call never queued
        waiting.cancel()

    asyncio.run(main())


def test_a_full_queue_refuses_calls_without_a_deadline_only() -> None:
    async def main() -> None:
        admission = Admission(1, max_queue=2)
        await admission.enter(None)
        waiters = [asyncio.create_task(admission.enter(None)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await admission.enter(None)
        assert refused.value.reason == "queue_full"
        waiters.append(asyncio.create_task(admission.enter(10.0)))  # a deadline it can make
        await asyncio.sleep(0)
        assert admission.queued == 3
        for w in waiters:
            w.cancel()

    asyncio.run(main())


def test_leaving_hands_the_slot_to_the_first_waiter_in_order() -> None:
    async def main() -> None:
        clock = Clock()
        admission = Admission(1, clock=clock)
        entered = await admission.enter(None)
        order: list[int] = []

        async def wait(i: int) -> None:
            await admission.enter(None)
            order.append(i)

        tasks = [asyncio.create_task(wait(i)) for i in range(3)]
        await asyncio.sleep(0)
        clock.now += 0.004
        admission.leave(entered)
        # The service time moved toward the 4 ms the first call held its slot.
        assert admission.service_s > 0.002
        await asyncio.sleep(0)
        assert order == [0]
        assert admission.active == 1  # handed over, not released
        assert admission.queued == 2
        admission.leave(clock.now)
        admission.leave(clock.now)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2]
        admission.leave(clock.now)
        assert admission.active == 0

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_the_line_and_leaks_no_slot() -> None:
    async def main() -> None:
        admission = Admission(1)
        entered = await admission.enter(None)
        gone = asyncio.create_task(admission.enter(None))
        await asyncio.sleep(0)
        gone.cancel()
        with pytest.raises(asyncio.CancelledError):
            await gone
        assert admission.queued == 0
        admission.leave(entered)
        assert admission.active == 0
        await admission.enter(None)
        assert admission.active == 1

    asyncio.run(main())


def test_a_waiter_whose_deadline_comes_near_is_refused_in_line() -> None:
    async def main() -> None:
        admission = Admission(1)
        admission.service_s = 0.001
        await admission.enter(None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(Overloaded) as refused:
            await admission.enter(0.050)
        waited = loop.time() - started
        assert refused.value.reason == "deadline"
        assert "while waiting" in refused.value.detail
        assert waited >= 0.040  # it waited in line (refused at deadline minus the margin)
        assert admission.queued == 0
        assert admission.active == 1

    asyncio.run(main())


def test_while_the_loop_runs_behind_a_call_without_time_for_a_service_is_refused_at_once() -> None:
    async def main() -> None:
        admission = Admission(4)
        admission.service_s = 0.010
        await admission.enter(0.005)  # on time: a tight deadline is answered (fail-safe if need be)
        time.sleep(0.030)  # the loop falls behind ...
        await asyncio.sleep(0.001)  # ... and the monitor notices
        assert admission.lag_s > 0.005
        with pytest.raises(Overloaded) as refused:
            await admission.enter(0.005)
        assert "behind" in refused.value.detail
        await admission.enter(0.5)  # enough time left: admitted
        assert admission.active == 2
        admission.close()

    asyncio.run(main())
