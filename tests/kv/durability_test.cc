// Durability and snapshots: the applied index is stored atomically with the
// state it produced, so a crash (RocksDB WAL off, memtables lost) leaves a
// consistent prefix the server completes by replaying the Raft log; a
// snapshot restored elsewhere is the same state.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "kv/store.h"
#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using testing::compact_req;
using testing::del_req;
using testing::Harness;
using testing::put_req;
using testing::range_req;
using testing::TempDir;

// The "Raft log": request i is applied at index i + 1.
std::vector<raftkvpb::InternalRequest> make_log(int n) {
  std::vector<raftkvpb::InternalRequest> log;
  for (int i = 0; i < n; ++i) {
    const std::string k = "key" + std::to_string(i % 37);
    if (i % 11 == 10) {
      log.push_back(del_req(k));
    } else if (i == n / 2) {
      log.push_back(compact_req(n / 4));
    } else {
      log.push_back(put_req(k, "value-" + std::to_string(i)));
    }
  }
  return log;
}

// Applies log[from, to) in batches of `batch` entries.
void apply_range(Store& s, const std::vector<raftkvpb::InternalRequest>& log, size_t from,
                 size_t to, size_t batch) {
  for (size_t i = from; i < to; i += batch) {
    std::vector<ApplyEntry> entries;
    for (size_t j = i; j < std::min(to, i + batch); ++j) {
      entries.push_back({raft::Index(j + 1), &log[j]});
    }
    auto r = s.apply(entries);
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  }
}

TEST(Durability, CrashWithoutFlushLosesOnlyWholeBatchesAndReplayConverges) {
  TempDir tmp;
  const auto log = make_log(400);
  StoreOptions crashy;
  crashy.flush_on_close = false;  // close = crash: unflushed memtables are lost (WAL off)

  // Reference: everything applied, no crash.
  Harness ref(tmp.sub("ref"));
  apply_range(ref.store(), log, 0, log.size(), 7);
  const uint32_t want = ref.hash();

  auto opened = Store::open(tmp.sub("crash"), crashy);
  ASSERT_TRUE(opened.is_ok());
  auto s = std::move(opened.value());
  apply_range(*s, log, 0, 150, 10);
  ASSERT_TRUE(s->flush().is_ok());     // durable up to index 150
  apply_range(*s, log, 150, 300, 10);  // only in memtables
  s.reset();                           // crash

  opened = Store::open(tmp.sub("crash"), crashy);
  ASSERT_TRUE(opened.is_ok()) << opened.status().to_string();
  s = std::move(opened.value());
  const uint64_t applied = s->applied_index().value();
  // Index 150 was flushed; later batches were only in memtables, unless the
  // background compaction's flush persisted some of them. Either way whole
  // batches: the applied index says exactly which.
  EXPECT_GE(applied, 150u);
  EXPECT_LT(applied, 300u + 1);
  EXPECT_EQ((applied - 150) % 10, 0u) << "only whole batches survive";
  // The state agrees with the index: compare with a store that applied 150.
  {
    Harness at150(tmp.sub("at150"));
    apply_range(at150.store(), log, 0, applied, 150);
    EXPECT_EQ(s->hash_kv(0)->hash(), at150.hash());
    EXPECT_EQ(s->revision(), at150.store().revision());
  }
  // Replay the rest of the log after applied_index() (different batching).
  apply_range(*s, log, applied, log.size(), 13);
  EXPECT_EQ(s->hash_kv(0)->hash(), want);
  EXPECT_EQ(s->revision(), ref.store().revision());
  EXPECT_EQ(s->compact_revision(), ref.store().compact_revision());
}

TEST(Durability, RocksDbWalOnSurvivesCrashWithoutFlush) {
  TempDir tmp;
  const auto log = make_log(120);
  StoreOptions o;
  o.flush_on_close = false;
  o.rocksdb_wal = true;
  {
    auto s = Store::open(tmp.sub("wal"), o);
    ASSERT_TRUE(s.is_ok());
    apply_range(*s.value(), log, 0, log.size(), 9);
  }
  auto s = Store::open(tmp.sub("wal"), o);
  ASSERT_TRUE(s.is_ok());
  EXPECT_EQ(s.value()->applied_index().value(), log.size());
}

