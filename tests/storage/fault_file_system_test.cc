// FaultFileSystem: the durability model the WAL and snapshot tests rely on.
#include "storage/fault_file_system.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace raftkv::storage {
namespace {

using Mode = FaultFileSystem::CrashMode;

std::unique_ptr<File> create(FaultFileSystem* fs, const std::string& path) {
  Result<std::unique_ptr<File>> f = fs->open(path, OpenMode::kCreateExclusive);
  EXPECT_TRUE(f.is_ok()) << f.status().to_string();
  return std::move(*f);
}

TEST(FaultFileSystem, CrashKeepsSyncedBytesAndDropsUnsyncedOnes) {
  FaultFileSystem fs;
  ASSERT_OK(fs.create_dir("/d"));
  auto f = create(&fs, "/d/a");
  ASSERT_OK(f->append("synced"));
  ASSERT_OK(f->sync());
  ASSERT_OK(fs.sync_dir("/d"));
  ASSERT_OK(f->append("-lost"));
  ASSERT_OK(f->pwrite(0, "S"));
  EXPECT_EQ(*fs.contents("/d/a"), "Synced-lost");
  fs.crash();
  EXPECT_EQ(*fs.contents("/d/a"), "synced");
  // The old handle is stale after the crash.
  std::string out;
  EXPECT_EQ(f->read(0, 3, &out).code(), Code::kIOError);
}

TEST(FaultFileSystem, CreatedFileWithoutDirectorySyncVanishesInACrash) {
  FaultFileSystem fs;
  ASSERT_OK(fs.create_dir("/d"));
  auto f = create(&fs, "/d/new");
  ASSERT_OK(f->append("data"));
  ASSERT_OK(f->sync());  // Data synced, directory entry not.
  fs.crash();
  EXPECT_FALSE(fs.exists("/d/new"));
  auto g = create(&fs, "/d/new");
  ASSERT_OK(g->append("data"));
  ASSERT_OK(g->sync());
  ASSERT_OK(fs.sync_dir("/d"));
  fs.crash();
  EXPECT_EQ(*fs.contents("/d/new"), "data");
}

TEST(FaultFileSystem, UnsyncedRenameAndRemoveAreUndoneByACrash) {
  FaultFileSystem fs;
  ASSERT_OK(fs.put_file("/d/old", "old"));
  ASSERT_OK(fs.put_file("/d/tmp", "new"));
  ASSERT_OK(fs.rename("/d/tmp", "/d/old"));
  ASSERT_OK(fs.remove("/d/old"));
  EXPECT_FALSE(fs.exists("/d/old"));
  fs.crash();
  EXPECT_EQ(*fs.contents("/d/old"), "old");
  EXPECT_EQ(*fs.contents("/d/tmp"), "new");
  ASSERT_OK(fs.rename("/d/tmp", "/d/old"));
  ASSERT_OK(fs.sync_dir("/d"));
  fs.crash();
  EXPECT_EQ(*fs.contents("/d/old"), "new");
  EXPECT_FALSE(fs.exists("/d/tmp"));
  EXPECT_EQ(*fs.list("/d"), std::vector<std::string>{"old"});
}

TEST(FaultFileSystem, TearLastWriteKeepsAPrefixAndRestoresTheRest) {
  FaultFileSystem fs;
  ASSERT_OK(fs.put_file("/d/f", std::string(10, '.')));
  Result<std::unique_ptr<File>> f = fs.open("/d/f", OpenMode::kReadWrite);
  ASSERT_OK((*f)->pwrite(2, "abcdef"));
  ASSERT_OK(fs.tear_last_write("/d/f", 3));
  EXPECT_EQ(*fs.contents("/d/f"), "..abc.....");
  fs.crash(Mode::kKeepUnsynced);
  EXPECT_EQ(*fs.contents("/d/f"), "..abc.....");
  EXPECT_EQ(fs.tear_last_write("/d/f", 1).code(), Code::kFailedPrecondition);
}

TEST(FaultFileSystem, PartialCrashKeepsAPrefixOfUnsyncedWritesWithTheLastTorn) {
  FaultFileSystem fs;
  ASSERT_OK(fs.put_file("/d/f", "base"));
  Result<std::unique_ptr<File>> f = fs.open("/d/f", OpenMode::kReadWrite);
  ASSERT_OK((*f)->append("-one"));
  ASSERT_OK((*f)->append("-two"));
  ASSERT_OK((*f)->append("-three"));
  auto g = fs.open("/d/new", OpenMode::kCreateExclusive);
  ASSERT_TRUE(g.is_ok());
  // Choices in order: keep 2 of 3 ops of /d/f, keep 2 bytes of the second,
  // then lose the directory's un-synced entry (/d/new has no data to choose).
  std::vector<uint64_t> script = {2, 2, 0};
  size_t next = 0;
  fs.crash_partial([&](uint64_t n) {
    uint64_t v = next < script.size() ? script[next++] : 0;
    EXPECT_LE(v, n);
    return v;
  });
  EXPECT_EQ(*fs.contents("/d/f"), "base-one-t");
  EXPECT_FALSE(fs.exists("/d/new"));
  EXPECT_EQ(next, script.size());
}

TEST(FaultFileSystem, PreallocateZeroFillsAndTruncateShrinks) {
  FaultFileSystem fs;
  ASSERT_OK(fs.create_dir("/d"));
  auto f = create(&fs, "/d/f");
  ASSERT_OK(f->append("xy"));
  ASSERT_OK(f->preallocate(8));
  EXPECT_EQ(*fs.contents("/d/f"), std::string("xy\0\0\0\0\0\0", 8));
  ASSERT_OK(f->truncate(1));
  EXPECT_EQ(*f->size(), 1u);
}

TEST(FaultFileSystem, FlipBitChangesOneBitDurably) {
  FaultFileSystem fs;
  ASSERT_OK(fs.put_file("/d/f", "A"));
  ASSERT_OK(fs.flip_bit("/d/f", 0, 1));
  fs.crash();
  EXPECT_EQ(*fs.contents("/d/f"), "C");
}

TEST(FaultFileSystem, InjectedErrorsAfterKSuccessesAreStickyUntilCleared) {
  FaultFileSystem fs;
  ASSERT_OK(fs.create_dir("/d"));
  auto f = create(&fs, "/d/f");
  fs.fail_writes(FaultFileSystem::Failure::kNoSpace, 2);
  EXPECT_OK(f->append("1"));
  EXPECT_OK(f->append("2"));
  Status s = f->append("3");
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(s.message().find("ENOSPC"), std::string::npos);
  EXPECT_FALSE(f->append("4").is_ok());
  fs.fail_writes(FaultFileSystem::Failure::kNone);
  EXPECT_OK(f->append("5"));
  fs.fail_syncs(FaultFileSystem::Failure::kIO);
  Status sync = f->sync();
  EXPECT_NE(sync.message().find("EIO"), std::string::npos);
  fs.fail_syncs(FaultFileSystem::Failure::kNone);
  fs.crash();  // The failed sync made nothing durable; the entry was never synced either.
  EXPECT_FALSE(fs.exists("/d/f"));
}

}  // namespace
}  // namespace raftkv::storage
