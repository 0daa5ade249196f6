"""etcdctl and the Python etcd3 client against a single raftkv member, with
every output compared to a real etcd started in the same test.

Each command runs against both servers from the same empty state; output is
compared after masking what legitimately differs (cluster and member ids,
raft terms and indexes). Revisions must match exactly: both count one per
write from 1.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]
LIMITS = ["--max-request-bytes", "4096", "--max-txn-ops", "4"]


def mask_json(text: str) -> object:
    """Parses etcdctl -w json output and drops the fields that differ between
    two clusters (ids, raft term)."""
    doc = json.loads(text[text.index("{"):])  # txn -i prints its prompts first

    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items()
                    if k not in ("cluster_id", "member_id", "raft_term")}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    return strip(doc)


class EtcdctlAgainstEtcd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rk = h.Cluster("raftkv", 1, extra_args=FAST + LIMITS).start()
        cls.etcd = h.Cluster("etcd", 1, extra_args=FAST + LIMITS).start()

    @classmethod
    def tearDownClass(cls):
        cls.rk.cleanup()
        cls.etcd.cleanup()

    def both(self, *args, input=None):
        """Runs etcdctl against raftkv and etcd; returns both results."""
        a = h.etcdctl([self.rk.endpoints], *args, input=input)
        b = h.etcdctl([self.etcd.endpoints], *args, input=input)
        return a, b

    def same(self, *args, input=None, json_out=False):
        """Asserts raftkv and etcd answer `args` identically (exit code,
        stdout, and stderr's error text) and returns raftkv's stdout."""
        a, b = self.both(*args, input=input)
        self.assertEqual(a.returncode, b.returncode,
                         f"etcdctl {args}: raftkv rc={a.returncode} {a.stderr!r} "
                         f"etcd rc={b.returncode} {b.stderr!r}")
        if json_out and a.returncode == 0:
            self.assertEqual(mask_json(a.stdout), mask_json(b.stdout), f"etcdctl {args}")
        else:
            self.assertEqual(a.stdout, b.stdout, f"etcdctl {args}")
        if a.returncode != 0:
            err = lambda s: re.sub(r"^\{.*\}\s*", "", s.strip().splitlines()[-1])
            self.assertEqual(err(a.stderr), err(b.stderr), f"etcdctl {args}")
        return a.stdout

    def test_01_kv_commands_match_etcd(self):
        """put/get/del with every output option give etcd's exact output and
        revisions."""
        for k, v in [("a", "1"), ("b", "22"), ("c", "3"), ("foo/x", "10"), ("foo/y", "9"),
                     ("a", "11")]:
            self.assertEqual(self.same("put", k, v).strip(), "OK")
        self.same("put", "b", "23", "--prev-kv")
        self.same("get", "a")
        self.same("get", "missing")
        self.same("get", "foo/", "--prefix")
        self.same("get", "b", "--from-key")
        self.same("get", "a", "--rev", "2")
        self.same("get", "a", "--rev", "1")
        self.same("get", "", "--prefix", "--limit", "2")
        self.same("get", "", "--prefix", "--sort-by", "value", "--order", "DESCEND")
        self.same("get", "", "--prefix", "--sort-by", "modify", "--order", "ASCEND")
        self.same("get", "", "--prefix", "--sort-by", "version", "--order", "DESCEND")
        self.same("get", "", "--prefix", "--keys-only")
        self.same("-w", "json", "get", "", "--prefix", "--keys-only", json_out=True)
        self.same("get", "foo/", "--prefix", "--print-value-only")
        self.same("get", "a", "c", "--print-value-only")  # range [a, c)
        self.same("-w", "json", "get", "", "--prefix", json_out=True)
        self.same("-w", "json", "get", "a", "--rev", "3", json_out=True)
        self.same("-w", "json", "put", "d", "4", json_out=True)
        self.same("del", "foo/", "--prefix", "--prev-kv")
        self.same("del", "zzz")
        self.same("-w", "json", "del", "d", json_out=True)
        self.same("get", "", "--prefix")

    def test_02_txn_both_branches(self):
        """An interactive txn (etcdctl reads it from stdin) takes the success
        branch when the compare holds and the failure branch when not."""
        self.same("put", "tx", "1")
        script = 'value("tx") = "1"\n\nput tx 2\nput tx-log hit\n\nput tx-log miss\n\n'
        self.assertIn("\nSUCCESS\n", self.same("txn", "-i", input=script))
        self.assertIn("\nFAILURE\n", self.same("txn", "-i", input=script))
        self.same("get", "tx", "--print-value-only")
        self.same("get", "tx-log", "--print-value-only")
        self.same("-w", "json", "txn", "-i", input='mod("tx") > "0"\n\nget tx\n\n\n',
                  json_out=True)

    def test_03_errors_match_etcd(self):
        """Error codes and messages are etcd's own."""
        out = self.same("put", "", "v")
        self.assertEqual(out, "")
        a, _ = self.both("put", "", "v")
        self.assertIn("etcdserver: key is not provided", a.stderr)
        a, _ = self.both("put", "big", "x" * 5000)
        self.assertIn("etcdserver: request is too large", a.stderr)
        self.same("put", "big", "x" * 5000)
        many = "\n" + "".join(f"put k{i} v\n" for i in range(5)) + "\n\n"
        a, _ = self.both("txn", "-i", input=many)
        self.assertIn("etcdserver: too many operations in txn request", a.stderr)
        self.same("txn", "-i", input=many)
        dup = "\nput dk 1\nput dk 2\n\n\n"
        a, _ = self.both("txn", "-i", input=dup)
        self.assertIn("etcdserver: duplicate key given in txn request", a.stderr)
        self.same("txn", "-i", input=dup)
        a, _ = self.both("get", "a", "--rev", "100000")
        self.assertIn("etcdserver: mvcc: required revision is a future revision", a.stderr)
        self.same("get", "a", "--rev", "100000")

    def test_04_compaction(self):
        """compaction answers like etcd; reads below it fail with etcd's
        'compacted' error, reads at it still work."""
        for i in range(3):
            self.same("put", "cmp", str(i))
        rev = json.loads(h.etcdctl([self.rk.endpoints], "-w", "json", "get", "cmp").stdout)
        cur = rev["header"]["revision"]
        self.same("compaction", str(cur - 1))
        a, _ = self.both("get", "cmp", "--rev", str(cur - 2))
        self.assertIn("etcdserver: mvcc: required revision has been compacted", a.stderr)
        self.same("get", "cmp", "--rev", str(cur - 2))
        self.same("get", "cmp", "--rev", str(cur - 1))
        self.same("compaction", "--physical", str(cur))
        self.same("compaction", str(cur - 1))  # already compacted: same error as etcd

    def test_05_endpoint_status_and_member_list(self):
        """endpoint status reports this member as leader with a raft index
        and db size; member list shows the member's name and URLs as etcd does."""
        st = h.etcdctl_json([self.rk.endpoints], "endpoint", "status")
        self.assertEqual(len(st), 1)
        s = st[0]["Status"]
        self.assertEqual(s["leader"], s["header"]["member_id"])
        self.assertGreater(s["raftIndex"], 0)
        self.assertGreater(s["raftTerm"], 0)
        self.assertGreater(s["dbSize"], 0)
        self.assertTrue(s["version"].startswith("3.4"))
        mine = h.etcdctl_json([self.rk.endpoints], "member", "list")
        theirs = h.etcdctl_json([self.etcd.endpoints], "member", "list")
        strip = lambda d: [{k: v for k, v in m.items() if k != "ID"} for m in d["members"]]
        n = self.rk.nodes[0]
        e = self.etcd.nodes[0]
        self.assertEqual(strip(mine), [{"name": "n1", "peerURLs": [n.peer_url],
                                        "clientURLs": [n.client_url]}])
        self.assertEqual(strip(theirs), [{"name": "n1", "peerURLs": [e.peer_url],
                                          "clientURLs": [e.client_url]}])
        # Member ids are derived as etcd derives them: same flags, same id
        # shape; the cluster id in every header is the one etcd would print.
        self.assertEqual(mine["header"]["member_id"], mine["members"][0]["ID"])

    def test_06_python_etcd3_client(self):
        """The Python etcd3 client works unchanged: put/get/delete, prefixes,
        transactions with compare on value and version."""
        import etcd3
        c = etcd3.client(host="127.0.0.1", port=self.rk.nodes[0].client_port, timeout=10)
        c.put("py/a", "1")
        c.put("py/b", "2")
        value, meta = c.get("py/a")
        self.assertEqual(value, b"1")
        self.assertEqual(meta.key, b"py/a")
        self.assertEqual(meta.version, 1)
        self.assertEqual(sorted(v for v, _ in c.get_prefix("py/")), [b"1", b"2"])
        ok, _ = c.transaction(compare=[c.transactions.value("py/a") == "1"],
                              success=[c.transactions.put("py/a", "one")],
                              failure=[c.transactions.put("py/a", "nope")])
        self.assertTrue(ok)
        ok, resp = c.transaction(compare=[c.transactions.version("py/b") > 5],
                                 success=[], failure=[c.transactions.get("py/b")])
        self.assertFalse(ok)
        self.assertEqual(resp[0][0][0], b"2")
        self.assertEqual(c.get("py/a")[0], b"one")
        self.assertTrue(c.delete("py/a"))
        self.assertFalse(c.delete("py/a"))
        self.assertEqual(c.get("py/a")[0], None)
        c.delete_prefix("py/")
        self.assertEqual(list(c.get_prefix("py/")), [])
        c.close()


class Lifecycle(unittest.TestCase):
    def test_help_and_version(self):
        """--help and --version print and exit 0."""
        for flag, want in [("--help", "--initial-cluster"), ("--version", "raftkv")]:
            r = subprocess.run([h.RAFTKV_BIN, flag], capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(want, r.stdout)

    def test_zero_flag_start_and_restart_recovers(self):
        """raftkv with no flags serves on 127.0.0.1:2379 with data in
        ./default.raftkv; SIGTERM exits 0; a restart on the same directory
        has every write. Skipped if the default ports are taken."""
        for port in (2379, 2380):
            try:
                h.wait_for_port(port, 0.2)
                self.skipTest(f"port {port} in use")
            except TimeoutError:
                pass
        cwd = tempfile.mkdtemp(prefix="raftkv-default-")
        ep = ["127.0.0.1:2379"]
        try:
            for round in range(2):
                log = open(os.path.join(cwd, "log"), "ab")
                p = subprocess.Popen([h.RAFTKV_BIN], cwd=cwd, stdout=log, stderr=log,
                                     start_new_session=True)
                log.close()
                try:
                    h.wait_for_port(2379, 20, p)
                    deadline = time.monotonic() + 20
                    while h.etcdctl(ep, "get", "x").returncode != 0:
                        self.assertLess(time.monotonic(), deadline)
                        time.sleep(0.1)
                    if round == 0:
                        for i in range(20):
                            self.assertEqual(h.etcdctl(ep, "put", f"k{i}", f"v{i}").returncode, 0)
                    out = h.etcdctl(ep, "get", "k", "--prefix", "--keys-only", "-w", "json")
                    self.assertEqual(json.loads(out.stdout).get("count"), 20)
                    self.assertTrue(os.path.isdir(os.path.join(cwd, "default.raftkv")))
                finally:
                    os.killpg(p.pid, signal.SIGTERM)
                    rc = p.wait(20)
                with open(os.path.join(cwd, "log")) as f:
                    self.assertEqual(rc, 0, f.read()[-2000:])
        finally:
            import shutil
            shutil.rmtree(cwd, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
