"""raftkvctl's etcdctl-style script commands against a single node, in each -w format, and
its exit codes (0 ok, 1 operation failed, 2 usage error, 3 cluster unavailable).

Where etcdctl prints the same thing for the same state, the test runs both and compares,
so "etcdctl-compatible output" is checked against etcdctl itself.
"""

import hashlib
import json
import os
import signal
import subprocess
import tempfile
import time
import unittest

from cli_util import SingleNode, Spawned, b64, for_each_kind, h, needs, raftkvctl, unb64


class ScriptCommands(SingleNode):

    def ctl(self, *args, **kw):
        return raftkvctl(self.ep, *args, **kw)

    def ok(self, *args, **kw) -> str:
        r = self.ctl(*args, **kw)
        self.assertEqual(r.returncode, 0, f"raftkvctl {args}: {r.stderr}")
        return r.stdout

    def etcdctl_out(self, *args) -> str:
        r = h.etcdctl([self.ep], *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    # ---------------------------------------------------------------- put / get / del

    def test_put_get_simple_matches_etcdctl(self):
        self.assertEqual(self.ok("put", "s/a", "hello world"), "OK\n")
        self.ok("put", "s/b", "2")
        self.assertEqual(self.ok("get", "s/a"), "s/a\nhello world\n")
        for flags in (["--prefix"], ["--prefix", "--keys-only"], ["--prefix", "--print-value-only"],
                      ["--prefix", "--limit", "1"], ["s/a", "s/c"]):
            args = ["get", "s/", *flags] if flags[0].startswith("-") else ["get", *flags]
            self.assertEqual(self.ok(*args), self.etcdctl_out(*args), f"output of {args}")

    def test_put_prev_kv_simple_and_json(self):
        self.ok("put", "p/k", "v1")
        self.assertEqual(self.ok("put", "p/k", "v2", "--prev-kv"), "OK\np/k\nv1\n")
        doc = json.loads(self.ok("-w", "json", "put", "p/k", "v3", "--prev-kv"))
        self.assertGreater(doc["header"]["revision"], 0)
        self.assertIn("cluster_id", doc["header"])
        self.assertEqual(doc["prev_kv"]["key"], b64("p/k"))
        self.assertEqual(doc["prev_kv"]["value"], b64("v2"))

    def test_get_json_equals_etcdctl_json(self):
        self.ok("put", "j/x", "1")
        self.ok("put", "j/y", "\u00e9t\u00e9")
        for args in (["get", "j/", "--prefix"], ["get", "j/x"], ["get", "missing-key"],
                     ["get", "j/", "--prefix", "--limit", "1"]):
            ours = json.loads(self.ok("-w", "json", *args))
            theirs = json.loads(self.etcdctl_out("-w", "json", *args))
            self.assertEqual(ours, theirs, f"-w json {args}")
        doc = json.loads(self.ok("get", "j/y", "-w", "json"))  # flags after the command
        self.assertEqual(unb64(doc["kvs"][0]["value"]), "\u00e9t\u00e9")

    def test_get_table_lists_each_key(self):
        self.ok("put", "t/1", "one")
        out = self.ok("-w", "table", "get", "t/", "--prefix")
        lines = out.splitlines()
        self.assertTrue(lines[0].startswith("+-"))
        self.assertIn("KEY", lines[1])
        self.assertIn("VALUE", lines[1])
        self.assertRegex(out, r"\|\s+t/1 \|\s+one \|")

    def test_del_simple_json_and_prev_kv(self):
        self.ok("put", "d/1", "a")
        self.ok("put", "d/2", "b")
        self.assertEqual(self.ok("del", "d/1", "--prev-kv"), "1\nd/1\na\n")
        doc = json.loads(self.ok("-w", "json", "del", "d/", "--prefix"))
        self.assertEqual(doc["deleted"], 1)
        self.assertEqual(self.ok("del", "d/", "--prefix"), "0\n")

    def test_strict_get_and_del_exit_1_on_missing_key(self):
        r = self.ctl("get", "no-such-key", "--strict")
        self.assertEqual(r.returncode, 1)
        self.assertIn('error: key "no-such-key" not found', r.stderr)
        self.assertEqual(self.ctl("del", "no-such-key", "--strict").returncode, 1)
        # Without --strict a missing key is not an error, as with etcdctl.
        r = self.ctl("get", "no-such-key")
        self.assertEqual((r.returncode, r.stdout), (0, ""))

    def test_put_reads_value_from_stdin(self):
        self.ok("put", "stdin/k", input="from stdin")
        self.assertEqual(self.ok("get", "stdin/k", "--print-value-only"), "from stdin\n")

    # ---------------------------------------------------------------- txn

    def test_txn_success_and_failure_branches(self):
        self.ok("put", "x/k", "v")
        out = self.ok("txn", input='value("x/k") = "v"\n\nput x/a 1\nget x/k\n\nput x/b 2\n\n')
        self.assertEqual(out, "SUCCESS\n\nOK\n\nx/k\nv\n")
        out = self.ok("txn", input='mod("x/k") < "1"\n\nput x/a 1\n\nput x/b 2\n\n')
        self.assertEqual(out, "FAILURE\n\nOK\n")
        self.assertEqual(self.ok("get", "x/b", "--print-value-only"), "2\n")
        doc = json.loads(self.ok("-w", "json", "txn", input='\nput x/c 3\nget x/c\n\n'))
        self.assertTrue(doc["succeeded"])
        rng = doc["responses"][1]["Response"]["ResponseRange"]
        self.assertEqual(unb64(rng["kvs"][0]["value"]), "3")
        self.assertIn("ResponsePut", doc["responses"][0]["Response"])

    def test_txn_bad_compare_is_usage_error(self):
        r = self.ctl("txn", input='valu("k") = "v"\n\n\n')
        self.assertEqual(r.returncode, 2)
        self.assertIn("error: bad compare", r.stderr)

    # ---------------------------------------------------------------- lease

    @needs("lease")

    def test_lease_lifecycle_simple_and_json(self):
        out = self.ok("lease", "grant", "100")
        self.assertRegex(out, r"^lease [0-9a-f]{16} granted with TTL\(100s\)\n$")
        lease = out.split()[1]
        self.ok("put", "l/k", "v", "--lease", lease)
        self.assertIn(lease, self.ok("lease", "list"))
        doc = json.loads(self.ok("-w", "json", "lease", "list"))
        self.assertIn(int(lease, 16), [x["id"] for x in doc["leases"]])
        out = self.ok("lease", "timetolive", lease, "--keys")
        self.assertRegex(out, rf"lease {lease} granted with TTL\(100s\), remaining\(\d+s\), "
                              r"attached keys\(\[l/k\]\)")
        doc = json.loads(self.ok("-w", "json", "lease", "timetolive", lease, "--keys"))
        self.assertEqual((doc["id"], doc["granted-ttl"], doc["keys"]), (int(lease, 16), 100, [b64("l/k")]))
        self.assertRegex(self.ok("lease", "keep-alive", "--once", lease),
                         rf"lease {lease} keepalived with TTL\(\d+\)")
        doc = json.loads(self.ok("-w", "json", "lease", "keep-alive", "--once", lease))
        self.assertEqual(doc["ID"], int(lease, 16))
        self.assertEqual(self.ok("lease", "revoke", lease), f"lease {lease} revoked\n")
        self.assertEqual(self.ok("get", "l/k"), "", "revoking the lease deleted its key")
        self.assertEqual(self.ok("lease", "timetolive", lease), f"lease {lease} already expired\n")
        r = self.ctl("lease", "revoke", lease)
        self.assertEqual(r.returncode, 1, "revoking a missing lease fails")
        self.assertIn("requested lease not found", r.stderr)
        doc = json.loads(self.ok("-w", "json", "lease", "grant", "50"))
        self.assertEqual((doc["TTL"], doc["Error"]), (50, ""))

    # ---------------------------------------------------------------- cluster, maintenance

    def test_member_list_matches_etcdctl_in_each_format(self):
        for fmt in ("simple", "json", "table"):
            ours = self.ok("-w", fmt, "member", "list")
            theirs = self.etcdctl_out("-w", fmt, "member", "list")
            if fmt == "json":
                ours, theirs = json.loads(ours), json.loads(theirs)
                # Only the header's revision may differ (etcdctl omits it there).
                ours["header"].pop("revision", None)
                theirs["header"].pop("revision", None)
            self.assertEqual(ours, theirs, f"member list -w {fmt}")

    def test_endpoint_status_in_each_format(self):
        line = self.ok("endpoint", "status")
        fields = line.rstrip("\n").split(", ")
        self.assertEqual(fields[0], self.ep)
        self.assertEqual(fields[4], "true", "a single node is the leader")
        doc = json.loads(self.ok("-w", "json", "endpoint", "status"))
        self.assertEqual(doc[0]["Endpoint"], self.ep)
        self.assertEqual(doc[0]["Status"]["leader"], doc[0]["Status"]["header"]["member_id"])
        self.assertGreater(doc[0]["Status"]["raftIndex"], 0)
        table = self.ok("-w", "table", "endpoint", "status")
        self.assertIn("IS LEADER", table)
        self.assertIn(self.ep, table)
        cluster = json.loads(self.ok("-w", "json", "endpoint", "status", "--cluster"))
        self.assertEqual([d["Endpoint"] for d in cluster], [self.ep])

    def test_endpoint_health_in_each_format(self):
        self.assertRegex(self.ok("endpoint", "health"),
                         rf"^{self.ep} is healthy: successfully committed proposal: took = ")
        doc = json.loads(self.ok("-w", "json", "endpoint", "health"))
        self.assertEqual((doc[0]["endpoint"], doc[0]["health"]), (self.ep, True))
        self.assertIn("HEALTH", self.ok("-w", "table", "endpoint", "health"))

    def test_compaction_then_old_revision_fails_with_exit_1(self):
        self.ok("put", "c/k", "1")
        rev = json.loads(self.ok("-w", "json", "put", "c/k", "2"))["header"]["revision"]
        self.assertEqual(self.ok("compaction", str(rev)), f"compacted revision {rev}\n")
        r = self.ctl("get", "c/k", "--rev", str(rev - 1))
        self.assertEqual(r.returncode, 1)
        self.assertIn("required revision has been compacted", r.stderr)
        self.assertEqual(self.ok("get", "c/k", "--print-value-only", "--rev", str(rev)), "2\n")

    @needs("snapshot")

    def test_snapshot_save_writes_a_verified_file(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "snap.db")
            self.assertEqual(self.ok("snapshot", "save", path), f"Snapshot saved at {path}\n")
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual((len(data) - 32) % 512, 0)
            self.assertEqual(hashlib.sha256(data[:-32]).digest(), data[-32:])
            self.assertFalse(os.path.exists(path + ".part"))

    # ---------------------------------------------------------------- streams

    def spawn(self, *args) -> Spawned:
        return Spawned(self.ep, *args)

    @needs("watch")

    def test_watch_prints_events_until_interrupted(self):
        w = self.spawn("watch", "w/", "--prefix", "--prev-kv")
        wj = self.spawn("-w", "json", "watch", "w/", "--prefix")
        time.sleep(0.5)  # both watches created
        self.ok("put", "w/a", "1")
        self.ok("put", "w/a", "2")
        self.ok("del", "w/a")
        time.sleep(0.5)
        code, out, err = w.interrupt()
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "PUT\nw/a\n1\nPUT\nw/a\n1\nw/a\n2\nDELETE\nw/a\n2\nw/a\n\n")
        code, out, err = wj.interrupt()
        self.assertEqual(code, 0, err)
        docs = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(docs), 3)
        self.assertEqual(unb64(docs[1]["Events"][0]["kv"]["value"]), "2")
        self.assertEqual(docs[2]["Events"][0]["type"], 1, "DELETE")

    @needs("lease", "watch")

    def test_lock_is_exclusive_and_exposes_the_fencing_token(self):
        holder = self.spawn("lock", "mutex")
        key = holder.line().strip()
        self.assertRegex(key, r"^mutex/[0-9a-f]+$")
        # A second locker runs its command only after the holder lets go.
        waiter = self.spawn("lock", "mutex", "sh", "-c", 'echo "$ETCD_LOCK_KEY $ETCD_LOCK_REV"')
        time.sleep(1.0)
        self.assertIsNone(waiter.proc.poll(), "the waiter must block while the lock is held")
        code, _, err = holder.interrupt()
        self.assertEqual(code, 0, err)
        code, out, err = waiter.wait()
        self.assertEqual(code, 0, err)
        wkey, wrev = out.split()
        self.assertNotEqual(wkey, key)
        created = json.loads(self.ok("-w", "json", "get", "mutex/", "--prefix"))
        self.assertNotIn("kvs", created, "both lock keys are gone after release")
        self.assertGreater(int(wrev), 0)

    @needs("lease")

    def test_lease_keep_alive_renews_until_interrupted(self):
        lease = self.ok("lease", "grant", "30").split()[1]
        ka = self.spawn("lease", "keep-alive", lease)
        self.assertEqual(ka.line(), f"lease {lease} keepalived with TTL(30)\n")
        code, _, err = ka.interrupt()
        self.assertEqual(code, 0, err)
        self.ok("lease", "revoke", lease)
        r = self.ctl("lease", "keep-alive", "--once", lease)
        self.assertEqual(r.returncode, 1, "keeping a revoked lease alive fails")
        self.assertIn("expired or revoked", r.stderr)

    @needs("lease", "watch")

    def test_elect_campaign_and_listen(self):
        leader = self.spawn("elect", "el", "proposal-1")
        key = leader.line().strip()
        self.assertRegex(key, r"^el/[0-9a-f]+$")
        self.assertEqual(leader.line(), "proposal-1\n")
        listener = self.spawn("elect", "-l", "el")
        self.assertEqual(listener.line(), key + "\n")
        self.assertEqual(listener.line(), "proposal-1\n")
        self.assertEqual(listener.interrupt()[0], 0)
        self.assertEqual(leader.interrupt()[0], 0)

    # ---------------------------------------------------------------- exit codes

    def test_usage_errors_exit_2(self):
        for args in (["bogus"], ["get"], ["get", "k", "--no-such-flag"], ["-w", "yaml", "get", "k"],
                     ["-w", "table", "put", "k", "v"], ["lease", "revoke", "not-hex"],
                     ["--dial-timeout", "soon", "get", "k"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
            self.assertTrue(r.stderr.startswith("error: "), r.stderr)

    def test_help_and_version_exit_0(self):
        r = self.ctl("--version")
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^raftkvctl \d+\.\d+\.\d+")
        for args in (["--help"], ["get", "--help"], ["lease", "grant", "--help"]):
            r = self.ctl(*args)
            self.assertEqual(r.returncode, 0, args)
            self.assertIn("Usage", r.stdout)


class ExitCodeUnavailable(unittest.TestCase):
    def test_nobody_listening_exits_3_with_advice(self):
        port = h.free_port()
        r = raftkvctl(f"127.0.0.1:{port}", "get", "k", dial_timeout="500ms")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(r.stderr, f"error: cannot connect to 127.0.0.1:{port}: is the server "
                                   "running? start one with `make run`\n")
        r = raftkvctl(f"127.0.0.1:{port},127.0.0.1:{h.free_port()}", "put", "k", "v",
                      dial_timeout="300ms")
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot connect to any of", r.stderr)


globals().update(for_each_kind(ScriptCommands))

if __name__ == "__main__":
    unittest.main(verbosity=2)
