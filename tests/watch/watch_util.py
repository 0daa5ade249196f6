"""Helpers shared by the watch tests."""

import os
import select
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402

WAIT_S = 15.0


class EtcdctlWatch:
    """`etcdctl watch ...` in the background, read line by line."""

    def __init__(self, endpoint: str, *args: str):
        env = dict(os.environ, ETCDCTL_API="3")
        self.proc = subprocess.Popen([h.ETCDCTL_BIN, "--endpoints", endpoint, "watch", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                     start_new_session=True)
        self.buf = b""

    def lines(self, n: int, timeout_s: float = WAIT_S) -> list[str]:
        """The next n output lines (fewer if they do not come in time)."""
        deadline = time.monotonic() + timeout_s
        fd = self.proc.stdout.fileno()
        while self.buf.count(b"\n") < n and time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                self.buf += chunk
        parts = self.buf.split(b"\n")
        got = [p.decode() for p in parts[:min(n, len(parts) - 1)]]
        self.buf = b"\n".join(parts[len(got):])
        return got

    def stop(self) -> tuple[str, str]:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            out, err = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            out, err = self.proc.communicate()
        return (self.buf + out).decode(), err.decode()
