"""Watches driven by real clients: etcdctl `watch` (key, --prefix, --rev,
--prev-kv) receiving the puts and deletes another etcdctl makes, the Python
etcd3 client's watch callbacks and iterators, and the raw Watch stream (client
chosen ids, fragments, progress notifications, compaction).

Every test runs against etcd (the reference) and against raftkv when it is
built, with the same expectations.
"""

import os
import queue
import subprocess
import sys
import threading
import time
import unittest

import etcd3
import grpc
from etcd3 import etcdrpc

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "harness"))
import raftkv_harness as h  # noqa: E402
from watch_util import WAIT_S, EtcdctlWatch  # noqa: E402

# 500 ms progress notifications keep the progress test short; the flag is
# etcd's, so both servers take the same command line.
ARGS = ["--heartbeat-interval", "50", "--election-timeout", "500",
        "--experimental-watch-progress-notify-interval", "500ms"]


# The etcd3 package's protos predate WatchCreateRequest.watch_id (7) and
# .fragment (8) and WatchResponse.fragment (7): these add and read them on the
# wire (protobuf keeps unknown fields).
def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def create_request(watch_id: int = 0, fragment: bool = False, **fields) -> "etcdrpc.WatchRequest":
    raw = etcdrpc.WatchCreateRequest(**fields).SerializeToString()
    if watch_id:
        raw += b"\x38" + _varint(watch_id)
    if fragment:
        raw += b"\x40\x01"
    return etcdrpc.WatchRequest.FromString(b"\x0a" + _varint(len(raw)) + raw)


def is_fragment(resp) -> bool:
    data = resp.SerializeToString()
    i = 0
    while i < len(data):
        tag, i = _read_varint(data, i)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _read_varint(data, i)
            if field == 7:
                return value != 0
        elif wire == 2:
            n, i = _read_varint(data, i)
            i += n
        else:
            raise ValueError(f"unexpected wire type {wire}")
    return False


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


