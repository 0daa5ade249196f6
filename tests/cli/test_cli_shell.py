"""raftkvctl's interactive shell driven through a pseudo-terminal, as a person would use it:
typed commands (any case), quoting, Tab completion, history, WATCH stopped by Ctrl-C,
LOCK/UNLOCK; and the same shell reading commands from a pipe."""

import os
import pty
import re
import select
import signal
import tempfile
import time
import unittest

from cli_util import RAFTKVCTL_BIN, SingleNode, Spawned, for_each_kind, h, needs, raftkvctl

ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]|\r")


class Terminal:
    """raftkvctl on a pty; `screen` is everything it printed, ANSI codes removed."""

    def __init__(self, endpoint: str, home: str):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # child
            os.environ.update(HOME=home, TERM="xterm")
            os.execv(RAFTKVCTL_BIN, [RAFTKVCTL_BIN, "--endpoints", endpoint])
        self.raw = b""

    @property
    def screen(self) -> str:
        return ANSI.sub(b"", self.raw).decode("utf-8", "replace")

    def read_until(self, pattern: str, timeout_s: float = 10.0) -> str:
        """Reads output until `pattern` (a regex) matches what came after the last call."""
        start = len(self.screen)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            m = re.search(pattern, self.screen[start:])
            if m:
                return self.screen[start:]
            r, _, _ = select.select([self.fd], [], [], 0.05)
            if r:
                try:
                    self.raw += os.read(self.fd, 65536)
                except OSError:
                    break
        raise AssertionError(f"{pattern!r} not on screen within {timeout_s}s:\n{self.screen[start:]}")

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def run(self, line: str) -> str:
        """Types a command and Enter; returns what it printed up to the next prompt."""
        # libedit prints the prompt just before it turns the terminal's echo off: typing in
        # that instant would be echoed twice, so give it a moment as a person would.
        time.sleep(0.05)
        self.type(line + "\r")
        out = self.read_until(r"raftkv \S+> $")
        # Drop the echoed command line and the new prompt.
        echo = out.rfind(line + "\n")
        body = out[echo + len(line) + 1:] if echo >= 0 else out.split("\n", 1)[-1]
        return body.rsplit("raftkv ", 1)[0]

    def close(self) -> int:
        try:
            self.type("QUIT\r")
        except OSError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            try:
                select.select([self.fd], [], [], 0.05)
                os.read(self.fd, 65536)
            except OSError:
                pass
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)
        raise AssertionError("the shell did not exit on QUIT")


