"""Grow a cluster 1 -> 3 -> 5 and shrink it 5 -> 3 while a client writes
continuously (retrying failed writes): every acknowledged write is read back
at the end. Then replace a member whose data directory was lost: remove it,
add it again, start it empty with --initial-cluster-state existing."""

import os
import shutil
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import membership_util as mu  # noqa: E402
from membership_util import h  # noqa: E402

import etcd3  # noqa: E402


class Writer(threading.Thread):
    """Puts w/0, w/1, ... one at a time; a failed put is retried (same key and
    value, so a retry of an applied put is harmless) until acknowledged."""

    def __init__(self, endpoint):
        super().__init__(daemon=True)
        host, port = endpoint.split(":")
        self.client = etcd3.client(host=host, port=int(port), timeout=3)
        self.acked = []
        self.errors = 0
        self.stop_flag = threading.Event()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            key, value = f"w/{i:06d}", f"v{i}"
            try:
                self.client.put(key, value)
            except Exception:  # noqa: BLE001 — any failure: retry the same put
                self.errors += 1
                time.sleep(0.05)
                continue
            self.acked.append((key, value))
            i += 1

    def stop(self):
        self.stop_flag.set()
        self.join(10)


class GrowShrink(unittest.TestCase):
    def test_grow_1_3_5_shrink_3_and_replace(self):
        cluster = h.Cluster("raftkv", 1, extra_args=mu.FAST).start()
        self.addCleanup(cluster.cleanup)
        n1 = cluster.nodes[0]
        writer = Writer(n1.endpoint)
        writer.start()
        self.addCleanup(writer.stop)

        def eps():
            return [n.endpoint for n in cluster.nodes if n.running()]

        def grow(name):
            n, mid = mu.join(cluster.workdir, eps(), name)
            cluster.nodes.append(n)
            cluster.wait_healthy(nodes=[n])
            return n, mid

        ids = {}
        for name in ("n2", "n3", "n4", "n5"):
            node, ids[name] = grow(name)
            time.sleep(0.3)  # writes keep flowing between changes
        self.assertEqual(len(mu.member_list(n1.endpoint)), 5)
        mu.wait_leader(cluster.nodes)

        # Shrink 5 -> 3: each removed member stops by itself.
        for name in ("n5", "n4"):
            node = next(n for n in cluster.nodes if n.name == name)
            r = mu.ctl(eps(), "member", "remove", mu.hex_id(ids[name]))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(mu.wait_exit(node), 0)
            self.assertIn("was removed from the cluster", mu.log_text(node))
            cluster.nodes.remove(node)
            time.sleep(0.3)
        self.assertEqual(sorted(m["name"] for m in mu.member_list(n1.endpoint)),
                         ["n1", "n2", "n3"])

        # Replace n3, whose disk is lost: remove, wipe, add again, start empty.
        n3 = next(n for n in cluster.nodes if n.name == "n3")
        n3.kill()
        shutil.rmtree(n3.data_dir)
        r = mu.ctl(eps(), "member", "remove", mu.hex_id(ids["n3"]))
        self.assertEqual(r.returncode, 0, r.stderr)
        cluster.nodes.remove(n3)
        fresh = h.Node("raftkv", "n3", cluster.workdir, extra_args=list(mu.FAST))
        node, new_id = mu.join(cluster.workdir, eps(), "n3", node=fresh)
        self.assertNotEqual(new_id, ids["n3"])
        cluster.nodes.append(node)
        cluster.wait_healthy(nodes=[node])
        time.sleep(0.5)

        writer.stop()
        self.assertGreater(len(writer.acked), 20)
        # Every acknowledged write is there, on every member's own store.
        last_key, last_value = writer.acked[-1]
        for n in cluster.nodes:
            mu.wait_serves(n, last_key, last_value)
        got = {}
        for value, meta in writer.client.get_prefix("w/"):
            got[meta.key.decode()] = value.decode()
        missing = [(k, v) for k, v in writer.acked if got.get(k) != v]
        self.assertEqual(missing, [], f"{len(missing)} acknowledged writes lost")
        for n in cluster.nodes:
            r = mu.ctl(n.endpoint, "get", "w/", "--prefix", "--keys-only", "--consistency=s",
                       "-w", "json")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f'"count":{len(got)}', r.stdout.replace(" ", ""))
        print(f"acknowledged writes: {len(writer.acked)}, failed attempts retried: "
              f"{writer.errors}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
