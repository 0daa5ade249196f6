"""Test harness for real processes on loopback: raftkv and etcd nodes and clusters.

Every test that starts servers goes through this module, so that the rules hold
everywhere: ports are picked free on 127.0.0.1 (never a fixed port, never a
non-loopback address), data lives in a temporary directory, and every process
started is stopped (SIGTERM, then SIGKILL) when the test ends, even on failure.

Binaries:
  RAFTKV_BIN   path of the raftkv server (set by CTest)
  ETCD_BIN     etcd server (default /usr/bin/etcd)
  ETCDCTL_BIN  etcdctl (default /usr/bin/etcdctl)
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Sequence

ETCD_BIN = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
ETCDCTL_BIN = os.environ.get("ETCDCTL_BIN", "/usr/bin/etcdctl")
RAFTKV_BIN = os.environ.get("RAFTKV_BIN", "")

_live: set["Node"] = set()
_live_lock = threading.Lock()
_reserved_ports: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now and that this
    process has not handed out before (so two nodes never get the same one)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _reserved_ports:
            _reserved_ports.add(port)
            return port
    raise RuntimeError("no free port found on 127.0.0.1")


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen | None = None) -> None:
    """Waits until something accepts TCP connections on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout_s} s")


@dataclass(eq=False)
class Node:
    """One server process (raftkv or etcd) with its ports and data directory."""

    kind: str  # "raftkv" or "etcd"
    name: str
    workdir: str
    client_port: int = field(default_factory=free_port)
    peer_port: int = field(default_factory=free_port)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    log_path: str = ""
    client_scheme: str = "http"  # "https": TLS flags must be in extra_args
    peer_scheme: str = "http"

    @property
    def client_url(self) -> str:
        return f"{self.client_scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.peer_scheme}://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        if self.client_scheme == "https":
            return self.client_url
        return f"127.0.0.1:{self.client_port}"

    @property
    def data_dir(self) -> str:
        return os.path.join(self.workdir, f"{self.name}.data")

    def command(self, initial_cluster: str, state: str, token: str) -> list[str]:
        binary = RAFTKV_BIN if self.kind == "raftkv" else ETCD_BIN
        if not binary:
            raise RuntimeError("RAFTKV_BIN is not set (run through CTest)")
        return [
            binary,
            "--name", self.name,
            "--data-dir", self.data_dir,
            "--listen-client-urls", self.client_url,
            "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url,
            "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster,
            "--initial-cluster-state", state,
            "--initial-cluster-token", token,
            *self.extra_args,
        ]

    def start(self, initial_cluster: str, state: str = "new", token: str = "test-cluster",
              wait: bool = True, timeout_s: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        self.log_path = os.path.join(self.workdir, f"{self.name}.log")
        log = open(self.log_path, "ab")
        env = dict(os.environ)
        # etcd reads ETCD_* variables; keep a stray one from changing the test.
        for k in list(env):
            if k.startswith("ETCD_") or k.startswith("RAFTKV_") and k != "RAFTKV_BIN":
                env.pop(k)
        self.proc = subprocess.Popen(
            self.command(initial_cluster, state, token), stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, env=env, start_new_session=True)
        log.close()
        with _live_lock:
            _live.add(self)
        if wait:
            wait_for_port(self.client_port, timeout_s, self.proc)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout_s. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        with _live_lock:
            _live.discard(self)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL (kill -9): no chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        with _live_lock:
            _live.discard(self)

    def pause(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGCONT)

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return b"\n".join(f.read().splitlines()[-lines:]).decode("utf-8", "replace")
        except OSError:
            return "(no log)"


class Cluster:
    """n nodes of one kind, started together with a shared --initial-cluster."""

    def __init__(self, kind: str, size: int, extra_args: Sequence[str] = (),
                 token: str = "test-cluster", client_scheme: str = "http",
                 peer_scheme: str = "http", ctl_args: Sequence[str] = (),
                 workdir: str | None = None, node_args=None):
        """client_scheme/peer_scheme "https" serve TLS: pass the TLS flags in
        extra_args (or per node through node_args(name) -> list), and in
        ctl_args what etcdctl needs (--cacert ...) for the health checks."""
        self.kind = kind
        self.token = token
        self.ctl_args = list(ctl_args)
        self.workdir = workdir or tempfile.mkdtemp(prefix=f"{kind}-test-")
        self.nodes = []
        for i in range(size):
            name = f"n{i + 1}"
            args = list(extra_args) + (list(node_args(name)) if node_args else [])
            self.nodes.append(Node(kind, name, self.workdir, extra_args=args,
                                   client_scheme=client_scheme, peer_scheme=peer_scheme))

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{n.name}={n.peer_url}" for n in self.nodes)

    @property
    def endpoints(self) -> str:
        return ",".join(n.endpoint for n in self.nodes)

    def start(self, timeout_s: float = 30.0) -> "Cluster":
        for n in self.nodes:
            n.start(self.initial_cluster, "new", self.token, wait=False)
        for n in self.nodes:
            wait_for_port(n.client_port, timeout_s, n.proc)
        self.wait_healthy(timeout_s)
        self.wait_published(timeout_s)
        return self

    def wait_published(self, timeout_s: float = 30.0) -> None:
        """Waits until the member list names every member's client URL. A member
        publishes its client URLs through the log once it has a leader (etcd and
        raftkv alike), so right after start another member may not know them yet;
        tests that read the member list (STATUS, failover) need them."""
        deadline = time.monotonic() + timeout_s
        want = {n.name for n in self.nodes}
        while True:
            r = etcdctl([self.endpoints], *self.ctl_args, "-w", "json", "member", "list",
                        timeout_s=5)
            try:
                members = json.loads(r.stdout).get("members", []) if r.returncode == 0 else []
            except ValueError:
                members = []
            if {m.get("name") for m in members if m.get("clientURLs")} >= want:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"members did not publish client URLs: {r.stdout or r.stderr}")
            time.sleep(0.1)

    def wait_healthy(self, timeout_s: float = 30.0, nodes: Iterable[Node] | None = None) -> None:
        """Waits until every given (default: running) node answers a linearizable read."""
        deadline = time.monotonic() + timeout_s
        targets = list(nodes) if nodes is not None else [n for n in self.nodes if n.running()]
        for n in targets:
            while True:
                r = etcdctl([n.endpoint], *self.ctl_args, "get", "health-probe", timeout_s=5)
                if r.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{n.name} not healthy: {r.stderr.strip()}\n{n.log_tail()}")
                time.sleep(0.1)

    def stop(self) -> None:
        for n in self.nodes:
            n.stop()

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "Cluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.cleanup()


