// The member table and snapshot image codecs: what every member decodes from
// conf-change contexts, publish entries and snapshot files.
#include <gtest/gtest.h>

#include "server/members.h"
#include "server/snapshot_image.h"

namespace raftkv::server {
namespace {

MemberRecord sample(uint64_t id) {
  return MemberRecord{id, "n" + std::to_string(id), {"http://127.0.0.1:2380"},
                      {"http://127.0.0.1:2379", "http://10.0.0.1:2379"}};
}

TEST(MemberRecord, RoundTrips) {
  const MemberRecord m = sample(42);
  Result<MemberRecord> d = decode_member(encode_member(m));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(*d, m);
}

TEST(MemberRecord, RejectsTruncationAtEveryByteAndTrailingBytes) {
  const std::string b = encode_member(sample(7));
  for (size_t n = 0; n < b.size(); ++n) {
    EXPECT_FALSE(decode_member(b.substr(0, n)).is_ok()) << "prefix of " << n << " bytes";
  }
  EXPECT_FALSE(decode_member(b + "x").is_ok());
}

TEST(MemberRecord, RejectsIdZero) {
  EXPECT_FALSE(decode_member(encode_member(sample(0))).is_ok());
}

TEST(MemberTable, RoundTripsInIdOrder) {
  MemberTable t{{3, sample(3)}, {1, sample(1)}, {2, sample(2)}};
  Result<MemberTable> d = decode_member_table(encode_member_table(t));
  ASSERT_TRUE(d.is_ok());
  EXPECT_EQ(*d, t);
}

TEST(MemberTable, RejectsAHugeCountWithoutAllocating) {
  std::string b = encode_member_table({});
  b[3] = '\x7f';  // count 0x7f000000
  EXPECT_FALSE(decode_member_table(b).is_ok());
}

class VectorStream : public kv::SnapshotStream {
 public:
  explicit VectorStream(std::vector<std::string> chunks) : chunks_(std::move(chunks)) {}
  raft::Index applied_index() const override { return raft::Index(9); }
  Result<std::optional<std::string>> next_chunk() override {
    if (next_ == chunks_.size()) return std::optional<std::string>();
    return std::optional<std::string>(chunks_[next_++]);
  }

 private:
  std::vector<std::string> chunks_;
  size_t next_ = 0;
};

TEST(SnapshotImage, CarriesTheMemberTableAndEveryChunkInOrder) {
  MemberTable t{{1, sample(1)}, {2, sample(2)}};
  VectorStream s({"alpha", std::string(3000, 'b'), "c"});
  Result<std::string> img = build_snapshot_image(t, s);
  ASSERT_TRUE(img.is_ok());
  Result<SnapshotImage> p = SnapshotImage::parse(*img);
  ASSERT_TRUE(p.is_ok()) << p.status().to_string();
  EXPECT_EQ(p->members(), t);
  kv::ChunkSource src = p->chunks();
  std::vector<std::string> got;
  for (int i = 0; i < 10; ++i) {
    Result<std::optional<std::string>> c = src();
    ASSERT_TRUE(c.is_ok());
    if (!c->has_value()) break;
    got.push_back(**c);
  }
  EXPECT_EQ(got, (std::vector<std::string>{"alpha", std::string(3000, 'b'), "c"}));
}

TEST(SnapshotImage, RejectsBadMagicTruncationAndTrailingBytes) {
  VectorStream s({"chunk-one", "chunk-two"});
  Result<std::string> img = build_snapshot_image({{5, sample(5)}}, s);
  ASSERT_TRUE(img.is_ok());
  std::string bad = *img;
  bad[0] = 'X';
  EXPECT_FALSE(SnapshotImage::parse(bad).is_ok());
  for (size_t n = 0; n < img->size(); ++n) {
    EXPECT_FALSE(SnapshotImage::parse(img->substr(0, n)).is_ok()) << "prefix of " << n;
  }
  EXPECT_FALSE(SnapshotImage::parse(*img + "z").is_ok());
}

}  // namespace
}  // namespace raftkv::server
