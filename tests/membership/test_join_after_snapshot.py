"""A member added after the newest snapshot, to a cluster that compacted its
log and then went idle, catches up by snapshot.

The newest snapshot was taken before the member existed, so its configuration
does not name the member and Raft has the member refuse it; the log before it
is gone, so the leader has nothing else to send. The leader must take a fresh
snapshot that includes the member instead of waiting for the next periodic
one (which an idle cluster never reaches)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import membership_util as mu  # noqa: E402
from membership_util import h  # noqa: E402

import etcd3  # noqa: E402

# The joining member proposes its own attributes again and again until it
# catches up (about two entries a second): with this many entries between
# snapshots, a periodic snapshot cannot come to its rescue within CATCH_UP_S.
SNAPSHOT_COUNT = 200
ARGS = ["--snapshot-count", str(SNAPSHOT_COUNT)]
# Two snapshots, and the log compacted to SNAPSHOT_COUNT entries behind the
# newest: the new member's start (index 1) is gone.
WRITES = 2 * SNAPSHOT_COUNT + SNAPSHOT_COUNT // 4
CATCH_UP_S = 15.0


class JoinAfterSnapshot(unittest.TestCase):
    def _join_idle_cluster(self, learner):
        cluster = h.Cluster("raftkv", 3, extra_args=mu.FAST + ARGS).start()
        self.addCleanup(cluster.cleanup)
        lead = mu.wait_leader(cluster.nodes)
        client = etcd3.client(host="127.0.0.1", port=lead.client_port, timeout=5)
        for j in range(WRITES):
            client.put(f"k{j:04d}", f"v{j}")
        client.close()
        # Every member compacted its log: index 1 is long gone.
        for n in cluster.nodes:
            self.assertIn("snapshot saved", mu.log_text(n), n.name)
        last = f"k{WRITES - 1:04d}", f"v{WRITES - 1}"

        # Idle from here on: nothing but the member change is written.
        node, _ = mu.join(cluster.workdir, [n.endpoint for n in cluster.nodes], "n4",
                          extra_args=ARGS, learner=learner)
        cluster.nodes.append(node)
        mu.wait_serves(node, *last, timeout_s=CATCH_UP_S)
        self.assertIn("installing snapshot from the leader", mu.log_text(node))
        return cluster, node

    def test_voter_added_to_idle_compacted_cluster_catches_up(self):
        cluster, node = self._join_idle_cluster(learner=False)
        # A full voter: the cluster writes through it and it serves the write.
        r = mu.ctl(node.endpoint, "put", "after", "join")
        self.assertEqual(r.returncode, 0, r.stderr)
        for n in cluster.nodes:
            mu.wait_serves(n, "after", "join", timeout_s=CATCH_UP_S)

    def test_learner_added_to_idle_compacted_cluster_catches_up(self):
        self._join_idle_cluster(learner=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
