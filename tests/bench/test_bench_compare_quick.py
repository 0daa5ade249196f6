"""scripts/bench-compare --quick end to end: it starts the servers, runs every
table row, measures fsync, RSS and the bench's own ceiling, and writes the
Markdown table, the raw JSON and (with matplotlib) the chart.

Environment (set by CTest): RAFTKV_BENCH_BIN; RAFTKV_BIN when the server is built.
"""

import importlib.util
import json
import os
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "bench-compare")
BENCH = os.environ.get("RAFTKV_BENCH_BIN", "")


class BenchCompareQuick(unittest.TestCase):
    def test_quick_run_writes_table_json_and_chart(self):
        self.assertTrue(BENCH, "RAFTKV_BENCH_BIN is not set (run through CTest)")
        with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as data:
            r = subprocess.run(["/usr/bin/python3", SCRIPT, "--quick", "--bench", BENCH,
                                "--out-dir", out, "--data-root", data],
                               capture_output=True, text=True, timeout=240)
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
            files = sorted(os.listdir(out))
            md = [f for f in files if f.endswith(".md")]
            self.assertEqual(len(md), 1, files)
            stamp = md[0][:-3]
            with open(os.path.join(out, md[0])) as f:
                text = f.read()
            with open(os.path.join(out, stamp + ".json")) as f:
                raw = json.load(f)

            with_raftkv = bool(os.environ.get("RAFTKV_BIN"))
            self.assertEqual(raw["systems"], ["etcd", "raftkv"] if with_raftkv else ["etcd"])
            if not with_raftkv:
                self.assertIn("etcd only", text)
            for row in ("put, 1 client", "put, 100 clients / 10 conns",
                        "linearizable range, 100 clients", "serializable range, 100 clients",
                        "txn-cas, 50 clients, 1 000 keys", "open-loop put at 50% of etcd's max"):
                self.assertIn(f"| {row}", text)
            self.assertIn("fsync floor, idle CPU (256 B write + fdatasync", text)
            self.assertIn("fsync floor, a CPU kept runnable", text)
            self.assertIn("peak RSS (VmHWM)", text)
            self.assertIn("requests per client CPU-second", text)
            self.assertIn("nproc", text)
            # 6 rows x 1 round x each system, plus two fsync probes per round; every run clean
            self.assertEqual(len(raw["runs"]), 6 * len(raw["systems"]) + 2)
            self.assertEqual([r["row"] for r in raw["runs"] if r["system"] == "disk"],
                             ["fsync", "fsync-busy-cpu"])
            for run in raw["runs"]:
                self.assertNotIn("failed", run["result"], run)
                self.assertEqual(run["result"]["errors"]["total"], 0, run)
                self.assertGreater(run["result"]["ops"], 0, run)
            for system in raw["systems"]:
                self.assertGreater(raw["peak_rss"][system]["vm_hwm_kib"], 1024)
            # the open-loop row ran at half of etcd's measured put-100 throughput
            put100 = [r["result"]["throughput_per_s"] for r in raw["runs"]
                      if (r["system"], r["row"]) == ("etcd", "put-100")]
            self.assertAlmostEqual(raw["open_loop_rate"]["1"], put100[0] / 2, delta=1)
            if importlib.util.find_spec("matplotlib"):
                self.assertIn(stamp + ".png", files)
            self.assertEqual(os.listdir(data), [], "server data dirs are removed")


if __name__ == "__main__":
    unittest.main(verbosity=2)
