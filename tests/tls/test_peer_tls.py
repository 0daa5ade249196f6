"""Peer TLS: a 3-member cluster with client and peer TLS (certificates from a
test CA, peer certificates required) replicates writes; a cluster started
with --auto-tls and --peer-auto-tls works; a member whose peer certificate is
untrusted or revoked is kept out, and the other members' logs say which
certificate was refused and why.
"""

import os
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

FAST = ["--heartbeat-interval", "50", "--election-timeout", "500"]


def wait_value(endpoint, ctl, key, want, timeout_s=15.0):
    """Polls a serializable read of `key` on one member until it is `want`."""
    deadline = time.monotonic() + timeout_s
    while True:
        r = h.etcdctl([endpoint], *ctl, "get", key, "--consistency=s", "--print-value-only",
                      timeout_s=5)
        if r.returncode == 0 and r.stdout.strip() == want:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


class PeerTlsTest(unittest.TestCase):
    def test_client_and_peer_tls_cluster_replicates(self):
        workdir = tempfile.mkdtemp(prefix="tls-peer-")
        ca = h.TestCA(os.path.join(workdir, "ca"))
        certs = {f"n{i}": ca.issue(f"n{i}") for i in (1, 2, 3)}

        def node_args(name):
            cert, key = certs[name]
            return ["--cert-file", cert, "--key-file", key, "--trusted-ca-file", ca.cert,
                    "--peer-cert-file", cert, "--peer-key-file", key,
                    "--peer-trusted-ca-file", ca.cert, "--peer-client-cert-auth"]

        ctl = ["--cacert", ca.cert]
        c = h.Cluster("raftkv", 3, FAST, client_scheme="https", peer_scheme="https",
                      ctl_args=ctl, workdir=workdir, node_args=node_args)
        with c:
            r = h.etcdctl([c.nodes[0].endpoint], *ctl, "put", "replicated", "yes")
            self.assertEqual(r.returncode, 0, r.stderr)
            for n in c.nodes:
                self.assertTrue(wait_value(n.endpoint, ctl, "replicated", "yes"),
                                f"{n.name} did not get the write\n{n.log_tail()}")
            r = h.etcdctl([c.endpoints], *ctl, "-w", "json", "member", "list")
            self.assertIn("https://127.0.0.1", r.stdout)

    def test_auto_tls_cluster(self):
        ctl = ["--insecure-transport=false", "--insecure-skip-tls-verify"]
        c = h.Cluster("raftkv", 3, FAST + ["--auto-tls", "--peer-auto-tls"],
                      client_scheme="https", peer_scheme="https", ctl_args=ctl)
        with c:
            r = h.etcdctl([c.nodes[1].endpoint], *ctl, "put", "auto", "tls")
            self.assertEqual(r.returncode, 0, r.stderr)
            for n in c.nodes:
                self.assertTrue(wait_value(n.endpoint, ctl, "auto", "tls"))
                self.assertTrue(os.path.exists(
                    os.path.join(n.data_dir, "fixtures", "peer", "cert.pem")))

    def test_untrusted_and_revoked_peers_cannot_join(self):
        workdir = tempfile.mkdtemp(prefix="tls-peer-")
        ca = h.TestCA(os.path.join(workdir, "ca"))
        rogue_ca = h.TestCA(os.path.join(workdir, "rogue"), name="rogue-ca")
        certs = {f"n{i}": ca.issue(f"n{i}") for i in (1, 2, 3, 5)}
        certs["n4"] = rogue_ca.issue("n4")  # signed by a CA the others do not trust
        crl = ca.revoke(certs["n5"][0])      # n5's certificate is revoked

        def node_args(name):
            cert, key = certs[name]
            return ["--peer-cert-file", cert, "--peer-key-file", key,
                    "--peer-trusted-ca-file", ca.cert, "--peer-client-cert-auth",
                    "--peer-crl-file", crl]

        c = h.Cluster("raftkv", 5, FAST, peer_scheme="https", workdir=workdir,
                      node_args=node_args)
        try:
            for n in c.nodes:
                n.start(c.initial_cluster, "new", c.token, wait=False)
            good, bad = c.nodes[:3], c.nodes[3:]
            c.wait_healthy(30, nodes=good)
            r = h.etcdctl([good[0].endpoint], "put", "secret", "s1")
            self.assertEqual(r.returncode, 0, r.stderr)
            for n in good:
                self.assertTrue(wait_value(n.endpoint, [], "secret", "s1"))
            for n in bad:
                r = h.etcdctl([n.endpoint], "get", "secret", "--consistency=s",
                              "--print-value-only", timeout_s=4)
                self.assertNotEqual(r.stdout.strip(), "s1", f"{n.name} got data")
            logs = "\n".join(n.log_tail(400) for n in good)
            self.assertIn("refused peer TLS connection", logs)
            self.assertRegex(logs, r"CN=n4.*unable to get local issuer certificate")
            self.assertRegex(logs, r"CN=n5.*certificate revoked")
        finally:
            c.cleanup()


if __name__ == "__main__":
    unittest.main()
