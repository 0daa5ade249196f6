// The client's failover rules, against in-process fake members that answer with etcd's
// "not leader"-class errors (which a real etcd only gives in short windows of an election).
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <string>

#include "cli/client.h"

namespace raftkv::client {
namespace {

/// A member whose KV service answers every request with `error` (or succeeds when OK).
class FakeMember final : public pb::KV::Service {
 public:
  explicit FakeMember(grpc::Status error) : error_(std::move(error)) {
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
  }
  ~FakeMember() override { server_->Shutdown(); }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  int calls() const { return calls_.load(); }

  grpc::Status Range(grpc::ServerContext*, const pb::RangeRequest*,
                     pb::RangeResponse* resp) override {
    ++calls_;
    resp->mutable_header()->set_revision(42);
    return error_;
  }
  grpc::Status Put(grpc::ServerContext*, const pb::PutRequest*, pb::PutResponse*) override {
    ++calls_;
    return error_;
  }

 private:
  grpc::Status error_;
  int port_ = 0;
  std::atomic<int> calls_{0};
  std::unique_ptr<grpc::Server> server_;
};

const grpc::Status kNoLeader(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader");
const grpc::Status kTimedOut(grpc::StatusCode::UNAVAILABLE, "etcdserver: request timed out");
const grpc::Status kLeaderChanged(grpc::StatusCode::UNAVAILABLE, "etcdserver: leader changed");
const grpc::Status kCompacted(grpc::StatusCode::OUT_OF_RANGE,
                              "etcdserver: mvcc: required revision has been compacted");

std::unique_ptr<Client> client_for(std::vector<std::string> endpoints) {
  ClientOptions o;
  o.endpoints = std::move(endpoints);
  o.dial_timeout_ms = 1000;
  o.command_timeout_ms = 2000;
  auto c = Client::create(o);
  EXPECT_TRUE(c.is_ok()) << c.status().to_string();
  return std::move(*c);
}

TEST(ClientFailover, NoLeaderOnOneMemberMovesToTheNextAndStaysThere) {
  FakeMember lost(kNoLeader);
  FakeMember good(grpc::Status::OK);
  auto c = client_for({lost.endpoint(), good.endpoint()});
  auto r = c->range(pb::RangeRequest());
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->header().revision(), 42);
  EXPECT_EQ(c->current_endpoint(), good.endpoint());
  ASSERT_TRUE(c->range(pb::RangeRequest()).is_ok());
  EXPECT_EQ(lost.calls(), 1) << "the next request starts at the member that answered";
}

TEST(ClientFailover, NoLeaderEverywhereIsUnavailableSayingQuorumIsLost) {
  FakeMember a(kNoLeader);
  FakeMember b(kNoLeader);
  auto c = client_for({a.endpoint(), b.endpoint()});
  auto r = c->put(pb::PutRequest());
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(is_unavailable(r.status()));
  EXPECT_EQ(r.status().message(),
            "no leader: the cluster has lost quorum (2 of 2 endpoints reachable); start the "
            "stopped members or wait for an election");
  EXPECT_EQ(a.calls(), 2) << "two passes over the endpoints, then give up";
  EXPECT_EQ(b.calls(), 2);
}

TEST(ClientFailover, ServerTimeoutIsRetriedForReadsButNotForWrites) {
  FakeMember slow(kTimedOut);
  FakeMember good(grpc::Status::OK);
  auto reads = client_for({slow.endpoint(), good.endpoint()});
  EXPECT_TRUE(reads->range(pb::RangeRequest()).is_ok());
  auto writes = client_for({slow.endpoint(), good.endpoint()});
  auto r = writes->put(pb::PutRequest());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(r.status().message(),
            "Put: etcdserver: request timed out (the cluster may have lost quorum; retry)");
  EXPECT_EQ(good.calls(), 1) << "only the read reached the second member";
}

// "Leader changed" arrives after the request may have been proposed: an INCR retried on
// another member after it could count twice, so writes report it and reads move on.
TEST(ClientFailover, LeaderChangedIsRetriedForReadsButNotForWrites) {
  FakeMember changed(kLeaderChanged);
  FakeMember good(grpc::Status::OK);
  auto reads = client_for({changed.endpoint(), good.endpoint()});
  EXPECT_TRUE(reads->range(pb::RangeRequest()).is_ok());
  auto writes = client_for({changed.endpoint(), good.endpoint()});
  auto r = writes->put(pb::PutRequest());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_EQ(good.calls(), 1) << "only the read reached the second member";
}

TEST(ClientFailover, OtherErrorsAreTheAnswerAndKeepEtcdsText) {
  FakeMember compacted(kCompacted);
  FakeMember good(grpc::Status::OK);
  auto c = client_for({compacted.endpoint(), good.endpoint()});
  auto r = c->range(pb::RangeRequest());
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kOutOfRange);
  EXPECT_EQ(r.status().message(),
            "Range: etcdserver: mvcc: required revision has been compacted (that revision is no "
            "longer kept: ask for a newer one)");
  EXPECT_EQ(good.calls(), 0);
}

TEST(ClientFailover, UnreachableEndpointsAreSkippedAndNamedWhenAllFail) {
  FakeMember good(grpc::Status::OK);
  // A port nobody listens on: take one from a member that is then stopped.
  std::string dead;
  {
    FakeMember gone(grpc::Status::OK);
    dead = gone.endpoint();
  }
  auto c = client_for({dead, good.endpoint()});
  EXPECT_TRUE(c->range(pb::RangeRequest()).is_ok());
  auto alone = client_for({dead});
  auto r = alone->range(pb::RangeRequest());
  ASSERT_FALSE(r.is_ok());
  EXPECT_TRUE(is_unavailable(r.status()));
  EXPECT_EQ(r.status().message(),
            "cannot connect to " + dead + ": is the server running? start one with `make run`");
}

TEST(ClientOptionsValidation, RejectsBadEndpointsAndTimeouts) {
  ClientOptions o;
  EXPECT_FALSE(Client::create(o).is_ok());
  o.endpoints = {"localhost"};
  EXPECT_EQ(Client::create(o).status().message(),
            "bad endpoint \"localhost\": expected host:port, e.g. 127.0.0.1:2379");
  o.endpoints = {"http://127.0.0.1:2379/"};
  auto c = Client::create(o);
  ASSERT_TRUE(c.is_ok());
  EXPECT_EQ((*c)->current_endpoint(), "127.0.0.1:2379");
  o.command_timeout_ms = 0;
  EXPECT_FALSE(Client::create(o).is_ok());
}

}  // namespace
}  // namespace raftkv::client