TEST(Durability, CleanCloseKeepsEverythingAndRebuildsTheIndex) {
  TempDir tmp;
  Harness h(tmp.sub("db"));
  for (int i = 0; i < 50; ++i) h.put("k" + std::to_string(i % 10), std::to_string(i));
  h.apply(compact_req(30));
  const uint32_t before = h.hash();
  const int64_t rev = h.store().revision();
  h.reopen();
  EXPECT_EQ(h.hash(), before);
  EXPECT_EQ(h.store().revision(), rev);
  EXPECT_EQ(h.store().compact_revision(), 30);
  EXPECT_EQ(h.store().applied_index().value(), 51u);
  EXPECT_EQ(h.get(range_req("k3")).kvs(0).version(), 5);
}

// Pulls every chunk of a stream into memory.
std::vector<std::string> drain(SnapshotStream& s) {
  std::vector<std::string> chunks;
  for (int guard = 0; guard < 100000; ++guard) {
    auto c = s.next_chunk();
    EXPECT_TRUE(c.is_ok()) << c.status().to_string();
    if (!c.is_ok() || !c->has_value()) break;
    chunks.push_back(std::move(**c));
  }
  return chunks;
}

ChunkSource from(const std::vector<std::string>& chunks) {
  auto pos = std::make_shared<size_t>(0);
  return [&chunks, pos]() -> Result<std::optional<std::string>> {
    if (*pos >= chunks.size()) return std::optional<std::string>();
    return std::optional<std::string>(chunks[(*pos)++]);
  };
}

TEST(Snapshot, RestoreElsewhereHasSameHashRevisionAndAppliedIndex) {
  TempDir tmp;
  Harness h(tmp.sub("src"));
  for (int i = 0; i < 3000; ++i)
    h.put("key/" + std::to_string(i % 500), std::string(300, 'a' + i % 26));
  raftkvpb::InternalRequest g;
  g.mutable_lease_grant()->set_id(42);
  g.mutable_lease_grant()->set_ttl(60);
  ASSERT_TRUE(h.apply(g).status.is_ok());
  h.put("leased", "v", 42);
  h.apply(compact_req(2000));
  auto stream = h.store().snapshot();
  ASSERT_TRUE(stream.is_ok());
  // Writes after the snapshot do not leak into it.
  h.put("after", "snapshot");
  const auto chunks = drain(*stream.value());
  EXPECT_GT(chunks.size(), 2u) << "header, several ~1 MiB data chunks, trailer";
  const uint64_t snap_index = stream.value()->applied_index().value();
  stream.value().reset();

  auto restored = Store::restore(tmp.sub("dst"), StoreOptions(), from(chunks));
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  auto& r = *restored.value();
  EXPECT_EQ(r.applied_index().value(), snap_index);
  EXPECT_EQ(r.compact_revision(), 2000);
  EXPECT_TRUE(r.lease_exists(42));
  EXPECT_EQ(r.lease_keys(42), std::vector<std::string>{"leased"});
  // Same state as the source at the snapshot's revision.
  const int64_t rev = r.revision();
  EXPECT_EQ(rev + 1, h.store().revision());
  EXPECT_EQ(r.hash_kv(rev)->hash(), h.store().hash_kv(rev)->hash());
  EXPECT_EQ(r.range(range_req("after"))->kvs_size(), 0);
}

