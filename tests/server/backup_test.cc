// Backup files (server/backup.h): etcd's length and SHA-256 rules, our
// framing, the refusals of damaged files, restore into a new member's data
// directory; plus the corruption check's comparison and duration parsing.
#include "server/backup.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "server/config.h"
#include "server/maintainer.h"

namespace raftkv::server {
namespace {

namespace fs = std::filesystem;

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("raftkv-backup-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    auto s = kv::Store::open((dir_ / "src").string(), kv::StoreOptions{});
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(*s);
    std::vector<raftkvpb::InternalRequest> reqs(50);
    std::vector<kv::ApplyEntry> batch;
    for (size_t i = 0; i < reqs.size(); ++i) {
      reqs[i].mutable_put()->set_key("key" + std::to_string(i));
      reqs[i].mutable_put()->set_value(std::string(i * 10, 'v'));
      batch.push_back({raft::Index(i + 1), &reqs[i]});
    }
    ASSERT_TRUE(store_->apply(batch).is_ok());
    auto stream = store_->snapshot();
    ASSERT_TRUE(stream.is_ok());
    ASSERT_TRUE(write_backup(**stream, &bytes_).is_ok());
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(dir_);
  }
  std::string write_file(const std::string& name, const std::string& content) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

  fs::path dir_;
  std::unique_ptr<kv::Store> store_;
  std::string bytes_;
};

TEST_F(BackupTest, LengthIs512kPlus32AndParses) {
  ASSERT_GE(bytes_.size(), 512u + 32u);
  EXPECT_EQ(bytes_.size() % 512, 32u);
  EXPECT_TRUE(Backup::parse(bytes_).is_ok());
}

TEST_F(BackupTest, EveryBitFlipSampleIsRefused) {
  for (size_t at = 0; at < bytes_.size(); at += 97) {
    std::string b = bytes_;
    b[at] = static_cast<char>(b[at] ^ 0x10);
    auto r = Backup::parse(b);
    ASSERT_FALSE(r.is_ok()) << "flip at " << at;
    EXPECT_NE(r.status().message().find("SHA-256 mismatch"), std::string::npos);
  }
}

TEST_F(BackupTest, TruncationIsRefusedWithItsReason) {
  for (size_t cut : {size_t{1}, size_t{32}, size_t{512}, bytes_.size() - 1}) {
    auto r = Backup::parse(bytes_.substr(0, bytes_.size() - cut));
    ASSERT_FALSE(r.is_ok()) << "cut " << cut;
  }
  auto r = Backup::parse(bytes_.substr(0, bytes_.size() - 512));
  EXPECT_FALSE(r.is_ok());
}

TEST_F(BackupTest, RestoreBuildsADataDirWithTheKeysAndTheBootstrapLog) {
  const std::string file = write_file("snap.db", bytes_);
  Config c;
  c.name = "m1";
  c.data_dir = (dir_ / "m1").string();
  c.initial_cluster = "m1=http://127.0.0.1:1,m2=http://127.0.0.1:2";
  c.initial_advertise_peer_urls = {"http://127.0.0.1:1"};
  c.listen_peer_urls = {"http://127.0.0.1:1"};
  ASSERT_TRUE(validate_config(c).is_ok());
  ASSERT_TRUE(restore_backup(file, c).is_ok());
  EXPECT_TRUE(fs::exists(dir_ / "m1" / "raftkv.meta"));
  auto s = kv::Store::open((dir_ / "m1" / "kv").string(), kv::StoreOptions{});
  ASSERT_TRUE(s.is_ok()) << s.status().to_string();
  EXPECT_EQ((*s)->applied_index().value(), 2u);  // the two bootstrap entries
  EXPECT_EQ((*s)->hash_kv(0)->hash(), store_->hash_kv(0)->hash());
  // A second restore into the same directory is refused.
  Status again = restore_backup(file, c);
  EXPECT_EQ(again.code(), Code::kFailedPrecondition);
}

TEST_F(BackupTest, StatusReportsRevisionAndKeys) {
  const std::string file = write_file("snap.db", bytes_);
  auto st = backup_status(file, dir_.string());
  ASSERT_TRUE(st.is_ok()) << st.status().to_string();
  EXPECT_EQ(st->revision, store_->revision());
  EXPECT_EQ(st->total_keys, 50u);
  EXPECT_EQ(st->hash, store_->hash_kv(0)->hash());
}

TEST(CorruptionCheck, OnlyComparableAnswersCount) {
  std::vector<PeerHash> peers = {
      {1, true, 100, 5},   // same
      {2, true, 101, 5},   // differs
      {3, true, 999, 6},   // other compaction point: not comparable
      {4, false, 0, 0},    // did not answer
  };
  EXPECT_EQ(mismatched_members(100, 5, peers), std::vector<uint64_t>{2});
}

TEST(GoDuration, ParsesEtcdStyleDurations) {
  EXPECT_EQ(*parse_go_duration_ms("0"), 0u);
  EXPECT_EQ(*parse_go_duration_ms("0s"), 0u);
  EXPECT_EQ(*parse_go_duration_ms("1.5s"), 1500u);
  EXPECT_EQ(*parse_go_duration_ms("2m30s"), 150000u);
  EXPECT_EQ(*parse_go_duration_ms("100ms"), 100u);
  EXPECT_EQ(*parse_go_duration_ms("1h"), 3600000u);
  EXPECT_FALSE(parse_go_duration_ms("5").is_ok());
  EXPECT_FALSE(parse_go_duration_ms("5 parsecs").is_ok());
  EXPECT_FALSE(parse_go_duration_ms("").is_ok());
}

TEST(MaintenanceFlags, DefaultsAndSpellings) {
  auto parse = [](std::vector<const char*> args) {
    args.insert(args.begin(), "raftkv");
    return parse_flags(static_cast<int>(args.size()), args.data());
  };
  auto d = parse({});
  ASSERT_TRUE(d.is_ok()) << d.status().to_string();
  EXPECT_FALSE(d->config.initial_corrupt_check);
  EXPECT_EQ(d->config.corrupt_check_interval_ms, 0u);
  EXPECT_TRUE(d->config.auto_clear_nospace_alarm);
  auto on = parse({"--experimental-initial-corrupt-check", "--experimental-corrupt-check-time",
                   "2m", "--auto-clear-nospace-alarm=false"});
  ASSERT_TRUE(on.is_ok()) << on.status().to_string();
  EXPECT_TRUE(on->config.initial_corrupt_check);
  EXPECT_EQ(on->config.corrupt_check_interval_ms, 120000u);
  EXPECT_FALSE(on->config.auto_clear_nospace_alarm);
  auto bad = parse({"--experimental-corrupt-check-time", "often"});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_NE(bad.status().message().find("--experimental-corrupt-check-time"), std::string::npos);
}

}  // namespace
}  // namespace raftkv::server