class Shell(SingleNode):

    def setUp(self):
        self.home = tempfile.TemporaryDirectory()
        self.addCleanup(self.home.cleanup)
        self.term = Terminal(self.ep, self.home.name)
        self.term.read_until(r"raftkv \S+> $")

    def tearDown(self):
        self.assertEqual(self.term.close(), 0)

    def test_set_get_with_quoting_and_any_case(self):
        t = self.term
        self.assertEqual(t.run('SET greeting "hello world"'), "OK\n")
        self.assertEqual(t.run("get greeting"), "hello world\n")
        self.assertEqual(t.run("Set 'single q' 'it''s \\x'"), "OK\n")
        self.assertEqual(t.run('GET "single q"'), "its \\x\n")
        self.assertEqual(t.run('SET bin "a\\x00b\\tc"'), "OK\n")
        self.assertEqual(t.run("GET bin"), '"a\\x00b\\tc"\n', "binary shown hex-escaped")
        self.assertEqual(t.run("GET nothing"), "(nil)\n")
        self.assertIn("error: unterminated double quote", t.run('SET k "open'))

    def test_incr_cas_exists_del_keys(self):
        t = self.term
        self.assertEqual(t.run("INCR n/hits"), "(integer) 1\n")
        self.assertEqual(t.run("incr n/hits"), "(integer) 2\n")
        self.assertEqual(t.run("CAS n/hits 2 10"), "OK\n")
        self.assertEqual(t.run("CAS n/hits 2 11"), "(not swapped) current value: 10\n")
        self.assertEqual(t.run("CAS n/absent x y"), "(not swapped) the key does not exist\n")
        self.assertEqual(t.run("SET n/word abc"), "OK\n")
        self.assertIn("is not an integer", t.run("INCR n/word"))
        self.assertEqual(t.run("EXISTS n/hits n/word n/absent"), "(integer) 2\n")
        self.assertEqual(t.run("KEYS n/"), "n/hits\nn/word\n(2 keys)\n")
        self.assertEqual(t.run("KEYS n/h"), "n/hits\n(1 key)\n")
        self.assertEqual(t.run("SCAN n/ LIMIT 1"), "n/hits = 10\n(1 of 2 keys)\n")
        self.assertEqual(t.run("DEL n/hits n/word n/absent"), "(integer) 2\n")
        self.assertEqual(t.run("KEYS n/"), "(empty)\n")

    @needs("lease")

    def test_history_and_ttl(self):
        t = self.term
        for v in ("v1", "v2", "v3"):
            t.run(f"SET cfg {v}")
        out = t.run("HISTORY cfg")
        values = re.findall(r"^revision +\d+ +version +(\d+) +(\S+)$", out, re.M)
        self.assertEqual(values, [("3", "v3"), ("2", "v2"), ("1", "v1")], out)
        self.assertRegex(out, r"\(created at revision \d+\)")
        self.assertEqual(t.run("HISTORY cfg LIMIT 2").count("revision "), 2)
        self.assertEqual(t.run("SET session x EX 100"), "OK\n")
        ttl = int(re.match(r"\(integer\) (\d+)", t.run("TTL session")).group(1))
        self.assertTrue(90 <= ttl <= 100, ttl)
        self.assertEqual(t.run("TTL cfg"), "(integer) -1 (the key has no lease)\n")
        self.assertEqual(t.run("TTL gone"), "(integer) -2 (the key does not exist)\n")

    def test_help_errors_and_tab_completion(self):
        t = self.term
        out = t.run("HELP")
        for name in ("SET", "GET", "INCR", "WATCH", "LOCK", "STATUS", "HISTORY"):
            self.assertRegex(out, rf"(?m)^  {name}\b")
        self.assertIn("usage: CAS key expected new", t.run("help cas"))
        self.assertEqual(t.run("FROB x"), 'error: unknown command "FROB": type HELP for the list\n')
        self.assertIn("error: wrong number of arguments for GET", t.run("GET"))
        t.type("hist\t")  # completes to "history " (lower case kept)
        t.read_until(r"history $")
        self.assertEqual(t.run("cfg2"), "(nil) the key does not exist now\n")
        with open(os.path.join(self.home.name, ".raftkvctl_history")) as f:
            self.assertIn("history\\040cfg2", f.read(), "history file written")

    @needs("watch")

    def test_watch_streams_until_ctrl_c_then_prompt_returns(self):
        t = self.term
        t.type("WATCH app/\r")
        t.read_until(r"press Ctrl-C to stop")
        self.assertEqual(raftkvctl(self.ep, "put", "app/x", "1").returncode, 0)
        self.assertEqual(raftkvctl(self.ep, "del", "app/x").returncode, 0)
        t.read_until(r"DELETE app/x \(revision \d+\)")
        self.assertRegex(t.screen, r"PUT app/x = 1 \(revision \d+\)")
        t.type("\x03")
        t.read_until(r"\(watch stopped\)\nraftkv \S+> $")
        self.assertEqual(t.run("GET app/x"), "(nil)\n", "the shell works after the watch")

    @needs("lease", "watch")

    def test_lock_unlock_and_ctrl_c_at_prompt(self):
        t = self.term
        out = t.run("LOCK jobs")
        m = re.match(r"locked jobs \(key (jobs/[0-9a-f]+), fencing token (\d+)\)", out)
        self.assertIsNotNone(m, out)
        got = raftkvctl(self.ep, "-w", "json", "get", m.group(1))
        self.assertIn(f'"create_revision":{m.group(2)}', got.stdout, "token = create_revision")
        self.assertIn("already holding", t.run("LOCK other"))
        self.assertEqual(t.run("UNLOCK"), "unlocked jobs\n")
        self.assertEqual(raftkvctl(self.ep, "get", m.group(1)).stdout, "", "lock key removed")
        self.assertIn("error: no lock is held", t.run("UNLOCK"))
        # Someone else holds "jobs": LOCK waits, says so, and Ctrl-C gives up.
        holder = Spawned(self.ep, "lock", "jobs")
        self.assertRegex(holder.line(), r"^jobs/[0-9a-f]+$")
        t.type("LOCK jobs\r")
        t.read_until(r"waiting for jobs/[0-9a-f]+ to be released \(Ctrl-C to give up\)")
        t.type("\x03")
        t.read_until(r"\(gave up waiting for the lock\)\nraftkv \S+> $")
        self.assertEqual(holder.interrupt()[0], 0)
        t.type("half typed\x03")
        t.read_until(r"raftkv \S+> $")
        self.assertEqual(t.run("GET half"), "(nil)\n")


class PipedShell(unittest.TestCase):
    def test_commands_from_a_pipe_run_without_prompt(self):
        with h.Cluster("etcd", 1) as c:
            r = raftkvctl(c.endpoints, input='SET a "x y"\nGET a\nINCR n\nbogus\nQUIT\nGET a\n')
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(r.stdout, 'OK\nx y\n(integer) 1\n'
                                       'error: unknown command "bogus": type HELP for the list\n')


globals().update(for_each_kind(Shell))

if __name__ == "__main__":
    unittest.main(verbosity=2)
