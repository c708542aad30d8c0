"""UpdateProfile -> Track -> Decide -> Check against a running Arbiter, printing the decision and why.

Start a server first (``make serve``), then::

    .venv/bin/python examples/client_demo.py [--target 127.0.0.1:50051] [--customer ID]

Against a secured server (docs/security.md)::

    ARBITER_TOKEN=eyJ... .venv/bin/python examples/client_demo.py --target arbiter.internal:50051 \
        --ca ca.pem [--cert client.pem --key client.key]

The customer signs up, which enters the example set's onboarding journey at
its ``welcome`` stage; the decision then offers the welcome email, and the
explain trace shows why every other candidate was or was not chosen. About
one customer id in ten falls into a holdout (the example set's 5% global
control group and 5% onboarding holdout): the trace then says ``HOLDOUT`` or
``CONTROL_GROUP`` -- run it again for another id.
"""

from __future__ import annotations

import argparse
import os
import sys
import uuid
from datetime import UTC, datetime, timedelta

from arbiter_client import (
    ArbiterClient,
    ArbiterError,
    ConsentState,
    ConsentUpdate,
    Event,
    Timeouts,
    tls_credentials,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:50051", help="server address")
    parser.add_argument("--customer", default=f"demo-{uuid.uuid4().hex[:8]}", help="customer id")
    parser.add_argument("--ca", help="CA certificate of the server (PEM): use TLS")
    parser.add_argument("--cert", help="client certificate (PEM), for mutual TLS")
    parser.add_argument("--key", help="client private key (PEM), for mutual TLS")
    args = parser.parse_args(argv)
    customer = args.customer
    credentials = None
    if args.ca or args.cert:
        credentials = tls_credentials(args.ca, certificate_chain=args.cert, private_key=args.key)
    token = os.environ.get("ARBITER_TOKEN") or None  # a bearer token (JWT or API key)
    now = datetime.now(UTC)
    timeouts = Timeouts(decide=2.0, check=2.0, track=2.0, update_profile=2.0)

    try:
        with ArbiterClient(
            args.target,
            timeouts=timeouts,
            raise_on_error=True,
            credentials=credentials,
            token=token,
        ) as arbiter:
            profile = arbiter.update_profile(
                customer,
                source="crm",
                timestamp=now - timedelta(seconds=5),
                traits={"region": "US", "plan": "basic", "timezone": "America/New_York"},
                consents=[
                    ConsentUpdate("email_marketing", ConsentState.GRANTED),
                    ConsentUpdate("push_marketing", ConsentState.GRANTED),
                    ConsentUpdate("personalization", ConsentState.GRANTED),
                ],
            )
            print(f"UpdateProfile {customer}:")
            for field in profile.results:
                print(f"  {field.kind.value.lower():<15} {field.name:<18} {field.outcome.value}")

            tracked = arbiter.track(
                [Event(customer, "signed_up", {"channel": "web"}, timestamp=now)]
            )
            print("Track signed_up:", ", ".join(r.status.value for r in tracked.results))

            decision = arbiter.decide(customer, "", channels=["email", "push", "sms"], explain=True)
            print(f"\nDecide -> decision {decision.decision_id}")
            print(f"  policy   {decision.policy_version}")
            print("  actions:")
            for rank, action in enumerate(decision.actions, 1):
                where = f"{action.journey_id}/{action.stage}" if action.journey_id else "always-on"
                print(
                    f"    {rank}. {action.action_id} on {action.channel} ({where}) "
                    f"score={action.score:g} payload={action.payload}"
                )
            if not decision.actions:
                print("    (none: show or send nothing)")
            print("  explain:")
            for c in decision.candidates:
                print(
                    f"    {c.action_id:<26} {c.channel:<8} {c.outcome.value:<13} "
                    f"{c.reason.value:<18} {c.detail}"
                )
            print("  consent:")
            for p in decision.consent:
                verdict = "allowed" if p.allowed else f"denied ({p.reason.value})"
                print(f"    {p.purpose:<18} {verdict}")
            for d in decision.degradations:
                print(f"  degraded: {d.reason.value}: {d.detail}")

            if decision.action is not None:
                chosen = decision.action
                check = arbiter.check(
                    customer,
                    chosen.action_id,
                    chosen.channel,
                    record=True,
                    decision_id=decision.decision_id,
                )
                state = "allowed" if check.allowed else "refused"
                print(
                    f"\nCheck {chosen.action_id} on {chosen.channel}: {state} "
                    f"({check.reason.value}{', recorded against its caps' if check.recorded else ''})"
                )
    except ArbiterError as exc:
        print(f"error: {exc.code.name}: {exc.details}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
