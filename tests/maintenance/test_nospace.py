"""NOSPACE: fill a small --quota-backend-bytes, writes are refused with etcd's
error while reads, deletes and compactions work; after a compaction the
leader clears the alarm by itself (raftkv's auto-recovery) — or, with
--auto-clear-nospace-alarm=false, only `etcdctl alarm disarm` does (etcd's
way). Also CORRUPT, raised through the API: every write refused with etcd's
"corrupt cluster" until disarmed."""

import unittest

import maint_util as m
from maint_util import h

QUOTA = 64 * 1024
VALUE = "v" * 8000
NOSPACE = "etcdserver: mvcc: database space exceeded"


class NoSpace(unittest.TestCase):
    def fill_until_refused(self, eps):
        for i in range(100):
            r = m.ctl(eps, "put", "big", VALUE)
            if r.returncode != 0:
                self.assertIn(NOSPACE, r.stderr)
                return i
        self.fail("quota never reached")

    def check_refusals(self, eps):
        # The alarm is replicated: every member lists it and refuses writes.
        alarms = m.wait_until(lambda: m.ok(eps, "alarm", "list").strip(), 10, "NOSPACE listed")
        self.assertRegex(alarms, r"memberID:\d+ alarm:NOSPACE")
        st = m.js(eps[:1], "endpoint", "status")[0]["Status"]
        self.assertTrue(any("alarm:NOSPACE" in e for e in st.get("errors", [])), st)
        for ep in eps:
            r = m.ctl(ep, "put", "small", "1")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn(NOSPACE, r.stderr)
        r = h.etcdctl(eps, "txn", input="\nput t 1\n\n\n")  # a txn with a put
        self.assertIn(NOSPACE, r.stderr)
        r = h.etcdctl(eps, "txn", input="\ndel victim-2\n\n\n")  # deletes only: accepted
        self.assertEqual(r.returncode, 0, r.stderr)
        # Reads and deletes work.
        self.assertEqual(len(m.ok(eps, "get", "big", "--print-value-only").strip()), len(VALUE))
        self.assertIn("1", m.ok(eps, "del", "victim"))

    def compact(self, eps):
        rev = m.js(eps, "get", "big")["header"]["revision"]
        m.ok(eps, "compact", str(rev), "--physical")

    def cluster(self, *extra):
        if not h.RAFTKV_BIN:
            raise unittest.SkipTest("RAFTKV_BIN is not set (run through CTest)")
        c = h.Cluster("raftkv", 3, extra_args=[*m.FAST, "--quota-backend-bytes", str(QUOTA), *extra])
        c.start()
        self.addCleanup(c.cleanup)
        eps = [n.endpoint for n in c.nodes]
        m.ok(eps, "put", "victim", "x")
        return eps

    def test_nospace_clears_itself_after_compaction(self):
        eps = self.cluster()
        self.fill_until_refused(eps)
        self.check_refusals(eps)
        self.compact(eps)
        m.wait_until(lambda: m.ok(eps, "alarm", "list").strip() == "", 10, "NOSPACE cleared")
        m.ok(eps, "put", "small", "1")
        self.assertEqual(m.ok(eps, "get", "small", "--print-value-only").strip(), "1")

    def test_nospace_needs_disarm_when_auto_clear_is_off(self):
        eps = self.cluster("--auto-clear-nospace-alarm=false")
        self.fill_until_refused(eps)
        self.check_refusals(eps)
        self.compact(eps)
        # Nothing clears it: still refused a while later.
        import time
        time.sleep(1.5)
        self.assertIn(NOSPACE, m.ctl(eps, "put", "small", "1").stderr)
        out = m.ok(eps, "alarm", "disarm")
        self.assertIn("alarm:NOSPACE", out)
        self.assertEqual(m.ok(eps, "alarm", "list").strip(), "")
        m.ok(eps, "put", "small", "1")

    def test_corrupt_alarm_refuses_writes_until_disarmed(self):
        if not h.RAFTKV_BIN:
            raise unittest.SkipTest("RAFTKV_BIN is not set (run through CTest)")
        import grpc
        from etcd3.etcdrpc import rpc_pb2
        c = h.Cluster("raftkv", 1, extra_args=m.FAST).start()
        self.addCleanup(c.cleanup)
        ep = c.nodes[0].endpoint
        m.ok(ep, "put", "a", "1")
        member = m.js(ep, "endpoint", "status")[0]["Status"]["header"]["member_id"]
        with grpc.insecure_channel(ep) as ch:
            alarm = ch.unary_unary("/etcdserverpb.Maintenance/Alarm",
                                   request_serializer=rpc_pb2.AlarmRequest.SerializeToString,
                                   response_deserializer=rpc_pb2.AlarmResponse.FromString)
            alarm(rpc_pb2.AlarmRequest(action=rpc_pb2.AlarmRequest.ACTIVATE, memberID=member,
                                       alarm=rpc_pb2.CORRUPT), timeout=10)
        self.assertIn("alarm:CORRUPT", m.ok(ep, "alarm", "list"))
        for args in (["put", "b", "2"], ["del", "a"], ["compact", "1"]):
            r = m.ctl(ep, *args)
            self.assertIn("etcdserver: corrupt cluster", r.stderr, args)
        self.assertEqual(m.ok(ep, "get", "a", "--print-value-only").strip(), "1")
        m.ok(ep, "alarm", "disarm")
        m.ok(ep, "put", "b", "2")


if __name__ == "__main__":
    unittest.main(verbosity=2)
