// DiskLogStorage: the LogStorage contract over the WAL, the bounded tail
// cache, snapshots in a Ready, compaction and restart.
#include "storage/disk_log_storage.h"

#include <gtest/gtest.h>

#include "storage/fault_file_system.h"
#include "test_util.h"

namespace raftkv::storage {
namespace {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::NodeId;
using raft::Term;
using testing::make_entries;
using testing::make_entry;

constexpr const char* kDir = "/data/member";

DiskLogStorageOptions options(uint64_t cache_bytes = 1 << 20) {
  DiskLogStorageOptions o;
  o.wal.segment_bytes = 8192;
  o.cache_max_bytes = cache_bytes;
  return o;
}

std::unique_ptr<DiskLogStorage> open_ok(FileSystem* fs, DiskLogStorageOptions o = options()) {
  Result<std::unique_ptr<DiskLogStorage>> s = DiskLogStorage::open(fs, kDir, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return s.is_ok() ? std::move(*s) : nullptr;
}

raft::Snapshot snap(uint64_t index, uint64_t term) {
  raft::Snapshot s;
  s.metadata.index = Index(index);
  s.metadata.term = Term(term);
  s.metadata.conf_state.voters = {NodeId(1), NodeId(2), NodeId(3)};
  s.data = "state machine image at " + std::to_string(index);
  return s;
}

TEST(DiskLogStorage, FreshStorageFollowsTheLogStorageConventions) {
  FaultFileSystem fs;
  auto s = open_ok(&fs);
  EXPECT_EQ(s->first_index(), Index(1));
  EXPECT_EQ(s->last_index(), Index(0));
  EXPECT_EQ(*s->term(Index(0)), Term(0));
  EXPECT_EQ(s->term(Index(1)).status().code(), Code::kUnavailable);
  EXPECT_TRUE(s->snapshot()->empty());
  auto init = s->initial_state();
  EXPECT_TRUE(init->first.empty());
  EXPECT_TRUE(init->second.voters.empty());
}

TEST(DiskLogStorage, SavedReadyIsReadBackAfterRestart) {
  FaultFileSystem fs;
  HardState hs{Term(2), NodeId(1), Index(5)};
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(&hs, make_entries(1, 10, 2)));
    Result<std::vector<Entry>> e = s->entries(Index(3), Index(6), UINT64_MAX);
    ASSERT_TRUE(e.is_ok());
    EXPECT_EQ(*e, make_entries(3, 5, 2));
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(s->initial_state()->first, hs);
  EXPECT_EQ(s->cached_entries(), 0u);  // Served from disk after a restart.
  EXPECT_EQ(*s->entries(Index(1), Index(11), UINT64_MAX), make_entries(1, 10, 2));
  EXPECT_EQ(*s->term(Index(10)), Term(2));
  EXPECT_EQ(s->entries(Index(1), Index(12), UINT64_MAX).status().code(), Code::kUnavailable);
}

TEST(DiskLogStorage, MaxBytesLimitsTheResultButReturnsAtLeastOneEntry) {
  FaultFileSystem fs;
  auto s = open_ok(&fs);
  ASSERT_OK(s->save(nullptr, make_entries(1, 10, 1)));
  const uint64_t one = make_entry(1, 1).size_bytes();
  EXPECT_EQ(s->entries(Index(1), Index(11), 0)->size(), 1u);
  EXPECT_EQ(s->entries(Index(1), Index(11), 3 * one)->size(), 3u);
  EXPECT_EQ(s->entries(Index(1), Index(11), 3 * one + 1)->size(), 3u);
  EXPECT_TRUE(s->entries(Index(4), Index(4), 100)->empty());
}

TEST(DiskLogStorage, TheCacheHoldsOnlyTheNewestEntriesWithinItsByteBound) {
  FaultFileSystem fs;
  const uint64_t one = make_entry(1, 1).size_bytes();
  auto s = open_ok(&fs, options(5 * one));
  ASSERT_OK(s->save(nullptr, make_entries(1, 20, 1)));
  EXPECT_EQ(s->cached_entries(), 5u);
  // Fresh entries are served from memory, older ones from disk.
  const uint64_t reads = fs.read_calls();
  EXPECT_EQ(*s->entries(Index(16), Index(21), UINT64_MAX), make_entries(16, 20, 1));
  EXPECT_EQ(fs.read_calls(), reads);
  EXPECT_EQ(*s->entries(Index(1), Index(21), UINT64_MAX), make_entries(1, 20, 1));
  EXPECT_EQ(fs.read_calls(), reads + 15);
  // Overwriting the tail keeps the cache contiguous and bounded.
  ASSERT_OK(s->save(nullptr, make_entries(19, 19, 2)));
  EXPECT_EQ(s->last_index(), Index(19));
  EXPECT_EQ(s->cached_entries(), 4u);
  EXPECT_EQ(*s->entries(Index(19), Index(20), UINT64_MAX), make_entries(19, 19, 2));
  EXPECT_EQ(fs.read_calls(), reads + 15);
}

TEST(DiskLogStorage, FollowerOverwriteReplacesTheCachedAndDurableSuffix) {
  FaultFileSystem fs;
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(nullptr, make_entries(1, 10, 1)));
    ASSERT_OK(s->save(nullptr, make_entries(7, 8, 3)));
    EXPECT_EQ(s->last_index(), Index(8));
    EXPECT_EQ(*s->entries(Index(6), Index(9), UINT64_MAX),
              (std::vector<Entry>{make_entry(6, 1), make_entry(7, 3), make_entry(8, 3)}));
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(*s->entries(Index(6), Index(9), UINT64_MAX),
            (std::vector<Entry>{make_entry(6, 1), make_entry(7, 3), make_entry(8, 3)}));
}

TEST(DiskLogStorage, CompactDropsThePrefixAndReleasesSegments) {
  FaultFileSystem fs;
  {
    auto s = open_ok(&fs);
    for (uint64_t b = 0; b < 20; ++b)
      ASSERT_OK(s->save(nullptr, make_entries(b * 10 + 1, b * 10 + 10, 1)));
    ASSERT_OK(s->snapshot_store().save(snap(150, 1)));
    const size_t before = fs.list(std::string(kDir) + "/wal")->size();
    ASSERT_OK(s->compact(Index(150)));
    EXPECT_LT(fs.list(std::string(kDir) + "/wal")->size(), before);
    EXPECT_EQ(s->first_index(), Index(151));
    EXPECT_EQ(*s->term(Index(150)), Term(1));
    EXPECT_EQ(s->term(Index(149)).status().code(), Code::kOutOfRange);
    EXPECT_EQ(s->entries(Index(150), Index(152), UINT64_MAX).status().code(), Code::kOutOfRange);
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(s->first_index(), Index(151));
  EXPECT_EQ(s->last_index(), Index(200));
  EXPECT_EQ(*s->entries(Index(151), Index(201), UINT64_MAX), make_entries(151, 200, 1));
  EXPECT_EQ(*s->snapshot(), snap(150, 1));
}

// A snapshot streamed in and sealed elsewhere (the server's snapshot thread)
// becomes visible only when add_snapshot finishes it: until then a crash
// leaves the old state, and an abandoned writer leaves nothing behind.
TEST(DiskLogStorage, StreamedSnapshotIsPublishedOnlyWhenAdded) {
  FaultFileSystem fs;
  const raft::Snapshot want = snap(40, 2);
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(nullptr, make_entries(1, 50, 2)));
    {
      Result<std::unique_ptr<SnapshotWriter>> dropped = s->snapshot_store().begin(snap(30, 2).metadata);
      ASSERT_OK(dropped.status());
      ASSERT_OK((*dropped)->append("abandoned"));
    }
    Result<std::unique_ptr<SnapshotWriter>> w = s->snapshot_store().begin(want.metadata);
    ASSERT_OK(w.status());
    for (size_t i = 0; i < want.data.size(); i += 7) {
      ASSERT_OK((*w)->append(std::string_view(want.data).substr(i, 7)));
    }
    ASSERT_OK((*w)->seal());
    EXPECT_EQ((*w)->bytes(), want.data.size());
    EXPECT_TRUE(s->snapshot_store().list()->empty());
    EXPECT_TRUE(s->snapshot()->empty());
    fs.crash();
  }
  {
    auto s = open_ok(&fs);
    EXPECT_TRUE(s->snapshot()->empty());
    EXPECT_TRUE(fs.list(std::string(kDir) + "/snap")->empty());  // no temp file survives
    Result<std::unique_ptr<SnapshotWriter>> w = s->snapshot_store().begin(want.metadata);
    ASSERT_OK(w.status());
    ASSERT_OK((*w)->append(want.data));
    ASSERT_OK((*w)->seal());
    ASSERT_OK(s->add_snapshot(**w));
    EXPECT_EQ(*s->snapshot(), want);
    EXPECT_EQ(s->first_index(), Index(1));  // adding a snapshot discards no entry
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(*s->snapshot(), want);
  EXPECT_EQ(*s->entries(Index(1), Index(51), UINT64_MAX), make_entries(1, 50, 2));
}

TEST(DiskLogStorage, SnapshotInAReadyIsPersistedWithItsMarker) {
  FaultFileSystem fs;
  HardState hs{Term(5), NodeId(2), Index(100)};
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(nullptr, make_entries(1, 10, 1)));
    raft::Snapshot installed = snap(100, 5);
    ASSERT_OK(s->save(&hs, make_entries(101, 103, 5), &installed));
    EXPECT_EQ(s->first_index(), Index(101));
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(s->first_index(), Index(101));
  EXPECT_EQ(s->last_index(), Index(103));
  EXPECT_EQ(*s->term(Index(100)), Term(5));
  EXPECT_EQ(*s->snapshot(), snap(100, 5));
  EXPECT_EQ(s->initial_state()->first, hs);
  EXPECT_EQ(s->initial_state()->second.voters,
            (std::vector<NodeId>{NodeId(1), NodeId(2), NodeId(3)}));
}

