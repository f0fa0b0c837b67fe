#!/usr/bin/env python3
"""Issue 17's table: braid's graph and persistent executors, serial and auto, beside the issue's
reference numbers, each row's floor and the fraction of it reached (standard library only).

Usage:
  python3 bench/issue17_table.py run [ROW ...] [--braid B] [--reps N] [--out DIR]
      runs `braid bench` for each row (default: every row, in the table's order) and rewrites
      DIR/data.json and DIR/table.md after each one, so a device call cut off at its limit
      keeps what finished; DIR/bench.log gets every command's stderr. COMMIT names the tree
      in the header where the copy's git does not know it.
  python3 bench/issue17_table.py render FILE [FILE ...]   one table from data.json files
      (a row found twice keeps the one read last: give the calls in order)
  python3 bench/issue17_table.py --self-test

Per row, braid runs `--policy serial,auto` on the graph executor and, for decode rows, on the
persistent executor too (one command: `--executor graph,persistent`). Prompts run on the graph
executor only (the persistent kernel is decode's). "best" is the fastest of the four.

Floors, where the issue states none: decode reads every weight once a token, so its floor is
the H200's measured copy rate (4.05 TB/s) over the model's bytes (for models with an untied
output matrix the token embedding is read one row a token, so that floor is a little low); a
prompt's floor is the measured dense f16 rate (790 TFLOP/s) over 2 x parameters a token.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

BANDWIDTH = 4.05e12  # bytes/s, H200 device-to-device copy as measured there
TENSOR_RATE = 790e12  # FLOP/s, H200 dense 16-bit matrix product as measured there

# (row, braid bench model arguments, test, reference "t/s (who)", floor t/s (or why there is
# none: tiny-256 is bound by kernel launches, not bytes) or None to compute it, target or None)
ROWS = [
    ("llama-7b f16 pp512", ["--preset", "llama-7b"], "pp512", "34.9k (PyTorch eager)", 59000, 45000),
    ("moe-8x1b pp512", ["--preset", "moe-8x1b"], "pp512", "32.2k (llama.cpp)", 290000, 100000),
    ("llama-7b q4_0 pp512", ["--preset", "llama-7b", "--type", "q4_0"], "pp512", "11.2k (llama.cpp)", 59000, 20000),
    ("llama-7b q8_0 pp512", ["--preset", "llama-7b", "--type", "q8_0"], "pp512", "11.4k (llama.cpp)", 59000, 20000),
    ("llama-1b f16 tg128", ["--preset", "llama-1b"], "tg128", "938 (llama.cpp)", 1834, 1560),
    ("llama-7b q4_0 tg128", ["--preset", "llama-7b", "--type", "q4_0"], "tg128", "371 (llama.cpp)", 1068, 800),
    ("llama-7b q8_0 tg128", ["--preset", "llama-7b", "--type", "q8_0"], "tg128", "278 (llama.cpp)", 566, 480),
    ("moe-8x1b tg128", ["--preset", "moe-8x1b"], "tg128", "613 (llama.cpp)", 1510, 1200),
    ("smollm2-135m q4_1 tg128", ["--preset", "smollm2-135m", "--type", "q4_1"], "tg128",
     "975 (llama.cpp, the real Q4_1 file)", 41000, 4000),
    ("tiny-256 tg128", ["--preset", "tiny-256"], "tg128", "3857 (PyTorch graph+streams)", "launch", 12000),
    # Rows the issue asks for once they exist; references from issue 12 (llama.cpp, H200).
    ("smollm2-135m f16 tg128", ["--preset", "smollm2-135m"], "tg128", "-", None, None),
    ("llama3.2-1b f16 tg128", ["--preset", "llama3.2-1b"], "tg128", "-", None, None),
    ("llama3.2-1b f16 pp512", ["--preset", "llama3.2-1b"], "pp512", "-", None, None),
    ("llama-1b q4_k_m tg128", ["--preset", "llama-1b", "--type", "q4_k_m"], "tg128", "1059 (llama.cpp)", None, None),
    ("llama-1b q4_k_m pp512", ["--preset", "llama-1b", "--type", "q4_k_m"], "pp512", "40.7k (llama.cpp)", None, None),
    ("llama-7b q4_k_m tg128", ["--preset", "llama-7b", "--type", "q4_k_m"], "tg128", "300 (llama.cpp)", None, 750),
    ("llama-7b q4_k_m pp512", ["--preset", "llama-7b", "--type", "q4_k_m"], "pp512", "9.7k (llama.cpp)", None, 20000),
]
ROW_NAMES = [r[0] for r in ROWS]


def bench_commands(braid, model_args, test, reps):
    """{executor: command}: one command per executor, so that a model the persistent kernel
    cannot run (its weight types, MoE routing) still gets its graph rows."""
    count = test[2:]
    lengths = ["-p", count, "-n", "0"] if test.startswith("pp") else ["-p", "0", "-n", count]
    executors = ["graph"] if test.startswith("pp") else ["graph", "persistent"]
    return {e: [braid, "bench", *model_args, *lengths, "-r", str(reps), "--policy", "serial,auto", "--executor", e,
                "-o", "json"] for e in executors}


# ---------------------------------------------------------------------------- reading results


def cells(results):
    """{(executor, policy): row} of one row's `braid bench -o json` rows."""
    return {(r.get("executor", "graph"), r["policy"]): r for r in results["rows"]}


