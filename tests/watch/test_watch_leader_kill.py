"""Watches across a leader failure in a 3-node raftkv cluster.

Three watchers on the prefix h/ run while a writer keeps writing (puts and
deletes) and the leader is killed with SIGKILL:
  * an etcd3 client watching on a follower (its stream must never break),
  * an etcd3 client watching on the leader, resumed on a survivor from the
    revision after the last one it saw when its stream breaks (what clientv3
    does),
  * `etcdctl watch` on the other follower. etcdctl asks for hasleader: if
    that member sees no leader during the election its stream ends with
    "etcdserver: no leader" (and etcdctl stops), otherwise it runs on.
Each must see exactly the store's history of h/ (etcdctl: a prefix of it if
it was stopped) — compared with an `etcdctl watch --rev` replay from a
survivor: no gap, no duplicate, same order. Then a second member is killed:
the last one loses its leader for good, and a hasleader watch on it must end
with "etcdserver: no leader".
"""

import base64
import json
import os
import sys
import threading
import time
import unittest

import etcd3

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402
from watch_util import EtcdctlWatch  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]
PREFIX = "h/"


def client_for(node: h.Node) -> etcd3.Etcd3Client:
    return etcd3.client(host="127.0.0.1", port=node.client_port, timeout=5)


class ResumingWatcher:
    """An etcd3 prefix watch that, when its stream breaks, resumes on the next
    node from the revision after the last event it received."""

    def __init__(self, nodes: list, start_revision: int):
        self.nodes = list(nodes)
        self.events: list = []  # (revision, type, key, value)
        self.next_revision = start_revision
        self.resumes = 0
        self.errors: list = []
        self.lock = threading.Lock()
        self.broken = threading.Event()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def on_response(self, resp) -> None:
        if isinstance(resp, Exception):
            self.errors.append(repr(resp))
            self.broken.set()
            return
        with self.lock:
            for ev in resp.events:
                kind = "DELETE" if isinstance(ev, etcd3.events.DeleteEvent) else "PUT"
                value = b"" if kind == "DELETE" else ev.value
                self.events.append((ev.mod_revision, kind, ev.key, value))
                self.next_revision = ev.mod_revision + 1

    def run(self) -> None:
        i = 0
        while not self.stop.is_set():
            node = self.nodes[i % len(self.nodes)]
            i += 1
            if not node.running():
                continue
            client = client_for(node)
            self.broken.clear()
            try:
                with self.lock:
                    start = self.next_revision
                client.add_watch_prefix_callback(PREFIX, self.on_response, start_revision=start)
            except Exception as e:  # node down or electing: try the next one
                self.errors.append(repr(e))
                time.sleep(0.2)
                continue
            while not self.stop.is_set() and not self.broken.wait(0.1):
                pass
            if self.broken.is_set():
                self.resumes += 1

    def last_revision(self) -> int:
        with self.lock:
            return self.events[-1][0] if self.events else 0


def leader_of(cluster: h.Cluster) -> h.Node:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ids = {}
        leader = 0
        for n in cluster.nodes:
            if not n.running():
                continue
            r = h.etcdctl([n.endpoint], "-w", "json", "endpoint", "status", timeout_s=5)
            if r.returncode != 0:
                continue
            st = json.loads(r.stdout)[0]["Status"]
            ids[st["header"]["member_id"]] = n
            leader = leader or st.get("leader", 0)  # absent while there is none
        if leader in ids:
            return ids[leader]
        time.sleep(0.2)
    raise AssertionError("no leader elected")


