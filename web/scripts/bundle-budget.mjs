// The first page's bundle budget: the JS and CSS that index.html loads before anything else
// (the entry chunk, its modulepreloads and stylesheets), gzipped, must stay under the budget.
// Lazy chunks (agent desk, history, search) load later and are listed apart.
// Usage: node scripts/bundle-budget.mjs [--json]   (after `npm run build`)

import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET_BYTES = 350 * 1000;
const dist = new URL("../dist/", import.meta.url).pathname;
const html = readFileSync(join(dist, "index.html"), "utf8");
const first = [...html.matchAll(/(?:src|href)="\/(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
const gz = (file) => gzipSync(readFileSync(join(dist, file)), { level: 9 }).length;
const raw = (file) => readFileSync(join(dist, file)).length;

const firstPage = first.map((file) => ({ file, bytes: raw(file), gzip: gz(file) }));
const lazy = readdirSync(join(dist, "assets"))
  .map((name) => `assets/${name}`)
  .filter((file) => /\.(js|css)$/.test(file) && !first.includes(file))
  .map((file) => ({ file, bytes: raw(file), gzip: gz(file) }));
const total = firstPage.reduce((sum, f) => sum + f.gzip, 0);
const report = {
  budget_gzip_bytes: BUDGET_BYTES,
  first_page_gzip_bytes: total,
  first_page: firstPage,
  lazy,
};

if (process.argv.includes("--json")) console.log(JSON.stringify(report, null, 2));
else {
  for (const f of firstPage)
    console.log(
      `first page  ${f.file}  ${(f.gzip / 1000).toFixed(1)} kB gzip (${(f.bytes / 1000).toFixed(1)} kB)`,
    );
  for (const f of lazy) console.log(`lazy        ${f.file}  ${(f.gzip / 1000).toFixed(1)} kB gzip`);
  console.log(
    `first page total: ${(total / 1000).toFixed(1)} kB gzip, budget ${(BUDGET_BYTES / 1000).toFixed(0)} kB`,
  );
}
if (first.length === 0 || total > BUDGET_BYTES) {
  console.error(
    first.length === 0 ? "no assets found in dist/index.html" : "over the bundle budget",
  );
  process.exit(1);
}
