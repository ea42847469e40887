// streamparser_bench — @streamparser/json (Node) on the plan corpus json_bench uses, as a peer
// of the jsonstream and yajl columns there. Prints a Markdown table of MB/s.
//
//   node tests/bench/peers/streamparser_bench.mjs DIR [NODE_DIR]
//
// DIR holds *.json documents (tests/fixtures/plans); NODE_DIR (default build/bench/node) is
// where tests/bench/run.sh installed tests/bench/peers/package.json with npm ci. The package
// is loaded from there (its CommonJS build: same code as its ES build), never from the tree.
//
// Same sample as json_bench.c: the documents in name order, each followed by '\n',
// concatenated and repeated to 8 MiB; fed as bytes (Uint8Array views, no copy) in pieces of
// 4, 16, 64 bytes or whole to a fresh parser per run that accepts many values in one stream
// (separator ''), with a callback that only counts. One sample repeats runs until 0.2 s of
// this process's CPU time (process.cpuUsage: user + system, all threads, so GC counts) have
// passed; MB/s = bytes / 1e6 / CPU seconds; the two parsers are sampled in turn 5 times and
// the medians printed. Columns: the Tokenizer alone (tokens, no grammar: the nearest thing
// to a tokenizer callback), and JSONParser (Tokenizer + TokenParser: grammar checked and
// every value built, what a Node client would use). Depends on node >= 18 only.
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";

const TARGET_BYTES = 8 * 1024 * 1024;
const RUNS = 5;
const SAMPLE_SECONDS = 0.2;

const [dir, nodeDir = "build/bench/node"] = process.argv.slice(2);
if (!dir) {
  console.error("usage: streamparser_bench.mjs DIR [NODE_DIR]");
  process.exit(2);
}
const require = createRequire(resolve(nodeDir, "package.json"));
const { Tokenizer, JSONParser } = require("@streamparser/json");
const version = JSON.parse(readFileSync(resolve(nodeDir, "node_modules/@streamparser/json/package.json"))).version;

function loadCorpus(dir) {
  const names = readdirSync(dir).filter((n) => n.length > 5 && n.endsWith(".json")).sort();
  if (!names.length) throw new Error(`no .json files in ${dir}`);
  const parts = [];
  for (const n of names) parts.push(readFileSync(join(dir, n)), Buffer.from("\n"));
  const one = Buffer.concat(parts);
  const copies = Math.ceil(TARGET_BYTES / one.length);
  // A plain Uint8Array (what fetch's body stream yields), not a Buffer: subarray views of it.
  const buf = new Uint8Array(Buffer.concat(Array(copies).fill(one)));
  return { buf, ndocs: names.length, oneLen: one.length };
}

function cpuSeconds() {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

// One run: a fresh parser fed the whole buffer in pieces; returns the callback count.
function feed(p, buf, piece) {
  for (let at = 0; at < buf.length; at += piece) p.write(buf.subarray(at, at + piece));
  p.end();
}

function runTokenizer(buf, piece) {
  let n = 0;
  const t = new Tokenizer({ separator: "" });
  t.onToken = () => { n++; };
  feed(t, buf, piece);
  return n;
}

function runParser(buf, piece) {
  let n = 0;
  const p = new JSONParser({ separator: "" });
  p.onValue = () => { n++; };
  feed(p, buf, piece);
  return n;
}

function sample(fn, buf, piece) {
  const t0 = cpuSeconds();
  let bytes = 0, t;
  do {
    fn(buf, piece || buf.length);
    bytes += buf.length;
  } while ((t = cpuSeconds() - t0) < SAMPLE_SECONDS);
  return bytes / 1e6 / t;
}

const median = (v) => v.slice().sort((a, b) => a - b)[Math.floor(v.length / 2)];

const c = loadCorpus(dir);
const tokens = runTokenizer(c.buf, c.buf.length), values = runParser(c.buf, c.buf.length);
console.log(`corpus: ${c.ndocs} documents, ${c.oneLen} bytes, repeated to ${c.buf.length} bytes ` +
  `(${tokens} @streamparser/json tokens, ${values} values); median of ${RUNS} samples of ` +
  `${SAMPLE_SECONDS.toFixed(1)} s CPU; @streamparser/json ${version}, Node ${process.version}\n`);
console.log("| piece | @streamparser/json Tokenizer MB/s | @streamparser/json JSONParser MB/s |");
console.log("|---|---:|---:|");
for (const piece of [0, 4, 16, 64]) {
  const tk = [], jp = [];
  for (let r = 0; r < RUNS; r++) { // interleaved, so drift hits both alike
    tk.push(sample(runTokenizer, c.buf, piece));
    jp.push(sample(runParser, c.buf, piece));
  }
  const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  console.log(`| ${piece || "whole"} | ${fmt(median(tk))} | ${fmt(median(jp))} |`);
}
