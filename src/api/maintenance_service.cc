// etcdserverpb.Maintenance: Status, MoveLeader.
#include "api/service_util.h"

#include <thread>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(server::Node* node) : node_(node) {}

  ServerUnaryReactor* Status(CallbackServerContext* ctx, const etcdserverpb::StatusRequest*,
                             etcdserverpb::StatusResponse* reply) override {
    const server::NodeStatusView s = node_->status();
    std::shared_ptr<kv::Store> store = node_->store();
    reply->set_version(kApiVersion);
    const auto size = static_cast<int64_t>(store->logical_size_bytes());
    reply->set_dbsize(size);
    reply->set_dbsizeinuse(size);
    reply->set_leader(s.leader);
    reply->set_raftindex(s.commit_index);
    reply->set_raftterm(s.term);
    reply->set_raftappliedindex(s.applied_index);
    reply->set_islearner(s.is_learner);
    fill_header(node_, reply->mutable_header());
    reply->mutable_header()->set_revision(store->revision());
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  ServerUnaryReactor* MoveLeader(CallbackServerContext* ctx,
                                 const etcdserverpb::MoveLeaderRequest* req,
                                 etcdserverpb::MoveLeaderResponse* reply) override {
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node_->move_leader(req->targetid(), [this, reactor, reply](raftkv::Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      fill_header(node_, reply->mutable_header());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  server::Node* node_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_maintenance_service(const ServiceContext& ctx) {
  return std::make_unique<MaintenanceService>(ctx.node);
}

}  // namespace raftkv::api
