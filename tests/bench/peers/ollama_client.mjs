// ollama_client — the `ollama` npm client streaming a plan, beside bench_plan's planhost and
// bare libcurl rows (tests/bench/bench_plan.c).
//
//   node tests/bench/peers/ollama_client.mjs URL BODY.json N [NODE_DIR] [--header]
//
// URL is the server's base (run against `planhost sim --profile instant`, a SIMULATED
// server, so server time does not hide client work); BODY.json is the /api/chat body that
// `planhost prompt --body --api ollama` prints, the one bench_plan sends, handed to
// `new Ollama({ host: URL }).chat({ ...body, stream: true })` as a request object (the client
// serialises it, on Node's fetch with keep-alive). Per request: iterate the stream,
// accumulate message.content, JSON.parse the plan at the end. After N / 10 + 1 unmeasured
// warm-up requests, N requests are timed: this process's CPU (process.cpuUsage: user +
// system, all threads) and wall (process.hrtime). Prints one Markdown row in bench_plan's
// columns (CPU median, CPU p99, wall median, wall p99, µs; the same percentile rule);
// --header prints bench_plan's header first. NODE_DIR (default build/bench/node) is where
// tests/bench/run.sh installed tests/bench/peers/package.json with npm ci; the package is
// loaded from there (its CommonJS build: same code as its ES build), never from the tree.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const args = process.argv.slice(2);
const header = args.includes("--header");
const [base, bodyPath, nArg, nodeDir = "build/bench/node"] = args.filter((a) => a !== "--header");
const n = Number.parseInt(nArg, 10);
if (!base || !bodyPath || !(n >= 1)) {
  console.error("usage: ollama_client.mjs URL BODY.json N [NODE_DIR] [--header]");
  process.exit(2);
}
const require = createRequire(resolve(nodeDir, "package.json"));
const { Ollama } = require("ollama");
const version = JSON.parse(readFileSync(resolve(nodeDir, "node_modules/ollama/package.json"))).version;

const body = JSON.parse(readFileSync(bodyPath, "utf8"));
const ollama = new Ollama({ host: base });

// One streamed plan; returns the decoded plan (throws on any failure).
async function planOnce() {
  const stream = await ollama.chat({ ...body, stream: true });
  let content = "";
  for await (const part of stream) content += part.message.content;
  return JSON.parse(content);
}

const cpuUs = () => { const u = process.cpuUsage(); return u.user + u.system; };
const wallUs = () => Number(process.hrtime.bigint()) / 1e3;
// bench_plan's rule: sorted, index (int)(p * (n - 1) + 0.5).
const pct = (v, p) => v.slice().sort((a, b) => a - b)[Math.floor(p * (v.length - 1) + 0.5)];

for (let i = 0; i < Math.floor(n / 10) + 1; i++) await planOnce();
const cpu = [], wall = [];
let plans = 0;
for (let i = 0; i < n; i++) {
  const c0 = cpuUs(), w0 = wallUs();
  const plan = await planOnce();
  cpu.push(cpuUs() - c0);
  wall.push(wallUs() - w0);
  plans += plan !== null && typeof plan === "object" && Array.isArray(plan.steps);
}
if (header) {
  console.log(`| client (ollama, compact, ${n} requests) | CPU median µs | CPU p99 µs | wall median µs | wall p99 µs |`);
  console.log("|---|---:|---:|---:|---:|");
}
const f = (x) => x.toFixed(0);
console.log(`| ollama-js ${version} chat({stream: true}), Node ${process.version} (${plans}/${n} plans parsed) ` +
  `| ${f(pct(cpu, 0.5))} | ${f(pct(cpu, 0.99))} | ${f(pct(wall, 0.5))} | ${f(pct(wall, 0.99))} |`);
