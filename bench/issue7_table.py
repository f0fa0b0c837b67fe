#!/usr/bin/env python3
"""The issue-7 results table, from what bench/issue7_table.sh wrote (standard library only).

Usage:
  python3 bench/issue7_table.py PATH [PATH ...]   one markdown table from every PATH
  python3 bench/issue7_table.py --pack DIR --header TEXT -o FILE   (used by the .sh)
  python3 bench/issue7_table.py --self-test        checks this formatter on synthetic files

A PATH is a folder or a file. Folders are read for braid-<row>.json (a `braid bench -o json`
array), torch-<row>.json (bench/peers/torch_llama.py --json) and bundles (*.json holding
{"header": ..., "files": {name: content}}): the device machine returns only a few files, so
the .sh packs its per-row files into one bundle. Give the folders of several device calls to
merge their rows; a row found twice keeps the one read last. <row> is the issue's row name
with '/' as '_' (llama-1b-q4_0_tg128). A file holding {"error": ...} marks a failed run.

Braid columns use the rows with a CUDA graph and without fused projections. "best
multi-stream" is the fastest of branch, levels, chains and cost among the plans that used more
than one stream (a policy whose plan kept one stream is serial in all but name). Memory is
total_bytes (weights, cache, arena, scratch) of that plan over serial's. "met?" compares the
best braid number (serial, best multi-stream or auto) with the issue's target. The host
time per decode step is braid bench's host_us (staging the inputs and issuing one step,
the median over every timed step), the highest over the decode rows and policies.
"""
import argparse
import json
import os
import sys
import tempfile

MULTI_STREAM_POLICIES = ("branch", "levels", "chains", "cost")
TORCH_MODES = ("eager", "graph", "graph-streams", "compile")

# The issue's rows, in its order: (row name, label, test, llama.cpp t/s as published in
# issue 7 (Sep 2026, without / with its multi-stream option), braid target t/s).
ISSUE_ROWS = [
    ("tiny-256/tg128", "tiny-256", "tg128", "916 / 825", 6000),
    ("llama-1b/tg128", "llama-1b", "tg128", "765 / 804", 1250),
    ("llama-7b/tg128", "llama-7b", "tg128", "180 / 185", 210),
    ("moe-8x1b/tg128", "moe-8x1b", "tg128", "542 / 547", 900),
    ("llama-7b/pp512", "llama-7b", "pp512", "19.1k", 45000),
    ("llama-1b/pp512", "llama-1b", "pp512", "58.7k", 100000),
    ("llama-1b-q4_0/tg128", "llama-1b q4_0", "tg128", "1055 / 1074", 2000),
    ("llama-7b-q8_0/tg128", "llama-7b q8_0", "tg128", "248", 360),
    ("llama-7b-q4_0/tg128", "llama-7b q4_0", "tg128", "326 / 351", 600),
    ("stories260K/tg128", "stories260K.gguf", "tg128", "1975 / 1668", 10000),
]
# Multi-stream speedup targets against serial (both with a CUDA graph).
SPEEDUP_TARGETS = [("tiny-256/tg128", 1.15), ("llama-1b/tg128", 1.15), ("moe-8x1b/tg128", 1.25)]
AUTO_FLOOR = 0.99
MEMORY_CEILING = 1.10
HOST_US_CEILING = 20.0


def file_key(row_name):
    return row_name.replace("/", "_")


# ---------------------------------------------------------------------------- reading


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"unreadable: {e}"}


def load(paths):
    """Merges every path into {"files": {name: content}, "headers": [...]}."""
    files, headers = {}, []

    def add(name, content):
        if isinstance(content, dict) and isinstance(content.get("files"), dict):
            if content.get("header"):
                headers.append(content["header"])
            for inner, value in sorted(content["files"].items()):
                add(inner, value)
        elif name.startswith(("braid-", "torch-")):
            files[name] = content

    for path in paths:
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".json"):
                    add(name, read_json(os.path.join(path, name)))
        elif os.path.exists(path):
            add(os.path.basename(path), read_json(path))
        else:
            raise SystemExit(f"issue7_table: no such file or folder: {path}")
    return {"files": files, "headers": headers}


def failed(content):
    """A run that wrote {"error": ...} (the .sh, on a non-zero exit) or a file that is no JSON."""
    if content is None:
        return False
    return not isinstance(content, (list, dict)) or (isinstance(content, dict) and "error" in content)


def braid_rows(content, test_prefix):
    """The graph, unfused rows of one test kind (tg or pp), by policy."""
    if not isinstance(content, list):
        return {}
    rows = {}
    for r in content:
        if r.get("graph") and not r.get("fused") and str(r.get("test", "")).startswith(test_prefix):
            rows.setdefault(r["policy"], r)
    return rows


