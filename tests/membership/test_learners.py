"""Learners beyond etcd: two learners at once (--max-learners 2), each catching
up by snapshot because the leader compacted its log (small --snapshot-count),
and promoted automatically once caught up (--auto-promote-learners)."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import membership_util as mu  # noqa: E402
from membership_util import h  # noqa: E402

import etcd3  # noqa: E402

ARGS = ["--snapshot-count", "50", "--max-learners", "2"]


class Learners(unittest.TestCase):
    def test_learners_catch_up_by_snapshot_then_auto_promote(self):
        cluster = h.Cluster("raftkv", 1, extra_args=mu.FAST + ARGS + [
            "--auto-promote-learners"]).start()
        self.addCleanup(cluster.cleanup)
        n1 = cluster.nodes[0]
        # Far more entries than --snapshot-count: the log behind the snapshot
        # is compacted, so a new member can only start from a snapshot.
        client = etcd3.client(host="127.0.0.1", port=n1.client_port, timeout=5)
        for j in range(400):
            client.put(f"k{j:04d}", f"v{j}")
        client.close()
        self.assertIn("snapshot saved", mu.log_text(n1))

        learners = []
        for name in ("l1", "l2"):
            # Not auto-promoted before it starts: it has not caught up.
            node, lid = mu.join(cluster.workdir, [n1.endpoint], name, extra_args=ARGS,
                                learner=True)
            cluster.nodes.append(node)
            learners.append((node, lid))
            if name == "l1":
                listed = {m["ID"]: m for m in mu.member_list(n1.endpoint)}
                self.assertIn(lid, listed)
        for node, _ in learners:
            mu.wait_serves(node, "k0399", "v399")
            self.assertIn("installing snapshot from the leader", mu.log_text(node))

        # The leader promotes both once they caught up (one change at a time).
        deadline = time.monotonic() + 30
        while True:
            listed = {m["ID"]: m for m in mu.member_list(n1.endpoint)}
            if all(lid in listed and not listed[lid].get("isLearner") for _, lid in learners):
                break
            self.assertLess(time.monotonic(), deadline, f"not promoted: {listed}")
            time.sleep(0.2)
        self.assertIn("promoting it (--auto-promote-learners)", mu.log_text(n1))
        # Three voters now: the cluster survives losing one of them.
        learners[0][0].kill()
        r = mu.ctl([n1.endpoint, learners[1][0].endpoint], "put", "after", "promotion")
        self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
