"""Outbound journeys end to end: two `arbiter worker` processes, a private Redis, fake providers.

The small version of ``make outbound-soak`` (``benchmarks/outbound_soak.py``):
customers through a journey with two timed outbound steps (a webhook push and
an SMTP email), a flaky HTTP provider (30 % failures, 429 with Retry-After,
an outage), one worker SIGKILLed mid-run, poison messages dead-lettered and
retried from the CLI, opt-outs recorded while a step waits. Timings are
printed, not asserted (a shared machine); the steps are 5 s apart (the
example's 2 s in ``make outbound-soak``) so that a loaded CI machine's due
lag does not make a step come after the next one was due (then it is
skipped, by the journey's semantics, and counted lost here).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import outbound_soak  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]  # ~40 s alone; a loaded machine is slower


def test_timed_steps_reach_providers_once_through_crash_outage_and_poison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = outbound_soak.main(
        [
            "--customers",
            "500",
            "--step",
            "5",
            "--spread",
            "15",
            "--outage",
            "3",
            "--poison",
            "2",
            "--opt-out",
            "10",
            "--timeout",
            "120",
        ]
    )
    out = capsys.readouterr().out
    print(out)
    figures = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert figures["lost"] == "0", out
    assert figures["duplicates_at_receiver"] == "0", out
    assert figures["opted_out_deliveries"] == "0", out
    assert figures["seconds_over_limit"] == "{}", out
    assert figures["dlq_poison_entries"] == "2", out
    assert figures["poison_delivered_after_retry"] == "2", out
    assert figures["unexpected_deliveries"] == "0", out
    assert code == 0