// A crash after the snapshot file is durable but before the WAL marker: the
// next open completes the save instead of losing or contradicting it.
TEST(DiskLogStorage, SnapshotNewerThanTheWalCompletesTheInterruptedSave) {
  FaultFileSystem fs;
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(nullptr, make_entries(1, 10, 1)));
    ASSERT_OK(s->snapshot_store().save(snap(40, 3)));
  }
  fs.crash();
  auto s = open_ok(&fs);
  EXPECT_EQ(s->first_index(), Index(41));
  EXPECT_EQ(s->last_index(), Index(40));
  EXPECT_EQ(*s->term(Index(40)), Term(3));
}

// The same crash while installing a leader's snapshot: the stored commit
// index is behind the snapshot. A snapshot holds only committed entries, so
// completing the save raises the commit index to it; otherwise the Raft core
// refuses the storage ("stored commit index is outside the stored log") and
// the member can never restart. Found by the simulator (seed 167 of
// `--faults network,partition,crash,membership`).
TEST(DiskLogStorage, CompletedInterruptedSnapshotSaveRaisesTheCommitIndex) {
  FaultFileSystem fs;
  HardState hs{Term(2), NodeId(1), Index(5)};
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(&hs, make_entries(1, 10, 1)));
    ASSERT_OK(s->snapshot_store().save(snap(40, 3)));
  }
  fs.crash();
  {
    auto s = open_ok(&fs);
    EXPECT_EQ(s->first_index(), Index(41));
    HardState want = hs;
    want.commit = Index(40);
    EXPECT_EQ(s->initial_state()->first, want);
  }
  fs.crash();  // and the raised commit index is durable
  auto s = open_ok(&fs);
  EXPECT_EQ(s->initial_state()->first.commit, Index(40));
}

