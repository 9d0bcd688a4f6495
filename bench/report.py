#!/usr/bin/env python3
"""Merge the JSON files of `strata bench` (one per rank count) and vdb_peer into
bench/results.json, draw the scaling and update-pattern plots with gnuplot, and
rewrite the generated part of docs/benchmarks.md (between the GENERATED markers).

Usage: report.py --out results.json --docs benchmarks.md --img DIR run1.json ...
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

BEGIN = "<!-- BEGIN GENERATED: bench/report.py rewrites this part -->"
END = "<!-- END GENERATED -->"
GROUPS = [
    ("simulation", "Ten batches of random updates and one durable commit, vs plain parallel HDF5"),
    ("updates", "Batch updates (in memory, not committed)"),
    ("commit", "Commit (durable)"),
    ("storage", "Stored bytes"),
    ("volumes", "Stored bytes per volume, compacted, vs plain zstd-3 64^3 and HDF5 + zstd"),
    ("reads", "Point reads and queries"),
    ("regions", "Region reads vs HDF5 hyperslabs"),
    ("index", "Index: region queries, rays, reindex"),
    ("extract", "Extraction"),
    ("openvdb", "OpenVDB, same volume, same process (1 rank)"),
]


def load(paths):
    machine, runs, rows = None, [], []
    for path in paths:
        with open(path) as f:
            r = json.load(f)
        runs.append({k: r.get(k) for k in ("suite", "command", "ranks", "quick", "openvdb") if k in r})
        if r.get("machine") and (machine is None or r.get("ranks") == 1):
            machine = r["machine"]
        if r.get("openvdb") and machine is not None:
            machine["openvdb"] = r["openvdb"]
        for row in r["rows"]:
            row.setdefault("group", "openvdb")
            rows.append(row)
    if machine is not None:
        for r in runs:
            if r.get("openvdb"):
                machine["openvdb"] = r["openvdb"]
    return machine, runs, rows


def find_peer(rows, row, peer_id):
    same = [r for r in rows if r["id"] == peer_id and r["ranks"] == row["ranks"]]
    anyr = [r for r in rows if r["id"] == peer_id]
    return (same or anyr or [None])[0]


def ratio(row, peer):
    """How many times better the row is than its peer (> 1: strata ahead)."""
    if not peer or not peer["value"] or not row["value"]:
        return None
    if row["better"] == "higher":
        return row["value"] / peer["value"]
    return peer["value"] / row["value"]


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 1e6 or (abs(v) < 1e-2 and v != 0):
        return f"{v:.3g}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def tables(rows):
    out = []
    for group, title in GROUPS:
        grows = [r for r in rows if r["group"] == group]
        if not grows:
            continue
        out.append(f"\n### {title}\n")
        out.append("| row | ranks | volume / pattern | durable | figure | best of | vs peer (x better) | target |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in sorted(grows, key=lambda r: (r["id"], r["ranks"])):
            ratios = []
            for pid in r.get("compare", []):
                p = find_peer(rows, r, pid)
                x = ratio(r, p)
                if x is not None:
                    ratios.append(f"{x:.2f}x vs {pid} ({p['ranks']} r)")
            who = "" if r["peer"] == "strata" else f" [{r['peer']}]"
            out.append(
                f"| `{r['id']}`{who} | {r['ranks']} | {r['volume']}; {r['pattern']} | "
                f"{'yes' if r['durable'] else 'no'} | {fmt(r['value'])} {r['unit']} | {r['best_of']} | "
                f"{'; '.join(ratios) or '-'} | {r.get('target') or '-'} |")
        out.append("\nWhat each row times and what limits it:\n")
        seen = set()
        for r in grows:
            if r["id"] in seen:
                continue
            seen.add(r["id"])
            out.append(f"- `{r['id']}`: {r['what']}. Limit: {r.get('limit') or '-'}. "
                       f"Command: `{r['command']}`.")
    return "\n".join(out)


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def plots(rows, img):
    os.makedirs(img, exist_ok=True)
    ranks = sorted({r["ranks"] for r in rows if r["group"] == "updates"})
    sizes = sorted({r["id"].rsplit("_", 1)[1] for r in rows if r["id"].startswith("update_")},
                   key=lambda s: float(s))
    if not ranks or not sizes:
        return []
    patterns = ["uniform", "erosion", "volcanic", "river"]
    big = sizes[-1]
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "scaling.dat")
        with open(data, "w") as f:
            f.write("ranks " + " ".join(patterns) + " commit\n")
            for n in ranks:
                vals = []
                for p in patterns:
                    row = [r for r in rows if r["id"] == f"update_{p}_{big}" and r["ranks"] == n]
                    vals.append(f"{row[0]['value'] / 1e6:.6g}" if row else "NaN")
                c = [r for r in rows if r["id"] == "commit_terrain" and r["ranks"] == n]
                vals.append(f"{c[0]['value'] * n:.6g}" if c else "NaN")
                f.write(f"{n} " + " ".join(vals) + "\n")
        gnuplot(f"""set terminal pngcairo size 900,520 noenhanced
