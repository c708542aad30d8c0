// The in-app banner, as an in-app messaging SDK would build it on Arbiter:
// ask for the `home_banner` decision, render the chosen message (or nothing),
// report the impression and a click with Track, and show the "why" trace.
//
// Query parameters: customer (required), endpoint (the server's HTTP address,
// default http://127.0.0.1:8080), protocol (connect-json | connect-binary |
// grpc-web). State for tests and debugging lives in data attributes on
// <body>: data-state (loading | done | error), data-impression, data-click.

import {
  type Action,
  ArbiterClient,
  CandidateOutcome,
  type Decision,
  EventStatus,
  FeedbackKind,
  type Protocol,
  Reason,
} from "arbiter-decisions-client";

const PLACEMENT = "home_banner";
const params = new URLSearchParams(location.search);
const customerId = params.get("customer") ?? "";
const client = new ArbiterClient({
  baseUrl: params.get("endpoint") ?? "http://127.0.0.1:8080",
  protocol: (params.get("protocol") as Protocol | null) ?? "connect-json",
  // Over the internet a browser needs more than the 50 ms backend default;
  // on a deadline the page simply shows no banner.
  timeouts: { decide: 1500, track: 3000 },
});

const $ = (id: string): HTMLElement => document.getElementById(id) as HTMLElement;

function status(text: string): void {
  $("status").textContent = text;
}

function renderTrace(decision: Decision): void {
  const rows = decision.candidates.map((c) => {
    const tr = document.createElement("tr");
    for (const text of [c.actionId, CandidateOutcome[c.outcome], Reason[c.reason], c.detail]) {
      const td = document.createElement("td");
      td.textContent = text ?? "";
      tr.append(td);
    }
    return tr;
  });
  $("trace").replaceChildren(...rows);
}

async function report(decision: Decision, action: Action, kind: FeedbackKind, type: string): Promise<string> {
  const result = await client.feedback(decision, action, kind, {
    customerId,
    type,
    properties: { placement: PLACEMENT },
  });
  return EventStatus[result.results[0]?.status ?? EventStatus.UNSPECIFIED].toLowerCase();
}

function renderBanner(decision: Decision, action: Action): void {
  const banner = document.createElement("div");
  banner.className = "banner";
  banner.dataset.actionId = action.actionId;
  const text = document.createElement("div");
  const title = document.createElement("h2");
  title.textContent = String(action.payload.title ?? "");
  const sub = document.createElement("p");
  sub.textContent = `${action.actionId}${action.variant ? ` · variant ${action.variant}` : ""}`;
  text.append(title, sub);
  const cta = document.createElement("button");
  cta.type = "button";
  cta.textContent = "Open";
  cta.addEventListener("click", async () => {
    cta.disabled = true;
    document.body.dataset.click = await report(decision, action, FeedbackKind.CLICK, "message_click");
    status(`clicked: ${String(action.payload.deep_link ?? "")}`);
  });
  banner.append(text, cta);
  $("banner-slot").replaceChildren(banner);
}

async function main(): Promise<void> {
  $("who").textContent = `customer ${customerId}`;
  const decision = await client.decide({
    customerId,
    placement: PLACEMENT,
    channels: ["in_app"],
    context: { page_type: "home", device: "web" },
    explain: true,
  });
  renderTrace(decision);
  const action = decision.actions[0];
  if (decision.fallback) {
    status(`no banner: ${decision.fallbackReason}`);
  } else if (action === undefined) {
    status(`no banner (decision ${decision.decisionId})`);
  } else {
    renderBanner(decision, action);
    document.body.dataset.impression = await report(
      decision,
      action,
      FeedbackKind.IMPRESSION,
      "message_impression",
    );
    status(`decision ${decision.decisionId} · policy ${decision.policyVersion.split("+")[0]}`);
  }
  document.body.dataset.state = "done";
}

main().catch((error: unknown) => {
  status(`error: ${String(error)}`);
  document.body.dataset.state = "error";
});
