#!/usr/bin/env python3
"""Table of bench/auto_under_load.sh: auto / serial per row, test and host condition.

Usage: auto_under_load.py DIR   (DIR holds quiet-ROW.json and burner-ROW.json files)
       auto_under_load.py --self-test
"""
import json
import pathlib
import sys

FLOOR = 0.99  # issue 13: auto >= 0.99x serial on every row


def rows_of(path):
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def tps(row):
    """The median over the repetitions (older files: the mean)."""
    return row.get("tps_median", row["tps_mean"])


def table(directory):
    results = {}  # (model, test) -> {condition: (serial, auto, choice)}
    for path in sorted(pathlib.Path(directory).glob("*.json")):
        condition = path.stem.split("-", 1)[0]
        by_test = {}
        for r in rows_of(path):
            by_test.setdefault((r["model"], r["test"]), {})[r["policy"]] = r
        for key, policies in by_test.items():
            serial, auto = policies.get("serial"), policies.get("auto")
            if serial and auto:
                results.setdefault(key, {})[condition] = (tps(serial), tps(auto),
                                                          auto.get("auto_choice", ""))
    lines = ["| model | test | host | serial t/s | auto t/s | auto / serial | auto ran |",
             "| --- | --- | --- | ---: | ---: | ---: | --- |"]
    worst = None
    for (model, test), conditions in results.items():
        for condition in ("quiet", "burner"):
            if condition not in conditions:
                continue
            serial, auto, choice = conditions[condition]
            ratio = auto / serial if serial else 0.0
            worst = ratio if worst is None else min(worst, ratio)
            mark = "" if ratio >= FLOOR else " **below**"
            lines.append(f"| {model} | {test} | {condition} | {serial:.0f} | {auto:.0f} | {ratio:.3f}x{mark} | {choice} |")
    if worst is not None:
        verdict = "met" if worst >= FLOOR else "NOT met"
        lines.append(f"\nLowest auto / serial: {worst:.3f}x (target >= {FLOOR}x: {verdict})")
    return "\n".join(lines)


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        row = lambda policy, tps, choice="": {"model": "m", "test": "tg128", "policy": policy, "tps_mean": tps,
                                              "auto_choice": choice}
        pathlib.Path(d, "quiet-m.json").write_text(json.dumps([row("serial", 100), row("auto", 110, "cost")]))
        pathlib.Path(d, "burner-m.json").write_text(json.dumps([row("serial", 100), row("auto", 90, "levels")]))
        text = table(d)
        assert "1.100x" in text and "0.900x **below**" in text and "NOT met" in text, text
        assert tps({"tps_mean": 90.0, "tps_median": 101.0}) == 101.0 and tps({"tps_mean": 90.0}) == 90.0
    print("auto_under_load.py self-test passed")


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--self-test":
        self_test()
    elif len(sys.argv) == 2:
        print(table(sys.argv[1]))
    else:
        sys.exit(__doc__)
