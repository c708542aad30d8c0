// The TypeScript client against a live Arbiter server, over Connect JSON,
// Connect binary and gRPC-Web (fetch transports: what browsers and edge
// runtimes use).
//
//   ARBITER_HTTP_URL=http://127.0.0.1:8080 npm test
//
// `make test` starts a fresh server (examples/policies, embedded store) and
// runs this (tests/integration/test_edge_clients.py). Customer ids are fixed
// (none is in the example set's 5% control group), one per test, so the
// example set's in-app cap (3 a day per message) is never reached on a fresh
// server; run it against a fresh server.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";

import {
  ArbiterClient,
  CandidateOutcome,
  Code,
  ConnectError,
  ConsentState,
  EventStatus,
  FeedbackKind,
  ProfileWriteOutcome,
  Reason,
} from "../dist/index.js";

const BASE_URL = process.env.ARBITER_HTTP_URL;
if (!BASE_URL) {
  throw new Error("set ARBITER_HTTP_URL to a running server's HTTP address (arbiter serve --http-listen)");
}
const SLOW = { decide: 5000, check: 5000, track: 5000, updateProfile: 5000 };
const PROTOCOLS = ["connect-json", "connect-binary", "grpc-web"];

/** An eligible customer: US (unset personalisation consent allows), VIP with an active subscription. */
async function seedVip(client, customerId) {
  const written = await client.updateProfile({
    customerId,
    source: "crm",
    timestamp: new Date(Date.now() - 1000),
    traits: { region: "US", subscription_status: "active", plan: "premium" },
    consents: [{ purpose: "personalization", state: ConsentState.GRANTED }],
    segments: ["vip"],
  });
  return written;
}

/** A fetch that answers the first call 503 (as a proxy would), then forwards; records request bodies. */
function flakyFetch() {
  const bodies = [];
  let calls = 0;
  const fetchImpl = async (input, init) => {
    calls += 1;
    bodies.push(Buffer.from(await new Response(init.body).arrayBuffer()).toString("base64"));
    if (calls === 1) return new Response("upstream connect error", { status: 503 });
    return globalThis.fetch(input, init);
  };
  return { fetchImpl, bodies, calls: () => calls };
}

