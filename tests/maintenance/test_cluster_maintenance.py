"""etcdctl's maintenance commands against a 3-member raftkv cluster: endpoint
status/health/hashkv with --cluster, alarm list, defrag, and a snapshot saved
with etcdctl then restored with raftkvctl into a new 3-member cluster that
serves every key and value."""

import os
import shutil
import unittest

import maint_util as m
from maint_util import h

KEYS = 200


class ClusterMaintenance(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not h.RAFTKV_BIN:
            raise unittest.SkipTest("RAFTKV_BIN is not set (run through CTest)")
        cls.cluster = h.Cluster("raftkv", 3, extra_args=m.FAST).start()
        cls.eps = [n.endpoint for n in cls.cluster.nodes]
        cls.data = {f"key/{i:03d}": f"value-{i}-" + "x" * (i % 50) for i in range(KEYS)}
        import etcd3
        node = cls.cluster.nodes[0]
        client = etcd3.client(host="127.0.0.1", port=node.client_port, timeout=10)
        try:
            for k, v in cls.data.items():
                client.put(k, v)
            client.put("key/000", "overwritten")  # some history
        finally:
            client.close()
        cls.data["key/000"] = "overwritten"

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()

    def wait_same_revision(self):
        def same():
            revs = {s["Status"]["header"]["revision"]
                    for s in m.js(self.eps, "endpoint", "status", "--cluster")}
            return len(revs) == 1
        m.wait_until(same, 10, "every member at the same revision")

    def test_endpoint_status_cluster(self):
        self.wait_same_revision()
        st = m.js(self.eps[:1], "endpoint", "status", "--cluster")
        self.assertEqual(len(st), 3)
        leaders = {s["Status"]["leader"] for s in st}
        self.assertEqual(len(leaders), 1)
        for s in st:
            status = s["Status"]
            self.assertEqual(status["version"], "3.4.0")
            self.assertGreater(status["dbSize"], 0)
            self.assertGreater(status["dbSizeInUse"], 0)
            self.assertGreater(status["raftIndex"], 0)
            self.assertGreater(status["raftTerm"], 0)
            self.assertGreater(status["raftAppliedIndex"], 0)
            self.assertNotIn("errors", status)
        # Table output parses too.
        out = m.ok(self.eps[:1], "endpoint", "status", "--cluster", "-w", "table")
        self.assertIn("DB SIZE", out)

    def test_endpoint_health_cluster(self):
        r = m.ctl(self.eps[:1], "endpoint", "health", "--cluster")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = r.stdout + r.stderr  # etcdctl 3.4 prints the results on stderr
        self.assertEqual(out.count("is healthy"), 3, out)

    def test_endpoint_hashkv_cluster_equal_on_all_members(self):
        self.wait_same_revision()
        hk = m.js(self.eps[:1], "endpoint", "hashkv", "--cluster")
        self.assertEqual(len(hk), 3)
        hashes = {x["HashKV"]["hash"] for x in hk}
        self.assertEqual(len(hashes), 1, hk)
        self.assertNotEqual(hashes.pop(), 0)

    def test_alarm_list_is_empty(self):
        self.assertEqual(m.ok(self.eps, "alarm", "list").strip(), "")

    def test_defrag_cluster(self):
        out = m.ok(self.eps[:1], "defrag", "--cluster", timeout_s=60)
        self.assertEqual(out.count("Finished defragmenting etcd member"), 3, out)
        self.assertEqual(m.ok(self.eps, "get", "key/000", "--print-value-only").strip(),
                         "overwritten")

    def test_snapshot_save_and_restore_into_new_cluster(self):
        work = self.cluster.workdir
        snap = os.path.join(work, "backup.db")
        out = m.ok(self.eps[:1], "snapshot", "save", snap, timeout_s=60)
        self.assertIn("Snapshot saved at", out)
        size = os.path.getsize(snap)
        self.assertEqual(size % 512, 32)

        st = m.raftkvctl("snapshot", "status", snap, "-w", "json")
        self.assertEqual(st.returncode, 0, st.stderr)
        self.assertIn(f'"totalKey":{KEYS}', st.stdout)

        new = h.Cluster("raftkv", 3, extra_args=m.FAST, token="restored")
        try:
            for n in new.nodes:
                r = m.raftkvctl("snapshot", "restore", snap, "--data-dir", n.data_dir,
                                "--name", n.name, "--initial-cluster", new.initial_cluster,
                                "--initial-advertise-peer-urls", n.peer_url,
                                "--initial-cluster-token", "restored")
                self.assertEqual(r.returncode, 0, r.stderr + r.stdout)
            new.start()
            neps = [n.endpoint for n in new.nodes]
            got = m.js(neps, "get", "key/", "--prefix")
            kvs = {h_b64(kv["key"]): h_b64(kv["value"]) for kv in got["kvs"]}
            self.assertEqual(kvs, self.data)
            # Every member serves them, and the hashes agree.
            for ep in neps:
                self.assertEqual(m.ok(ep, "get", "key/199", "--print-value-only").strip(),
                                 self.data["key/199"])
            m.ok(neps, "put", "after-restore", "1")
            m.wait_until(lambda: len({x["HashKV"]["hash"] for x in
                                      m.js(neps, "endpoint", "hashkv", "--cluster")}) == 1,
                         10, "equal hashes on the restored cluster")
        finally:
            new.cleanup()

    def test_restore_refuses_damaged_files(self):
        work = self.cluster.workdir
        snap = os.path.join(work, "good.db")
        m.ok(self.eps[:1], "snapshot", "save", snap, timeout_s=60)
        with open(snap, "rb") as f:
            good = f.read()
        flipped = bytearray(good)
        flipped[len(good) // 2] ^= 0x01
        cases = {
            "flipped.db": (bytes(flipped), "SHA-256 mismatch"),
            "truncated.db": (good[:-100], "truncated or not a snapshot"),
            "cut512.db": (good[:-512], "SHA-256 mismatch"),
        }
        for name, (content, want) in cases.items():
            path = os.path.join(work, name)
            with open(path, "wb") as f:
                f.write(content)
            target = os.path.join(work, name + ".restored")
            r = m.raftkvctl("snapshot", "restore", path, "--data-dir", target)
            self.assertNotEqual(r.returncode, 0, name)
            self.assertIn(want, r.stderr, name)
            self.assertFalse(os.path.exists(os.path.join(target, "kv")), name)
            shutil.rmtree(target, ignore_errors=True)


def h_b64(s: str) -> str:
    import base64
    return base64.b64decode(s).decode()


if __name__ == "__main__":
    unittest.main(verbosity=2)
