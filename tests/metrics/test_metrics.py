"""Health and metrics endpoints over HTTP: /metrics, /health, /livez, /readyz
and /version on the plain-http client port (shared with gRPC) and on
--listen-metrics-urls, scraped with urllib.

One 3-member cluster serves every check; the last test (named to sort last)
stops two members and checks that the survivor reports itself unhealthy.
The reference test scrapes a real etcd to prove the names checked here are
etcd's own.
"""

import json
import os
import re
import socket
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

import etcd3  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]

# The series an etcd dashboard needs (etcd's names), present from the start.
REQUIRED = [
    "etcd_server_has_leader",
    "etcd_server_is_leader",
    "etcd_server_leader_changes_seen_total",
    "etcd_server_proposals_committed_total",
    "etcd_server_proposals_applied_total",
    "etcd_server_proposals_pending",
    "etcd_server_proposals_failed_total",
    "etcd_disk_wal_fsync_duration_seconds",
    "etcd_disk_backend_commit_duration_seconds",
    "etcd_mvcc_db_total_size_in_bytes",
    "etcd_debugging_mvcc_keys_total",
    "grpc_server_handled_total",
    "grpc_server_started_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
    "process_open_fds",
    "etcd_server_version",
    "etcd_cluster_version",
]
# Only once a leader has heartbeated its followers.
LEADER_ONLY = ["etcd_network_peer_round_trip_time_seconds"]

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text):
    """Parses the text format strictly: returns {family: {"type": t, "samples":
    [(name, labels, value)]}}; raises AssertionError on anything malformed."""
    families = {}
    current = None
    assert text.endswith("\n"), "exposition must end with a newline"
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            assert typ in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name not in families, f"family {name} declared twice"
            families[name] = {"type": typ, "samples": []}
            current = name
            continue
        assert not line.startswith("#"), line
        m = SAMPLE.match(line)
        assert m, f"malformed sample line: {line!r}"
        name, labels_text, value = m.groups()
        labels = {}
        if labels_text:
            pos = 0
            while pos < len(labels_text):
                lm = LABEL.match(labels_text, pos)
                assert lm, f"malformed labels in {line!r}"
                labels[lm.group(1)] = lm.group(2)
                pos = lm.end()
        float(value)  # must parse (+Inf, NaN included)
        fam = current
        assert fam is not None and (name == fam or name in (fam + "_bucket", fam + "_sum", fam + "_count")), \
            f"sample {name} outside its family {fam}"
        families[fam]["samples"].append((name, labels, float(value)))
    for fam, f in families.items():
        if f["type"] != "histogram":
            continue
        series = {}
        for name, labels, value in f["samples"]:
            key = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            series.setdefault(key, {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                series[key]["buckets"].append((float(labels["le"]), value))
            elif name.endswith("_count"):
                series[key]["count"] = value
        for key, s in series.items():
            bounds = [b for b, _ in s["buckets"]]
            counts = [c for _, c in s["buckets"]]
            assert bounds == sorted(bounds) and bounds[-1] == float("inf"), (fam, bounds)
            assert counts == sorted(counts), f"{fam} buckets not cumulative"
            assert counts[-1] == s["count"], f"{fam} +Inf bucket != count"
    return families


def value(families, name, **labels):
    """The value of the single sample `name` matching `labels`."""
    base = re.sub(r"_(bucket|sum|count)$", "", name)
    fam = families.get(name) or families.get(base)
    assert fam is not None, f"no family {name}"
    got = [v for n, l, v in fam["samples"] if n == name and all(l.get(k) == w for k, w in labels.items())]
    assert len(got) == 1, f"{name}{labels}: {len(got)} samples"
    return got[0]


def get(url, timeout=10):
    """(status, content-type, body) of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def scrape(port):
    status, ctype, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, status
    assert ctype.startswith("text/plain; version=0.0.4"), ctype
    return parse_prometheus(body)


def raw_request(port, data, timeout=5):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out
            out += chunk


class MetricsAndHealth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = h.Cluster("raftkv", 3, extra_args=FAST)
        cls.metrics_port = h.free_port()
        cls.cluster.nodes[0].extra_args += [
            "--listen-metrics-urls", f"http://127.0.0.1:{cls.metrics_port}", "--metrics", "extensive"]
        cls.cluster.start()
        cls.n1 = cls.cluster.nodes[0]

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def test_metrics_on_client_port_parse_and_name_etcds_series(self):
        for n in self.cluster.nodes:
            fams = scrape(n.client_port)
            for name in REQUIRED:
                self.assertIn(name, fams, f"{n.name} lacks {name}")
            self.assertEqual(value(fams, "etcd_server_has_leader"), 1)
            self.assertEqual(fams["etcd_disk_wal_fsync_duration_seconds"]["type"], "histogram")
            self.assertEqual(value(fams, "etcd_server_version", server_version="3.4.0"), 1)
        leaders = [value(scrape(n.client_port), "etcd_server_is_leader") for n in self.cluster.nodes]
        self.assertEqual(sorted(leaders), [0, 0, 1])

    def test_series_move_after_writes(self):
        before = scrape(self.n1.client_port)
        client = etcd3.client(host="127.0.0.1", port=self.n1.client_port)
        try:
            for i in range(20):
                client.put(f"metrics/k{i}", "v")
            client.get("metrics/k0")
        finally:
            client.close()
        after = scrape(self.n1.client_port)
        for name in ("etcd_server_proposals_committed_total", "etcd_server_proposals_applied_total",
                     "etcd_disk_wal_fsync_duration_seconds_count",
                     "etcd_disk_backend_commit_duration_seconds_count"):
            self.assertGreaterEqual(value(after, name) - value(before, name), 20, name)
        self.assertGreaterEqual(value(after, "etcd_debugging_mvcc_keys_total"), 20)
        self.assertGreater(value(after, "etcd_mvcc_db_total_size_in_bytes"), 0)
        put = dict(grpc_type="unary", grpc_service="etcdserverpb.KV", grpc_method="Put")
        self.assertGreaterEqual(value(after, "grpc_server_handled_total", grpc_code="OK", **put), 20)
        self.assertGreaterEqual(value(after, "grpc_server_started_total", **put), 20)
        # --metrics extensive on n1: handling-time histograms.
        self.assertGreaterEqual(value(after, "grpc_server_handling_seconds_count", **put), 20)

    def test_failed_calls_are_counted_with_their_code(self):
        r = h.etcdctl([self.n1.endpoint], "put", "", "v")  # empty key: InvalidArgument
        self.assertNotEqual(r.returncode, 0)
        fams = scrape(self.n1.client_port)
        self.assertGreaterEqual(value(fams, "grpc_server_handled_total", grpc_type="unary",
                                      grpc_service="etcdserverpb.KV", grpc_method="Put",
                                      grpc_code="InvalidArgument"), 1)

    def test_peer_round_trip_time_measured_by_the_leader(self):
        deadline = time.monotonic() + 10
        while True:
            for n in self.cluster.nodes:
                fams = scrape(n.client_port)
                if value(fams, "etcd_server_is_leader") == 1 and LEADER_ONLY[0] in fams:
                    peers = {l["To"] for name, l, _ in fams[LEADER_ONLY[0]]["samples"]}
                    self.assertEqual(len(peers), 2, peers)
                    return
            self.assertLess(time.monotonic(), deadline, "no round-trip times")
            time.sleep(0.2)

    def test_listen_metrics_urls_serves_the_same_endpoints(self):
        fams = scrape(self.metrics_port)
        for name in REQUIRED:
            self.assertIn(name, fams)
        self.assertEqual(get(f"http://127.0.0.1:{self.metrics_port}/health")[0], 200)
        # Not a gRPC port: an HTTP/2 preface gets no gRPC there.
        out = raw_request(self.metrics_port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 505 "), out[:40])

    def test_health_livez_readyz_version_on_a_healthy_cluster(self):
        for n in self.cluster.nodes:
            status, ctype, body = get(f"http://127.0.0.1:{n.client_port}/health")
            self.assertEqual((status, json.loads(body)), (200, {"health": "true", "reason": ""}))
            self.assertEqual(ctype, "application/json")
            self.assertEqual(get(f"http://127.0.0.1:{n.client_port}/livez")[0:3:2], (200, "ok"))
            self.assertEqual(get(f"http://127.0.0.1:{n.client_port}/readyz")[0:3:2], (200, "ok"))
            status, _, body = get(f"http://127.0.0.1:{n.client_port}/version")
            self.assertEqual((status, json.loads(body)),
                             (200, {"etcdserver": "3.4.0", "etcdcluster": "3.4.0"}))
        # etcdctl's own health check (gRPC) agrees.
        r = h.etcdctl([n.endpoint for n in self.cluster.nodes], "endpoint", "health")
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_bad_requests_get_clear_statuses(self):
        port = self.n1.client_port
        self.assertTrue(raw_request(port, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(raw_request(port, b"GET / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 505 "))
        self.assertEqual(get(f"http://127.0.0.1:{port}/nothing")[0], 404)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", data=b"x", method="POST")
        with self.assertRaises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=5)
        self.assertEqual(e.exception.code, 405)

    def test_keep_alive_serves_pipelined_requests(self):
        out = raw_request(self.n1.client_port,
                          b"GET /version HTTP/1.1\r\n\r\nGET /livez HTTP/1.1\r\nConnection: close\r\n\r\n")
        self.assertEqual(out.count(b"HTTP/1.1 200 OK"), 2, out)

    def test_grpc_clients_share_the_port_and_a_stalled_http_client_blocks_nothing(self):
        port = self.n1.client_port
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(b"GET /metr")  # and never more
        idle = socket.create_connection(("127.0.0.1", port))  # sends nothing at all
        try:
            r = h.etcdctl([self.n1.endpoint], "put", "shared-port", "yes")
            self.assertEqual(r.returncode, 0, r.stderr)
            r = h.etcdctl([self.n1.endpoint], "get", "shared-port", "--print-value-only")
            self.assertEqual(r.stdout.strip(), "yes")
            client = etcd3.client(host="127.0.0.1", port=port)
            try:
                self.assertEqual(client.get("shared-port")[0], b"yes")
            finally:
                client.close()
            self.assertEqual(get(f"http://127.0.0.1:{port}/health")[0], 200)
        finally:
            stalled.close()
            idle.close()

    def test_zz_health_false_on_a_member_that_lost_quorum(self):
        for n in self.cluster.nodes[1:]:
            n.stop()
        url = f"http://127.0.0.1:{self.n1.client_port}/health"
        deadline = time.monotonic() + 20
        while True:
            status, _, body = get(url, timeout=15)
            if status == 503:
                break
            self.assertLess(time.monotonic(), deadline, f"still healthy: {body}")
            time.sleep(0.2)
        doc = json.loads(body)
        self.assertEqual(doc["health"], "false")
        self.assertNotEqual(doc["reason"], "")
        self.assertEqual(get(f"http://127.0.0.1:{self.n1.client_port}/readyz")[0], 503)
        self.assertEqual(get(f"http://127.0.0.1:{self.n1.client_port}/livez")[0], 200)
        deadline = time.monotonic() + 10
        while value(scrape(self.n1.client_port), "etcd_server_has_leader") != 0:
            self.assertLess(time.monotonic(), deadline, "has_leader stays 1 without quorum")
            time.sleep(0.2)
        fams = scrape(self.metrics_port)
        self.assertGreaterEqual(value(fams, "etcd_server_health_failures"), 1)


@unittest.skipUnless(os.path.exists(h.ETCD_BIN), "etcd not installed")
class EtcdReference(unittest.TestCase):
    """The names checked above are etcd's: a real etcd exposes every one."""

    def test_etcd_exposes_the_same_names(self):
        with h.Cluster("etcd", 1) as c:
            n = c.nodes[0]
            client = etcd3.client(host="127.0.0.1", port=n.client_port)
            try:
                client.put("k", "v")
            finally:
                client.close()
            fams = scrape(n.client_port)
            for name in REQUIRED:
                self.assertIn(name, fams, f"etcd has no {name}")
            self.assertEqual(json.loads(get(f"http://127.0.0.1:{n.client_port}/health")[2])["health"],
                             "true")


if __name__ == "__main__":
    unittest.main(verbosity=2)