TEST(Snapshot, CorruptOrTruncatedStreamsAreRefused) {
  TempDir tmp;
  Harness h(tmp.sub("src"));
  for (int i = 0; i < 100; ++i) h.put("k" + std::to_string(i), "v");
  auto stream = h.store().snapshot();
  ASSERT_TRUE(stream.is_ok());
  const auto chunks = drain(*stream.value());
  stream.value().reset();
  ASSERT_GE(chunks.size(), 3u);

  auto flipped = chunks;
  flipped[1][flipped[1].size() / 2] ^= 0x01;
  auto r = Store::restore(tmp.sub("flip"), StoreOptions(), from(flipped));
  EXPECT_EQ(r.status().code(), Code::kCorruption);

  auto truncated = chunks;
  truncated.pop_back();  // no trailer
  r = Store::restore(tmp.sub("trunc"), StoreOptions(), from(truncated));
  EXPECT_EQ(r.status().code(), Code::kCorruption);
  // The half-restored directory is refused by open(), never half-used.
  auto o = Store::open(tmp.sub("trunc"), StoreOptions());
  EXPECT_EQ(o.status().code(), Code::kCorruption);

  auto missing = chunks;
  missing.erase(missing.begin() + 1);  // a data chunk lost
  r = Store::restore(tmp.sub("miss"), StoreOptions(), from(missing));
  EXPECT_FALSE(r.is_ok());

  r = Store::restore(tmp.sub("ok"), StoreOptions(), from(chunks));
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  r = Store::restore(tmp.sub("ok"), StoreOptions(), from(chunks));
  EXPECT_EQ(r.status().code(), Code::kFailedPrecondition) << "never over an existing store";
}

// Number of records in a snapshot stream, from its trailer chunk
// ("RKVS" | kind | length | payload: record count (8 LE) ...).
uint64_t record_count(const std::vector<std::string>& chunks) {
  const std::string& t = chunks.back();
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | static_cast<unsigned char>(t[9 + static_cast<size_t>(i)]);
  return n;
}

TEST(Compaction, PhysicalRemovalDeletesOldRevisionsFromRocksDb) {
  TempDir tmp;
  Harness h(tmp.sub("db"));
  for (int i = 0; i < 1000; ++i) h.put("k" + std::to_string(i % 10), std::to_string(i));
  auto count_now = [&] {
    auto s = h.store().snapshot();
    EXPECT_TRUE(s.is_ok());
    return record_count(drain(*s.value()));
  };
  const uint64_t before = count_now();
  EXPECT_GE(before, 1000u);
  ASSERT_TRUE(h.apply(compact_req(h.store().revision())).status.is_ok());
  ASSERT_TRUE(h.store().wait_physical_compaction(h.store().revision(), std::chrono::seconds(60)));
  const uint64_t after = count_now();
  EXPECT_LE(after, 10u + 8u) << "one revision per key plus the meta records";
  // Reads at the current revision are unchanged.
  EXPECT_EQ(h.get(range_req("k3")).kvs(0).value(), "993");
  // A restart after physical compaction rebuilds the same index.
  const uint32_t hash_after = h.hash();
  h.reopen();
  EXPECT_EQ(h.hash(), hash_after);
  EXPECT_EQ(h.store().physical_compact_revision(), h.store().compact_revision());
}

TEST(Concurrency, ReadersSeeWholeRevisionsWhileApplying) {
  TempDir tmp;
  Harness h(tmp.sub("db"));
  // Each txn writes "a" and "b" to the same value; a reader must never see
  // them differ at one revision.
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> torn{0};
  std::thread reader([&] {
    while (!done.load()) {
      auto r = h.store().range(range_req("a", "c"));
      if (!r.is_ok()) continue;
      if (r->kvs_size() == 2 && r->kvs(0).value() != r->kvs(1).value()) ++torn;
      if (r->kvs_size() == 1) ++torn;
      ++reads;
    }
  });
  // At least 300 txns, and on until the reader has overlapped many of them
  // (bounded, for a loaded machine).
  for (int i = 0; i < 20000 && (i < 300 || reads.load() < 100); ++i) {
    raftkvpb::InternalRequest t;
    for (const char* k : {"a", "b"}) {
      auto* p = t.mutable_txn()->add_success()->mutable_request_put();
      p->set_key(k);
      p->set_value(std::to_string(i));
    }
    ASSERT_TRUE(h.apply(t).status.is_ok());
    if (i % 50 == 49) {
      ASSERT_TRUE(h.apply(compact_req(h.store().revision() - 1)).status.is_ok());
    }
  }
  done = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0);
  EXPECT_GT(reads.load(), 0);
}

}  // namespace
}  // namespace raftkv::kv