def floor_of(results, test, stated):
    if stated:
        return stated, "issue"
    any_row = next(iter(cells(results).values()), None)
    if not any_row:
        return None, ""
    if test.startswith("tg"):
        return BANDWIDTH / any_row["size_bytes"], "bytes"
    return TENSOR_RATE / (2.0 * any_row["params"]), "flops"


def fmt_tps(v):
    if v is None:
        return "-"
    return f"{v / 1000:.1f}k" if v >= 10000 else f"{v:.0f}"


def render(data, headers):
    out = [f"run: {h}" for h in headers] + ([""] if headers else [])
    out += ["| row | graph serial | graph auto (choice) | persistent serial | persistent auto (choice) | best | "
            "reference | floor | best / floor | target | met? |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |"]
    for name, _, test, reference, stated_floor, target in ROWS:
        if name not in data:
            continue
        results = data[name]
        c = cells(results)

        def tps(executor, policy, with_choice=False):
            r = c.get((executor, policy))
            if not r:
                error = results["errors"].get(executor)
                if not error:
                    return "-"
                # The persistent executor names the first node it has no tile function for.
                unsupported = re.search(r"cannot run (\w+) '[^']*': (.*)", error)
                return f"n/a: {unsupported[1]}, {unsupported[2]}" if unsupported else f"failed: {error}"
            text = fmt_tps(r["tps_median"])
            if with_choice and r.get("auto_choice"):
                text += f" ({r['auto_choice']})"
            return text

        best = max((r["tps_median"] for r in c.values()), default=None)
        floor, source = floor_of(results, test, stated_floor)
        if isinstance(floor, str):
            floor_cell, fraction = floor, "-"
        else:
            floor_cell = "-" if floor is None else fmt_tps(floor) + ("" if source == "issue" else f" ({source})")
            fraction = f"{best / floor:.0%}" if best and floor else "-"
        met = "-" if target is None or best is None else ("yes" if best >= target else "no")
        out.append("| " + " | ".join([
            name, tps("graph", "serial"), tps("graph", "auto", True), tps("persistent", "serial"),
            tps("persistent", "auto", True), fmt_tps(best), reference, floor_cell, fraction,
            "-" if target is None else fmt_tps(target), met]) + " |")
    device = next((r["device"] for v in data.values() for r in v["rows"] if r.get("device")), None)
    out += ["", f"braid ran on: {device or '-'}; t/s are medians of the repetitions. Floors marked (bytes): "
            f"{BANDWIDTH / 1e12:.2f} TB/s over the model's bytes; (flops): {TENSOR_RATE / 1e12:.0f} TFLOP/s over "
            "2 x parameters a token."]
    return "\n".join(out)


def load(paths):
    data, headers = {}, []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            bundle = json.load(f)
        headers.append(bundle.get("header", ""))
        data.update(bundle.get("rows", {}))
    return data, headers


