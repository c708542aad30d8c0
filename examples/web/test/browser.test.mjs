// The demo page in headless Chromium (Debian's package, driven by
// playwright-core; no browser is downloaded) against a live Arbiter server.
//
//   ARBITER_HTTP_URL=http://127.0.0.1:8080 ARBITER_PAGE_PORT=8000 npm test
//
// The server must allow the page's origin (--cors-origins http://127.0.0.1:PORT).
// Screenshots go to ARBITER_TEST_OUTPUT (default: test-output/).

import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { ArbiterClient, ConsentState } from "arbiter-decisions-client";
import { chromium } from "playwright-core";

import { serveStatic } from "./static-server.mjs";

const BASE_URL = process.env.ARBITER_HTTP_URL;
const PAGE_PORT = Number(process.env.ARBITER_PAGE_PORT ?? 8000);
const CHROMIUM = process.env.ARBITER_CHROMIUM ?? "/usr/bin/chromium";
const OUT = process.env.ARBITER_TEST_OUTPUT ?? new URL("../test-output", import.meta.url).pathname;
if (!BASE_URL) throw new Error("set ARBITER_HTTP_URL to a running server's HTTP address");

// Fixed ids, outside the example set's 5% control group; run against a fresh server.
const ELIGIBLE = "web-demo-eligible";
const OPTED_OUT = "web-demo-opted-out";

let page;
let context;
let staticServer;
let profileDir;

before(async () => {
  mkdirSync(OUT, { recursive: true });
  const arbiter = new ArbiterClient({ baseUrl: BASE_URL, raiseOnError: true, timeouts: { updateProfile: 5000 } });
  const timestamp = new Date(Date.now() - 1000);
  await arbiter.updateProfile({
    customerId: ELIGIBLE,
    source: "crm",
    timestamp,
    traits: { region: "US", subscription_status: "active", plan: "premium" },
    consents: [{ purpose: "personalization", state: ConsentState.GRANTED }],
    segments: ["vip"],
  });
  await arbiter.updateProfile({
    customerId: OPTED_OUT,
    source: "cmp",
    timestamp,
    traits: { region: "US", subscription_status: "active" },
    consents: [{ purpose: "personalization", state: ConsentState.DENIED }],
    segments: ["vip"],
  });
  staticServer = await serveStatic(PAGE_PORT);
  profileDir = mkdtempSync(join(tmpdir(), "arbiter-chromium-"));
  context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 900, height: 640 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (msg) => console.log(`[page] ${msg.text()}`));
});

after(async () => {
  await context?.close();
  await new Promise((resolve) => staticServer?.close(resolve) ?? resolve());
  if (profileDir) rmSync(profileDir, { recursive: true, force: true });
});

async function open(customer, protocol) {
  const url = new URL(`http://127.0.0.1:${PAGE_PORT}/`);
  url.searchParams.set("customer", customer);
  url.searchParams.set("endpoint", BASE_URL);
  url.searchParams.set("protocol", protocol);
  await page.goto(url.href);
  await page.waitForSelector("body[data-state=done], body[data-state=error]", { timeout: 15000 });
  assert.equal(await page.getAttribute("body", "data-state"), "done", await page.textContent("#status"));
}

test("an eligible customer sees the banner; impression and click are tracked; the trace says why", async () => {
  await open(ELIGIBLE, "connect-json");
  const banner = page.locator("#banner-slot .banner");
  assert.equal(await banner.count(), 1);
  assert.equal(await banner.getAttribute("data-action-id"), "vip_referral_banner");
  assert.equal((await banner.locator("h2").textContent()).trim(), "Give a box, get a box");
  await page.waitForSelector("body[data-impression]");
  assert.equal(await page.getAttribute("body", "data-impression"), "applied");
  const trace = await page.locator("#trace tr").allTextContents();
  assert.ok(trace.some((row) => row.includes("vip_referral_banner") && row.includes("SELECTED")), trace.join("\n"));
  assert.ok(trace.some((row) => row.includes("default_home_banner") && row.includes("NOT_SELECTED")), trace.join("\n"));
  await page.screenshot({ path: join(OUT, "eligible.png"), fullPage: true });
  await banner.locator("button").click();
  await page.waitForSelector("body[data-click]");
  assert.equal(await page.getAttribute("body", "data-click"), "applied");
});

test("an opted-out customer sees no banner (gRPC-Web this time), and the trace says consent was denied", async () => {
  await open(OPTED_OUT, "grpc-web");
  assert.equal(await page.locator("#banner-slot .banner").count(), 0);
  const trace = await page.locator("#trace tr").allTextContents();
  assert.equal(trace.length, 2, trace.join("\n"));
  for (const row of trace) assert.ok(row.includes("CONSENT_DENIED"), row);
  await page.screenshot({ path: join(OUT, "opted-out.png"), fullPage: true });
});
