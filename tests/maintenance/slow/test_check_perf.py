"""etcdctl check perf --load=s against a 3-member raftkv cluster (about a
minute of load): the workload etcd itself uses to judge a cluster's fitness."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "harness"))
import raftkv_harness as h  # noqa: E402


class CheckPerf(unittest.TestCase):
    def test_check_perf_small_load_passes(self):
        if not h.RAFTKV_BIN:
            raise unittest.SkipTest("RAFTKV_BIN is not set (run through CTest)")
        with h.Cluster("raftkv", 3) as c:
            r = h.etcdctl([n.endpoint for n in c.nodes], "check", "perf", "--load=s",
                          timeout_s=200)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("PASS", r.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