class LeaderKillUnderWatches(unittest.TestCase):
    def setUp(self):
        if not h.RAFTKV_BIN:
            raise unittest.SkipTest("raftkv server not built (RAFTKV_BIN empty)")
        self.cluster = h.Cluster("raftkv", 3, extra_args=FAST).start()
        self.addCleanup(self.cluster.cleanup)
        self.cluster.wait_healthy()

    def writer(self, nodes, stop: threading.Event, count: list) -> None:
        i = 0
        clients = {}
        while not stop.is_set():
            node = nodes[i % len(nodes)]
            if not node.running():
                i += 1
                continue
            c = clients.get(node.name) or clients.setdefault(node.name, client_for(node))
            key = f"{PREFIX}{i % 5}"
            try:
                if i % 7 == 6:
                    c.delete(key)
                else:
                    c.put(key, f"v{i}")
                count[0] += 1
            except Exception:
                time.sleep(0.05)  # ambiguous or refused: the history decides
            i += 1

    def test_every_watcher_sees_the_exact_history(self):
        leader = leader_of(self.cluster)
        followers = [n for n in self.cluster.nodes if n is not leader]
        base = int(h.etcdctl_json([leader.endpoint], "get", "x")["header"]["revision"]) + 1

        on_follower = ResumingWatcher([followers[0]], base)
        on_leader = ResumingWatcher([leader, followers[0], followers[1]], base)
        ctl = EtcdctlWatch(followers[1].endpoint, "-w", "json", PREFIX, "--prefix",
                           "--rev", str(base))
        self.addCleanup(ctl.stop)
        stop = threading.Event()
        count = [0]
        w = threading.Thread(target=self.writer, args=(followers, stop, count), daemon=True)
        w.start()
        try:
            time.sleep(1.5)
            before_kill = count[0]
            leader.kill()
            self.cluster.wait_healthy(nodes=followers)
            # A write in flight to the dead leader waits for its timeout
            # (seconds): wait for progress rather than for a fixed time.
            deadline = time.monotonic() + 30
            while count[0] < before_kill + 50 and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            stop.set()
            w.join(30)
        self.assertGreater(before_kill, 10, "the writer made progress before the kill")
        self.assertGreater(count[0], before_kill, "the writer made progress after the kill")
        final = int(h.etcdctl_json([followers[0].endpoint], "get", "x")["header"]["revision"])

        # The reference: a --rev replay from a survivor, up to `final`.
        replay = self.read_etcdctl(EtcdctlWatch(followers[0].endpoint, "-w", "json", PREFIX,
                                                "--prefix", "--rev", str(base)), final)
        self.assertEqual(replay[-1][0], final)
        self.assertEqual(len(replay), len(set(replay)), "no duplicate in the replay")

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and min(on_follower.last_revision(),
                                                  on_leader.last_revision()) < final:
            time.sleep(0.1)
        on_follower.stop.set()
        on_leader.stop.set()
        self.assertEqual(on_follower.events, replay, "watcher on a follower")
        self.assertEqual(on_follower.resumes, 0, f"follower stream broke: {on_follower.errors}")
        self.assertEqual(on_leader.events, replay, "watcher on the killed leader, resumed")
        self.assertGreaterEqual(on_leader.resumes, 1, "the leader's stream broke")
        got, err = self.read_etcdctl(ctl, final, with_stderr=True)
        # In JSON mode etcdctl reports the end of a hasleader stream only as
        # "watch is canceled by the server"; the reason is checked below.
        stopped = "canceled by the server" in err
        print(f"history: {len(replay)} events in revisions {base}..{final}; leader watcher "
              f"resumed {on_leader.resumes}x; etcdctl saw {len(got)} events"
              f"{' then no leader' if stopped else ''}", file=sys.stderr)
        if stopped:
            self.assertEqual(got, replay[:len(got)], "etcdctl watch (hasleader), until no leader")
        else:
            self.assertEqual(got, replay, f"etcdctl watch (hasleader); stderr: {err}")

        # Quorum lost: the survivor has no leader; hasleader streams end.
        lonely = EtcdctlWatch(followers[0].endpoint, PREFIX, "--prefix")
        self.addCleanup(lonely.stop)
        time.sleep(1)  # the watch is up
        followers[1].kill()
        try:
            lonely.proc.wait(timeout=20)
        except Exception:
            self.fail("a hasleader watch survived the loss of the leader")
        _, err = lonely.stop()
        self.assertIn("etcdserver: no leader", err)

    def read_etcdctl(self, w: EtcdctlWatch, final: int, with_stderr: bool = False):
        """The events etcdctl -w json printed up to `final` (or until it exited)."""
        events = []
        deadline = time.monotonic() + 30
        while (not events or events[-1][0] < final) and time.monotonic() < deadline:
            if w.proc.poll() is not None and b"\n" not in w.buf:
                break
            for line in w.lines(1, timeout_s=1):
                doc = json.loads(line)
                for ev in doc.get("Events") or []:
                    kv = ev["kv"]
                    kind = "DELETE" if ev.get("type", 0) == 1 else "PUT"
                    value = b"" if kind == "DELETE" else base64.b64decode(kv.get("value", ""))
                    events.append((int(kv["mod_revision"]), kind, base64.b64decode(kv["key"]),
                                   value))
        _, err = w.stop()
        return (events, err) if with_stderr else events


if __name__ == "__main__":
    unittest.main(verbosity=2)
