// The generated descriptors of proto/etcd/ carry etcd 3.4's method paths,
// message names and field numbers: what etcd clients put on the wire.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "etcd/etcdserverpb/rpc.pb.h"
#include "etcd/mvccpb/kv.pb.h"
#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "etcd/v3lockpb/v3lock.grpc.pb.h"

namespace {

using google::protobuf::DescriptorPool;
using google::protobuf::MethodDescriptor;

const DescriptorPool& pool() {
  // Touch one message of each file so its descriptor is registered.
  (void)etcdserverpb::RangeRequest::descriptor();
  (void)mvccpb::KeyValue::descriptor();
  (void)v3lockpb::LockRequest::descriptor();
  (void)v3electionpb::CampaignRequest::descriptor();
  return *DescriptorPool::generated_pool();
}

// gRPC's method path is "/<package>.<Service>/<Method>".
std::string path_of(const MethodDescriptor& m) {
  return "/" + m.service()->full_name() + "/" + m.name();
}

TEST(EtcdProto, AllFortySixMethodPathsOfEtcd34Exist) {
  const std::vector<std::string> expected = {"/etcdserverpb.KV/Range",
                                             "/etcdserverpb.KV/Put",
                                             "/etcdserverpb.KV/DeleteRange",
                                             "/etcdserverpb.KV/Txn",
                                             "/etcdserverpb.KV/Compact",
                                             "/etcdserverpb.Watch/Watch",
                                             "/etcdserverpb.Lease/LeaseGrant",
                                             "/etcdserverpb.Lease/LeaseRevoke",
                                             "/etcdserverpb.Lease/LeaseKeepAlive",
                                             "/etcdserverpb.Lease/LeaseTimeToLive",
                                             "/etcdserverpb.Lease/LeaseLeases",
                                             "/etcdserverpb.Cluster/MemberAdd",
                                             "/etcdserverpb.Cluster/MemberRemove",
                                             "/etcdserverpb.Cluster/MemberUpdate",
                                             "/etcdserverpb.Cluster/MemberList",
                                             "/etcdserverpb.Cluster/MemberPromote",
                                             "/etcdserverpb.Maintenance/Alarm",
                                             "/etcdserverpb.Maintenance/Status",
                                             "/etcdserverpb.Maintenance/Defragment",
                                             "/etcdserverpb.Maintenance/Hash",
                                             "/etcdserverpb.Maintenance/HashKV",
                                             "/etcdserverpb.Maintenance/Snapshot",
                                             "/etcdserverpb.Maintenance/MoveLeader",
                                             "/etcdserverpb.Auth/AuthEnable",
                                             "/etcdserverpb.Auth/AuthDisable",
                                             "/etcdserverpb.Auth/Authenticate",
                                             "/etcdserverpb.Auth/UserAdd",
                                             "/etcdserverpb.Auth/UserGet",
                                             "/etcdserverpb.Auth/UserList",
                                             "/etcdserverpb.Auth/UserDelete",
                                             "/etcdserverpb.Auth/UserChangePassword",
                                             "/etcdserverpb.Auth/UserGrantRole",
                                             "/etcdserverpb.Auth/UserRevokeRole",
                                             "/etcdserverpb.Auth/RoleAdd",
                                             "/etcdserverpb.Auth/RoleGet",
                                             "/etcdserverpb.Auth/RoleList",
                                             "/etcdserverpb.Auth/RoleDelete",
                                             "/etcdserverpb.Auth/RoleGrantPermission",
                                             "/etcdserverpb.Auth/RoleRevokePermission",
                                             "/v3lockpb.Lock/Lock",
                                             "/v3lockpb.Lock/Unlock",
                                             "/v3electionpb.Election/Campaign",
                                             "/v3electionpb.Election/Proclaim",
                                             "/v3electionpb.Election/Leader",
                                             "/v3electionpb.Election/Observe",
                                             "/v3electionpb.Election/Resign"};
  ASSERT_EQ(expected.size(), 46u);
  const DescriptorPool& p = pool();
  size_t total = 0;
  for (const char* svc : {"etcdserverpb.KV", "etcdserverpb.Watch", "etcdserverpb.Lease",
                          "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "etcdserverpb.Auth",
                          "v3lockpb.Lock", "v3electionpb.Election"}) {
    const auto* s = p.FindServiceByName(svc);
    ASSERT_NE(s, nullptr) << svc;
    total += static_cast<size_t>(s->method_count());
  }
  EXPECT_EQ(total, 46u);
  for (const auto& path : expected) {
    // "/pkg.Svc/Method" -> "pkg.Svc.Method"
    std::string full = path.substr(1);
    full[full.find('/')] = '.';
    const MethodDescriptor* m = p.FindMethodByName(full);
    ASSERT_NE(m, nullptr) << path;
    EXPECT_EQ(path_of(*m), path);
  }
}

TEST(EtcdProto, StreamingShapesMatchEtcd) {
  const DescriptorPool& p = pool();
  const auto* watch = p.FindMethodByName("etcdserverpb.Watch.Watch");
  ASSERT_NE(watch, nullptr);
  EXPECT_TRUE(watch->client_streaming());
  EXPECT_TRUE(watch->server_streaming());
  const auto* keepalive = p.FindMethodByName("etcdserverpb.Lease.LeaseKeepAlive");
  ASSERT_NE(keepalive, nullptr);
  EXPECT_TRUE(keepalive->client_streaming() && keepalive->server_streaming());
  const auto* snap = p.FindMethodByName("etcdserverpb.Maintenance.Snapshot");
  ASSERT_NE(snap, nullptr);
  EXPECT_FALSE(snap->client_streaming());
  EXPECT_TRUE(snap->server_streaming());
  const auto* observe = p.FindMethodByName("v3electionpb.Election.Observe");
  ASSERT_NE(observe, nullptr);
  EXPECT_TRUE(observe->server_streaming());
  const auto* range = p.FindMethodByName("etcdserverpb.KV.Range");
  ASSERT_NE(range, nullptr);
  EXPECT_FALSE(range->client_streaming() || range->server_streaming());
  EXPECT_EQ(range->input_type()->full_name(), "etcdserverpb.RangeRequest");
  EXPECT_EQ(range->output_type()->full_name(), "etcdserverpb.RangeResponse");
  const auto* compact = p.FindMethodByName("etcdserverpb.KV.Compact");
  ASSERT_NE(compact, nullptr);
  EXPECT_EQ(compact->input_type()->full_name(), "etcdserverpb.CompactionRequest");
}

// (message, field, number) triples taken from etcd 3.4's protos.
TEST(EtcdProto, FieldNumbersMatchEtcd) {
  struct Row {
    const char* message;
    const char* field;
    int number;
  };
  const Row rows[] = {
      {"mvccpb.KeyValue", "key", 1},
      {"mvccpb.KeyValue", "create_revision", 2},
      {"mvccpb.KeyValue", "mod_revision", 3},
      {"mvccpb.KeyValue", "version", 4},
      {"mvccpb.KeyValue", "value", 5},
      {"mvccpb.KeyValue", "lease", 6},
      {"mvccpb.Event", "prev_kv", 3},
      {"etcdserverpb.ResponseHeader", "raft_term", 4},
      {"etcdserverpb.RangeRequest", "max_create_revision", 13},
      {"etcdserverpb.Compare", "range_end", 64},
      {"etcdserverpb.Compare", "lease", 8},
      {"etcdserverpb.WatchResponse", "events", 11},
      {"etcdserverpb.WatchCreateRequest", "fragment", 8},
      {"etcdserverpb.LeaseGrantRequest", "TTL", 1},
      {"etcdserverpb.LeaseTimeToLiveResponse", "grantedTTL", 4},
      {"etcdserverpb.StatusResponse", "isLearner", 10},
      {"etcdserverpb.AuthUserGrantRoleRequest", "user", 1},
      {"etcdserverpb.AuthRoleRevokePermissionRequest", "range_end", 3},
      {"authpb.Permission", "permType", 1},
      {"v3electionpb.LeaderKey", "rev", 3},
      {"v3lockpb.LockResponse", "key", 2},
  };
  const DescriptorPool& p = pool();
  for (const Row& r : rows) {
    const auto* m = p.FindMessageTypeByName(r.message);
    ASSERT_NE(m, nullptr) << r.message;
    const auto* f = m->FindFieldByName(r.field);
    ASSERT_NE(f, nullptr) << r.message << "." << r.field;
    EXPECT_EQ(f->number(), r.number) << r.message << "." << r.field;
  }
  // Enum values that reach the wire.
  EXPECT_EQ(etcdserverpb::Compare::NOT_EQUAL, 3);
  EXPECT_EQ(etcdserverpb::Compare::LEASE, 4);
  EXPECT_EQ(etcdserverpb::RangeRequest::VALUE, 4);
  EXPECT_EQ(etcdserverpb::NOSPACE, 1);
  EXPECT_EQ(mvccpb::Event::DELETE, 1);
}

// A KeyValue encodes to the same bytes etcd produces for it.
TEST(EtcdProto, KeyValueWireBytes) {
  mvccpb::KeyValue kv;
  kv.set_key("a");
  kv.set_create_revision(2);
  kv.set_mod_revision(3);
  kv.set_version(1);
  kv.set_value("v");
  const std::string want = std::string(
      "\x0a\x01"
      "a"
      "\x10\x02\x18\x03\x20\x01\x2a\x01"
      "v",
      12);
  EXPECT_EQ(kv.SerializeAsString(), want);
}

}  // namespace
