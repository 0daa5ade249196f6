"""--auth-token jwt: RS256 and ES256 tokens (keys made with openssl in the test)
issued by one member are accepted by every member holding the public key;
bad --auth-token settings stop the server at start with a clear message.
"""

import os
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

import etcd3  # noqa: E402
import grpc  # noqa: E402
from etcd3 import etcdrpc  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500", "--bcrypt-cost", "4"]


def make_keys(d: str, method: str) -> tuple[str, str]:
    priv, pub = os.path.join(d, f"{method}.key"), os.path.join(d, f"{method}.pub")
    if method == "RS256":
        gen = ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    else:
        gen = ["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"]
    subprocess.run(gen + ["-out", priv], check=True, capture_output=True)
    subprocess.run(["openssl", "pkey", "-in", priv, "-pubout", "-out", pub], check=True,
                   capture_output=True)
    return priv, pub


class JwtTest(unittest.TestCase):
    def check_method(self, method: str):
        with tempfile.TemporaryDirectory() as d:
            priv, pub = make_keys(d, method)
            spec = f"jwt,pub-key={pub},priv-key={priv},sign-method={method},ttl=10m"
            with h.Cluster("raftkv", 3, extra_args=FAST + ["--auth-token", spec]) as c:
                ep = c.nodes[0].endpoint
                for args in (["user", "add", "root:rootpw"], ["put", "k", "v"],
                             ["auth", "enable"]):
                    r = h.etcdctl([ep], *args)
                    self.assertEqual(r.returncode, 0, r.stderr)
                cl = etcd3.client(host="127.0.0.1", port=c.nodes[0].client_port, user="root",
                                  password="rootpw", timeout=10)
                token = cl.metadata
                cl.close()
                self.assertEqual(token[0][1].count("."), 2, token)
                # The token member 1 issued works on members 2 and 3.
                for n in c.nodes[1:]:
                    ch = grpc.insecure_channel(n.endpoint)
                    stub = etcdrpc.KVStub(ch)
                    resp = stub.Range(etcdrpc.RangeRequest(key=b"k"), timeout=10, metadata=token)
                    self.assertEqual(resp.kvs[0].value, b"v")
                    tampered = token[0][1][:-4] + ("AAAA" if not token[0][1].endswith("AAAA")
                                                  else "BBBB")
                    with self.assertRaises(grpc.RpcError) as e:
                        stub.Range(etcdrpc.RangeRequest(key=b"k"), timeout=10,
                                   metadata=(("token", tampered),))
                    self.assertEqual(e.exception.details(), "etcdserver: invalid auth token")
                    ch.close()

    def test_rs256(self):
        self.check_method("RS256")

    def test_es256(self):
        self.check_method("ES256")

    def test_bad_settings_fail_at_start(self):
        with tempfile.TemporaryDirectory() as d:
            for args, want in (
                    (["--auth-token", "jwt,sign-method=HS999,pub-key=x"],
                     "sign-method must be RS256 or ES256"),
                    (["--auth-token", f"jwt,sign-method=RS256,pub-key={d}/missing.pub"],
                     "cannot read key file"),
                    (["--auth-token", "magic"], "is not supported"),
                    (["--bcrypt-cost", "3"], "--bcrypt-cost 3 is out of range"),
                    (["--auth-token-ttl", "0"], "--auth-token-ttl must be at least 1")):
                r = subprocess.run([h.RAFTKV_BIN, "--data-dir", os.path.join(d, "data"),
                                    "--listen-client-urls", f"http://127.0.0.1:{h.free_port()}",
                                    "--advertise-client-urls", "http://127.0.0.1:1",
                                    "--listen-peer-urls", f"http://127.0.0.1:{h.free_port()}",
                                    *args], capture_output=True, text=True, timeout=30)
                self.assertNotEqual(r.returncode, 0)
                self.assertIn(want, r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
