"""Linearizable reads from every member of a 3-node raftkv cluster at once,
driven by raftkv-bench: none may fail. Each member forwards its ReadIndex
requests to the leader, which keeps them by context; contexts that were
unique per member only collided there and failed reads with "a read with
this context is already pending" (seen in a full `make bench` run).

Environment (set by CTest): RAFTKV_BIN, RAFTKV_BENCH_BIN.
"""

import json
import os
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

BENCH = os.environ.get("RAFTKV_BENCH_BIN", "")


class ClusterReads(unittest.TestCase):
    def test_linearizable_reads_on_every_member_never_fail(self):
        assert BENCH, "RAFTKV_BENCH_BIN is not set (run through CTest)"
        with h.Cluster("raftkv", 3) as c:
            r = subprocess.run(
                [BENCH, "range", "--endpoints", c.endpoints, "--clients", "60", "--conns", "6",
                 "--duration", "4", "--key-space", "100", "--json"],
                capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            self.assertGreater(res["ops"], 1000, res)
            self.assertEqual(res["errors"]["total"], 0, res["errors"])


if __name__ == "__main__":
    unittest.main()
