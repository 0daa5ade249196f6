// SnapshotStore: atomic writes, chunked streaming, checksums, retention and
// the fall-back rule for a corrupt newest snapshot.
#include "storage/snapshot_store.h"

#include <gtest/gtest.h>

#include "storage/fault_file_system.h"
#include "test_util.h"

namespace raftkv::storage {
namespace {

using raft::Index;
using raft::NodeId;
using raft::Snapshot;
using raft::SnapshotMetadata;
using raft::Term;

constexpr const char* kDir = "/data/snap";

SnapshotMetadata meta(uint64_t index, uint64_t term) {
  SnapshotMetadata m;
  m.index = Index(index);
  m.term = Term(term);
  m.conf_state.voters = {NodeId(1), NodeId(2), NodeId(3)};
  m.conf_state.learners = {NodeId(4)};
  m.conf_state.voters_outgoing = {NodeId(1), NodeId(2)};
  m.conf_state.learners_next = {NodeId(5)};
  m.conf_state.auto_leave = true;
  return m;
}

Snapshot snap(uint64_t index, uint64_t term, size_t bytes = 1000) {
  Snapshot s;
  s.metadata = meta(index, term);
  for (size_t k = 0; k < bytes; ++k)
    s.data.push_back(static_cast<char>('A' + (k * 7 + index) % 26));
  return s;
}

std::unique_ptr<SnapshotStore> open_store(FileSystem* fs, SnapshotStoreOptions o = {}) {
  Result<std::unique_ptr<SnapshotStore>> s = SnapshotStore::open(fs, kDir, o);
  EXPECT_TRUE(s.is_ok()) << s.status().to_string();
  return std::move(*s);
}

auto always = [](const SnapshotMetadata&) { return true; };
auto never = [](const SnapshotMetadata&) { return false; };

TEST(SnapshotStore, WholeSnapshotRoundTripsWithMetadataAfterACrash) {
  FaultFileSystem fs;
  auto store = open_store(&fs);
  ASSERT_OK(store->save(snap(10, 2)));
  fs.crash();
  store = open_store(&fs);
  Result<SnapshotChoice> c = store->choose(always);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  ASSERT_TRUE(c->metadata.has_value());
  EXPECT_EQ(*c->metadata, meta(10, 2));
  EXPECT_TRUE(c->problems.empty());
  EXPECT_EQ(*store->load(c->path), snap(10, 2));
}

TEST(SnapshotStore, NoSnapshotChoosesNothing) {
  FaultFileSystem fs;
  auto store = open_store(&fs);
  Result<SnapshotChoice> c = store->choose(always);
  ASSERT_TRUE(c.is_ok());
  EXPECT_FALSE(c->metadata.has_value());
}

TEST(SnapshotStore, LargeImagesStreamInChunksBothWays) {
  FaultFileSystem fs;
  SnapshotStoreOptions o;
  o.chunk_bytes = 4096;
  auto store = open_store(&fs, o);
  Result<std::unique_ptr<SnapshotWriter>> w = store->begin(meta(50, 3));
  ASSERT_TRUE(w.is_ok());
  std::string expected;
  for (int piece = 0; piece < 100; ++piece) {
    std::string p(1000 + piece, static_cast<char>('a' + piece % 26));
    expected += p;
    ASSERT_OK((*w)->append(p));
  }
  ASSERT_OK((*w)->finish());
  Result<std::unique_ptr<SnapshotReader>> r = store->open_reader((*w)->path());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ((*r)->metadata(), meta(50, 3));
  std::string got, chunk;
  int chunks = 0;
  for (;;) {
    Result<bool> more = (*r)->next_chunk(&chunk);
    ASSERT_TRUE(more.is_ok()) << more.status().to_string();
    if (!*more) break;
    EXPECT_LE(chunk.size(), 4096u);
    got += chunk;
    ++chunks;
  }
  EXPECT_EQ(got, expected);
  EXPECT_EQ(chunks, static_cast<int>((expected.size() + 4095) / 4096));
}

TEST(SnapshotStore, ALargeImageIsSyncedAsItIsWritten) {
  // Every 8 MiB, so its dirty pages never become one long flush that the
  // WAL's fdatasync would wait behind (snapshot_store.h, kSyncEveryBytes).
  FaultFileSystem fs;
  auto store = open_store(&fs);
  Result<std::unique_ptr<SnapshotWriter>> w = store->begin(meta(60, 3));
  ASSERT_TRUE(w.is_ok());
  const uint64_t syncs_before = fs.sync_calls();
  const std::string mib(1 << 20, 'x');
  for (int i = 0; i < 4; ++i) ASSERT_OK((*w)->append(mib));
  EXPECT_EQ(fs.sync_calls(), syncs_before);  // below 8 MiB: nothing yet
  for (int i = 0; i < 20; ++i) ASSERT_OK((*w)->append(mib));
  EXPECT_GE(fs.sync_calls() - syncs_before, 2u);  // 24 MiB written: at 8 and 16
  EXPECT_LE(fs.sync_calls() - syncs_before, 3u);
  ASSERT_OK((*w)->finish());
  Result<std::unique_ptr<SnapshotReader>> r = store->open_reader((*w)->path());
  ASSERT_TRUE(r.is_ok());
  Result<std::string> all = (*r)->read_all();
  ASSERT_TRUE(all.is_ok());
  EXPECT_EQ(all->size(), 24u << 20);
}

// Atomicity: a crash before finish() returns leaves the previous snapshot as
// the newest, and the temp file is cleaned up.
TEST(SnapshotStore, CrashMidWriteLeavesTheOldSnapshot) {
  for (auto mode :
       {FaultFileSystem::CrashMode::kDropUnsynced, FaultFileSystem::CrashMode::kKeepUnsyncedData,
        FaultFileSystem::CrashMode::kKeepUnsynced}) {
    FaultFileSystem fs;
    auto store = open_store(&fs);
    ASSERT_OK(store->save(snap(10, 1)));
    Result<std::unique_ptr<SnapshotWriter>> w = store->begin(meta(20, 1));
    ASSERT_TRUE(w.is_ok());
    ASSERT_OK((*w)->append(std::string(5000, 'x')));
    fs.crash(mode);  // Before finish(). The old writer is never used again.
    auto restarted = open_store(&fs);
    Result<SnapshotChoice> c = restarted->choose(always);
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    EXPECT_EQ(c->metadata->index, Index(10));
    Result<std::vector<std::string>> names = fs.list(kDir);
    EXPECT_EQ(names->size(), 1u) << "temp file left behind";
    w->reset();
  }
}

TEST(SnapshotStore, CrashAfterRenameBeforeDirectorySyncKeepsOldOrNewNeverHalf) {
  FaultFileSystem fs;
  auto store = open_store(&fs);
  ASSERT_OK(store->save(snap(10, 1)));
  fs.fail_syncs(FaultFileSystem::Failure::kIO, 1);  // File sync ok, directory sync fails.
  EXPECT_FALSE(store->save(snap(20, 1)).is_ok());
  fs.fail_syncs(FaultFileSystem::Failure::kNone);
  fs.crash();
  store = open_store(&fs);
  Result<SnapshotChoice> c = store->choose(always);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ(c->metadata->index, Index(10));
  EXPECT_EQ(*store->load(c->path), snap(10, 1));
}

TEST(SnapshotStore, EveryFlippedByteIsDetectedAndNamesFileAndOffset) {
  FaultFileSystem fs;
  SnapshotStoreOptions o;
  o.chunk_bytes = 256;
  auto store = open_store(&fs, o);
  ASSERT_OK(store->save(snap(7, 1, 600)));
  const std::string path = (*store->list())[0];
  const std::string good = *fs.contents(path);
  for (uint64_t byte = 0; byte < good.size(); ++byte) {
    ASSERT_OK(fs.put_file(path, good));
    ASSERT_OK(fs.flip_bit(path, byte, static_cast<int>(byte % 8)));
    Result<SnapshotMetadata> v = store->verify(path);
    ASSERT_FALSE(v.is_ok()) << "flip at " << byte << " went unnoticed";
    EXPECT_EQ(v.status().code(), Code::kCorruption);
    EXPECT_NE(v.status().message().find(path), std::string::npos) << v.status().message();
    EXPECT_NE(v.status().message().find("offset"), std::string::npos) << v.status().message();
  }
  // Truncation and trailing garbage too.
  ASSERT_OK(fs.put_file(path, good.substr(0, good.size() - 1)));
  EXPECT_EQ(store->verify(path).status().code(), Code::kCorruption);
  ASSERT_OK(fs.put_file(path, good + "x"));
  EXPECT_EQ(store->verify(path).status().code(), Code::kCorruption);
}

// The load rule: a corrupt newest snapshot is reported; an older valid one is
// used only if the WAL still covers it, else open fails with corruption.
TEST(SnapshotStore, CorruptNewestFallsBackOnlyWhenTheWalCoversTheOlderOne) {
  FaultFileSystem fs;
  auto store = open_store(&fs);
  ASSERT_OK(store->save(snap(10, 1)));
  ASSERT_OK(store->save(snap(20, 1)));
  const std::string newest = (*store->list())[0];
  ASSERT_OK(fs.flip_bit(newest, 100, 0));
  Result<SnapshotChoice> c = store->choose(always);
  ASSERT_TRUE(c.is_ok()) << c.status().to_string();
  EXPECT_EQ(c->metadata->index, Index(10));
  ASSERT_EQ(c->problems.size(), 1u);
  EXPECT_NE(c->problems[0].find(newest), std::string::npos);
  Result<SnapshotChoice> refused = store->choose(never);
  ASSERT_EQ(refused.status().code(), Code::kCorruption);
  EXPECT_NE(refused.status().message().find(newest), std::string::npos);
  EXPECT_NE(refused.status().message().find("remove its data directory"), std::string::npos);
}

TEST(SnapshotStore, RetentionKeepsTheNewestN) {
  FaultFileSystem fs;
  SnapshotStoreOptions o;
  o.retain = 3;
  auto store = open_store(&fs, o);
  for (uint64_t i = 1; i <= 6; ++i) ASSERT_OK(store->save(snap(i * 10, 1, 10)));
  fs.crash();
  Result<std::vector<std::string>> paths = store->list();
  ASSERT_EQ(paths->size(), 3u);
  EXPECT_NE((*paths)[0].find(snapshot_file_name(Index(60), Term(1))), std::string::npos);
  EXPECT_NE((*paths)[2].find(snapshot_file_name(Index(40), Term(1))), std::string::npos);
}

TEST(SnapshotStore, WriteErrorsAreReportedAndNothingIsPublished) {
  FaultFileSystem fs;
  auto store = open_store(&fs);
  fs.fail_writes(FaultFileSystem::Failure::kNoSpace, 1);
  Status s = store->save(snap(5, 1));
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(s.message().find("ENOSPC"), std::string::npos);
  fs.fail_writes(FaultFileSystem::Failure::kNone);
  EXPECT_TRUE(store->list()->empty());
  EXPECT_TRUE(fs.list(kDir)->empty()) << "temp file left behind";
}

TEST(SnapshotStore, MetadataCodecRejectsMalformedInput) {
  std::string good = encode_snapshot_metadata(meta(3, 4));
  EXPECT_EQ(*decode_snapshot_metadata(good), meta(3, 4));
  EXPECT_EQ(decode_snapshot_metadata(good.substr(0, good.size() - 1)).status().code(),
            Code::kCorruption);
  EXPECT_EQ(decode_snapshot_metadata(good + "x").status().code(), Code::kCorruption);
  std::string huge = good;
  huge[16] = '\xff';
  huge[17] = '\xff';
  EXPECT_EQ(decode_snapshot_metadata(huge).status().code(), Code::kCorruption);
}

}  // namespace
}  // namespace raftkv::storage
