"""Client TLS on a single member: etcdctl and raftkvctl over https with a CA,
client certificate authentication, a revoked client certificate, a client
with the wrong CA, --auto-tls, certificate rotation without restart, and the
start-up errors of flag combinations that cannot work. The etcdctl calls also
run against real etcd with the same flags, to show the flags mean the same.
"""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

RAFTKVCTL = os.environ.get("RAFTKVCTL_BIN", "")
# etcdctl 3.4 turns TLS on only with a TLS file or --insecure-transport=false.
SKIP_VERIFY = ["--insecure-transport=false", "--insecure-skip-tls-verify"]


def server_cert_der(port: int) -> bytes:
    """The certificate a new TLS connection to 127.0.0.1:port is served (DER)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert(binary_form=True)


def pem_to_der(path: str) -> bytes:
    with open(path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


class TlsCase(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="tls-test-")
        self.ca = h.TestCA(os.path.join(self.dir, "ca"))
        self.server_cert, self.server_key = self.ca.issue("server")
        self.client_cert, self.client_key = self.ca.issue("client", cn="alice")
        self.nodes = []

    def tearDown(self):
        for n in self.nodes:
            n.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start(self, kind, args, scheme="https", wait_ctl=None):
        n = h.Node(kind, f"{kind}{len(self.nodes)}", self.dir, extra_args=list(args),
                   client_scheme=scheme)
        self.nodes.append(n)
        n.start(f"{n.name}={n.peer_url}")
        ctl = wait_ctl if wait_ctl is not None else ["--cacert", self.ca.cert]
        deadline = time.monotonic() + 30
        while True:
            r = h.etcdctl([n.endpoint], *ctl, "put", "probe", "1", timeout_s=5)
            if r.returncode == 0:
                return n
            if time.monotonic() > deadline:
                self.fail(f"{n.name} never served TLS: {r.stderr}\n{n.log_tail()}")
            time.sleep(0.2)


class ClientTlsTest(TlsCase):
    def server_flags(self, **extra):
        flags = ["--cert-file", self.server_cert, "--key-file", self.server_key]
        for k, v in extra.items():
            flags += [f"--{k.replace('_', '-')}", v]
        return flags

    def check_ca_and_wrong_ca(self, kind):
        n = self.start(kind, self.server_flags())
        ok = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "put", "k", "v")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        got = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "get", "k", "--print-value-only")
        self.assertEqual(got.stdout.strip(), "v")
        other = h.TestCA(os.path.join(self.dir, "other-ca"), name="other-ca")
        bad = h.etcdctl([n.endpoint], "--cacert", other.cert, "get", "k", timeout_s=4)
        self.assertNotEqual(bad.returncode, 0, "a client trusting another CA must be refused")
        plain = h.etcdctl([f"127.0.0.1:{n.client_port}"], "--insecure-transport=true", "get",
                          "k", timeout_s=4)
        self.assertNotEqual(plain.returncode, 0, "plaintext to an https listener must fail")
        skip = h.etcdctl([n.endpoint], *SKIP_VERIFY, "get", "k",
                         "--print-value-only")
        self.assertEqual(skip.stdout.strip(), "v", skip.stderr)
        return n

    def test_etcdctl_over_tls_and_wrong_ca(self):
        self.check_ca_and_wrong_ca("raftkv")

    def test_same_etcdctl_calls_against_etcd(self):
        self.check_ca_and_wrong_ca("etcd")

    def test_raftkvctl_over_tls(self):
        if not RAFTKVCTL:
            self.skipTest("RAFTKVCTL_BIN not set")
        n = self.start("raftkv", self.server_flags())

        def ctl(*args):
            return subprocess.run([RAFTKVCTL, "--endpoints", n.endpoint, "--dial-timeout", "3s",
                                   *args], capture_output=True, text=True, timeout=20)
        r = ctl("--cacert", self.ca.cert, "put", "k2", "v2")
        self.assertEqual(r.returncode, 0, r.stderr)
        r = ctl("--cacert", self.ca.cert, "get", "k2")
        self.assertIn("v2", r.stdout, r.stderr)
        r = ctl("--insecure-skip-tls-verify", "get", "k2")
        self.assertIn("v2", r.stdout, r.stderr)
        other = h.TestCA(os.path.join(self.dir, "other-ca"), name="other-ca")
        r = ctl("--cacert", other.cert, "get", "k2")
        self.assertNotEqual(r.returncode, 0)
        r = ctl("--cacert", os.path.join(self.dir, "missing.pem"), "get", "k2")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--cacert", r.stderr)

    def check_client_cert_auth(self, kind):
        n = self.start(kind, self.server_flags(trusted_ca_file=self.ca.cert) +
                       ["--client-cert-auth"],
                       wait_ctl=["--cacert", self.ca.cert, "--cert", self.client_cert,
                                 "--key", self.client_key])
        ok = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "--cert", self.client_cert,
                       "--key", self.client_key, "put", "a", "1")
        self.assertEqual(ok.returncode, 0, ok.stderr)
        no_cert = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "get", "a", timeout_s=4)
        self.assertNotEqual(no_cert.returncode, 0, "a client without a certificate got in")
        other = h.TestCA(os.path.join(self.dir, "other-ca"), name="other-ca")
        ocert, okey = other.issue("mallory")
        foreign = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "--cert", ocert,
                            "--key", okey, "get", "a", timeout_s=4)
        self.assertNotEqual(foreign.returncode, 0, "a certificate from another CA got in")
        return n

    def test_client_cert_auth(self):
        n = self.check_client_cert_auth("raftkv")
        self.assertIn("refused client TLS connection", n.log_tail(200))
        self.assertIn("CN=mallory", n.log_tail(200))

    def test_client_cert_auth_against_etcd(self):
        self.check_client_cert_auth("etcd")

    def check_common_name_authenticates(self, kind):
        """With --client-cert-auth and auth enabled, a verified client
        certificate's common name is the user when no token is sent."""
        root_cert, root_key = self.ca.issue("rootclient", cn="root")
        as_root = ["--cacert", self.ca.cert, "--cert", root_cert, "--key", root_key]
        as_alice = ["--cacert", self.ca.cert, "--cert", self.client_cert, "--key", self.client_key]
        n = self.start(kind, self.server_flags(trusted_ca_file=self.ca.cert) +
                       ["--client-cert-auth"], wait_ctl=as_root)
        for args in (["user", "add", "root:rootpw"], ["user", "add", "alice:alicepw"],
                     ["auth", "enable"]):
            r = h.etcdctl([n.endpoint], *as_root, *args)
            self.assertEqual(r.returncode, 0, r.stderr)
        r = h.etcdctl([n.endpoint], *as_root, "put", "cn-key", "v")
        self.assertEqual(r.returncode, 0, f"CN=root was not authenticated as root: {r.stderr}")
        r = h.etcdctl([n.endpoint], *as_alice, "put", "cn-key", "w", timeout_s=5)
        self.assertNotEqual(r.returncode, 0, "CN=alice (no role) could write")
        self.assertIn("permission denied", r.stderr)
        r = h.etcdctl([n.endpoint], *as_root, "get", "cn-key", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "v")

    def test_common_name_authenticates(self):
        self.check_common_name_authenticates("raftkv")

    def test_common_name_authenticates_against_etcd(self):
        self.check_common_name_authenticates("etcd")

    def test_revoked_client_certificate(self):
        revoked_cert, revoked_key = self.ca.issue("revoked", cn="bob")
        crl = self.ca.revoke(revoked_cert)
        n = self.start("raftkv", self.server_flags(trusted_ca_file=self.ca.cert,
                                                   client_crl_file=crl) + ["--client-cert-auth"],
                       wait_ctl=["--cacert", self.ca.cert, "--cert", self.client_cert,
                                 "--key", self.client_key])
        r = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "--cert", revoked_cert,
                      "--key", revoked_key, "get", "a", timeout_s=4)
        self.assertNotEqual(r.returncode, 0, "a revoked certificate got in")
        log = n.log_tail(200)
        self.assertIn("CN=bob", log)
        self.assertIn("certificate revoked", log)
        # Revoking the good certificate too: the CRL file is re-read on change.
        self.ca.revoke(self.client_cert)
        time.sleep(0.05)
        r = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "--cert", self.client_cert,
                      "--key", self.client_key, "get", "a", timeout_s=4)
        self.assertNotEqual(r.returncode, 0, "a certificate revoked after start got in")

    def test_certificate_rotation(self):
        cert = os.path.join(self.dir, "live.crt")
        key = os.path.join(self.dir, "live.key")
        shutil.copy(self.server_cert, cert)
        shutil.copy(self.server_key, key)
        n = self.start("raftkv", ["--cert-file", cert, "--key-file", key])
        self.assertEqual(server_cert_der(n.client_port), pem_to_der(self.server_cert))
        new_cert, new_key = self.ca.issue("server2")
        # Replace atomically (rename), key first: gRPC accepts the pair only once they match.
        for src, dst in ((new_key, key), (new_cert, cert)):
            shutil.copy(src, dst + ".new")
            os.replace(dst + ".new", dst)
        deadline = time.monotonic() + 15
        while server_cert_der(n.client_port) != pem_to_der(new_cert):
            self.assertLess(time.monotonic(), deadline, "the new certificate was never served")
            time.sleep(0.2)
        r = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "get", "probe", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "1", r.stderr)

    def test_auto_tls(self):
        n = self.start("raftkv", ["--auto-tls"], wait_ctl=SKIP_VERIFY)
        generated = os.path.join(n.data_dir, "fixtures", "client", "cert.pem")
        self.assertTrue(os.path.exists(generated))
        text = subprocess.run(["openssl", "x509", "-in", generated, "-noout", "-text"],
                              capture_output=True, text=True).stdout
        self.assertIn("IP Address:127.0.0.1", text)
        self.assertEqual(server_cert_der(n.client_port), pem_to_der(generated))
        mode = os.stat(os.path.join(n.data_dir, "fixtures", "client", "key.pem")).st_mode
        self.assertEqual(mode & 0o077, 0, "the generated key must not be readable by others")
        # Self-signed: a client that verifies against its own CA refuses it.
        r = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "get", "probe", timeout_s=4)
        self.assertNotEqual(r.returncode, 0)

    def test_cipher_suites(self):
        n = self.start("raftkv", self.server_flags(
            cipher_suites="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            tls_min_version="TLS1.2"))
        r = h.etcdctl([n.endpoint], "--cacert", self.ca.cert, "get", "probe", "--print-value-only")
        self.assertEqual(r.stdout.strip(), "1", r.stderr)


class StartupErrorTest(TlsCase):
    """Combinations that cannot work stop the server at start, naming flag and file."""

    def run_raftkv(self, *args, scheme="https", peer_scheme="http"):
        port, peer = h.free_port(), h.free_port()
        cmd = [h.RAFTKV_BIN, "--name", "x", "--data-dir", os.path.join(self.dir, "x.data"),
               "--listen-client-urls", f"{scheme}://127.0.0.1:{port}",
               "--advertise-client-urls", f"{scheme}://127.0.0.1:{port}",
               "--listen-peer-urls", f"{peer_scheme}://127.0.0.1:{peer}",
               "--initial-advertise-peer-urls", f"{peer_scheme}://127.0.0.1:{peer}",
               "--initial-cluster", f"x={peer_scheme}://127.0.0.1:{peer}", *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        self.assertNotEqual(r.returncode, 0, f"started with {args}")
        return r.stderr

    def test_bad_combinations(self):
        missing = os.path.join(self.dir, "missing.pem")
        garbage = os.path.join(self.dir, "garbage.pem")
        with open(garbage, "w") as f:
            f.write("not a certificate\n")
        other_cert, other_key = self.ca.issue("other")
        cases = [
            ([], "https needs --cert-file"),
            (["--key-file", self.server_key], "--key-file"),
            (["--cert-file", self.server_cert], "--cert-file"),
            (["--cert-file", missing, "--key-file", self.server_key], missing),
            (["--cert-file", garbage, "--key-file", self.server_key], garbage),
            (["--cert-file", self.server_cert, "--key-file", other_key], "does not match"),
            (["--cert-file", self.server_cert, "--key-file", self.server_key,
              "--trusted-ca-file", missing], "--trusted-ca-file"),
            (["--cert-file", self.server_cert, "--key-file", self.server_key,
              "--client-cert-auth"], "--client-cert-auth needs --trusted-ca-file"),
            (["--cert-file", self.server_cert, "--key-file", self.server_key,
              "--client-crl-file", self.ca.crl], "--client-crl-file"),
            (["--cert-file", self.server_cert, "--key-file", self.server_key,
              "--tls-min-version", "TLS1.3"], "--tls-min-version"),
            (["--cert-file", self.server_cert, "--key-file", self.server_key,
              "--cipher-suites", "TLS_RSA_WITH_RC4_128_SHA"], "TLS_RSA_WITH_RC4_128_SHA"),
            (["--peer-cert-file", self.server_cert], "--peer-key-file"),
        ]
        for args, expect in cases:
            with self.subTest(args=args):
                self.assertIn(expect, self.run_raftkv(*args))
        # An https peer URL without peer TLS.
        err = self.run_raftkv("--cert-file", self.server_cert, "--key-file", self.server_key,
                              peer_scheme="https")
        self.assertIn("--peer-cert-file", err)
        self.assertIn("--listen-peer-urls", err)


if __name__ == "__main__":
    unittest.main()
