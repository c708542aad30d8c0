// A static file server for the demo page (index.html and dist/), so the page
// runs on its own origin and calls Arbiter cross-origin, as an app would.
//
//   node test/static-server.mjs [PORT]     (npm run serve; default 8000)
//
// Start Arbiter with that origin allowed, e.g.
//   arbiter serve --policies examples/policies --cors-origins http://127.0.0.1:8000
// then open http://127.0.0.1:8000/?customer=cust-42

import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".map": "application/json" };

/** Serve ROOT's index.html and dist/ on 127.0.0.1:port; resolves to the http.Server. */
export function serveStatic(port) {
  const server = createServer(async (req, res) => {
    const path = normalize(new URL(req.url, "http://x").pathname).replace(/^\/+/, "") || "index.html";
    if (path === "favicon.ico") {
      res.writeHead(204).end();
      return;
    }
    if (path !== "index.html" && !path.startsWith("dist/")) {
      res.writeHead(404).end();
      return;
    }
    try {
      const body = await readFile(join(ROOT, path));
      res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(port, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const port = Number(process.argv[2] ?? 8000);
  await serveStatic(port);
  console.log(`demo page on http://127.0.0.1:${port}/?customer=cust-42`);
}