/** A TCP server that accepts connections and never answers: every call runs into its deadline. */
async function blackHole() {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

for (const protocol of PROTOCOLS) {
  describe(`over ${protocol}`, () => {
    const client = new ArbiterClient({ baseUrl: BASE_URL, protocol, timeouts: SLOW, raiseOnError: false });
    const vip = `ts-${protocol}-vip`;
    /** A fresh eligible customer for one test. */
    const seeded = async (name) => {
      const customerId = `ts-${protocol}-${name}`;
      await seedVip(client, customerId);
      return customerId;
    };

    test("UpdateProfile writes traits, consent and segments", async () => {
      const written = await seedVip(client, vip);
      const names = written.results.map((r) => r.name).sort();
      assert.deepEqual(names, ["personalization", "plan", "region", "segments", "subscription_status"]);
      for (const r of written.results) {
        assert.ok(
          [ProfileWriteOutcome.APPLIED, ProfileWriteOutcome.IGNORED_STALE].includes(r.outcome),
          `${r.name}: ${r.outcome}`,
        );
      }
    });

    test("Decide chooses the VIP banner and explains every candidate", async () => {
      const customerId = await seeded("decide");
      const decision = await client.decide({
        customerId,
        placement: "home_banner",
        channels: ["in_app"],
        context: { page_type: "home", cart_value: 12.5 },
        explain: true,
      });
      assert.equal(decision.fallback, false);
      assert.deepEqual(decision.actions.map((a) => a.actionId), ["vip_referral_banner"]);
      const [banner] = decision.actions;
      assert.equal(banner.payload.title, "Give a box, get a box");
      assert.ok(banner.trackingId.startsWith(`${decision.decisionId}.`));
      const outcomes = Object.fromEntries(decision.candidates.map((c) => [c.actionId, c.outcome]));
      assert.equal(outcomes.vip_referral_banner, CandidateOutcome.SELECTED);
      assert.equal(outcomes.default_home_banner, CandidateOutcome.NOT_SELECTED);
    });

    test("a repeated request id replays the stored decision", async () => {
      const requestId = `replay-${protocol}-${crypto.randomUUID()}`;
      const customerId = await seeded("replay");
      const input = { customerId, placement: "home_banner", channels: ["in_app"], requestId };
      const first = await client.decide(input);
      const second = await client.decide(input);
      assert.equal(first.replayed, false);
      assert.equal(second.replayed, true);
      assert.equal(second.decisionId, first.decisionId);
    });

    test("Track records feedback once per event id", async () => {
      const customerId = await seeded("track");
      const decision = await client.decide({ customerId, placement: "home_banner", channels: ["in_app"] });
      const [banner] = decision.actions;
      assert.ok(banner, "the VIP customer gets a banner");
      const eventId = `imp-${crypto.randomUUID()}`;
      const event = {
        eventId,
        customerId,
        type: "message_impression",
        properties: { placement: "home_banner" },
        decisionId: decision.decisionId,
        trackingId: banner.trackingId,
        feedback: FeedbackKind.IMPRESSION,
      };
      const first = await client.track(event);
      const again = await client.track(event);
      assert.deepEqual(first.results.map((r) => r.status), [EventStatus.APPLIED]);
      assert.deepEqual(again.results.map((r) => r.status), [EventStatus.DUPLICATE]);
    });

    test("Check answers for one action and channel", async () => {
      const customerId = await seeded("check");
      const allowed = await client.check({ customerId, actionId: "vip_referral_banner", channel: "in_app" });
      assert.equal(allowed.allowed, true);
      assert.equal(allowed.reason, Reason.ELIGIBLE);
      const wrongChannel = await client.check({ customerId, actionId: "vip_referral_banner", channel: "email" });
      assert.equal(wrongChannel.allowed, false);
      assert.equal(wrongChannel.reason, Reason.CHANNEL_NOT_ALLOWED);
    });

    test("bad input is INVALID_ARGUMENT naming the field, and is not a fallback", async () => {
      await assert.rejects(
        client.decide({ customerId: vip, placement: "home_banner", channels: ["in_app", "carrier_pigeon"] }),
        (error) => {
          assert.ok(error instanceof ConnectError);
          assert.equal(error.code, Code.InvalidArgument);
          assert.equal(error.rawMessage, "channels[1]: unknown channel");
          return true;
        },
      );
      await assert.rejects(client.decide({ customerId: "not a valid id!" }), (error) => {
        assert.equal(error.code, Code.InvalidArgument);
        assert.match(error.rawMessage, /^customer_id: /);
        return true;
      });
      await assert.rejects(
        client.track({ customerId: vip, type: "app_opened", eventId: "x".repeat(200) }),
        (error) => {
          assert.equal(error.code, Code.InvalidArgument);
          assert.equal(error.rawMessage, "events[0].event_id: longer than 128 characters");
          return true;
        },
      );
    });

    test("deadline: decide falls back to no action, check to not allowed", async () => {
      const hole = await blackHole();
      try {
        const stuck = new ArbiterClient({ baseUrl: hole.url, protocol });
        const started = Date.now();
        const decision = await stuck.decide({ customerId: vip, placement: "home_banner" });
        const elapsed = Date.now() - started;
        assert.equal(decision.fallback, true);
        assert.equal(decision.fallbackReason, "deadline_exceeded");
        assert.deepEqual(decision.actions, []);
        assert.equal(decision.error.code, Code.DeadlineExceeded);
        assert.ok(elapsed < 1000, `the 50 ms default deadline held (took ${elapsed} ms)`);
        const check = await stuck.check({ customerId: vip, actionId: "vip_referral_banner", channel: "in_app" });
        assert.equal(check.allowed, false);
        assert.equal(check.fallbackReason, "deadline_exceeded");
        await assert.rejects(stuck.decide({ customerId: vip }, { raiseOnError: true }), (error) => {
          assert.equal(error.code, Code.DeadlineExceeded);
          return true;
        });
      } finally {
        await hole.close();
      }
    });

    test("UNAVAILABLE is retried with the very same request", async () => {
      const customerId = await seeded("retry");
      const flaky = flakyFetch();
      const retrying = new ArbiterClient({ baseUrl: BASE_URL, protocol, timeouts: SLOW, fetch: flaky.fetchImpl });
      const decision = await retrying.decide({ customerId, placement: "home_banner", channels: ["in_app"] });
      assert.equal(flaky.calls(), 2);
      assert.equal(flaky.bodies[0], flaky.bodies[1], "the retry sent the same bytes (same request_id)");
      assert.equal(decision.fallback, false);
      assert.equal(decision.actions[0]?.actionId, "vip_referral_banner");
    });

    test("a server that stays unreachable: no action after the retries", async () => {
      const hole = await blackHole();
      const url = hole.url;
      await hole.close(); // nothing listens there any more: connection refused
      const gone = new ArbiterClient({ baseUrl: url, protocol, timeouts: { decide: 2000 } });
      const decision = await gone.decide({ customerId: vip, placement: "home_banner" });
      assert.equal(decision.fallback, true);
      assert.equal(decision.fallbackReason, "unavailable");
    });
  });
}

describe("an opted-out customer", () => {
  const client = new ArbiterClient({ baseUrl: BASE_URL, timeouts: SLOW });
  const optedOut = "ts-opted-out";

  before(async () => {
    await client.updateProfile({
      customerId: optedOut,
      source: "cmp",
      timestamp: new Date(Date.now() - 1000),
      traits: { region: "US", subscription_status: "active" },
      consents: [{ purpose: "personalization", state: ConsentState.DENIED }],
      segments: ["vip"],
    });
  });
  after(() => {});

  test("gets no banner, and the trace says consent was denied", async () => {
    const decision = await client.decide({
      customerId: optedOut,
      placement: "home_banner",
      channels: ["in_app"],
      explain: true,
    });
    assert.deepEqual(decision.actions, []);
    assert.equal(decision.fallback, false);
    for (const candidate of decision.candidates) {
      assert.equal(candidate.reason, Reason.CONSENT_DENIED, candidate.actionId);
    }
  });
});
