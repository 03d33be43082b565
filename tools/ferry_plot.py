#!/usr/bin/python3
"""ferry-plot ROWS.jsonl OUT.png: throughput and p99 batch latency against block size, one
series per protocol x batch size x threads, each reference measured in the same run drawn
dashed in its series' colour. Rows are ferry-bench's JSON lines (ferry-bench --sweep --plot).
Prints one line naming what it drew, for tests and logs."""
import json
import sys

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def size_label(value, _pos=None):
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return "%d%s" % (value >> shift, unit)
    return "%d" % value


def main(rows_path, png_path):
    with open(rows_path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows:
        sys.exit("ferry-plot: no rows in " + rows_path)
    kv = rows[0].get("workload") == "kv"
    series = {}
    for r in rows:
        key = "%s batch %d, %d thread%s" % (r["protocol"], r["batch_size"], r["threads"],
                                            "" if r["threads"] == 1 else "s")
        series.setdefault(key, []).append(r)
    fig, (bw, lat) = plt.subplots(1, 2, figsize=(13, 5))
    names = []
    for i, (key, points) in enumerate(sorted(series.items())):
        points.sort(key=lambda r: r["block_size"])
        x = [r["block_size"] for r in points]
        colour = "C%d" % (i % 10)
        bw.plot(x, [r["throughput_GBps"] for r in points], "o-", color=colour, label=key)
        lat.plot(x, [r["batch_latency_us_p99"] for r in points], "o-", color=colour, label=key)
        names.append(key)
        refs = sorted({name for r in points for name in (r.get("references") or {})})
        for j, ref in enumerate(refs):
            label = "%s reference (%s)" % (ref, key)
            bw.plot(x, [(r.get("references") or {}).get(ref, float("nan")) for r in points],
                    ["--", ":", "-."][j % 3], color=colour, label=label)
            names.append(label)
    what = "page size" if kv else "block size"
    sizes = sorted({r["block_size"] for r in rows})
    for ax in (bw, lat):
        ax.set_xscale("log", base=2)
        ax.set_xticks(sizes)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(size_label))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(what + " (bytes)")
        ax.grid(True, which="both", alpha=0.3)
    bw.set_yscale("log")
    bw.set_ylabel("throughput (GB/s)")
    bw.set_title("throughput, reference dashed")
    lat.set_yscale("log")
    lat.set_ylabel("p99 batch latency (us)")
    lat.set_title("p99 batch latency")
    bw.legend(fontsize=7)
    lat.legend(fontsize=7)
    op = rows[0].get("operation", "")
    fig.suptitle("ferry-bench %s %s" % (op, "(kv pages)" if kv else ""))
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    print("ferry-plot: %s: %d series: %s" % (png_path, len(names), "; ".join(names)))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: ferry-plot ROWS.jsonl OUT.png")
    main(sys.argv[1], sys.argv[2])