class WatchClients:
    KIND = "etcd"

    @classmethod
    def setUpClass(cls):
        if cls.KIND == "raftkv" and not h.RAFTKV_BIN:
            raise unittest.SkipTest("raftkv server not built (RAFTKV_BIN empty)")
        cls.cluster = h.Cluster(cls.KIND, 1, extra_args=ARGS).start()
        cls.ep = cls.cluster.endpoints
        host, port = cls.ep.split(":")
        cls.client = etcd3.client(host=host, port=int(port))

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.cluster.cleanup()

    def setUp(self):
        self.watchers = []

    def tearDown(self):
        for w in self.watchers:
            w.stop()

    def ctl(self, *args: str) -> str:
        r = h.etcdctl([self.ep], *args)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def revision(self) -> int:
        return int(h.etcdctl_json([self.ep], "get", "nothing-here")["header"]["revision"])

    def watch(self, *args: str) -> EtcdctlWatch:
        w = EtcdctlWatch(self.ep, *args)
        self.watchers.append(w)
        return w

    # ------------------------------------------------------------- etcdctl

    def test_etcdctl_watch_key_sees_puts_and_deletes_of_another_etcdctl(self):
        # --rev pins the start, so the test does not depend on when the
        # watcher's stream is up; the plain form is covered by the next test.
        rev = self.revision()
        w = self.watch("wk", "--rev", str(rev + 1))
        self.ctl("put", "wk", "1")
        self.ctl("put", "wk-other", "x")  # not watched
        self.ctl("put", "wk", "2")
        self.ctl("del", "wk")
        self.assertEqual(w.lines(9), ["PUT", "wk", "1", "PUT", "wk", "2", "DELETE", "wk", ""])

    def test_etcdctl_watch_from_now(self):
        w = self.watch("now")
        deadline = time.monotonic() + WAIT_S
        # Until the watcher is up, its first event may be any of our puts.
        got = []
        i = 0
        while not got and time.monotonic() < deadline:
            self.ctl("put", "now", f"v{i}")
            i += 1
            got = w.lines(3, timeout_s=0.5)
        self.assertEqual(got[:2], ["PUT", "now"])
        self.ctl("put", "now", "last")
        rest = []
        while "last" not in rest and time.monotonic() < deadline:
            rest += w.lines(3, timeout_s=1)
        self.assertEqual(rest[-3:], ["PUT", "now", "last"])

    def test_etcdctl_watch_prefix_with_prev_kv(self):
        rev = self.revision()
        w = self.watch("wp/", "--prefix", "--prev-kv", "--rev", str(rev + 1))
        self.ctl("put", "wp/a", "1")
        self.ctl("put", "wp/a", "2")
        self.ctl("put", "wq", "not watched")
        self.ctl("del", "wp/", "--prefix")
        self.assertEqual(w.lines(13), ["PUT", "wp/a", "1",
                                       "PUT", "wp/a", "1", "wp/a", "2",
                                       "DELETE", "wp/a", "2", "wp/a", ""])

    def test_etcdctl_watch_rev_replays_history_then_follows(self):
        rev = self.revision()
        for v in ("a", "b", "c"):
            self.ctl("put", "wr", v)
        w = self.watch("wr", "--rev", str(rev + 2))  # from the second put
        self.assertEqual(w.lines(6), ["PUT", "wr", "b", "PUT", "wr", "c"])
        self.ctl("put", "wr", "d")
        self.assertEqual(w.lines(3), ["PUT", "wr", "d"])

    def test_etcdctl_watch_compacted_rev_is_canceled(self):
        self.ctl("put", "wc", "1")
        rev = self.revision()
        self.ctl("put", "wc", "2")
        self.ctl("compact", str(rev + 1))
        w = self.watch("wc", "--rev", str(rev))
        try:
            w.proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            self.fail("etcdctl watch did not end after its start revision was compacted")
        out, err = w.stop()
        self.assertIn("required revision has been compacted", out + err)

    # --------------------------------------------------------- python etcd3

    def test_etcd3_watch_callbacks_multiplexed_on_one_stream(self):
        a, b = queue.Queue(), queue.Queue()
        ida = self.client.add_watch_callback("cb/a", a.put)
        idb = self.client.add_watch_prefix_callback("cb/b/", b.put)
        self.client.put("cb/a", "1")
        self.client.put("cb/b/x", "2")
        self.client.delete("cb/a")
        r1 = a.get(timeout=WAIT_S)
        r2 = a.get(timeout=WAIT_S)
        rb = b.get(timeout=WAIT_S)
        self.assertIsInstance(r1.events[0], etcd3.events.PutEvent)
        self.assertEqual(r1.events[0].value, b"1")
        self.assertIsInstance(r2.events[0], etcd3.events.DeleteEvent)
        self.assertEqual(r2.events[0].mod_revision, r2.header.revision)
        self.assertEqual(rb.events[0].key, b"cb/b/x")
        self.client.cancel_watch(ida)
        self.client.cancel_watch(idb)
        self.client.put("cb/a", "after cancel")
        time.sleep(0.3)
        self.assertTrue(a.empty())

    def test_etcd3_watch_iterator_with_start_revision_and_prev_kv(self):
        base = self.client.put("it/k", "0").header.revision
        self.client.put("it/k", "1")
        events, cancel = self.client.watch_prefix("it/", start_revision=base, prev_kv=True)
        seen = []
        done = threading.Event()

        def consume():
            for ev in events:
                seen.append(ev)
                if len(seen) == 3:
                    break
            done.set()
        t = threading.Thread(target=consume, daemon=True)
        t.start()
        self.client.put("it/j", "2")
        self.assertTrue(done.wait(WAIT_S), f"saw {len(seen)} events")
        cancel()
        self.assertEqual([e.value for e in seen], [b"0", b"1", b"2"])
        self.assertEqual([e.mod_revision for e in seen], [base, base + 1, base + 2])
        self.assertEqual(seen[1].prev_value, b"0")

    def test_etcd3_compacted_start_revision_reports_the_compaction(self):
        first = self.client.put("cmp", "1").header.revision
        last = self.client.put("cmp", "2").header.revision
        self.client.compact(last)
        got = queue.Queue()
        try:
            wid = self.client.add_watch_callback("cmp", got.put, start_revision=first)
        except etcd3.exceptions.RevisionCompactedError as e:
            self.assertEqual(e.compacted_revision, last)
            return
        r = got.get(timeout=WAIT_S)
        self.assertIsInstance(r, etcd3.exceptions.RevisionCompactedError)
        self.assertEqual(r.compacted_revision, last)
        self.client.cancel_watch(wid)

    def test_etcd3_progress_notify_carries_the_revision(self):
        got = queue.Queue()
        wid = self.client.add_watch_callback("quiet-key", got.put, progress_notify=True)
        rev = self.client.put("noise", "x").header.revision
        deadline = time.monotonic() + WAIT_S
        r = None
        while time.monotonic() < deadline:
            r = got.get(timeout=WAIT_S)
            if not r.events and r.header.revision >= rev:
                break
        self.client.cancel_watch(wid)
        self.assertIsNotNone(r)
        self.assertEqual(r.events, [])
        self.assertGreaterEqual(r.header.revision, rev)

    # ---------------------------------------------------------- raw stream

    def raw_stream(self):
        channel = grpc.insecure_channel(self.ep)
        self.addCleanup(channel.close)
        requests = queue.Queue()

        def gen():
            while True:
                r = requests.get()
                if r is None:
                    return
                yield r
        self.addCleanup(requests.put, None)
        responses = etcdrpc.WatchStub(channel).Watch(gen())
        return requests, responses

    def test_client_chosen_watch_ids_and_duplicates(self):
        requests, responses = self.raw_stream()
        create = create_request
        requests.put(create(key=b"id/a", watch_id=7))
        r = next(responses)
        self.assertTrue(r.created)
        self.assertFalse(r.canceled)
        self.assertEqual(r.watch_id, 7)
        requests.put(create(key=b"id/b", watch_id=7))
        r = next(responses)
        self.assertTrue(r.created and r.canceled)
        self.assertEqual(r.cancel_reason, "mvcc: duplicate watch ID provided on the WatchStream")
        requests.put(create(key=b"id/b", range_end=b"id/a"))
        r = next(responses)
        self.assertTrue(r.created and r.canceled)
        self.assertEqual(r.cancel_reason, "mvcc: watcher range is empty")
        requests.put(create(key=b"id/c"))  # server-chosen: the first free id from 0
        r = next(responses)
        self.assertEqual((r.created, r.canceled, r.watch_id), (True, False, 0))
        self.client.put("id/a", "x")
        r = next(responses)
        self.assertEqual(r.watch_id, 7)
        self.assertEqual(r.events[0].kv.value, b"x")
        requests.put(etcdrpc.WatchRequest(cancel_request=etcdrpc.WatchCancelRequest(watch_id=7)))
        r = next(responses)
        self.assertEqual((r.watch_id, r.canceled), (7, True))

    def test_fragmented_response_joins_to_one_revision(self):
        # Six 400 KiB values deleted in one revision: with prev_kv that one
        # revision is larger than the 1.5 MiB request limit, so it is sent as
        # fragments (all but the last marked) when the watcher asks for them.
        requests, responses = self.raw_stream()
        big = "v" * (400 * 1024)
        for i in range(6):
            self.client.put(f"frag/{i}", big)
        rev = self.client.delete_prefix("frag/").header.revision
        requests.put(create_request(key=b"frag/", range_end=b"frag0", start_revision=rev,
                                    prev_kv=True, fragment=True))
        created = next(responses)
        self.assertTrue(created.created)
        events, parts = [], 0
        while True:
            r = next(responses)
            parts += 1
            events.extend(r.events)
            if not is_fragment(r):
                break
        self.assertGreater(parts, 1)
        self.assertEqual(len(events), 6)
        self.assertEqual({e.kv.mod_revision for e in events}, {rev})
        self.assertEqual({len(e.prev_kv.value) for e in events}, {len(big)})


class EtcdWatch(WatchClients, unittest.TestCase):
    KIND = "etcd"


class RaftkvWatch(WatchClients, unittest.TestCase):
    KIND = "raftkv"


if __name__ == "__main__":
    unittest.main(verbosity=2)
