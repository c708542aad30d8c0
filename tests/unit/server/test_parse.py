"""One parse pass: a request is validated and converted in the same walk -- the domain request, or the
field error (structure before contract, in request order), and an event's contract problem rejects only it."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import timestamp_pb2

from arbiter.policies import CompiledPolicy, load_policy
from arbiter.server.parse import (
    ValidationError,
    check_query,
    decide_request,
    profile_update,
    track_events,
)
from arbiter.v1 import decision_pb2, value_pb2

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_748_962_800_000


@pytest.fixture(scope="module")
def policy() -> CompiledPolicy:
    return load_policy(EXAMPLES)


def v(**kind: object) -> value_pb2.Value:
    return value_pb2.Value(**kind)  # type: ignore[arg-type]


def ints(*values: int) -> value_pb2.Value:
    return v(list_value=value_pb2.ListValue(values=[v(int_value=x) for x in values]))


def field_error(call: object) -> tuple[str, str]:
    with pytest.raises(ValidationError) as error:
        call()  # type: ignore[operator]
    return error.value.field, error.value.message


def test_decide_converts_while_it_validates(policy: CompiledPolicy) -> None:
    request = decision_pb2.DecideRequest(
        request_id="r",
        customer_id="c",
        channels=["email", "push", "email"],
        context={
            "cart_value": v(int_value=40),  # declared double: widened
            "page_type": v(string_value="cart"),
            "device": v(null_value=0),  # null: dropped
        },
        propensities={"cart_reminder_push": 0.25},
    )
    domain = decide_request(request, policy)
    assert domain.channels == ("email", "push")
    assert domain.context == {"cart_value": 40.0, "page_type": "cart"}
    assert type(domain.context["cart_value"]) is float
    assert domain.limit == 1
    assert domain.propensities == {"cart_reminder_push": 0.25}


def test_an_undeclared_context_key_is_named_with_a_suggestion(policy: CompiledPolicy) -> None:
    request = decision_pb2.DecideRequest(
        request_id="r", customer_id="c", context={"cart_valeu": v(double_value=3.0)}
    )
    assert field_error(lambda: decide_request(request, policy)) == (
        "context.cart_valeu",
        "unknown context field `cart_valeu`; did you mean `cart_value`? (not in contracts.context)",
    )
    check = decision_pb2.CheckRequest(
        request_id="r",
        customer_id="c",
        action_id="cart_reminder_push",
        channel="push",
        context={"pagetype": v(string_value="home")},
    )
    assert field_error(lambda: check_query(check, policy))[1].startswith(
        "unknown context field `pagetype`; did you mean `page_type`?"
    )


def test_an_open_context_keeps_undeclared_keys(policy: CompiledPolicy) -> None:
    import msgspec

    open_policy = msgspec.structs.replace(policy, context_open=True)
    request = decision_pb2.DecideRequest(
        request_id="r", customer_id="c", context={"experiment": ints(1, 2)}
    )
    assert decide_request(request, open_policy).context == {"experiment": [1, 2]}


def test_an_unknown_placement_is_named(policy: CompiledPolicy) -> None:
    request = decision_pb2.DecideRequest(request_id="r", customer_id="c", placement="home_baner")
    assert field_error(lambda: decide_request(request, policy)) == (
        "placement",
        "unknown placement `home_baner`; did you mean `home_banner`?",
    )
    known = decision_pb2.DecideRequest(request_id="r", customer_id="c", placement="home_banner")
    assert decide_request(known, policy).placement == "home_banner"


def test_propensities_name_known_actions_with_finite_values(policy: CompiledPolicy) -> None:
    unknown = decision_pb2.DecideRequest(
        request_id="r", customer_id="c", propensities={"cart_reminder_pus": 0.5}
    )
    assert field_error(lambda: decide_request(unknown, policy)) == (
        "propensities.cart_reminder_pus",
        "unknown action `cart_reminder_pus`; did you mean `cart_reminder_push`?",
    )
    nan = decision_pb2.DecideRequest(
        request_id="r", customer_id="c", propensities={"cart_reminder_push": float("nan")}
    )
    assert field_error(lambda: decide_request(nan, policy))[0] == (
        "propensities.cart_reminder_push"
    )


def test_structure_is_reported_before_the_contract(policy: CompiledPolicy) -> None:
    # The first entry breaks its declared type, the second the structure rules: structure wins.
    context = {
        "cart_value": v(string_value="forty"),
        "undeclared": v(double_value=float("nan")),
    }
    request = decision_pb2.DecideRequest(request_id="r", customer_id="c", context=context)
    assert field_error(lambda: decide_request(request, policy)) == (
        "context.undeclared",
        "NaN and infinite doubles are not allowed",
    )
    only_type = decision_pb2.DecideRequest(
        request_id="r", customer_id="c", context={"cart_value": v(string_value="forty")}
    )
    assert field_error(lambda: decide_request(only_type, policy)) == (
        "context.cart_value",
        "`cart_value` expected double, got string_value",
    )


def test_check_query_carries_the_converted_context(policy: CompiledPolicy) -> None:
    request = decision_pb2.CheckRequest(
        request_id="k",
        customer_id="c",
        action_id="welcome_email",
        channel="email",
        record=True,
        context={"cart_value": v(int_value=3)},
    )
    query = check_query(request, policy)
    assert query.context == {"cart_value": 3.0} and query.record
    assert query.record_key is not None and query.record_key.startswith("check:")
    unknown = decision_pb2.CheckRequest(request_id="k", customer_id="c", action_id="nope")
    assert field_error(lambda: check_query(unknown, policy)) == ("action_id", "unknown action")


def test_a_malformed_event_fails_the_batch_a_contract_breach_rejects_the_event(
    policy: CompiledPolicy,
) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=NOW // 1000)

    def event(event_id: str, **properties: value_pb2.Value) -> decision_pb2.Event:
        return decision_pb2.Event(
            event_id=event_id,
            customer_id="c",
            type="order_placed",
            timestamp=stamp,
            properties=properties,
        )

    good = event("e1", order_id=v(string_value="o1"), total=v(int_value=42))
    missing = event("e2", order_id=v(string_value="o2"))
    mistyped = event("e3", order_id=v(string_value="o3"), total=v(string_value="x"))
    parsed = track_events(decision_pb2.TrackRequest(events=[good, missing, mistyped]), policy, NOW)
    assert parsed[0].event is not None and parsed[0].event.properties == {
        "order_id": "o1",
        "total": 42.0,
    }
    assert (parsed[1].field, parsed[1].detail) == (
        "properties.total",
        "required property is missing",
    )
    assert (parsed[2].field, parsed[2].detail) == (
        "properties.total",
        "`total` expected double, got string_value",
    )
    broken = event("e4", order_id=v(string_value="o4"), total=v())
    batch = decision_pb2.TrackRequest(events=[good, broken])
    assert field_error(lambda: track_events(batch, policy, NOW)) == (
        "events[1].properties.total",
        "Value has no kind set (use null_value for null)",
    )


def test_traits_are_checked_in_the_order_the_map_iterates(policy: CompiledPolicy) -> None:
    stamp = timestamp_pb2.Timestamp(seconds=NOW // 1000)
    request = decision_pb2.UpdateProfileRequest(
        customer_id="c",
        source="crm",
        timestamp=stamp,
        traits={"shoe_size": v(int_value=9), "lifetime_value": v(string_value="x")},
    )
    why = {
        "shoe_size": "undeclared profile attribute",
        "lifetime_value": "`lifetime_value` expected double, got string_value",
    }
    first = next(iter(request.traits))
    assert field_error(lambda: profile_update(request, policy, NOW)) == (
        f"traits.{first}",
        why[first],
    )
    cleared = decision_pb2.UpdateProfileRequest(
        customer_id="c",
        source="crm",
        timestamp=stamp,
        traits={"lifetime_value": v(null_value=0)},
    )
    assert profile_update(cleared, policy, NOW).traits == {"lifetime_value": None}
