"""etcdctl's member and move-leader commands against raftkv, with etcd's
rules and error messages: add (voter and learner), promote (refused while the
learner is behind), update, remove (unknown id; the leader itself), list, and
move-leader (from the leader, from a follower, to a bad target); the strict
reconfiguration check on a one-member cluster."""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import membership_util as mu  # noqa: E402
from membership_util import h  # noqa: E402

import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402


class MemberCommands(unittest.TestCase):
    def setUp(self):
        self.cluster = h.Cluster("raftkv", 3, extra_args=mu.FAST).start()
        self.addCleanup(self.cluster.cleanup)
        self.eps = [n.endpoint for n in self.cluster.nodes]

    def test_list_add_learner_promote_update_remove(self):
        members = mu.member_list(self.eps[0])
        self.assertEqual(sorted(m["name"] for m in members), ["n1", "n2", "n3"])
        self.assertFalse(any(m.get("isLearner") for m in members))

        # A learner that has not started is far behind: promotion is refused.
        n4 = h.Node("raftkv", "n4", self.cluster.workdir, extra_args=list(mu.FAST))
        lid, initial_cluster = mu.add_member(self.eps, "n4", n4.peer_url, learner=True)
        listed = {m["ID"]: m for m in mu.member_list(self.eps[1])}
        self.assertTrue(listed[lid].get("isLearner"))
        for ep in (self.eps[0], self.eps[2]):  # the leader answers, or a follower forwards
            r = mu.ctl(ep, "member", "promote", mu.hex_id(lid))
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("can only promote a learner member which is in sync with leader",
                          r.stderr)
        # etcd allows one learner by default.
        r = mu.ctl(self.eps, "member", "add", "n5", "--learner", "--peer-urls",
                   "http://127.0.0.1:1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: too many learner members in cluster", r.stderr)

        # Started, it catches up and can then be promoted.
        self.cluster.nodes.append(n4)
        n4.start(initial_cluster, "existing")
        r = mu.ctl(self.eps, "put", "k", "v")
        self.assertEqual(r.returncode, 0, r.stderr)
        mu.wait_serves(n4, "k", "v")
        deadline = time.monotonic() + 20
        while True:
            r = mu.ctl(self.eps, "member", "promote", mu.hex_id(lid))
            if r.returncode == 0:
                break
            self.assertLess(time.monotonic(), deadline, r.stderr)
            time.sleep(0.2)
        self.assertIn("promoted", r.stdout)
        deadline = time.monotonic() + 10
        while True:  # n4 publishes its name once it has a leader
            listed = {m["ID"]: m for m in mu.member_list(n4.endpoint)}
            if listed[lid].get("name") == "n4":
                break
            self.assertLess(time.monotonic(), deadline, listed)
            time.sleep(0.1)
        self.assertFalse(listed[lid].get("isLearner"))
        # Promoting a voter is refused.
        r = mu.ctl(self.eps, "member", "promote", mu.hex_id(lid))
        self.assertIn("etcdserver: can only promote a learner member", r.stderr)

        # Update: to another member's URL is refused; to a new one works.
        n2_id = mu.member_id(self.eps[0], "n2")
        r = mu.ctl(self.eps, "member", "update", mu.hex_id(n2_id),
                   "--peer-urls", self.cluster.nodes[2].peer_url)
        self.assertIn("etcdserver: Peer URLs already exists", r.stderr)
        r = mu.ctl(self.eps, "member", "update", mu.hex_id(n2_id),
                   "--peer-urls", self.cluster.nodes[1].peer_url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("updated", r.stdout)

        # Remove: an unknown id, then a follower, which stops by itself.
        r = mu.ctl(self.eps, "member", "remove", "1234")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: member not found", r.stderr)
        r = mu.ctl(self.eps[:3], "member", "remove", mu.hex_id(lid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("removed from cluster", r.stdout)
        self.assertEqual(mu.wait_exit(n4), 0)
        self.assertIn("was removed from the cluster", mu.log_text(n4))
        self.assertEqual(len(mu.member_list(self.eps[0])), 3)

    def test_move_leader_and_remove_leader(self):
        nodes = self.cluster.nodes
        leader = mu.wait_leader(nodes)
        followers = [n for n in nodes if n is not leader]
        target = followers[0]
        tid = mu.member_id(leader.endpoint, target.name)

        # etcdctl only ever sends MoveLeader to the leader; ask a follower directly.
        channel = grpc.insecure_channel(followers[1].endpoint)
        try:
            etcdrpc.MaintenanceStub(channel).MoveLeader(etcdrpc.MoveLeaderRequest(targetID=tid),
                                                       timeout=10)
            self.fail("MoveLeader on a follower succeeded")
        except grpc.RpcError as e:
            self.assertEqual(e.code(), grpc.StatusCode.FAILED_PRECONDITION)
            self.assertEqual(e.details(), "etcdserver: not leader")
        finally:
            channel.close()
        r = mu.ctl(leader.endpoint, "move-leader", "1234")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("etcdserver: bad leader transferee", r.stderr)

        r = mu.ctl(leader.endpoint, "move-leader", mu.hex_id(tid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("Leadership transferred", r.stdout)
        self.assertIs(mu.wait_leader(nodes), target)

        # Removing the leader: it hands leadership over, applies its removal
        # and stops; the two others keep serving.
        r = mu.ctl(target.endpoint, "member", "remove", mu.hex_id(tid))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(mu.wait_exit(target), 0)
        rest = [n for n in nodes if n is not target]
        new_leader = mu.wait_leader(rest)
        self.assertIsNot(new_leader, target)
        r = mu.ctl([n.endpoint for n in rest], "put", "after", "removal")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(sorted(m["name"] for m in mu.member_list(rest[0].endpoint)),
                         sorted(n.name for n in rest))


class StrictReconfigCheck(unittest.TestCase):
    def test_refuses_change_without_quorum_of_started_members(self):
        with h.Cluster("raftkv", 1, extra_args=mu.FAST) as c:
            ep = c.nodes[0].endpoint
            # A second member may be added to a lone one (it is not started) ...
            r = mu.ctl(ep, "member", "add", "x", "--peer-urls", "http://127.0.0.1:1")
            self.assertEqual(r.returncode, 0, r.stderr)
            # ... a third not, while the second has not started.
            r = mu.ctl(ep, "member", "add", "y", "--peer-urls", "http://127.0.0.1:2")
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("etcdserver: re-configuration failed due to not enough started members",
                          r.stderr)
            r = mu.ctl(ep, "member", "add", "z", "--peer-urls", "http://127.0.0.1:1")
            self.assertIn("etcdserver: Peer URLs already exists", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