def torch_rows(content, test_prefix):
    if not isinstance(content, dict) or not isinstance(content.get("rows"), list):
        return {}
    return {r["mode"]: r for r in content["rows"] if str(r.get("test", "")).startswith(test_prefix)}


# ---------------------------------------------------------------------------- one row


def measure(data, row_name, test):
    """What the table needs of one issue row; None where nothing was measured."""
    kind = test[:2]
    b_content = data["files"].get(f"braid-{file_key(row_name)}.json")
    t_content = data["files"].get(f"torch-{file_key(row_name)}.json")
    rows = braid_rows(b_content, kind)
    m = {"braid_failed": failed(b_content) or (b_content is not None and not rows),
         "torch_failed": failed(t_content), "torch": torch_rows(t_content, kind)}
    tps = lambda r: r["tps_mean"] if r else None
    m["serial"], m["auto"] = tps(rows.get("serial")), tps(rows.get("auto"))
    multi = [r for p, r in rows.items() if p in MULTI_STREAM_POLICIES and r.get("streams", 1) > 1]
    best = max(multi, key=lambda r: r["tps_mean"]) if multi else None
    m["best"] = best
    m["ran_test"] = next((r["test"] for r in rows.values()), None)
    m["speedup"] = best["tps_mean"] / m["serial"] if best and m["serial"] else None
    m["auto_ratio"] = m["auto"] / m["serial"] if m["auto"] and m["serial"] else None
    serial_mem = (rows.get("serial") or {}).get("memory", {}).get("total_bytes")
    best_mem = (best or {}).get("memory", {}).get("total_bytes")
    m["memory_ratio"] = best_mem / serial_mem if best_mem and serial_mem else None
    candidates = [v for v in (m["serial"], tps(best), m["auto"]) if v]
    m["best_braid"] = max(candidates) if candidates else None
    # Policies that ran but kept one stream: said in the table, so "-" is not read as "not run".
    m["one_stream_only"] = not multi and any(p in MULTI_STREAM_POLICIES for p in rows)
    # Host time per step of decode rows (braid bench's host_us: staging and issuing a step).
    hosts = [(r["host_us"], p) for p, r in rows.items() if kind == "tg" and r.get("host_us") is not None]
    m["host_us"] = max(hosts) if hosts else None
    return m


def fmt_tps(v):
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}"


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}x"


def table_line(label, test, llama_cpp, target, m):
    test_cell = test if m["ran_test"] in (None, test) else f"{test} (ran {m['ran_test']})"
    if m["braid_failed"]:
        braid = ["failed"] * 5
        met = "failed"
    else:
        best = m["best"]
        if best:
            best_cell = f"{fmt_tps(best['tps_mean'])} ({best['policy']}, {best['streams']} streams)"
        else:
            best_cell = "- (every plan 1 stream)" if m["one_stream_only"] else "-"
        auto_cell = "-" if m["auto"] is None else f"{fmt_tps(m['auto'])} ({fmt_ratio(m['auto_ratio'])})"
        braid = [fmt_tps(m["serial"]), best_cell, fmt_ratio(m["speedup"]), auto_cell, fmt_ratio(m["memory_ratio"])]
        met = "-" if m["best_braid"] is None else ("yes" if m["best_braid"] >= target else "no")
    if m["torch_failed"]:
        torch = "failed"
    elif m["torch"]:
        torch = " / ".join(fmt_tps(m["torch"][mode]["tps"]) if mode in m["torch"] else "-" for mode in TORCH_MODES)
    else:
        torch = "-"
    cells = [label, test_cell] + braid + [torch, llama_cpp, f">= {target}", met]
    return "| " + " | ".join(cells) + " |"


# ---------------------------------------------------------------------------- the table


def verdict(ok):
    return "met" if ok else "not met"


def rows(n):
    return f"{n} row" if n == 1 else f"{n} rows"


def target_lines(measured):
    lines = []
    for row_name, floor in SPEEDUP_TARGETS:
        m = measured[row_name]
        s = m["speedup"]
        if s is not None:
            value = f"{s:.2f}x ({m['best']['policy']}), {verdict(s >= floor)}"
        else:
            value = "failed" if m["braid_failed"] else "-, not measured"
        lines.append(f"- multi-stream >= {floor:.2f}x serial on {row_name}: {value}")
    def worst(key, pick, word, ok):
        """The row whose `key` is worst (`pick`: min or max) and whether it passes `ok`."""
        values = [(m[key], name) for name, m in measured.items() if m[key] is not None]
        if not values:
            return "-, not measured"
        value, name = pick(values)
        return f"{word} {value:.3f}x ({name}; {rows(len(values))}), {verdict(ok(value))}"

    auto = worst("auto_ratio", min, "lowest", lambda v: v >= AUTO_FLOOR)
    lines.append(f"- auto never below {AUTO_FLOOR:.2f}x serial: {auto}")
    memory = worst("memory_ratio", max, "highest", lambda v: v <= MEMORY_CEILING)
    lines.append(f"- device memory of the best multi-stream plan <= {MEMORY_CEILING:.2f}x serial: {memory}")
    hosts = [(m["host_us"][0], m["host_us"][1], name) for name, m in measured.items() if m["host_us"]]
    if hosts:
        us, policy, name = max(hosts)
        host = f"highest {us:.1f} us ({name}, {policy}; {rows(len(hosts))}), {verdict(us <= HOST_US_CEILING)}"
    else:
        host = "-, not measured (braid bench before host_us)"
    lines.append(f"- host time per decode step <= {HOST_US_CEILING:.0f} us: {host}")
    return lines


