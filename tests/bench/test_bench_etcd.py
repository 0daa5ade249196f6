"""raftkv-bench against the reference: every workload, briefly, on a real
single-node etcd, with the JSON output checked for sanity (requests done, no
errors, percentiles in order, workload counters consistent). Also the
overhead check's fake server, the fsync probe and the exit codes.

Environment (set by CTest): RAFTKV_BENCH_BIN, RAFTKV_BENCH_FAKE_SERVER_BIN.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

BENCH = os.environ.get("RAFTKV_BENCH_BIN", "")
FAKE = os.environ.get("RAFTKV_BENCH_FAKE_SERVER_BIN", "")
PERCENTILES = ["min", "p50", "p90", "p99", "p99_9", "max"]


def bench(*args, timeout_s=60):
    r = subprocess.run([BENCH, *args, "--json"], capture_output=True, text=True, timeout=timeout_s)
    if r.returncode != 0:
        raise AssertionError(f"raftkv-bench {' '.join(args)} exited {r.returncode}: {r.stderr}")
    return json.loads(r.stdout)


class BenchAgainstEtcd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert BENCH, "RAFTKV_BENCH_BIN is not set (run through CTest)"
        cls.cluster = h.Cluster("etcd", 1).start()
        cls.ep = ["--endpoints", cls.cluster.endpoints]

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def assert_sane(self, res, workload, part=None):
        m = res if part is None else res[part]
        if part is None:
            self.assertEqual(res["workload"], workload)
        self.assertGreater(m["ops"], 0, res)
        self.assertEqual(m["errors"]["total"], 0, m["errors"])
        self.assertGreater(m["throughput_per_s"], 0)
        self.assertGreater(m["duration_s"], 0)
        lat = [m["latency_us"][p] for p in PERCENTILES]
        self.assertEqual(lat, sorted(lat), f"percentiles out of order: {lat}")
        self.assertGreater(lat[0], 0)
        # throughput is ops over the measured window
        self.assertAlmostEqual(m["throughput_per_s"], m["ops"] / m["duration_s"],
                               delta=0.02 * m["throughput_per_s"] + 1)

    def test_put_over_many_connections(self):
        res = bench("put", *self.ep, "--duration", "1.5", "--clients", "20", "--conns", "4",
                    "--val-size", "256")
        self.assert_sane(res, "put")
        self.assertEqual((res["clients"], res["conns"]), (20, 4))

    def test_put_total_with_warmup_requests_measures_exactly_total(self):
        res = bench("put", *self.ep, "--total", "300", "--warmup", "50", "--clients", "5",
                    "--sequential-keys", "--key-space", "100")
        self.assert_sane(res, "put")
        self.assertEqual(res["ops"], 300)

    def test_range_linearizable_and_serializable(self):
        bench("put", *self.ep, "--total", "200", "--sequential-keys", "--key-space", "200",
              "--clients", "10")
        for extra in ([], ["--serializable"]):
            res = bench("range", *self.ep, "--duration", "1", "--clients", "10", "--conns", "2",
                        "--key-space", "200", *extra)
            self.assert_sane(res, "range")

    def test_txn_cas_counts_conflicts_and_successes(self):
        res = bench("txn-cas", *self.ep, "--duration", "1.5", "--clients", "20", "--conns", "2",
                    "--key-space", "10")
        self.assert_sane(res, "txn-cas")
        c = res["counters"]
        self.assertGreater(c["cas_succeeded"], 0)
        # 20 clients on 10 keys: some swaps must lose the race
        self.assertGreater(c["cas_conflicts"], 0)
        # every measured CAS either succeeded or conflicted (warmup-free run)
        self.assertEqual(c["cas_succeeded"] + c["cas_conflicts"], res["ops"])

    def test_mixed(self):
        res = bench("mixed", *self.ep, "--read-ratio", "0.8", "--duration", "1", "--clients", "10")
        self.assert_sane(res, "mixed")

    def test_watch_delivers_every_put_to_every_watcher(self):
        res = bench("watch", *self.ep, "--duration", "1.5", "--warmup", "0.3s", "--watchers", "5",
                    "--clients", "2", "--rate", "200", "--val-size", "64", "--key-prefix", "w/")
        self.assert_sane(res, "watch")
        self.assert_sane(res, "watch", "writes")
        self.assertEqual(res["counters"]["events_missing"], 0)
        # measured events are the measured puts seen by each of the 5 watchers
        self.assertAlmostEqual(res["ops"], 5 * res["writes"]["ops"], delta=5 * 3)

    def test_lease_keepalive(self):
        res = bench("lease-keepalive", *self.ep, "--duration", "1", "--clients", "10", "--conns", "2")
        self.assert_sane(res, "lease-keepalive")

    def test_open_loop_keeps_the_schedule(self):
        res = bench("put", *self.ep, "--duration", "2", "--rate", "500", "--clients", "50",
                    "--conns", "5", "--warmup", "0.5s")
        self.assert_sane(res, "put")
        self.assertEqual(res["mode"], "open-loop")
        self.assertEqual(res["ops"], 1000)  # 2 s at 500/s after the warmup
        self.assertAlmostEqual(res["throughput_per_s"], 500, delta=25)

    def test_unreachable_endpoint_fails_fast_with_exit_1(self):
        port = h.free_port()
        r = subprocess.run([BENCH, "put", "--endpoints", f"127.0.0.1:{port}", "--duration", "1"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)

    def test_bad_arguments_exit_2(self):
        r = subprocess.run([BENCH, "put", "--duration", "1", "--total", "5"], capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn("exactly one", r.stderr)


class BenchWithoutEtcd(unittest.TestCase):
    def test_fsync_probe_measures_and_cleans_up(self):
        with tempfile.TemporaryDirectory(dir=os.environ.get("RAFTKV_BENCH_DATA_DIR")) as d:
            for extra in ([], ["--busy-cpu"]):
                res = bench("fsync", "--dir", d, "--duration", "1", "--val-size", "256", *extra)
                self.assertEqual(res["workload"], "fsync")
                self.assertGreater(res["ops"], 0)
                self.assertEqual(res["errors"]["total"], 0)
                self.assertEqual(os.listdir(d), [], "the probe file is removed")

    def test_overhead_against_the_fake_server(self):
        self.assertTrue(FAKE, "RAFTKV_BENCH_FAKE_SERVER_BIN is not set")
        proc = subprocess.Popen([FAKE, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline().split()
            self.assertEqual(line[0], "port")
            ep = f"127.0.0.1:{line[1]}"
            for workload in ("put", "range", "txn-cas"):
                res = bench(workload, "--endpoints", ep, "--duration", "1", "--clients", "64",
                            "--conns", "4")
                self.assertEqual(res["errors"]["total"], 0, res["errors"])
                self.assertGreater(res["ops"], 100, res)
                self.assertGreater(res["ops_per_client_cpu_s"], 0)
        finally:
            proc.terminate()
            self.assertEqual(proc.wait(timeout=10), 0, "stops cleanly on SIGTERM")
            proc.stdout.close()

    def test_closed_loop_backs_off_from_an_endpoint_that_went_down(self):
        # Requests to a dead endpoint fail at once; each client waits a little
        # before its next one instead of spinning (20 ms: at most ~50 errors
        # per client per second, where spinning made hundreds of thousands).
        self.assertTrue(FAKE, "RAFTKV_BENCH_FAKE_SERVER_BIN is not set")
        proc = subprocess.Popen([FAKE, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, text=True)
        try:
            port = proc.stdout.readline().split()[1]
            run = subprocess.Popen([BENCH, "put", "--endpoints", f"127.0.0.1:{port}", "--duration",
                                    "3", "--clients", "10", "--conns", "2", "--json"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1.5)
            proc.kill()
            out, err = run.communicate(timeout=60)
            self.assertEqual(run.returncode, 0, err)
            res = json.loads(out)
            self.assertGreater(res["ops"], 0, res)
            errors = res["errors"]
            self.assertGreater(errors["total"], 0, errors)
            self.assertEqual(set(errors["by_code"]), {"UNAVAILABLE"}, errors)
            self.assertLess(errors["total"], 10 * 3 * 60, errors)
        finally:
            proc.kill()
            proc.wait(timeout=10)
            proc.stdout.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