set output '{img}/scaling.png'
set title 'Scaling on this machine (2 cores): batch updates of {big} and commit'
set xlabel 'MPI ranks'
set ylabel 'million updates/s'
set y2label 'commit MB/s (all ranks)'
set xtics (1, 2, 4)
set ytics nomirror
set y2tics
set key outside right
set grid
plot for [i=2:5] '{data}' using 1:i with linespoints lw 2 title columnheader(i), \\
     '{data}' using 1:6 axes x1y2 with linespoints lw 2 dt 2 title 'commit MB/s'
""")
        made.append("scaling.png")
        pick = 2 if 2 in ranks else ranks[0]
        data = os.path.join(tmp, "patterns.dat")
        with open(data, "w") as f:
            f.write("pattern " + " ".join(sizes) + "\n")
            for p in patterns:
                vals = []
                for s in sizes:
                    row = [r for r in rows if r["id"] == f"update_{p}_{s}" and r["ranks"] == pick]
                    vals.append(f"{row[0]['value'] / 1e6:.6g}" if row else "NaN")
                f.write(p + " " + " ".join(vals) + "\n")
        gnuplot(f"""set terminal pngcairo size 900,520 noenhanced
set output '{img}/update_patterns.png'
set title 'Batch updates by access pattern and batch size, {pick} ranks (routed + applied, in memory)'
set ylabel 'million updates/s'
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set key outside right title 'updates per batch'
set grid ytics
plot for [i=2:{len(sizes) + 1}] '{data}' using i:xtic(1) title columnheader(i)
""")
        made.append("update_patterns.png")
    return made


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--img")
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()
    machine, runs, rows = load(a.inputs)
    with open(a.out + ".tmp", "w") as f:
        json.dump({"suite": "bench/run.sh", "machine": machine, "runs": runs, "rows": rows}, f, indent=1)
    os.replace(a.out + ".tmp", a.out)
    made = plots(rows, a.img) if a.img else []
    if a.docs:
        with open(a.docs) as f:
            text = f.read()
        if BEGIN not in text or END not in text:
            sys.exit(f"{a.docs} lacks the GENERATED markers")
        m = machine or {}
        head = [BEGIN, "", "Measured by `bench/run.sh` (commands per row below). Machine: "
                f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory', '?')}, "
                f"{m.get('kernel', '?')}; {m.get('compiler', '?')}; {m.get('mpi', '?')}; HDF5 "
                f"{m.get('hdf5', '?')}; zstd {m.get('zstd', '?')}; OpenVDB {m.get('openvdb', 'not run')}; "
                f"load average at start {m.get('load_average_at_start', '?')}.", ""]
        if any(r.get("quick") for r in runs):
            head += ["**These rows come from `--quick` sizes (a rehearsal of the pipeline), not from "
                     "the full suite: re-run `bench/run.sh` on a quiet machine for the figures.**", ""]
        head += [f"![{p}](img/{p})" for p in made]
        body = "\n".join(head) + "\n" + tables(rows) + "\n\n" + END
        start, stop = text.index(BEGIN), text.index(END) + len(END)
        with open(a.docs, "w") as f:
            f.write(text[:start] + body + text[stop:])
    print(f"report: {len(rows)} rows from {len(a.inputs)} files -> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