TEST(DiskLogStorage, CorruptNewestSnapshotFallsBackWhenTheLogCoversTheOlderOne) {
  FaultFileSystem fs;
  std::string newest;
  {
    auto s = open_ok(&fs);
    ASSERT_OK(s->save(nullptr, make_entries(1, 50, 1)));
    ASSERT_OK(s->snapshot_store().save(snap(20, 1)));
    ASSERT_OK(s->compact(Index(10)));  // The log keeps a lag behind the snapshots.
    ASSERT_OK(s->snapshot_store().save(snap(40, 1)));
    newest = (*s->snapshot_store().list())[0];
  }
  ASSERT_OK(fs.flip_bit(newest, 60, 2));
  auto s = open_ok(&fs);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->snapshot_metadata()->index, Index(20));
  EXPECT_EQ(s->first_index(), Index(11));
  // Once the log is compacted past the older snapshot, it can no longer stand in.
  ASSERT_OK(s->compact(Index(30)));
  s.reset();
  Result<std::unique_ptr<DiskLogStorage>> refused = DiskLogStorage::open(&fs, kDir, options());
  ASSERT_EQ(refused.status().code(), Code::kCorruption);
  EXPECT_NE(refused.status().message().find("remove its data directory"), std::string::npos);
}

TEST(DiskLogStorage, FailedSaveFailsTheStorageForGood) {
  FaultFileSystem fs;
  auto s = open_ok(&fs);
  ASSERT_OK(s->save(nullptr, make_entries(1, 2, 1)));
  fs.fail_syncs(FaultFileSystem::Failure::kIO);
  EXPECT_EQ(s->save(nullptr, make_entries(3, 3, 1)).code(), Code::kIOError);
  fs.fail_syncs(FaultFileSystem::Failure::kNone);
  EXPECT_EQ(s->save(nullptr, make_entries(3, 3, 1)).code(), Code::kIOError);
  EXPECT_EQ(s->last_index(), Index(2));
  EXPECT_EQ(s->cached_entries(), 2u);
}

}  // namespace
}  // namespace raftkv::storage
