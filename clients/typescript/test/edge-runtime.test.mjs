// The client as an edge runtime (worker, edge function) runs it: one bundle
// with no Node built-ins, evaluated where only web-standard globals exist
// (fetch, URL, TextEncoder, AbortController, crypto, timers), against a live
// server.
//
//   ARBITER_HTTP_URL=http://127.0.0.1:8080 npm test

import assert from "node:assert/strict";
import vm from "node:vm";
import { test } from "node:test";

import { build } from "esbuild";

const BASE_URL = process.env.ARBITER_HTTP_URL;
if (!BASE_URL) throw new Error("set ARBITER_HTTP_URL to a running server's HTTP address");

// What workerd, Deno Deploy and Vercel Edge all provide; nothing from Node.
const WEB_GLOBALS = [
  "fetch", "Request", "Response", "Headers", "URL", "URLSearchParams", "TextEncoder", "TextDecoder",
  "AbortController", "AbortSignal", "ReadableStream", "WritableStream", "TransformStream", "Blob",
  "DOMException", "Event", "EventTarget", "crypto", "setTimeout", "clearTimeout", "queueMicrotask",
  "structuredClone", "atob", "btoa", "console",
];

test("a platform-neutral bundle decides from a web-only global scope", async () => {
  // platform "neutral": importing any Node built-in fails the build.
  const bundle = await build({
    entryPoints: [new URL("../dist/index.js", import.meta.url).pathname],
    bundle: true,
    platform: "neutral",
    mainFields: ["module", "main"],
    format: "iife",
    globalName: "Arbiter",
    write: false,
    logLevel: "silent",
  });
  const globals = Object.fromEntries(WEB_GLOBALS.map((name) => [name, globalThis[name]]));
  const context = vm.createContext(globals);
  vm.runInContext(bundle.outputFiles[0].text, context);
  assert.equal(vm.runInContext("typeof process + typeof require + typeof Buffer", context), "undefinedundefinedundefined");
  context.baseUrl = BASE_URL;
  const decision = await vm.runInContext(
    `new Arbiter.ArbiterClient({ baseUrl, timeouts: { decide: 5000 } })
       .decide({ customerId: "edge-runtime-1", placement: "home_banner", channels: ["in_app"], explain: true })`,
    context,
  );
  assert.equal(decision.fallback, false);
  assert.equal(decision.decisionId.length, 32);
  // (the vm realm has its own Array: compare as text)
  assert.equal(decision.candidates.map((c) => c.actionId).sort().join(","), "default_home_banner,vip_referral_banner");
});