def write_atomic(path, text):
    with open(path + ".tmp", "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


# ---------------------------------------------------------------------------- running


def run(args):
    names = args.rows or ROW_NAMES
    unknown = [n for n in names if n not in ROW_NAMES]
    if unknown:
        sys.exit(f"issue17_table: unknown rows {unknown}; known: {ROW_NAMES}")
    os.makedirs(args.out, exist_ok=True)
    commit = os.environ.get("COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                                        text=True).stdout.strip()
    header = f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit or 'unknown'}, REPS={args.reps}"
    data = {}
    # A fresh auto-tune cache: auto times its candidates in this run, never reuses an old choice.
    env = dict(os.environ, XDG_CACHE_HOME=tempfile.mkdtemp())
    with open(os.path.join(args.out, "bench.log"), "w", encoding="utf-8") as log:
        for name in names:
            _, model_args, test, *_ = ROWS[ROW_NAMES.index(name)]
            start = time.time()
            data[name] = {"rows": [], "errors": {}}
            for executor, command in bench_commands(args.braid, model_args, test, args.reps).items():
                log.write(f"=== {' '.join(command)}\n")
                log.flush()
                done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                log.write(done.stderr)
                try:
                    data[name]["rows"] += json.loads(done.stdout) if done.returncode == 0 else []
                except ValueError:
                    done.returncode = -1
                if done.returncode != 0:
                    lines = done.stderr.strip().splitlines() or [f"exit {done.returncode}"]
                    data[name]["errors"][executor] = lines[-1].replace("braid: error: ", "").replace("|", "/")
            print(f"issue17: {name}: {time.time() - start:.0f} s", flush=True)
            write_atomic(os.path.join(args.out, "data.json"), json.dumps({"header": header, "rows": data}, indent=1))
            write_atomic(os.path.join(args.out, "table.md"), render(data, [header]) + "\n")
    print(render(data, [header]))


# ---------------------------------------------------------------------------- self-test


def self_test():
    def bench_row(executor, policy, tps, choice=""):
        return {"executor": executor, "policy": policy, "graph": executor == "graph", "tps_median": tps,
                "size_bytes": 4.05e9, "params": 1e9, "device": "Test GPU", "auto_choice": choice}

    data = {
        "llama-1b f16 tg128": {"rows": [bench_row("graph", "serial", 900), bench_row("graph", "auto", 1000, "cost"),
                                        bench_row("persistent", "serial", 450),
                                        bench_row("persistent", "auto", 500, "branch")], "errors": {}},
        "llama3.2-1b f16 pp512": {"rows": [bench_row("graph", "serial", 90000),
                                           bench_row("graph", "auto", 95000, "serial")], "errors": {}},
        "moe-8x1b tg128": {"rows": [bench_row("graph", "serial", 700)],
                           "errors": {"persistent": "persistent executor: cannot run top_k 'blk.0.ids': no tile"}},
        "llama-7b q4_0 tg128": {"rows": [], "errors": {"graph": "exit 1"}},
    }
    text = render(data, ["test header"])
    lines = {line.split(" | ")[0][2:]: line for line in text.splitlines() if line.startswith("| ")}
    expect = {
        "llama-1b f16 tg128": "| llama-1b f16 tg128 | 900 | 1000 (cost) | 450 | 500 (branch) | 1000 | 938 (llama.cpp) "
                              "| 1834 | 55% | 1560 | no |",
        # 790e12 / 2e9 = 395k t/s
        "llama3.2-1b f16 pp512": "| llama3.2-1b f16 pp512 | 90.0k | 95.0k (serial) | - | - | 95.0k | - "
                                 "| 395.0k (flops) | 24% | - | - |",
    }
    for name, line in expect.items():
        assert lines.get(name) == line, f"self-test: {name}:\n got {lines.get(name)}\nwant {line}"
    assert "| 700 | - | n/a: top_k, no tile | n/a: top_k, no tile | 700 |" in lines["moe-8x1b tg128"]
    assert "| failed: exit 1 | failed: exit 1 | - | - | - |" in lines["llama-7b q4_0 tg128"]
    assert "llama-7b f16 pp512" not in lines and text.startswith("run: test header")
    assert "braid ran on: Test GPU;" in text
    assert list(bench_commands("b", ["--preset", "x"], "tg128", 3)) == ["graph", "persistent"]
    assert list(bench_commands("b", ["--preset", "x"], "pp512", 3)) == ["graph"]
    print("issue17_table self-test: ok")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--self-test", action="store_true")
    sub = p.add_subparsers(dest="command")
    r = sub.add_parser("run", help="run braid bench per row")
    r.add_argument("rows", nargs="*", help=f"rows (default all): {ROW_NAMES}")
    r.add_argument("--braid", default="./build/braid")
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--out", default="out/issue17")
    s = sub.add_parser("render", help="one table from data.json files")
    s.add_argument("files", nargs="+")
    args = p.parse_args()
    if args.self_test:
        self_test()
    elif args.command == "run":
        run(args)
    elif args.command == "render":
        print(render(*load(args.files)))
    else:
        p.error("give run, render or --self-test")


if __name__ == "__main__":
    main()
