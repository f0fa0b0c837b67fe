#!/usr/bin/env python3
"""Markdown tables from `braid bench -o json` output (standard library only).

Usage: python3 bench/format_results.py [--all] FILE.json [FILE.json ...]   ('-' reads stdin)

One table per (model, test): time per token, tokens/s, speedup against serial with a
CUDA graph (the baseline a multi-stream plan must beat), and device memory per plan.
Rows, in order: serial without a graph, then every policy with a graph (serial, branch,
levels, chains, cost, auto); --all adds the multi-stream policies without a graph.
"""
import argparse
import json
import sys

POLICY_ORDER = ["serial", "branch", "levels", "chains", "cost", "auto"]
MIB = float(1 << 20)


def load_rows(paths):
    rows = []
    for path in paths:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
        data = json.loads(text)
        if not isinstance(data, list):
            raise SystemExit(f"{path}: expected a JSON array of bench rows")
        rows.extend(data)
    return rows


def wanted(row, include_all):
    if row["graph"]:
        return True
    return row["policy"] == "serial" or include_all


def order_key(row):
    # Serial eager first, then graph rows in policy order, then other eager rows.
    policy = POLICY_ORDER.index(row["policy"]) if row["policy"] in POLICY_ORDER else len(POLICY_ORDER)
    if not row["graph"] and row["policy"] == "serial":
        return (0, 0)
    return (1 if row["graph"] else 2, policy)


def ms_per_token(row):
    return 1000.0 / row["tps_mean"] if row["tps_mean"] > 0 else float("inf")


def format_group(rows):
    baseline = next((r for r in rows if r["graph"] and r["policy"] == "serial"), None)
    lines = [
        "| policy | graph | streams | ms/token | t/s | vs serial graph | arena MiB | workspace MiB | total MiB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=order_key):
        speedup = f"{r['tps_mean'] / baseline['tps_mean']:.3f}x" if baseline and baseline["tps_mean"] > 0 else "-"
        memory = r["memory"]
        lines.append(
            f"| {r['policy']} | {1 if r['graph'] else 0} | {r['streams']} | {ms_per_token(r):.4f} | "
            f"{r['tps_mean']:.2f} ± {r['tps_sd']:.2f} | {speedup} | {memory['arena_bytes'] / MIB:.1f} | "
            f"{memory['workspace_bytes'] / MIB:.1f} | {memory['total_bytes'] / MIB:.1f} |"
        )
    return "\n".join(lines)


def format_tables(rows, include_all=False):
    groups = {}
    for r in rows:
        if wanted(r, include_all):
            groups.setdefault((r["model"], r["test"]), []).append(r)
    out = []
    devices = sorted({r.get("device", "") for r in rows if r.get("device")})
    if devices:
        out.append("device: " + ", ".join(devices) + "\n")
    for (model, test), group in groups.items():
        first = group[0]
        out.append(f"### {model}, {test} ({first['params'] / 1e9:.2f} B parameters, "
                   f"{first['size_bytes'] / (1 << 30):.2f} GiB of weights, {first['backend']})\n")
        out.append(format_group(group) + "\n")
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="JSON files written by `braid bench -o json` ('-': stdin)")
    parser.add_argument("--all", action="store_true", help="also the multi-stream policies without a CUDA graph")
    args = parser.parse_args()
    sys.stdout.write(format_tables(load_rows(args.files), args.all))


if __name__ == "__main__":
    main()
