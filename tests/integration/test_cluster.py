"""Three raftkv members on loopback: etcdctl against the cluster, surviving
the loss of the leader under continuous writes, snapshot catch-up of a
follower left behind the compacted log, and a full cluster restart.

Short timers (heartbeat 50 ms, election timeout 500 ms) keep it fast.
"""

import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

import etcd3  # noqa: E402

ELECTION_MS = 500
FAST = ["--heartbeat-interval", "50", "--election-timeout", str(ELECTION_MS)]


def statuses(nodes):
    """endpoint status of each running node (None for one that does not answer)."""
    out = {}
    for n in nodes:
        r = h.etcdctl([n.endpoint], "-w", "json", "endpoint", "status", timeout_s=3)
        try:
            out[n.name] = json.loads(r.stdout)[0]["Status"] if r.returncode == 0 else None
        except (ValueError, KeyError, IndexError):
            out[n.name] = None  # a member stopping or starting mid-answer
    return out


def leader_of(nodes):
    """The node every answering member names as leader, or None."""
    # etcdctl's JSON leaves out zero fields: a member with no leader has no "leader".
    ids = {s.get("leader", 0) for s in statuses(nodes).values() if s is not None}
    if len(ids) != 1 or 0 in ids:
        return None
    (lead,) = ids
    for n in nodes:
        s = statuses([n])[n.name]
        if s is not None and s.get("header", {}).get("member_id") == lead:
            return n
    return None


