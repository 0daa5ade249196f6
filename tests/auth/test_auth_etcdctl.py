"""etcdctl's user, role and auth commands against one raftkv member, with every
output compared to a real etcd driven by the same script: the same successes,
the same error messages, the same permission matrix (a READ-only role on a
prefix can get but not put, and cannot read outside its prefix).
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500", "--bcrypt-cost", "4"]

ROOT = ["--user", "root:rootpw"]
ALICE = ["--user", "alice:alicepw"]

# (etcdctl arguments, stdin); each step's exit code, stdout and stderr are
# compared between raftkv and etcd.
SCRIPT = [
    (["auth", "enable"], None),                      # root user does not exist
    (["user", "add", "root:rootpw"], None),
    (["user", "add", "root:again"], None),           # user name already exists
    (["role", "add", "reader"], None),
    (["role", "add", "reader"], None),               # role name already exists
    (["role", "grant-permission", "reader", "read", "--prefix", "pub/"], None),
    (["role", "grant-permission", "reader", "readwrite", "own"], None),
    (["role", "grant-permission", "nobody", "read", "x"], None),  # role name not found
    (["user", "add", "alice:alicepw"], None),
    (["user", "grant-role", "alice", "reader"], None),
    (["user", "grant-role", "alice", "nothing"], None),   # role name not found
    (["user", "grant-role", "nobody", "reader"], None),   # user name not found
    (["user", "revoke-role", "alice", "nothing"], None),  # role is not granted to the user
    (["role", "revoke-permission", "reader", "absent"], None),  # permission is not granted
    (["user", "add", "bob", "--no-password"], None),
    (["user", "get", "alice"], None),
    (["role", "get", "reader"], None),
    (["user", "list"], None),
    (["role", "list"], None),
    (["put", "pub/a", "1"], None),
    (["put", "secret", "s"], None),
    (["auth", "enable"], None),                      # creates the root role, grants it, enables
    (["get", "pub/a"], None),                        # user name is empty
    (ALICE + ["get", "pub/a"], None),
    (ALICE + ["get", "--prefix", "pub/"], None),
    (ALICE + ["put", "pub/a", "2"], None),           # permission denied
    (ALICE + ["get", "secret"], None),               # permission denied
    (ALICE + ["get", "--prefix", "pu"], None),       # wider than the grant: denied
    (ALICE + ["get", "--from-key", "pub/"], None),   # unbounded: denied
    (ALICE + ["put", "own", "mine"], None),
    (ALICE + ["get", "own"], None),
    (ALICE + ["del", "pub/a"], None),                # permission denied
    (ALICE + ["user", "list"], None),                # permission denied
    (ALICE + ["user", "get", "alice"], None),        # a user may read itself
    (ALICE + ["role", "get", "reader"], None),       # and the roles it has
    (ALICE + ["txn"], "value(\"pub/a\") = \"1\"\n\nput pub/x evil\n\nput pub/y evil\n\n"),
    (ALICE + ["compaction", "1"], None),             # any authenticated user (etcd 3.4)
    (["--user", "alice:wrong", "get", "pub/a"], None),  # authentication failed
    (["--user", "bob:", "get", "pub/a"], None),      # no-password user cannot log in
    (["--user", "nobody:pw", "get", "pub/a"], None),
    (ROOT + ["user", "delete", "root"], None),       # invalid auth management
    (ROOT + ["user", "revoke-role", "root", "root"], None),
    (ROOT + ["role", "delete", "root"], None),
    (ROOT + ["user", "get", "nobody"], None),        # user name not found
    (ROOT + ["role", "get", "nobody"], None),        # role name not found
    (ROOT + ["user", "passwd", "alice", "--interactive=false"], "newpw\n"),
    (ALICE + ["get", "pub/a"], None),                # old password: authentication failed
    (["--user", "alice:newpw", "get", "pub/a"], None),
    (ROOT + ["role", "revoke-permission", "reader", "--prefix", "pub/"], None),
    (["--user", "alice:newpw", "get", "pub/a"], None),  # revoked: denied
    (ROOT + ["user", "revoke-role", "alice", "reader"], None),
    (ROOT + ["role", "delete", "reader"], None),
    (ROOT + ["user", "delete", "alice"], None),
    (ROOT + ["get", "--prefix", "pub/"], None),
    (ROOT + ["auth", "disable"], None),
    (["get", "pub/a"], None),
    (["auth", "disable"], None),
    (["user", "list"], None),
]


def run_script(kind: str) -> list[tuple]:
    out = []
    with h.Cluster(kind, 1, extra_args=FAST) as c:
        ep = [c.nodes[0].endpoint]
        for args, stdin in SCRIPT:
            r = h.etcdctl(ep, *args, input=stdin)
            # stderr also holds the client's retry log (timestamps, ids): keep
            # only what etcdctl reports.
            err = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
            out.append((" ".join(args), r.returncode, r.stdout.strip(), "\n".join(err)))
    return out


class AuthEtcdctlTest(unittest.TestCase):
    def test_same_outputs_as_etcd(self):
        ours = run_script("raftkv")
        # Spot checks that hold whatever etcd says.
        by_cmd = {}
        for cmd, rc, out, err in ours:
            by_cmd.setdefault(cmd, []).append((rc, out, err))
        self.assertIn("etcdserver: root user does not exist", by_cmd["auth enable"][0][2])
        self.assertEqual(by_cmd["auth enable"][1][1], "Authentication Enabled")
        self.assertIn("etcdserver: user name is empty", by_cmd["get pub/a"][0][2])
        self.assertIn("etcdserver: permission denied",
                      by_cmd["--user alice:alicepw put pub/a 2"][0][2])
        self.assertEqual(by_cmd["--user alice:alicepw get pub/a"][0][1], "pub/a\n1")
        if not h.ETCD_BIN or not os.path.exists(h.ETCD_BIN):
            self.skipTest("no reference etcd")
        self.assertEqual(by_cmd["--user alice:alicepw compaction 1"][0][1], "compacted revision 1")
        theirs = run_script("etcd")
        for a, b in zip(ours, theirs):
            self.assertEqual(a, b, f"raftkv and etcd differ on: etcdctl {a[0]}")


if __name__ == "__main__":
    unittest.main()
