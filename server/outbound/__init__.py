"""Outbound journeys: due steps fire by themselves, and decisions reach execution systems.

``arbiter worker`` runs two loops in one process (``docs/outbound.md``):

- **due steps** (:mod:`.due`): claims the wake-ups that the store's commit and
  event scripts recorded with each journey change, runs the outbound
  decision through :class:`arbiter.server.service.DecisionCore` (same
  engine, consent, caps, quiet hours, kill switches and idempotency as
  ``Decide``; the request id is derived from the wake-up), reschedules a
  deferred send at its ``not_before``, and appends each chosen action to the
  outbox of its destination;
- **delivery** (:mod:`.delivery`): reads each destination's outbox stream in
  a consumer group, delivers through the destination's adapter
  (:mod:`.adapters`) under a shared rate limit and a circuit breaker,
  retries with backoff, dead-letters after ``max_attempts``, and reports
  each outcome back as an event on the customer (``Track``'s path).
"""
