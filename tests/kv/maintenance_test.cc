// kv::Store's maintenance parts: alarms (replicated state, etcd's refusals,
// persistence and snapshot), the whole-state hash, online disk compaction
// and the restore rebase used by backups.
#include <gtest/gtest.h>

#include <string>

#include "kv/errors.h"
#include "kv/store.h"
#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using etcdserverpb::AlarmRequest;
using etcdserverpb::AlarmType;
using testing::compact_req;
using testing::del_req;
using testing::Harness;
using testing::put_req;
using testing::TempDir;

raftkvpb::InternalRequest alarm_req(AlarmRequest::AlarmAction action, uint64_t member,
                                    AlarmType type) {
  raftkvpb::InternalRequest r;
  r.mutable_alarm()->set_action(action);
  r.mutable_alarm()->set_memberid(member);
  r.mutable_alarm()->set_alarm(type);
  return r;
}

raftkvpb::InternalRequest txn_put(const std::string& k, const std::string& v) {
  raftkvpb::InternalRequest r;
  auto* op = r.mutable_txn()->add_success()->mutable_request_put();
  op->set_key(k);
  op->set_value(v);
  return r;
}

raftkvpb::InternalRequest txn_del(const std::string& k) {
  raftkvpb::InternalRequest r;
  r.mutable_txn()->add_success()->mutable_request_delete_range()->set_key(k);
  return r;
}

raftkvpb::InternalRequest lease_grant(int64_t id) {
  raftkvpb::InternalRequest r;
  r.mutable_lease_grant()->set_id(id);
  r.mutable_lease_grant()->set_ttl(60);
  return r;
}

class MaintenanceTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  Harness h_{tmp_.sub("db")};
};

TEST_F(MaintenanceTest, ActivateAndDeactivateAnswerLikeEtcd) {
  auto a = h_.apply(alarm_req(AlarmRequest::ACTIVATE, 7, AlarmType::NOSPACE));
  ASSERT_TRUE(a.status.is_ok()) << a.status.to_string();
  ASSERT_EQ(a.response.alarm().alarms_size(), 1);
  EXPECT_EQ(a.response.alarm().alarms(0).memberid(), 7u);
  EXPECT_TRUE(h_.store().alarm_active(AlarmType::NOSPACE));
  EXPECT_FALSE(h_.store().alarm_active(AlarmType::CORRUPT));
  ASSERT_EQ(h_.store().alarms().size(), 1u);

  // Deactivating an alarm that is not active reports nothing (etcd).
  auto none = h_.apply(alarm_req(AlarmRequest::DEACTIVATE, 8, AlarmType::NOSPACE));
  ASSERT_TRUE(none.status.is_ok());
  EXPECT_EQ(none.response.alarm().alarms_size(), 0);
  auto d = h_.apply(alarm_req(AlarmRequest::DEACTIVATE, 7, AlarmType::NOSPACE));
  ASSERT_TRUE(d.status.is_ok());
  EXPECT_EQ(d.response.alarm().alarms_size(), 1);
  EXPECT_TRUE(h_.store().alarms().empty());

  auto bad = h_.apply(alarm_req(AlarmRequest::ACTIVATE, 7, AlarmType::NONE));
  EXPECT_EQ(bad.status.code(), Code::kInvalidArgument);
}

TEST_F(MaintenanceTest, NospaceRefusesPutsTxnPutsAndLeaseGrantsOnly) {
  h_.put("a", "1");
  h_.apply(alarm_req(AlarmRequest::ACTIVATE, 1, AlarmType::NOSPACE));
  EXPECT_EQ(h_.apply(put_req("b", "2")).status, errors::no_space());
  EXPECT_EQ(h_.apply(txn_put("b", "2")).status, errors::no_space());
  EXPECT_EQ(h_.apply(lease_grant(5)).status, errors::no_space());
  EXPECT_TRUE(h_.apply(txn_del("a")).status.is_ok());
  EXPECT_TRUE(h_.apply(del_req("zz")).status.is_ok());
  EXPECT_TRUE(h_.apply(compact_req(h_.store().revision())).status.is_ok());
  h_.apply(alarm_req(AlarmRequest::DEACTIVATE, 1, AlarmType::NOSPACE));
  EXPECT_TRUE(h_.apply(put_req("b", "2")).status.is_ok());
}