def became_leader_at(node, since_epoch):
    """Epoch seconds of the first "raft: leader is now <id>" line (not "none")
    that `node` logged at or after `since_epoch`, or None. The server stamps
    its log lines in UTC to the microsecond."""
    from datetime import datetime, timezone
    with open(node.log_path, errors="replace") as f:
        for line in f:
            if "raft: leader is now" not in line or "leader is now none" in line:
                continue
            try:
                t = datetime.strptime(line.split(" ", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ")
            except ValueError:
                continue
            at = t.replace(tzinfo=timezone.utc).timestamp()
            if at >= since_epoch:
                return at
    return None


def wait_leader(nodes, timeout_s=15.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = leader_of(nodes)
        if n is not None:
            return n
        time.sleep(0.05)
    raise AssertionError("no leader agreed on")


def health(node):
    """grpc.health.v1.Health/Check for the whole server: b"\\x08\\x01" is
    SERVING, b"\\x08\\x02" NOT_SERVING (HealthCheckResponse.status)."""
    import grpc
    with grpc.insecure_channel(node.endpoint) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check",
                               request_serializer=lambda b: b, response_deserializer=lambda b: b)
        return check(b"", timeout=3)


def count_local(node, prefix):
    """Keys under `prefix` in `node`'s own store (serializable read)."""
    r = h.etcdctl([node.endpoint], "-w", "json", "get", prefix, "--prefix", "--keys-only",
                  "--consistency", "s", timeout_s=5)
    if r.returncode != 0:
        return -1
    try:
        return json.loads(r.stdout).get("count", 0)
    except ValueError:
        return -1


def wait_count(node, prefix, want, timeout_s=30.0):
    deadline = time.monotonic() + timeout_s
    got = -1
    while time.monotonic() < deadline:
        got = count_local(node, prefix)
        if got >= want:
            return got
        time.sleep(0.1)
    raise AssertionError(f"{node.name} has {got} keys under {prefix}, want {want}\n{node.log_tail()}")


class Writer(threading.Thread):
    """Puts w/<i> continuously through Python etcd3 clients, moving to the
    next member on any error; records which puts were acknowledged."""

    def __init__(self, nodes):
        super().__init__(daemon=True)
        self.nodes = nodes
        self.acked = []
        self.errors = 0
        self.stop_flag = threading.Event()

    def run(self):
        clients = [etcd3.client(host="127.0.0.1", port=n.client_port, timeout=3)
                   for n in self.nodes]
        i, which = 0, 0
        while not self.stop_flag.is_set() and i < 100000:
            key = f"w/{i:06d}"
            try:
                if not self.nodes[which].running():
                    raise RuntimeError("down")
                clients[which].put(key, str(i))
                self.acked.append(key)
            except Exception:
                self.errors += 1
                which = (which + 1) % len(self.nodes)
                time.sleep(0.02)
            i += 1
        for c in clients:
            c.close()


class ThreeNodeCluster(unittest.TestCase):
    def test_etcdctl_against_three_members(self):
        """Writes through any member (followers forward to the leader) are
        read back linearizably from every member; all members agree on one
        leader; member list shows the three members with their URLs."""
        with h.Cluster("raftkv", 3, extra_args=FAST) as c:
            for i, n in enumerate(c.nodes):
                r = h.etcdctl([n.endpoint], "put", f"k{i}", f"v{i}")
                self.assertEqual((r.returncode, r.stdout.strip()), (0, "OK"), r.stderr)
            for n in c.nodes:
                r = h.etcdctl([n.endpoint], "get", "k", "--prefix", "--print-value-only")
                self.assertEqual(r.stdout.split(), ["v0", "v1", "v2"])
            st = statuses(c.nodes)
            self.assertEqual(len({s["leader"] for s in st.values()}), 1)
            self.assertEqual(len({s["header"]["cluster_id"] for s in st.values()}), 1)
            members = h.etcdctl_json([c.nodes[0].endpoint], "member", "list")["members"]
            self.assertEqual(sorted((m["name"], m["peerURLs"][0]) for m in members),
                             sorted((n.name, n.peer_url) for n in c.nodes))
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                members = h.etcdctl_json([c.nodes[1].endpoint], "member", "list")["members"]
                if all(m.get("clientURLs") for m in members):
                    break
                time.sleep(0.1)
            self.assertEqual(sorted(m["clientURLs"][0] for m in members),
                             sorted(n.client_url for n in c.nodes))
            r = h.etcdctl([c.endpoints], "txn", "-i",
                          input='value("k0") = "v0"\n\nput k0 x\n\nput k0 y\n\n')
            self.assertIn("SUCCESS", r.stdout)
            r = h.etcdctl([c.nodes[2].endpoint], "get", "k0", "--print-value-only")
            self.assertEqual(r.stdout.strip(), "x")

    def test_kill_leader_under_writes(self):
        """kill -9 of the leader while a client writes: a new leader within
        4 election timeouts, no acknowledged write lost, and the old leader
        catches up after restarting."""
        with h.Cluster("raftkv", 3, extra_args=FAST) as c:
            old = wait_leader(c.nodes)
            w = Writer([n for n in c.nodes if n is not old] + [old])
            w.start()
            time.sleep(1.5)
            before = len(w.acked)
            self.assertGreater(before, 10, "writes flow before the kill")
            killed_at = time.time()
            old.kill()
            rest = [n for n in c.nodes if n is not old]
            new = wait_leader(rest, timeout_s=10)
            self.assertIsNot(new, old)
            # Timed by the new leader's own log, not by polling with etcdctl,
            # whose start-up on a loaded machine can add most of a second.
            elected_at = became_leader_at(new, killed_at)
            self.assertIsNotNone(elected_at, "the new leader logged its election")
            elected_s = elected_at - killed_at
            # An election that loses one round (a split vote, or a candidate
            # refused for a shorter log or by a member that heard the leader
            # recently) takes up to about three election timeouts (1.42 s was
            # measured at 500 ms, and 1.66 s once on a loaded CI machine);
            # four leave room for that, not for a second lost round.
            self.assertLess(elected_s, 4 * ELECTION_MS / 1000,
                            f"new leader after {elected_s:.2f} s")
            # A put in flight to the dead leader fails only at the client's
            # timeout (3 s), then the writer moves on: allow for that.
            at_election = len(w.acked)
            deadline = time.monotonic() + 15
            while len(w.acked) < at_election + 20 and time.monotonic() < deadline:
                time.sleep(0.1)
            w.stop_flag.set()
            w.join(20)
            self.assertGreaterEqual(len(w.acked), at_election + 20,
                                    "writes resume after the new election")
            r = h.etcdctl([new.endpoint], "-w", "json", "get", "w/", "--prefix", "--keys-only")
            present = {__import__("base64").b64decode(kv["key"]).decode()
                       for kv in json.loads(r.stdout).get("kvs", [])}
            lost = [k for k in w.acked if k not in present]
            self.assertEqual(lost, [], "acknowledged writes lost")
            old.start(c.initial_cluster, "new", c.token)
            wait_count(old, "w/", len(w.acked))

    def test_follower_catches_up_by_snapshot(self):
        """A follower stopped while the log is compacted past its position
        (--snapshot-count 100 keeps a 100-entry margin) installs the leader's
        snapshot on restart and then has every key."""
        with h.Cluster("raftkv", 3, extra_args=FAST + ["--snapshot-count", "100"]) as c:
            lead = wait_leader(c.nodes)
            lag = next(n for n in c.nodes if n is not lead)
            lag.stop()
            cl = etcd3.client(host="127.0.0.1", port=lead.client_port, timeout=5)
            for i in range(450):
                cl.put(f"s/{i:04d}", "x" * 100)
            cl.close()
            # Restarted as etcd would be: state "existing" starts from its WAL.
            lag.start(c.initial_cluster, "existing", c.token)
            wait_count(lag, "s/", 450)
            with open(lag.log_path) as f:
                self.assertIn("installing snapshot from the leader", f.read())
            # And it keeps following: a later write reaches it.
            r = h.etcdctl([lead.endpoint], "put", "after", "1")
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_count(lag, "after", 1)

    def test_requests_fail_with_etcd_errors_without_quorum(self):
        """With two of three members down a write and a linearizable read
        fail within the request timeout (5 s + 2 x election timeout) with
        etcd's Unavailable errors instead of hanging; a serializable read
        still answers from local state. The gRPC health service says SERVING
        while a leader is known and NOT_SERVING once it is lost."""
        with h.Cluster("raftkv", 3, extra_args=FAST) as c:
            r = h.etcdctl([c.nodes[0].endpoint], "put", "q", "1")
            self.assertEqual(r.returncode, 0, r.stderr)
            wait_count(c.nodes[2], "q", 1)
            alone = c.nodes[2]
            self.assertEqual(health(alone), b"\x08\x01", "SERVING with a leader")
            c.nodes[0].kill()
            c.nodes[1].kill()
            # The raw gRPC stubs: etcdctl would retry Unavailable by itself.
            import grpc
            from etcd3 import etcdrpc
            cl = etcd3.client(host="127.0.0.1", port=alone.client_port)
            calls = [lambda: cl.kvstub.Put(etcdrpc.PutRequest(key=b"q", value=b"2"), timeout=30),
                     lambda: cl.kvstub.Range(etcdrpc.RangeRequest(key=b"q"), timeout=30)]
            for call in calls:
                t0 = time.monotonic()
                with self.assertRaises(grpc.RpcError) as err:
                    call()
                took = time.monotonic() - t0
                self.assertEqual(err.exception.code(), grpc.StatusCode.UNAVAILABLE)
                self.assertIn(err.exception.details(),
                              ("etcdserver: request timed out", "etcdserver: no leader"))
                self.assertLess(took, 5 + 2 * ELECTION_MS / 1000 + 2)
            cl.close()
            self.assertEqual(health(alone), b"\x08\x02", "NOT_SERVING without a leader")
            r = h.etcdctl([alone.endpoint], "get", "q", "--consistency", "s",
                          "--print-value-only")
            self.assertEqual((r.returncode, r.stdout.strip()), (0, "1"))

    def test_full_cluster_restart_recovers_every_write(self):
        """Every acknowledged write survives kill -9 of all members at once
        and a restart, through local snapshots and log replay."""
        with h.Cluster("raftkv", 3, extra_args=FAST + ["--snapshot-count", "150"]) as c:
            w = Writer(c.nodes)
            w.start()
            time.sleep(3)
            for n in c.nodes:
                n.kill()
            w.stop_flag.set()
            w.join(20)
            self.assertGreater(len(w.acked), 100)
            for n in c.nodes:
                n.start(c.initial_cluster, "new", c.token, wait=False)
            for n in c.nodes:
                h.wait_for_port(n.client_port, 30, n.proc)
            c.wait_healthy(30)
            r = h.etcdctl([c.endpoints], "-w", "json", "get", "w/", "--prefix", "--keys-only")
            present = {__import__("base64").b64decode(kv["key"]).decode()
                       for kv in json.loads(r.stdout).get("kvs", [])}
            self.assertEqual([k for k in w.acked if k not in present], [])
            for n in c.nodes:
                wait_count(n, "w/", len(w.acked))


if __name__ == "__main__":
    unittest.main(verbosity=2)
