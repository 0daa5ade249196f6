"""Leases in a 3-member cluster: keep-alives and TimeToLive sent to a follower
reach the leader; killing the leader while leases are kept alive expires none
of them; leases survive a full-cluster restart."""

import json
import subprocess
import time
import unittest

from coord_util import FAST, get_value, grant, h, ok, wait_until


def leader_node(c):
    for n in c.nodes:
        if not n.running():
            continue
        r = h.etcdctl([n.endpoint], "-w", "json", "endpoint", "status", timeout_s=5)
        if r.returncode != 0:
            continue
        st = json.loads(r.stdout)[0]["Status"]
        if st.get("leader", 0) == st["header"]["member_id"]:  # no "leader" field while there is none
            return n
    return None


class LeaseCluster(unittest.TestCase):
    def test_follower_forwarding_and_leader_kill(self):
        with h.Cluster("raftkv", 3, extra_args=FAST) as c:
            leader = wait_until(lambda: leader_node(c), 10, "a leader")
            followers = [n for n in c.nodes if n is not leader]
            ep_f = followers[0].endpoint
            # Granted through a follower; TimeToLive from a follower is the leader's view.
            leases = [grant(ep_f, 3) for _ in range(3)]
            for i, lid in enumerate(leases):
                ok(ep_f, "put", f"ka/{i}", "v", "--lease", lid)
            out = ok(ep_f, "lease", "timetolive", leases[0], "--keys")
            self.assertIn("attached keys([ka/0])", out)
            # Keep them alive through the followers only (both keep-alive processes
            # talk to a member that is not the leader and must be forwarded).
            keepers = [subprocess.Popen(
                [h.ETCDCTL_BIN, "--endpoints", followers[i % 2].endpoint, "lease", "keep-alive", lid],
                env={"ETCDCTL_API": "3", "PATH": "/usr/bin:/bin"}, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, text=True) for i, lid in enumerate(leases)]
            # An unkept lease on the same cluster still expires.
            lone = grant(ep_f, 2)
            ok(ep_f, "put", "lone", "v", "--lease", lone)
            try:
                time.sleep(4)  # longer than the TTL: only keep-alives keep them
                for i in range(3):
                    self.assertEqual(get_value(ep_f, f"ka/{i}"), "v")
                self.assertIsNone(get_value(ep_f, "lone"))
                leader.kill()
                survivors = [n for n in c.nodes if n.running()]
                wait_until(lambda: leader_node(c), 15, "a new leader")
                time.sleep(4)  # the new leader must not expire kept-alive leases
                for i in range(3):
                    self.assertEqual(get_value([n.endpoint for n in survivors], f"ka/{i}"), "v",
                                     f"lease of ka/{i} expired across the leader change")
            finally:
                for p in keepers:
                    p.terminate()
                    p.communicate(timeout=10)
            # Without keep-alives they expire, decided by the new leader.
            eps = [n.endpoint for n in survivors]
            wait_until(lambda: all(get_value(eps, f"ka/{i}") is None for i in range(3)), 15,
                       "expiry once keep-alives stop")

    def test_leases_survive_full_restart(self):
        with h.Cluster("raftkv", 3, extra_args=FAST) as c:
            ep = c.nodes[0].endpoint
            lid = grant(ep, 60)
            ok(ep, "put", "restart/k", "v", "--lease", lid)
            for n in c.nodes:
                n.kill()
            for n in c.nodes:
                n.start(c.initial_cluster, "new", wait=False)
            for n in c.nodes:
                h.wait_for_port(n.client_port, 30, n.proc)
            c.wait_healthy()
            eps = c.endpoints.split(",")
            self.assertIn(lid, ok(eps, "lease", "list"))
            out = ok(eps, "lease", "timetolive", lid, "--keys")
            self.assertIn("granted with TTL(60s)", out)
            self.assertIn("attached keys([restart/k])", out)
            self.assertEqual(get_value(eps, "restart/k"), "v")


if __name__ == "__main__":
    unittest.main()