def devices(data):
    braid, torch = set(), set()
    for name, content in data["files"].items():
        if name.startswith("braid-") and isinstance(content, list):
            braid.update(f"{r.get('device')} ({r.get('backend')})" for r in content if "device" in r)
        if name.startswith("torch-") and isinstance(content, dict) and "device" in content:
            torch.add(f"{content['device']}, torch {content.get('torch')}")
    return sorted(braid), sorted(torch)


def render(data):
    out = [f"run: {h}" for h in data["headers"]]
    if out:
        out.append("")
    out += [
        "| model | test | braid serial (graph) t/s | best multi-stream t/s (policy) | multi-stream / serial "
        "| auto t/s (auto / serial) | memory multi-stream / serial "
        "| PyTorch eager / graph / graph+streams / compile t/s (this run, with LM head) "
        "| llama.cpp t/s (issue 7, published, H100) | target | met? |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    measured = {}
    for row_name, label, test, llama_cpp, target in ISSUE_ROWS:
        measured[row_name] = measure(data, row_name, test)
        out.append(table_line(label, test, llama_cpp, target, measured[row_name]))
    out += ["", "Multi-stream targets (against braid's serial plan, both with a CUDA graph):", ""]
    out += target_lines(measured)
    braid_devices, torch_devices = devices(data)
    out += ["", f"braid ran on: {'; '.join(braid_devices) or '-'}. PyTorch ran on: {'; '.join(torch_devices) or '-'}."]
    return "\n".join(out)


def pack(folder, header, path):
    """One bundle of the folder's braid-*/torch-* files, written atomically."""
    files = {}
    for name in sorted(os.listdir(folder)):
        if name.startswith(("braid-", "torch-")) and name.endswith(".json"):
            files[name] = read_json(os.path.join(folder, name))
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"header": header, "files": files}, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


# ---------------------------------------------------------------------------- self-test


def synthetic_braid(model, test, tps_by_policy, streams_by_policy, total_by_policy):
    rows = []
    for policy, tps in tps_by_policy.items():
        rows.append({"backend": "cuda", "device": "Test GPU", "fused": False, "graph": True, "model": model,
                     "policy": policy, "streams": streams_by_policy.get(policy, 1), "test": test,
                     "tokens": int(test[2:]), "tps_mean": tps, "tps_sd": 1.0,
                     "host_us": 5.0 + streams_by_policy.get(policy, 1),
                     "memory": {"total_bytes": total_by_policy.get(policy, 1000), "arena_bytes": 10}})
    # Rows the table must ignore: no graph, and fused projections.
    rows.append(dict(rows[0], graph=False, tps_mean=1e9))
    rows.append(dict(rows[0], fused=True, tps_mean=1e9))
    return rows


