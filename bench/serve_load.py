#!/usr/bin/env python3
"""A bounded load test of `braid serve`: C concurrent streaming clients send R requests in
all, some of which hang up mid-stream at random. Passes when no request failed other than
the intended hang-ups, the server is still alive, every slot is free and the queue empty at
the end (/metrics), and its resident memory stayed flat (end vs after warm-up). The clients
are threads spread over up to 16 processes (one per core), so that Python keeps up with them.

  python3 bench/serve_load.py --braid build/braid --model ../shared/fixtures/stories260K.gguf \\
      --clients 16 --requests 200 [--parallel 4] [--cancel 0.2] [--seed 1]
  python3 bench/serve_load.py --url http://127.0.0.1:8080 ...   (a server already running)
Prints a JSON summary (requests, cancelled, errors, tokens/s, median time to first token).
"""
import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

PROMPTS = ["Once upon a time", "The cat sat", "Lily and Ben went to the park", "One day, a big dog",
           "Tom had a red ball and", "The sun was hot", "Sara liked to sing", "There was a little bird"]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def metrics(host, port):
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)  # (labelled series keep their labels in the name)
    return out


def one_request(host, port, rng, cancel_rate, max_tokens, fixed):
    """Returns (outcome, generated text chunks, seconds to first text)."""
    tokens = max_tokens if fixed else rng.randint(4, max_tokens)
    body = {"prompt": rng.choice(PROMPTS), "max_tokens": tokens, "stream": True,
            "temperature": rng.choice([0, 0.8]), "seed": rng.randint(0, 1 << 30)}
    if fixed:
        body["ignore_eos"] = True  # every request generates all its tokens, as bench does
    if rng.random() < 0.5:
        body = {"messages": [{"role": "user", "content": body.pop("prompt")}], **body}
        path = "/v1/chat/completions"
    else:
        path = "/v1/completions"
    hang_up_after = rng.randint(0, 3) if rng.random() < cancel_rate else None
    start = time.time()
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        if r.status != 200:
            return f"status {r.status}: {r.read()[:200]!r}", 0, None
        events, first = 0, None
        while True:
            line = r.fp.readline()
            if not line:
                return "stream ended without [DONE]", events, first
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            if line == b"data: [DONE]":
                return "ok", events, first
            chunk = json.loads(line[6:])
            if "error" in chunk:
                return f"error event: {chunk['error']}", events, first
            events += 1
            if first is None:
                first = time.time() - start
            if hang_up_after is not None and events > hang_up_after:
                conn.sock.close()
                return "cancelled", events, first
    except Exception as e:  # noqa: BLE001 - every failure is reported
        return f"exception {type(e).__name__}: {e}", 0, None
    finally:
        conn.close()


