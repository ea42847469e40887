"""python_client -- a plain Python streaming client, as a user would first write it, beside
bench_plan's planhost and bare libcurl rows (tests/bench/bench_plan.c).

    python3 tests/bench/peers/python_client.py URL BODY.json N [--header]

URL is the server's base (run against `planhost sim --profile instant`, a SIMULATED server,
so server time does not hide client work); BODY.json is the Ollama /api/chat body that
`planhost prompt --body --api ollama` prints, the one bench_plan sends. Per request:
urllib.request POST to URL/api/chat (a new connection each time, urllib's default), read the
NDJSON lines, json.loads each, accumulate message.content, json.loads the plan at the end.
After N // 10 + 1 unmeasured warm-up requests, N requests are timed: CPU of this process
(time.process_time) and wall (time.perf_counter). Prints one Markdown row in bench_plan's
columns (CPU median, CPU p99, wall median, wall p99, in microseconds; the same percentile
rule); --header prints bench_plan's header first. Standard library only.
"""
import json
import platform
import sys
import time
import urllib.request


def plan_once(url, body):
    """One streamed plan; returns the decoded plan (raises on any failure)."""
    req = urllib.request.Request(url, data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    content = []
    with urllib.request.urlopen(req) as resp:
        for line in resp:
            if not line.strip():
                continue
            msg = json.loads(line)
            content.append(msg.get("message", {}).get("content", ""))
    return json.loads("".join(content))


def pct(values, p):
    """bench_plan's rule: sorted, index (int)(p * (n - 1) + 0.5)."""
    v = sorted(values)
    return v[int(p * (len(v) - 1) + 0.5)]


def main(argv):
    if len(argv) < 4:
        print("usage: python_client.py URL BODY.json N [--header]", file=sys.stderr)
        return 2
    url, n = argv[1].rstrip("/") + "/api/chat", int(argv[3])
    with open(argv[2], "rb") as f:
        body = f.read()
    for _ in range(n // 10 + 1):
        plan_once(url, body)
    cpu, wall, plans = [], [], 0
    for _ in range(n):
        c0, w0 = time.process_time(), time.perf_counter()
        plan = plan_once(url, body)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        plans += isinstance(plan, dict) and isinstance(plan.get("steps"), list)
    if "--header" in argv[4:]:
        print("| client (ollama, compact, %d requests) | CPU median µs | CPU p99 µs "
              "| wall median µs | wall p99 µs |" % n)
        print("|---|---:|---:|---:|---:|")
    us = lambda s: "%.0f" % (s * 1e6)
    print("| Python %s urllib.request + json.loads per line (new connection per request; "
          "%d/%d plans parsed) | %s | %s | %s | %s |"
          % (platform.python_version(), plans, n, us(pct(cpu, 0.5)), us(pct(cpu, 0.99)),
             us(pct(wall, 0.5)), us(pct(wall, 0.99))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
