"""Leases on one raftkv member through etcdctl and the Python etcd3 client:
grant / revoke / timetolive --keys / keep-alive / list, put --lease, expiry,
etcd's errors, and leases surviving a restart."""

import re
import subprocess
import time
import unittest

import etcd3

from coord_util import FAST, ctl, get_value, grant, h, ok, wait_until


class Leases(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = h.Cluster("raftkv", 1, extra_args=FAST).start()
        cls.ep = cls.c.endpoints

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def test_grant_put_timetolive_keys_list_revoke(self):
        lid = grant(self.ep, 30)
        ok(self.ep, "put", "lk/a", "1", "--lease", lid)
        ok(self.ep, "put", "lk/b", "2", "--lease", lid)
        out = ok(self.ep, "lease", "timetolive", lid, "--keys")
        m = re.search(rf"lease {lid} granted with TTL\(30s\), remaining\((\d+)s\), attached keys\((.*)\)",
                      out)
        self.assertIsNotNone(m, out)
        self.assertGreaterEqual(int(m.group(1)), 28)
        self.assertEqual(m.group(2), "[lk/a lk/b]")
        self.assertIn(lid, ok(self.ep, "lease", "list"))
        j = h.etcdctl_json([self.ep], "lease", "timetolive", lid)
        self.assertEqual(j["granted-ttl"], 30)
        out = ok(self.ep, "lease", "revoke", lid)
        self.assertIn(f"lease {lid} revoked", out)
        self.assertIsNone(get_value(self.ep, "lk/a"))
        self.assertIsNone(get_value(self.ep, "lk/b"))
        self.assertNotIn(lid, ok(self.ep, "lease", "list"))
        self.assertIn(f"lease {lid} already expired", ok(self.ep, "lease", "timetolive", lid))

    def test_ttl_raised_to_minimum(self):
        # --election-timeout 500 ms: minimum ceil(0.75 s) = 1 s.
        j = h.etcdctl_json([self.ep], "lease", "grant", "0")
        self.assertEqual(j["TTL"], 1)

    def test_errors(self):
        r = ctl(self.ep, "put", "nolease", "v", "--lease", "1234abcd")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: requested lease not found", r.stderr)
        r = ctl(self.ep, "lease", "revoke", "1234abcd")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: requested lease not found", r.stderr)
        r = ctl(self.ep, "lease", "grant", "9000000001")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: too large lease TTL", r.stderr)

    def test_requested_id_and_duplicate(self):
        cl = etcd3.client(host="127.0.0.1", port=self.c.nodes[0].client_port)
        try:
            lease = cl.lease(20, lease_id=0x7e57)
            self.assertEqual(lease.id, 0x7e57)
            # FailedPrecondition "etcdserver: lease already exists", which etcd3 maps to:
            with self.assertRaises(etcd3.exceptions.PreconditionFailedError):
                cl.lease(20, lease_id=0x7e57)
            lease.revoke()
        finally:
            cl.close()

    def test_key_disappears_when_lease_expires(self):
        lid = grant(self.ep, 2)
        ok(self.ep, "put", "expiring", "v", "--lease", lid)
        self.assertEqual(get_value(self.ep, "expiring"), "v")
        t0 = time.monotonic()
        wait_until(lambda: get_value(self.ep, "expiring") is None, 10, "the key to expire")
        self.assertGreater(time.monotonic() - t0, 1.0)  # not before its TTL
        self.assertIn(f"lease {lid} already expired", ok(self.ep, "lease", "timetolive", lid))

    def test_keep_alive_keeps_key(self):
        lid = grant(self.ep, 2)
        ok(self.ep, "put", "kept", "v", "--lease", lid)
        p = subprocess.Popen([h.ETCDCTL_BIN, "--endpoints", self.ep, "lease", "keep-alive", lid],
                             env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            time.sleep(4.5)  # more than twice the TTL
            self.assertEqual(get_value(self.ep, "kept"), "v")
        finally:
            p.terminate()
            out, _ = p.communicate(timeout=10)
        self.assertIn(f"lease {lid} keepalived with TTL(2)", out)
        wait_until(lambda: get_value(self.ep, "kept") is None, 10, "expiry after keep-alive stops")

    def test_etcd3_client_leases(self):
        cl = etcd3.client(host="127.0.0.1", port=self.c.nodes[0].client_port)
        try:
            lease = cl.lease(10)
            cl.put("py/leased", "x", lease=lease)
            self.assertEqual(lease.granted_ttl, 10)
            self.assertLessEqual(lease.remaining_ttl, 10)
            self.assertEqual(lease.keys, [b"py/leased"])
            resp = list(lease.refresh())
            self.assertEqual(resp[0].TTL, 10)
            lease.revoke()
            self.assertEqual(cl.get("py/leased")[0], None)
            self.assertEqual(lease.remaining_ttl, -1)
        finally:
            cl.close()


class LeaseRestart(unittest.TestCase):
    def test_leases_survive_restart(self):
        with h.Cluster("raftkv", 1, extra_args=FAST) as c:
            ep = c.endpoints
            lid = grant(ep, 60)
            ok(ep, "put", "durable", "v", "--lease", lid)
            n = c.nodes[0]
            n.kill()
            n.start(c.initial_cluster, "new")
            c.wait_healthy()
            self.assertIn(lid, ok(ep, "lease", "list"))
            out = ok(ep, "lease", "timetolive", lid, "--keys")
            self.assertIn("attached keys([durable])", out)
            # After the restart the lease runs its full TTL again, then expires.
            self.assertEqual(get_value(ep, "durable"), "v")
            ok(ep, "lease", "revoke", lid)
            self.assertIsNone(get_value(ep, "durable"))


if __name__ == "__main__":
    unittest.main()