class TestCA:
    """A certificate authority in `directory`, made with the openssl command:
    issues ECDSA P-256 certificates for 127.0.0.1/localhost and revokes them
    into a CRL. Paths are returned as strings."""

    def __init__(self, directory: str, name: str = "raftkv-test-ca"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.cert = os.path.join(directory, f"{name}.crt")
        self.key = os.path.join(directory, f"{name}.key")
        self._openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                      "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "30",
                      "-subj", f"/CN={name}",
                      "-addext", "basicConstraints=critical,CA:TRUE",
                      "-addext", "keyUsage=critical,keyCertSign,cRLSign")
        self._index = os.path.join(directory, f"{name}.index")
        open(self._index, "w").close()
        with open(os.path.join(directory, f"{name}.crlnumber"), "w") as f:
            f.write("01\n")
        self._conf = os.path.join(directory, f"{name}.cnf")
        with open(self._conf, "w") as f:
            f.write("[ca]\ndefault_ca = ca_default\n[ca_default]\n"
                    f"database = {self._index}\n"
                    f"crlnumber = {os.path.join(directory, name + '.crlnumber')}\n"
                    "default_md = sha256\ndefault_crl_days = 30\n")
        self.crl = os.path.join(directory, f"{name}.crl")
        self.gencrl()

    def _openssl(self, *args: str) -> None:
        r = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr}")

    def issue(self, name: str, cn: str | None = None,
              sans: str = "IP:127.0.0.1,DNS:localhost") -> tuple[str, str]:
        """A certificate + key for `name` (files name.crt / name.key)."""
        cert = os.path.join(self.dir, f"{name}.crt")
        key = os.path.join(self.dir, f"{name}.key")
        csr = os.path.join(self.dir, f"{name}.csr")
        ext = os.path.join(self.dir, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth,clientAuth\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n")
        self._openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                      "-keyout", key, "-out", csr, "-subj", f"/CN={cn or name}")
        self._openssl("x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
                      "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-out", cert,
                      "-days", "30", "-extfile", ext)
        return cert, key

    def revoke(self, cert: str) -> str:
        """Revokes `cert` and rewrites the CRL; returns the CRL path."""
        self._openssl("ca", "-config", self._conf, "-keyfile", self.key, "-cert", self.cert,
                      "-revoke", cert)
        return self.gencrl()

    def gencrl(self) -> str:
        self._openssl("ca", "-config", self._conf, "-keyfile", self.key, "-cert", self.cert,
                      "-gencrl", "-out", self.crl)
        return self.crl


def etcdctl(endpoints: Sequence[str], *args: str, input: str | None = None,
            timeout_s: float = 20.0, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """Runs etcdctl (v3 API) against the endpoints; never raises on failure."""
    env = dict(os.environ, ETCDCTL_API="3")
    for k in list(env):
        if k.startswith("ETCDCTL_") and k != "ETCDCTL_API":
            env.pop(k)
    if extra_env:
        env.update(extra_env)
    cmd = [ETCDCTL_BIN, "--endpoints", ",".join(endpoints), "--dial-timeout", "3s",
           "--command-timeout", f"{max(1, int(timeout_s) - 1)}s", *args]
    try:
        return subprocess.run(cmd, input=input, capture_output=True, text=True, env=env,
                              timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(cmd, 124, e.stdout or "", (e.stderr or "") + "\n(timeout)")


def etcdctl_json(endpoints: Sequence[str], *args: str, **kw) -> dict:
    r = etcdctl(endpoints, "-w", "json", *args, **kw)
    if r.returncode != 0:
        raise RuntimeError(f"etcdctl {' '.join(args)} failed: {r.stderr.strip()}")
    return json.loads(r.stdout)


@atexit.register
def _stop_everything() -> None:
    with _live_lock:
        nodes = list(_live)
    for n in nodes:
        n.kill()
