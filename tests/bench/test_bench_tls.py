"""raftkv-bench over TLS: --cacert (server verified), --cert/--key (client
certificate required by the server), and the clear errors when the CA is wrong
or a TLS file is missing. Against real etcd, so the flags mean what etcdctl's do.

Environment (set by CTest): RAFTKV_BENCH_BIN.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

BENCH = os.environ.get("RAFTKV_BENCH_BIN", "")


def run(*args):
    return subprocess.run([BENCH, *args], capture_output=True, text=True, timeout=60)


class BenchTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        assert BENCH, "RAFTKV_BENCH_BIN is not set (run through CTest)"
        cls.dir = tempfile.mkdtemp(prefix="bench-tls-")
        cls.ca = h.TestCA(os.path.join(cls.dir, "ca"))
        cert, key = cls.ca.issue("server")
        cls.client_cert, cls.client_key = cls.ca.issue("client")
        cls.other_ca = h.TestCA(os.path.join(cls.dir, "other"), name="other-ca")
        tls = ["--cert-file", cert, "--key-file", key, "--client-cert-auth",
               "--trusted-ca-file", cls.ca.cert]
        cls.cluster = h.Cluster("etcd", 1, extra_args=tls, client_scheme="https",
                                ctl_args=["--cacert", cls.ca.cert, "--cert", cls.client_cert,
                                          "--key", cls.client_key]).start()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_put_and_range_with_client_certificate(self):
        for workload in ("put", "range"):
            r = run(workload, "--endpoints", self.cluster.endpoints, "--cacert", self.ca.cert,
                    "--cert", self.client_cert, "--key", self.client_key, "--total", "50",
                    "--clients", "4", "--json")
            self.assertEqual(r.returncode, 0, r.stderr)
            res = json.loads(r.stdout)
            self.assertEqual(res["ops"], 50)
            self.assertEqual(res["errors"]["total"], 0)

    def test_wrong_ca_cannot_connect(self):
        r = run("put", "--endpoints", self.cluster.endpoints, "--cacert", self.other_ca.cert,
                "--cert", self.client_cert, "--key", self.client_key, "--total", "5")
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("cannot connect", r.stderr)

    def test_file_errors(self):
        r = run("put", "--endpoints", self.cluster.endpoints, "--cacert",
                os.path.join(self.dir, "missing.crt"), "--total", "5")
        self.assertEqual(r.returncode, 1)
        self.assertIn('cannot read --cacert', r.stderr)
        r = run("put", "--endpoints", self.cluster.endpoints, "--cert", self.client_cert,
                "--total", "5")
        self.assertEqual(r.returncode, 2)
        self.assertIn("--cert and --key must be given together", r.stderr)


if __name__ == "__main__":
    unittest.main()
