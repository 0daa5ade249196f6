"""raftkvctl against a 3-member cluster: with several --endpoints it fails over when a
member is killed or hangs, STATUS and endpoint health report the missing member, and with
quorum lost it exits 3 with a message saying so."""

import json
import re
import time
import unittest

from cli_util import for_each_kind, h, raftkvctl, skip_unless_available


class Failover:
    KIND = "etcd"

    def setUp(self):
        skip_unless_available(self.KIND)
        self.cluster = h.Cluster(self.KIND, 3).start()
        self.addCleanup(self.cluster.cleanup)
        self.all = self.cluster.endpoints

    def first_endpoint(self, leader: bool) -> "h.Node":
        """Puts a member (the leader or a follower) first in --endpoints; returns it."""
        status = json.loads(self.ctl("-w", "json", "endpoint", "status").stdout)
        leader_id = status[0]["Status"]["leader"]
        ids = {d["Endpoint"]: d["Status"]["header"]["member_id"] for d in status}
        node = next(n for n in self.cluster.nodes if (ids[n.endpoint] == leader_id) == leader)
        self.all = ",".join([node.endpoint] + [n.endpoint for n in self.cluster.nodes if n is not node])
        return node

    def ctl(self, *args, **kw):
        return raftkvctl(self.all, *args, **kw)

    def shell(self, commands: str) -> str:
        r = self.ctl(input=commands)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def test_status_shows_every_member_and_one_leader(self):
        out = self.shell("STATUS\n")
        rows = [l for l in out.splitlines() if re.match(r"^\| +n\d \|", l)]
        self.assertEqual(len(rows), 3, out)
        self.assertEqual(sum(" yes |" in r for r in rows), 1, "exactly one leader")
        self.assertIn("3 of 3 members reachable", out)
        members = json.loads(self.ctl("-w", "json", "member", "list").stdout)["members"]
        self.assertEqual(sorted(m["name"] for m in members), ["n1", "n2", "n3"])

    def test_killed_first_endpoint_fails_over_to_the_next(self):
        victim = self.first_endpoint(leader=False)
        r = self.ctl("put", "before", "1")
        self.assertEqual(r.returncode, 0, r.stderr)
        victim.kill()
        r = self.ctl("put", "after", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.ctl("get", "before", "--print-value-only")
        self.assertEqual((r.returncode, r.stdout), (0, "1\n"), r.stderr)
        out = self.shell("INCR counter\nINCR counter\nGET after\nSTATUS\n")
        self.assertIn("(integer) 2\n", out)
        self.assertIn("\n2\n", out)
        self.assertRegex(out, rf"\| +{victim.name} \| +{victim.endpoint} \| unreachable \|")
        self.assertIn("2 of 3 members reachable", out)
        # endpoint health: one unhealthy of three is a failed check (1), not an outage (3).
        r = self.ctl("-w", "json", "endpoint", "health")
        self.assertEqual(r.returncode, 1)
        health = {d["endpoint"]: d["health"] for d in json.loads(r.stdout)}
        self.assertEqual(sorted(health.values()), [False, True, True])
        self.assertFalse(health[victim.endpoint])

    def test_killed_leader_is_survived_once_a_new_leader_is_elected(self):
        victim = self.first_endpoint(leader=True)
        self.assertEqual(self.ctl("put", "k", "v").returncode, 0)
        victim.kill()
        # A read during the election waits for the new leader; a server-side "request timed
        # out" is retried on the next endpoint (reads are safe to repeat).
        r = self.ctl("get", "k", "--print-value-only", command_timeout="20s", timeout_s=60)
        self.assertEqual((r.returncode, r.stdout), (0, "v\n"), r.stderr)
        r = self.ctl("put", "k", "v2", command_timeout="20s", timeout_s=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        out = self.shell("GET k\nSTATUS\n")
        self.assertTrue(out.startswith("v2\n"), out)
        self.assertIn("2 of 3 members reachable", out)

    def test_hung_first_endpoint_fails_over_within_the_dial_timeout(self):
        victim = self.first_endpoint(leader=False)
        victim.pause()  # accepts TCP, never answers
        try:
            start = time.monotonic()
            r = self.ctl("put", "k", "v", dial_timeout="1s")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertLess(time.monotonic() - start, 8.0)
        finally:
            victim.resume()

    def test_lost_quorum_exits_3_and_says_why(self):
        self.cluster.nodes[0].kill()
        self.cluster.nodes[1].kill()
        r = self.ctl("put", "k", "v", command_timeout="2s", timeout_s=30)
        self.assertEqual(r.returncode, 3, r.stdout + r.stderr)
        self.assertTrue(r.stderr.startswith("error: "), r.stderr)
        self.assertRegex(r.stderr, r"lost quorum|no leader")
        self.assertEqual(r.stderr.count("\n"), 1, "one line")


globals().update(for_each_kind(Failover))

if __name__ == "__main__":
    unittest.main(verbosity=2)
