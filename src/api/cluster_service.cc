// etcdserverpb.Cluster: MemberList.
#include "api/service_util.h"

#include <thread>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(server::Node* node) : node_(node) {}

  ServerUnaryReactor* MemberList(CallbackServerContext* ctx, const etcdserverpb::MemberListRequest*,
                                 etcdserverpb::MemberListResponse* reply) override {
    for (const auto& [id, m] : node_->members()) {
      etcdserverpb::Member* out = reply->add_members();
      out->set_id(id);
      out->set_name(m.name);
      for (const auto& u : m.peer_urls) out->add_peerurls(u);
      for (const auto& u : m.client_urls) out->add_clienturls(u);
    }
    fill_header(node_, reply->mutable_header());
    reply->mutable_header()->set_revision(node_->store()->revision());
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  server::Node* node_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_cluster_service(const ServiceContext& ctx) {
  return std::make_unique<ClusterService>(ctx.node);
}

}  // namespace raftkv::api
