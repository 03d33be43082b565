"""ferry-bench --sweep: a table with nixlbench's column names, JSON lines, and --plot drawing a
PNG with both the transfer and the reference series (checked here by what ferry-plot says it
drew and by the picture's size and content)."""
import json
import os
import subprocess

from conftest import BIN


def test_sweep_table_json_and_plot(tmp_path):
    png = str(tmp_path / "sweep.png")
    out = subprocess.run(
        [os.path.join(BIN, "ferry-bench"), "--mode=loopback", "--sweep", "--sweep_block_sizes=4K,64K",
         "--sweep_batch_sizes=8", "--duration=0.3", "--window_ms=50", "--buffer_size=16M",
         "--reference=memcpy", "--protocol=tcp", "--json", "--plot=" + png],
        capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
    assert [(r["block_size"], r["batch_size"]) for r in rows] == [(4096, 8), (65536, 8)]
    for r in rows:
        assert r["throughput_GBps"] > 0 and r["reference_GBps"] > 0 and r["error"] is None
        assert r["batch_latency_us_p50"] <= r["batch_latency_us_p99"] <= r["batch_latency_us_p999"]
    header = next(l for l in out.stdout.splitlines() if l.startswith("Protocol"))
    for column in ("Block Size (B)", "Batch Size", "B/W (GB/Sec)", "Avg Lat. (us)", "P99 (us)", "P99.9 (us)"):
        assert column in header
    drew = next(l for l in out.stdout.splitlines() if l.startswith("ferry-plot:"))
    assert "tcp batch 8, 1 thread" in drew and "memcpy reference (tcp batch 8, 1 thread)" in drew, drew
    import matplotlib.image  # python3-matplotlib (scripts/setup.sh), as ferry-plot needs
    image = matplotlib.image.imread(png)
    assert image.shape[0] >= 400 and image.shape[1] >= 1000
    assert image[..., :3].std() > 0.05  # not blank


def test_plot_needs_sweep():
    out = subprocess.run([os.path.join(BIN, "ferry-bench"), "--plot=/tmp/x.png"], capture_output=True, text=True,
                         timeout=30)
    assert out.returncode == 2 and "--plot needs --sweep" in out.stderr
