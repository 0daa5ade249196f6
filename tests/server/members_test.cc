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

// --- Membership-change rules (etcd's, see check_member_change) ------------

MemberRecord started(uint64_t id, int port) {
  return MemberRecord{id, "m" + std::to_string(id), {"http://127.0.0.1:" + std::to_string(port)},
                      {"http://127.0.0.1:1"}};
}
MemberRecord unstarted(uint64_t id, int port) {
  return MemberRecord{id, "", {"http://127.0.0.1:" + std::to_string(port)}, {}};
}

MembershipView view_of(std::vector<MemberRecord> ms, std::set<uint64_t> learners = {}) {
  MembershipView v;
  for (auto& m : ms) v.members[m.id] = m;
  v.learners = std::move(learners);
  return v;
}

MemberChange add(uint64_t id, int port, bool learner = false) {
  return MemberChange{learner ? MemberChangeKind::kAddLearner : MemberChangeKind::kAddVoter, id,
                      {"http://127.0.0.1:" + std::to_string(port)}};
}

TEST(MemberChangeRules, AddRefusesDuplicateIdAndPeerUrlAndBadUrls) {
  const MembershipView v = view_of({started(1, 1001), started(2, 1002), started(3, 1003)});
  EXPECT_TRUE(check_member_change(v, add(4, 1004)).is_ok());
  Status dup = check_member_change(v, add(2, 1004));
  EXPECT_EQ(dup.code(), Code::kFailedPrecondition);
  EXPECT_EQ(dup.message(), "etcdserver: member ID already exist");
  Status url = check_member_change(v, add(4, 1002));
  EXPECT_EQ(url.code(), Code::kFailedPrecondition);
  EXPECT_EQ(url.message(), "etcdserver: Peer URLs already exists");
  MemberChange bad{MemberChangeKind::kAddVoter, 4, {"ftp://x"}};
  EXPECT_EQ(check_member_change(v, bad).message(), "etcdserver: given member URLs are invalid");
  bad.peer_urls.clear();
  EXPECT_EQ(check_member_change(v, bad).code(), Code::kInvalidArgument);
}

TEST(MemberChangeRules, StrictCheckCountsStartedVoters) {
  // One voter may get a second, unstarted one (etcd's restore case) ...
  EXPECT_TRUE(check_member_change(view_of({started(1, 1001)}), add(2, 1002)).is_ok());
  // ... but not a third while the second has not started.
  MembershipView v = view_of({started(1, 1001), unstarted(2, 1002)});
  Status st = check_member_change(v, add(3, 1003));
  EXPECT_EQ(st.code(), Code::kFailedPrecondition);
  EXPECT_EQ(st.message(),
            "etcdserver: re-configuration failed due to not enough started members");
  v.strict_reconfig_check = false;
  EXPECT_TRUE(check_member_change(v, add(3, 1003)).is_ok());
  // Removing a started voter of three when one is down leaves 1 of 2 started.
  MembershipView w = view_of({started(1, 1001), started(2, 1002), unstarted(3, 1003)});
  EXPECT_EQ(check_member_change(w, {MemberChangeKind::kRemove, 1, {}}).code(),
            Code::kFailedPrecondition);
  EXPECT_TRUE(check_member_change(w, {MemberChangeKind::kRemove, 3, {}}).is_ok());
  // The last voter cannot be removed.
  EXPECT_EQ(check_member_change(view_of({started(1, 1001)}), {MemberChangeKind::kRemove, 1, {}})
                .code(),
            Code::kFailedPrecondition);
}

TEST(MemberChangeRules, RemoveAndUpdateOfUnknownMemberAreNotFound) {
  const MembershipView v = view_of({started(1, 1001), started(2, 1002), started(3, 1003)});
  Status st = check_member_change(v, {MemberChangeKind::kRemove, 9, {}});
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_EQ(st.message(), "etcdserver: member not found");
  EXPECT_EQ(check_member_change(v, {MemberChangeKind::kUpdate, 9, {"http://127.0.0.1:9"}}).code(),
            Code::kNotFound);
  // Updating a member to its own URL is fine; to another member's is not.
  EXPECT_TRUE(check_member_change(v, {MemberChangeKind::kUpdate, 2, {"http://127.0.0.1:1002"}})
                  .is_ok());
  EXPECT_EQ(check_member_change(v, {MemberChangeKind::kUpdate, 2, {"http://127.0.0.1:1003"}})
                .message(),
            "etcdserver: Peer URLs already exists");
}

TEST(MemberChangeRules, LearnersAreBoundedAndOnlyLearnersArePromoted) {
  MembershipView v = view_of({started(1, 1001), started(2, 1002), started(3, 1003)}, {3});
  Status st = check_member_change(v, add(4, 1004, true));
  EXPECT_EQ(st.message(), "etcdserver: too many learner members in cluster");
  v.max_learners = 2;
  EXPECT_TRUE(check_member_change(v, add(4, 1004, true)).is_ok());
  EXPECT_TRUE(check_member_change(v, {MemberChangeKind::kPromote, 3, {}}).is_ok());
  Status voter = check_member_change(v, {MemberChangeKind::kPromote, 2, {}});
  EXPECT_EQ(voter.code(), Code::kFailedPrecondition);
  EXPECT_EQ(voter.message(), "etcdserver: can only promote a learner member");
  EXPECT_EQ(check_member_change(v, {MemberChangeKind::kPromote, 9, {}}).code(), Code::kNotFound);
  // A learner never counts for the strict check: removing one is always fine.
  EXPECT_TRUE(check_member_change(v, {MemberChangeKind::kRemove, 3, {}}).is_ok());
}

TEST(MemberChangeRules, LearnerInSyncIsNinetyPercentOfTheLeader) {
  EXPECT_TRUE(learner_in_sync(90, 100));
  EXPECT_FALSE(learner_in_sync(89, 100));
  EXPECT_TRUE(learner_in_sync(0, 0));
}

TEST(MemberChangeRules, NewMemberIdsDependOnTimeAndAreNeverZero) {
  const uint64_t a = new_member_id({"http://127.0.0.1:5"}, "tok", 1);
  const uint64_t b = new_member_id({"http://127.0.0.1:5"}, "tok", 2);
  EXPECT_NE(a, b);
  EXPECT_NE(a, 0u);
  EXPECT_EQ(a, new_member_id({"http://127.0.0.1:5"}, "tok", 1));
}

}  // namespace
}  // namespace raftkv::server
