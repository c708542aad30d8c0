"""A consent revocation that lands between a decision's read and its commit wins.

Found: consent was not re-checked at commit, so a ``do_not_contact`` set
while a Decide was between its read and its commit was ignored: the
decision made on the old consent was committed and sent. The stores compare
a consent version in the commit (nothing applied, nothing stored when it
moved); the server now passes the version it read and, when the commit is
refused for that, decides once more on a fresh read (one extra read and
commit) -- the revocation wins and the caller still gets an answer.

The revocation is written by the store itself right after the first read
(a real race, made deterministic), through the same ``update_profile`` an
UpdateProfile call uses.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from inproc import ServerHandle, fresh_customer
from server_procs import write_test_policies

from arbiter.server import parse
from arbiter.state.memory import MemoryStore
from arbiter.v1 import decision_pb2, decision_pb2_grpc


class RevokingStore(MemoryStore):
    """Sets ``do_not_contact`` for ``victim`` right after its first read returns."""

    def __init__(self) -> None:
        super().__init__()
        self.victim = ""
        self.policy: Any = None
        self.loads = 0

    async def load(self, customer_id: str, *args: Any, **kwargs: Any) -> Any:
        loaded = await super().load(customer_id, *args, **kwargs)
        if customer_id == self.victim:
            self.loads += 1
            if self.loads == 1:
                await self.update_profile(
                    _revocation(customer_id, self.policy),
                    do_not_contact_attribute=self.policy.consent.do_not_contact,
                )
        return loaded


def _revocation(customer: str, policy: Any) -> Any:
    stamp = Timestamp()
    stamp.FromMilliseconds(int(time.time() * 1000))
    request = decision_pb2.UpdateProfileRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        source="support",
        timestamp=stamp,
        do_not_contact=True,
    )
    return parse.profile_update(request, policy, int(time.time() * 1000))


def _decide(stub: Any, customer: str) -> Any:
    return stub.Decide(
        decision_pb2.DecideRequest(
            request_id=uuid.uuid4().hex,
            customer_id=customer,
            placement="home_banner",
            channels=["in_app"],
        ),
        timeout=10,
    )


def test_revocation_between_read_and_commit_wins(tmp_path: Path) -> None:
    store = RevokingStore()
    # Unset personalization allowed: a fresh customer sees the consent-gated home banner.
    policies = write_test_policies(tmp_path, allow_unset_personalization=True)
    server = ServerHandle(store=store, policies=str(policies))
    try:
        store.policy = server.policy
        with grpc.insecure_channel(server.address) as channel:
            stub = decision_pb2_grpc.DecisionServiceStub(channel)
            # What this customer gets without and with do_not_contact (control customers).
            before = _decide(stub, fresh_customer(server.policy))
            revoked = fresh_customer(server.policy)
            server.call(
                store.update_profile(
                    _revocation(revoked, server.policy),
                    do_not_contact_attribute=server.policy.consent.do_not_contact,
                )
            )
            after = _decide(stub, revoked)
            assert [a.action_id for a in before.actions] != [a.action_id for a in after.actions]
            store.victim = fresh_customer(server.policy)
            raced = _decide(stub, store.victim)
        assert store.loads == 2  # one extra read, after the commit was refused
        assert [a.action_id for a in raced.actions] == [a.action_id for a in after.actions]
        exported = server.export(store.victim)
        assert len(exported["decisions"]) == 1  # the second decision's record only
    finally:
        server.close()
