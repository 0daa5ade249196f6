"""Self-test of the process harness against the reference etcd.

Proves that the harness starts real servers on free loopback ports, drives them
with etcdctl, survives a kill -9 of a member and cleans up after itself — so a
failure in a raftkv integration test is about raftkv, not the harness.
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402


class HarnessAgainstEtcd(unittest.TestCase):
    def test_single_node_put_get(self):
        with h.Cluster("etcd", 1) as c:
            r = h.etcdctl([c.endpoints], "put", "greeting", "hello world")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout.strip(), "OK")
            r = h.etcdctl([c.endpoints], "get", "greeting", "--print-value-only")
            self.assertEqual(r.stdout.strip(), "hello world")

    def test_three_node_cluster_survives_kill_of_one_member(self):
        with h.Cluster("etcd", 3) as c:
            status = h.etcdctl_json([c.endpoints], "endpoint", "status")
            self.assertEqual(len(status), 3)
            leader_ids = {s["Status"]["leader"] for s in status}
            self.assertEqual(len(leader_ids), 1, "all members agree on one leader")
            c.nodes[0].kill()
            self.assertFalse(c.nodes[0].running())
            others = [n.endpoint for n in c.nodes[1:]]
            # A write in flight when the leader dies can time out on the server
            # (etcd's "request timed out"); clients retry, and so does the test.
            for _ in range(5):
                r = h.etcdctl(others, "put", "k", "v", timeout_s=30)
                if r.returncode == 0:
                    break
            self.assertEqual(r.returncode, 0, r.stderr)
            r = h.etcdctl(others, "get", "k", "--print-value-only")
            self.assertEqual(r.stdout.strip(), "v")
        self.assertFalse(os.path.exists(c.workdir), "workdir removed on exit")
        for n in c.nodes:
            self.assertFalse(n.running())

    def test_free_ports_are_distinct(self):
        ports = {h.free_port() for _ in range(50)}
        self.assertEqual(len(ports), 50)


if __name__ == "__main__":
    unittest.main(verbosity=2)