def run_clients(clients, host, port, args, issued, warm_at, server_pid, warm_rss):
    """Client threads `clients` of one process: each sends requests until `issued` reaches
    --requests. Returns (outcome counts, times to first text)."""
    lock = threading.Lock()
    outcomes, ttfts = {}, []

    def client(k):
        rng = random.Random(args.seed * 1000 + k)
        while True:
            with issued.get_lock():
                if issued.value >= args.requests:
                    return
                issued.value += 1
                n = issued.value
            if server_pid and n == warm_at:
                warm_rss.value = rss_kb(server_pid)
            outcome, _, first = one_request(host, port, rng, args.cancel, args.max_tokens, args.fixed)
            with lock:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
                if first is not None:
                    ttfts.append(first)

    threads = [threading.Thread(target=client, args=(k,)) for k in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes, ttfts


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--braid")
    ap.add_argument("--model")
    ap.add_argument("--url")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--parallel", type=int, default=4)
    ap.add_argument("--cancel", type=float, default=0.2, help="share of clients that hang up mid-stream")
    ap.add_argument("--max-tokens", type=int, default=48)
    ap.add_argument("--fixed", action="store_true",
                    help="every request generates --max-tokens exactly, past EOS (ignore_eos; default: asks "
                         "for 4 to --max-tokens at random and may end sooner)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rss-growth-mb", type=float, default=32, help="most resident growth allowed after warm-up")
    args = ap.parse_args()

    # A client that hangs up holds its slot until the server's next step, and may already
    # have sent its next request: a queue of twice the clients keeps 503 out of this test.
    proc = None
    if args.url:
        host, port = args.url.removeprefix("http://").split(":")
    else:
        proc = subprocess.Popen([args.braid, "serve", "-m", args.model, "--port", "0", "--parallel", str(args.parallel),
                                 "--queue", str(2 * args.clients), "--ctx", "256", "--chat-template", "chatml"],
                                stdout=subprocess.PIPE, text=True)
        line = proc.stdout.readline()
        if "listening on" not in line:
            sys.exit(f"braid serve did not start: {line!r}")
        host, port = line.split("listening on http://")[1].strip().split(":")
    port = int(port)

    # The clients run as threads spread over processes: one Python process reading 64
    # streams of server-sent events holds the GIL for most of each event, so its clients
    # sent their next requests late and the server's slots stood idle waiting for them.
    issued = multiprocessing.Value("i", 0)  # requests taken by some client (its lock guards it)
    warm_at = max(1, args.requests // 10)
    warm_rss = multiprocessing.Value("q", 0)
    processes = max(1, min(args.clients, os.cpu_count() or 1, 16))
    shares = [list(range(k, args.clients, processes)) for k in range(processes)]
    before = metrics(host, port)  # (a running server may have served others)
    start = time.time()
    fork = multiprocessing.get_context("fork")  # (the shared values are inherited)
    results = fork.Queue()
    workers = [fork.Process(target=lambda share: results.put(run_clients(
        share, host, port, args, issued, warm_at, proc.pid if proc else None, warm_rss)), args=(share,))
        for share in shares]
    for w in workers:
        w.start()
    parts = [results.get() for _ in workers]
    for w in workers:
        w.join()
    seconds = time.time() - start
    outcomes, ttfts = {}, []
    for part_outcomes, part_ttfts in parts:
        for outcome, n in part_outcomes.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
        ttfts += part_ttfts
    rss = {"warm": warm_rss.value} if warm_rss.value else {}

    # Hung-up clients free their slots at the server's next step.
    deadline = time.time() + 10
    m = metrics(host, port)
    while time.time() < deadline and (m["braid_running_sequences"] or m["braid_queue_depth"]):
        time.sleep(0.05)
        m = metrics(host, port)
    def delta(name):
        return m.get(name, 0) - before.get(name, 0)

    steps = max(1, delta("braid_steps_total"))
    summary = {
        "requests": args.requests, "clients": args.clients, "seconds": round(seconds, 2), "outcomes": outcomes,
        "generated_tokens": delta("braid_generated_tokens_total"),
        "tokens_per_second": round(delta("braid_generated_tokens_total") / seconds, 1),
        # Where the server's time went, per step: tokens evaluated, the batch they ran at
        # (padding included), milliseconds evaluating the model and sampling + streaming.
        "steps": delta("braid_steps_total"),
        "tokens_per_step": round(delta("braid_step_tokens_total") / steps, 1),
        "batch_per_step": round(delta("braid_step_batch_tokens_total") / steps, 1),
        "evaluate_ms_per_step": round(1e3 * delta('braid_step_seconds_total{phase="evaluate"}') / steps, 3),
        "sample_ms_per_step": round(1e3 * delta('braid_step_seconds_total{phase="sample"}') / steps, 3),
        "median_ttft_s": round(statistics.median(ttfts), 4) if ttfts else None,
        "running_at_end": m["braid_running_sequences"], "queue_at_end": m["braid_queue_depth"],
    }
    failures = [f"{n} x {o}" for o, n in outcomes.items() if o not in ("ok", "cancelled")]
    if m["braid_running_sequences"] or m["braid_queue_depth"]:
        failures.append("slots still busy at the end")
    if proc:
        rss["end"] = rss_kb(proc.pid)
        summary["rss_mb"] = {k: round(v / 1024, 1) for k, v in rss.items()}
        if rss.get("warm") and rss["end"] - rss["warm"] > args.rss_growth_mb * 1024:
            failures.append(f"resident memory grew {(rss['end'] - rss['warm']) / 1024:.1f} MB after warm-up")
        proc.send_signal(signal.SIGTERM)
        if proc.wait(timeout=20) != 0:
            failures.append(f"braid serve exited with {proc.returncode}")
    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