TEST_F(MaintenanceTest, CorruptRefusesEveryWriteWithEtcdsErrorButNotAlarms) {
  h_.put("a", "1");
  h_.apply(alarm_req(AlarmRequest::ACTIVATE, 2, AlarmType::CORRUPT));
  const Status corrupt = errors::corrupt_cluster();
  EXPECT_EQ(h_.apply(put_req("b", "2")).status, corrupt);
  EXPECT_EQ(h_.apply(del_req("a")).status, corrupt);
  EXPECT_EQ(h_.apply(txn_del("a")).status, corrupt);
  EXPECT_EQ(h_.apply(compact_req(h_.store().revision())).status, corrupt);
  EXPECT_EQ(h_.apply(lease_grant(5)).status, corrupt);
  // Reads are served; the alarm itself can be disarmed.
  EXPECT_EQ(h_.get(testing::range_req("a")).kvs_size(), 1);
  EXPECT_TRUE(h_.apply(alarm_req(AlarmRequest::DEACTIVATE, 2, AlarmType::CORRUPT)).status.is_ok());
  EXPECT_TRUE(h_.apply(put_req("b", "2")).status.is_ok());
}

TEST_F(MaintenanceTest, AlarmsSurviveRestartAndTravelInSnapshots) {
  h_.apply(alarm_req(AlarmRequest::ACTIVATE, 3, AlarmType::NOSPACE));
  h_.reopen();
  EXPECT_TRUE(h_.store().alarm_active(AlarmType::NOSPACE));

  auto stream = h_.store().snapshot();
  ASSERT_TRUE(stream.is_ok());
  auto source = [&]() { return (*stream)->next_chunk(); };
  auto copy = Store::restore(tmp_.sub("copy"), StoreOptions{}, source);
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  EXPECT_TRUE((*copy)->alarm_active(AlarmType::NOSPACE));
  EXPECT_EQ((*copy)->hash()->hash(), h_.store().hash()->hash());
}

TEST_F(MaintenanceTest, RestoreForNewClusterRebasesAppliedIndexAndDropsAlarms) {
  h_.put("a", "1");
  h_.put("b", "2");
  h_.apply(alarm_req(AlarmRequest::ACTIVATE, 3, AlarmType::NOSPACE));
  auto stream = h_.store().snapshot();
  ASSERT_TRUE(stream.is_ok());
  auto source = [&]() { return (*stream)->next_chunk(); };
  auto copy = Store::restore_for_new_cluster(tmp_.sub("copy"), StoreOptions{}, source,
                                             Store::Rebase{raft::Index(3)});
  ASSERT_TRUE(copy.is_ok()) << copy.status().to_string();
  EXPECT_EQ((*copy)->applied_index().value(), 3u);
  EXPECT_TRUE((*copy)->alarms().empty());
  EXPECT_EQ((*copy)->revision(), h_.store().revision());
  EXPECT_EQ((*copy)->hash_kv(0)->hash(), h_.store().hash_kv(0)->hash());
}

TEST_F(MaintenanceTest, HashCoversLeasesAndAlarmsNotJustKeys) {
  h_.put("a", "1");
  const uint32_t before = h_.store().hash()->hash();
  const uint32_t kv_before = h_.hash();
  h_.apply(lease_grant(9));
  const uint32_t with_lease = h_.store().hash()->hash();
  EXPECT_NE(with_lease, before);
  EXPECT_EQ(h_.hash(), kv_before);  // HashKV covers keys only
  h_.apply(alarm_req(AlarmRequest::ACTIVATE, 1, AlarmType::NOSPACE));
  EXPECT_NE(h_.store().hash()->hash(), with_lease);
}

TEST_F(MaintenanceTest, CompactDiskKeepsEveryKeyAndTheHash) {
  for (int i = 0; i < 200; ++i) h_.put("k" + std::to_string(i % 20), std::string(100, 'v'));
  h_.apply(compact_req(h_.store().revision()));
  ASSERT_TRUE(h_.store().flush().is_ok());
  const uint32_t hash = h_.store().hash()->hash();
  ASSERT_TRUE(h_.store().compact_disk().is_ok());
  EXPECT_EQ(h_.store().hash()->hash(), hash);
  EXPECT_EQ(h_.get(testing::range_req("k", "l")).kvs_size(), 20);
  EXPECT_GT(h_.store().disk_size_bytes(), 0u);
}

}  // namespace
}  // namespace raftkv::kv
