#!/usr/bin/env python3
"""Summarises an Nsight Compute source page (--page source --csv --print-source sass) of one
selective-scan kernel launch per warp-step: instructions by region (runs of SASS lines with the
same execution count) and by opcode, stall reasons, and shared-memory wavefronts and global tag
requests by opcode. Warp-steps = warps launched (from the details page's grid and block size) x
steps per channel (--steps, else guessed from the unrolled tile body's execution count).
"""
import argparse
import collections
import csv
import re
import sys


def num(row, col, cols):
    try:
        return float(row[cols[col]])
    except (KeyError, ValueError, IndexError):
        return 0.0


def launch_warps(details_path):
    grid = block = None
    for line in open(details_path, errors="replace"):
        m = re.search(r"\((\d+), (\d+), (\d+)\)x\((\d+), (\d+), (\d+)\)", line)
        if m:
            g = [int(x) for x in m.groups()]
            grid, block = g[0] * g[1] * g[2], g[3] * g[4] * g[5]
            break
    if grid is None:
        sys.exit("ncu_sass_summary: no launch geometry in " + details_path)
    return grid * ((block + 31) // 32)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv")
    ap.add_argument("--details", required=True, help="the --page details text of the same report")
    ap.add_argument("--steps", type=int, default=0, help="steps per channel (default: guessed)")
    ap.add_argument("--regions", type=float, default=0.3, help="print regions above this many instructions per warp-step")
    a = ap.parse_args()
    rows = list(csv.reader(open(a.csv, errors="replace")))
    start = next(i for i, r in enumerate(rows) if r and r[0] == "Address")
    cols = {h: i for i, h in enumerate(rows[start])}
    data = rows[start + 1:]
    warps = launch_warps(a.details)
    counts = [num(r, "Instructions Executed", cols) for r in data]
    regions = []  # [first line, last line, executions, stall samples]: runs of equal counts
    for i, c in enumerate(counts):
        if c == 0:
            continue
        smp = num(data[i], "Warp Stall Sampling (All Samples)", cols)
        if regions and regions[-1][2] == c and regions[-1][1] == i - 1:
            regions[-1][1] = i
            regions[-1][3] += smp
        else:
            regions.append([i, i, c, smp])
    steps = a.steps
    if not steps:
        # The unrolled 16-step body is the region with the most instructions: it runs once per
        # full tile and warp (the partial last tile is not counted: pass --steps when known).
        body = max(regions, key=lambda g: (g[1] - g[0] + 1) * g[2])
        steps = max(1, round(body[2] / warps * 16))
    ws = warps * steps
    total = sum(counts)
    print(f"warps {warps}, steps {steps}{'' if a.steps else ' (guessed: pass --steps)'}, "
          f"{total / ws:.1f} instructions per warp-step, {len(data)} SASS lines")

    stalls = [h for h in rows[start] if h.startswith("stall_") and "Not Issued" not in h]
    st = collections.Counter()
    for r in data:
        for s in stalls:
            st[s] += num(r, s, cols)
    n = sum(st.values()) or 1
    print("stalls: " + ", ".join(f"{s[6:]} {100 * v / n:.1f}%" for s, v in st.most_common(10)))

    print("regions (first line, SASS lines, executions, instructions per warp-step, stall samples):")
    for lo, hi, c, smp in regions:
        per = c * (hi - lo + 1) / ws
        if per >= a.regions:
            print(f"  {lo:5d}-{hi:5d} {hi - lo + 1:5d} x {c:9.0f} {per:7.2f} {smp:7.0f}  {data[lo][1].strip()[:48]}")

    ops = collections.defaultdict(lambda: [0.0, 0.0, 0.0, 0.0])
    for r in data:
        op = re.sub(r"^@!?U?P\w+\s+", "", r[1].strip()).split(" ")[0]
        o = ops[op]
        o[0] += num(r, "Instructions Executed", cols)
        o[1] += num(r, "L1 Wavefronts Shared", cols)
        o[2] += num(r, "L1 Tag Requests Global", cols)
        o[3] += num(r, "Warp Stall Sampling (All Samples)", cols)
    print("opcodes (instructions, shared wavefronts, global tag requests per warp-step; stall samples):")
    for op, (i, w, g, s) in sorted(ops.items(), key=lambda kv: -kv[1][0])[:24]:
        print(f"  {op:24s} {i / ws:7.2f} {w / ws:7.2f} {g / ws:7.2f} {s:7.0f}")
    print(f"shared wavefronts {sum(v[1] for v in ops.values()) / ws:.1f}, global tag requests "
          f"{sum(v[2] for v in ops.values()) / ws:.1f} per warp-step")


if __name__ == "__main__":
    main()
