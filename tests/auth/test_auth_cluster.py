"""Auth on a 3-node raftkv cluster: a revoked permission takes effect at once on
every member; tokens expire after --auth-token-ttl; no escalation through a
txn's nested operations; the Python etcd3 client with user and password; and a
restarted cluster keeps its users, roles and permissions.
"""

import os
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

import etcd3  # noqa: E402
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500", "--bcrypt-cost", "4",
        "--auth-token-ttl", "3"]
ROOT = ["--user", "root:rootpw"]
ALICE = ["--user", "alice:alicepw"]


def ok(ep, *args, stdin=None):
    r = h.etcdctl([ep], *args, input=stdin)
    if r.returncode != 0:
        raise AssertionError(f"etcdctl {' '.join(args)} on {ep}: {r.stderr.strip()}")
    return r.stdout.strip()


def error_of(ep, *args):
    r = h.etcdctl([ep], *args)
    if r.returncode == 0:
        return ""
    lines = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    return lines[-1] if lines else r.stderr.strip()


def client(node, user="alice", password="alicepw"):
    """etcd3 with user and password: it authenticates on creation and sends the
    token both as call credentials and as `token` metadata. grpcio refuses call
    credentials on a plaintext channel (client side, against etcd too), so
    only the metadata is kept."""
    cl = etcd3.client(host="127.0.0.1", port=node.client_port, user=user, password=password,
                      timeout=10)
    cl.call_credentials = None
    return cl


class AuthClusterTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = h.Cluster("raftkv", 3, extra_args=FAST).start()
        ep = cls.c.nodes[0].endpoint
        ok(ep, "user", "add", "root:rootpw")
        ok(ep, "role", "add", "app")
        ok(ep, "role", "grant-permission", "app", "readwrite", "--prefix", "app/")
        ok(ep, "role", "grant-permission", "app", "read", "--prefix", "pub/")
        ok(ep, "user", "add", "alice:alicepw")
        ok(ep, "user", "grant-role", "alice", "app")
        ok(ep, "put", "pub/a", "1")
        ok(ep, "put", "secret", "s")
        ok(ep, "auth", "enable")

    @classmethod
    def tearDownClass(cls):
        cls.c.cleanup()

    def test_1_permissions_on_every_member(self):
        for i, n in enumerate(self.c.nodes):
            ok(n.endpoint, *ALICE, "put", f"app/{i}", "v")
            self.assertEqual(ok(n.endpoint, *ALICE, "get", "pub/a"), "pub/a\n1")
            self.assertEqual(error_of(n.endpoint, *ALICE, "put", "pub/a", "2"),
                             "Error: etcdserver: permission denied")
            self.assertEqual(error_of(n.endpoint, *ALICE, "get", "secret"),
                             "Error: etcdserver: permission denied")

    def test_2_nested_txn_cannot_escalate(self):
        cl = client(self.c.nodes[1])
        try:
            deep = etcdrpc.TxnRequest(success=[etcdrpc.RequestOp(
                request_put=etcdrpc.PutRequest(key=b"pub/evil", value=b"x"))])
            middle = etcdrpc.TxnRequest(
                success=[etcdrpc.RequestOp(request_range=etcdrpc.RangeRequest(key=b"app/0"))],
                failure=[etcdrpc.RequestOp(request_txn=deep)])
            outer = etcdrpc.TxnRequest(
                compare=[etcdrpc.Compare(key=b"app/0", target=etcdrpc.Compare.VERSION,
                                         result=etcdrpc.Compare.EQUAL, version=1)],
                success=[etcdrpc.RequestOp(request_txn=middle)])
            with self.assertRaises(grpc.RpcError) as e:
                cl.kvstub.Txn(outer, timeout=10, metadata=cl.metadata)
            self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            self.assertEqual(e.exception.details(), "etcdserver: permission denied")
            # A compare on a key alice may not read leaks nothing either.
            peek = etcdrpc.TxnRequest(compare=[etcdrpc.Compare(
                key=b"secret", target=etcdrpc.Compare.VALUE, result=etcdrpc.Compare.EQUAL,
                value=b"s")])
            with self.assertRaises(grpc.RpcError) as e:
                cl.kvstub.Txn(peek, timeout=10, metadata=cl.metadata)
            self.assertEqual(e.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
            # Within its rights the same client works.
            cl.put("app/py", "1")
            self.assertEqual(cl.get("app/py")[0], b"1")
        finally:
            cl.close()
        self.assertEqual(ok(self.c.nodes[0].endpoint, *ROOT, "get", "pub/evil"), "")

    def test_3_token_expires(self):
        cl = client(self.c.nodes[2])
        try:
            self.assertEqual(cl.get("pub/a")[0], b"1")
            time.sleep(4.5)  # --auth-token-ttl 3, unused meanwhile
            with self.assertRaises(grpc.RpcError) as e:
                cl.kvstub.Range(etcdrpc.RangeRequest(key=b"pub/a"), timeout=10,
                                metadata=cl.metadata)
            self.assertEqual(e.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
            self.assertEqual(e.exception.details(), "etcdserver: invalid auth token")
        finally:
            cl.close()

    def test_4_revoke_takes_effect_at_once_everywhere(self):
        eps = [n.endpoint for n in self.c.nodes]
        for ep in eps:
            self.assertEqual(ok(ep, *ALICE, "get", "app/0"), "app/0\nv")
        ok(eps[0], *ROOT, "role", "revoke-permission", "app", "--prefix", "app/")
        for ep in eps[1:] + eps[:1]:
            self.assertEqual(error_of(ep, *ALICE, "get", "app/0"),
                             "Error: etcdserver: permission denied")
            # A write checked by a member that had not applied the revoke yet is
            # refused at apply time ("revision of auth store is old").
            self.assertIn(error_of(ep, *ALICE, "put", "app/0", "w"),
                          ("Error: etcdserver: permission denied",
                           "Error: etcdserver: revision of auth store is old"))
        self.assertEqual(ok(eps[0], *ROOT, "get", "app/0"), "app/0\nv")
        ok(eps[0], *ROOT, "role", "grant-permission", "app", "readwrite", "--prefix", "app/")

    def test_5_restart_keeps_auth_state(self):
        for n in self.c.nodes:
            n.stop()
        for n in self.c.nodes:
            n.start(self.c.initial_cluster, "new", self.c.token, wait=False)
        for n in self.c.nodes:
            h.wait_for_port(n.client_port, 30, n.proc)
        deadline = time.monotonic() + 30
        for n in self.c.nodes:
            while h.etcdctl([n.endpoint], *ROOT, "get", "pub/a").returncode != 0:
                self.assertLess(time.monotonic(), deadline, f"{n.name} did not come back")
                time.sleep(0.2)
        ep = self.c.nodes[0].endpoint
        self.assertEqual(error_of(ep, "get", "pub/a"), "Error: etcdserver: user name is empty")
        self.assertEqual(ok(ep, *ROOT, "user", "get", "alice"), "User: alice\nRoles: app")
        self.assertEqual(ok(ep, *ROOT, "role", "get", "app"),
                         "Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n"
                         "\t[pub/, pub0) (prefix pub/)\nKV Write:\n\t[app/, app0) (prefix app/)")
        for n in self.c.nodes:
            self.assertEqual(ok(n.endpoint, *ALICE, "get", "pub/a"), "pub/a\n1")
            self.assertEqual(error_of(n.endpoint, *ALICE, "put", "pub/a", "2"),
                             "Error: etcdserver: permission denied")


if __name__ == "__main__":
    unittest.main()