def self_test():
    with tempfile.TemporaryDirectory() as tmp:
        call1, call2, scratch = (os.path.join(tmp, d) for d in ("call1", "call2", "scratch"))
        for d in (call1, call2, scratch):
            os.mkdir(d)

        def write(folder, name, content):
            with open(os.path.join(folder, name), "w", encoding="utf-8") as f:
                json.dump(content, f)

        # Call 1: loose files. levels is fastest but kept one stream: not multi-stream.
        write(call1, "braid-tiny-256_tg128.json", synthetic_braid(
            "tiny-256 f16", "tg128",
            {"serial": 5000, "branch": 6500, "levels": 7000, "chains": 6000, "cost": 5500, "auto": 6800},
            {"branch": 3, "levels": 1, "chains": 2, "cost": 2, "auto": 3},
            {"serial": 1000, "branch": 1050, "auto": 1050}))
        write(call1, "torch-tiny-256_tg128.json", {"device": "Test GPU", "torch": "2.5", "rows": [
            {"model": "tiny-256 f16", "mode": m, "test": "tg128", "tps": v, "tps_runs": [v]}
            for m, v in (("eager", 262.4), ("graph", 3241.0), ("graph-streams", 3823.0), ("compile", 4100.0))]})
        # Call 2: a bundle made by --pack, as the .sh makes it.
        write(scratch, "braid-llama-1b_tg128.json", synthetic_braid(
            "llama-1b f16", "tg128", {"serial": 1000, "branch": 1100, "auto": 985},
            {"branch": 2, "auto": 1}, {"serial": 2000, "branch": 2300}))
        write(scratch, "braid-llama-7b_pp512.json", {"error": "braid bench exited with 1"})
        write(scratch, "torch-llama-7b_pp512.json", {"device": "Test GPU", "torch": "2.5", "rows": [
            {"model": "llama-7b f16", "mode": "eager", "test": "pp512", "tps": 35400.0, "tps_runs": [35400.0]}]})
        write(scratch, "braid-stories260K_tg128.json", synthetic_braid(
            "stories260K.gguf", "tg8", {"serial": 12000.0, "branch": 11000.0}, {"branch": 1}, {}))
        with open(os.path.join(scratch, "braid-moe-8x1b_tg128.json"), "w") as f:
            f.write('[{"backend": "cuda", "trunc')  # a bench killed while writing
        pack(scratch, "2026-01-01 commit abc1234 Test GPU", os.path.join(call2, "data.json"))

        text = render(load([call1, call2]))
        # Keyed by "model | test" (the test cell cut at its first space: "tg128 (ran tg8)").
        lines = {" | ".join(c.split(" ")[0] if i else c for i, c in enumerate(line[2:].split(" | ")[:2])): line
                 for line in text.splitlines() if line.startswith("| ")}

        def check(key, *parts):
            line = lines[key]
            for part in parts:
                assert part in line, f"self-test: {part!r} missing from {line!r}"

        check("tiny-256 | tg128", "| 5000 |", "| 6500 (branch, 3 streams) |", "| 1.30x |", "| 6800 (1.36x) |",
              "| 1.05x |", "| 262 / 3241 / 3823 / 4100 |", "| 916 / 825 |", "| >= 6000 | yes |")
        check("llama-1b | tg128", "| 1000 |", "| 1100 (branch, 2 streams) |", "| 1.10x |", "| 985 (0.98x) |", "| 1.15x |",
              "| - | 765 / 804 |", "| >= 1250 | no |")
        check("llama-7b | tg128", "| tg128 | - | - | - | - | - | - |", "| >= 210 | - |")
        pp = lines["llama-7b | pp512"]
        assert pp.count("failed") == 6 and "| 35400 / - / - / - |" in pp, pp
        check("moe-8x1b | tg128", "| failed | failed |", "| - | 542 / 547 |")
        check("stories260K.gguf | tg128", "| tg128 (ran tg8) |", "| 12000 |", "| - (every plan 1 stream) |", "| yes |")
        check("llama-1b q4_0 | tg128", "| - | - | - | - | - | - | 1055 / 1074 | >= 2000 | - |")
        for expected in ("run: 2026-01-01 commit abc1234 Test GPU",
                         "- multi-stream >= 1.15x serial on tiny-256/tg128: 1.30x (branch), met",
                         "- multi-stream >= 1.15x serial on llama-1b/tg128: 1.10x (branch), not met",
                         "- multi-stream >= 1.25x serial on moe-8x1b/tg128: failed",
                         "- auto never below 0.99x serial: lowest 0.985x (llama-1b/tg128; 2 rows), not met",
                         "best multi-stream plan <= 1.10x serial: highest 1.150x (llama-1b/tg128; 2 rows), not met",
                         "- host time per decode step <= 20 us: highest 8.0 us (tiny-256/tg128, branch; 3 rows), met",
                         "braid ran on: Test GPU (cuda).", "PyTorch ran on: Test GPU, torch 2.5."):
            assert expected in text, f"self-test: {expected!r} missing from\n{text}"
        assert len([line for line in text.splitlines() if line.startswith("| ")]) == 2 + len(ISSUE_ROWS)
    print("issue7_table self-test: ok")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="*", help="folders or files written by bench/issue7_table.sh")
    p.add_argument("--self-test", action="store_true", help="check the formatter on synthetic files")
    p.add_argument("--pack", metavar="DIR", help="bundle DIR's braid-*/torch-* files into -o FILE")
    p.add_argument("--header", default="", help="with --pack: the run's header line")
    p.add_argument("-o", "--output", help="with --pack: the bundle to write")
    args = p.parse_args()
    if args.self_test:
        self_test()
    elif args.pack:
        if not args.output:
            p.error("--pack needs -o FILE")
        pack(args.pack, args.header, args.output)
    elif args.paths:
        print(render(load(args.paths)))
    else:
        p.error("give folders or files, --pack or --self-test")


if __name__ == "__main__":
    main()
