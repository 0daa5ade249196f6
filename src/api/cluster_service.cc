// etcdserverpb.Cluster: MemberAdd, MemberRemove, MemberUpdate, MemberList,
// MemberPromote. The rules and errors are etcd's (server/members.h,
// check_member_change); the node proposes the change through the Raft log and
// the call finishes once it is applied on this member.
#include "api/service_util.h"

#include <chrono>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

void fill_member(const server::MemberInfo& m, etcdserverpb::Member* out) {
  out->set_id(m.record.id);
  out->set_name(m.record.name);
  for (const auto& u : m.record.peer_urls) out->add_peerurls(u);
  for (const auto& u : m.record.client_urls) out->add_clienturls(u);
  out->set_islearner(m.is_learner);
}

template <typename Resp>
void fill_members(server::Node* node, Resp* reply) {
  for (const server::MemberInfo& m : node->member_list()) fill_member(m, reply->add_members());
  fill_header(node, reply->mutable_header());
  reply->mutable_header()->set_revision(node->store()->revision());
}

// A promotion asked of a follower goes to the leader, which alone knows
// whether the learner is in sync (etcd forwards it the same way).
struct ForwardedPromote {
  grpc::ClientContext ctx;
  etcdserverpb::MemberPromoteRequest req;
  etcdserverpb::MemberPromoteResponse resp;
  std::unique_ptr<etcdserverpb::Cluster::Stub> stub;
};

class ClusterService final : public etcdserverpb::Cluster::CallbackService {
 public:
  explicit ClusterService(const ServiceContext& ctx)
      : node_(ctx.node), cfg_(ctx.cfg), auth_(ctx.auth) {}

  // Member add/remove/update/promote are root-only (etcd's
  // checkMembershipOperationPermission); MemberList is open.

  ServerUnaryReactor* MemberAdd(CallbackServerContext* ctx,
                                const etcdserverpb::MemberAddRequest* req,
                                etcdserverpb::MemberAddResponse* reply) override {
    if (Status a = auth_->check_admin(*ctx); !a.is_ok()) return finish_now(ctx, to_grpc_status(a));
    server::MemberChange c;
    c.kind = req->islearner() ? server::MemberChangeKind::kAddLearner
                              : server::MemberChangeKind::kAddVoter;
    c.peer_urls.assign(req->peerurls().begin(), req->peerurls().end());
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    c.id = server::new_member_id(c.peer_urls, cfg_->initial_cluster_token,
                                 static_cast<uint64_t>(
                                     std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()));
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const uint64_t id = c.id;
    const bool learner = req->islearner();
    std::vector<std::string> urls = c.peer_urls;
    node_->change_members(std::move(c), [this, reactor, reply, id, learner,
                                         urls = std::move(urls)](Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      etcdserverpb::Member* m = reply->mutable_member();
      m->set_id(id);
      for (const auto& u : urls) m->add_peerurls(u);
      m->set_islearner(learner);
      fill_members(node_, reply);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  ServerUnaryReactor* MemberRemove(CallbackServerContext* ctx,
                                   const etcdserverpb::MemberRemoveRequest* req,
                                   etcdserverpb::MemberRemoveResponse* reply) override {
    return change(ctx, server::MemberChange{server::MemberChangeKind::kRemove, req->id(), {}},
                  reply);
  }

  ServerUnaryReactor* MemberUpdate(CallbackServerContext* ctx,
                                   const etcdserverpb::MemberUpdateRequest* req,
                                   etcdserverpb::MemberUpdateResponse* reply) override {
    server::MemberChange c{server::MemberChangeKind::kUpdate, req->id(),
                           {req->peerurls().begin(), req->peerurls().end()}};
    return change(ctx, std::move(c), reply);
  }

  ServerUnaryReactor* MemberPromote(CallbackServerContext* ctx,
                                    const etcdserverpb::MemberPromoteRequest* req,
                                    etcdserverpb::MemberPromoteResponse* reply) override {
    if (Status a = auth_->check_admin(*ctx); !a.is_ok()) return finish_now(ctx, to_grpc_status(a));
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const uint64_t id = req->id();
    node_->change_members(
        server::MemberChange{server::MemberChangeKind::kPromote, id, {}},
        [this, reactor, reply, id](Status st) {
          if (st.code() == Code::kFailedPrecondition && st.message() == "etcdserver: not leader") {
            forward_promote(id, reactor, reply);
            return;
          }
          if (!st.is_ok()) {
            reactor->Finish(to_grpc_status(st));
            return;
          }
          fill_members(node_, reply);
          reactor->Finish(grpc::Status::OK);
        });
    return reactor;
  }

  ServerUnaryReactor* MemberList(CallbackServerContext* ctx, const etcdserverpb::MemberListRequest*,
                                 etcdserverpb::MemberListResponse* reply) override {
    fill_members(node_, reply);
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  template <typename Resp>
  ServerUnaryReactor* change(CallbackServerContext* ctx, server::MemberChange c, Resp* reply) {
    if (Status a = auth_->check_admin(*ctx); !a.is_ok()) return finish_now(ctx, to_grpc_status(a));
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node_->change_members(std::move(c), [this, reactor, reply](Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      fill_members(node_, reply);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  void forward_promote(uint64_t id, ServerUnaryReactor* reactor,
                       etcdserverpb::MemberPromoteResponse* reply) {
    const uint64_t leader = node_->leader();
    std::string url;
    for (const server::MemberInfo& m : node_->member_list()) {
      if (m.record.id == leader && !m.record.client_urls.empty()) url = m.record.client_urls.front();
    }
    // Client URLs are http://host:port (server::Config refuses others).
    const std::string scheme = "http://";
    std::string target = url.rfind(scheme, 0) == 0 ? url.substr(scheme.size()) : "";
    while (!target.empty() && target.back() == '/') target.pop_back();
    if (leader == 0 || leader == node_->member_id() || target.empty()) {
      reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "etcdserver: no leader"));
      return;
    }
    auto fwd = std::make_shared<ForwardedPromote>();
    fwd->stub = etcdserverpb::Cluster::NewStub(
        grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    fwd->req.set_id(id);
    fwd->ctx.set_deadline(std::chrono::system_clock::now() + node_->request_timeout());
    fwd->stub->async()->MemberPromote(&fwd->ctx, &fwd->req, &fwd->resp,
                                      [fwd, reactor, reply](grpc::Status gs) {
                                        if (gs.ok()) *reply = fwd->resp;
                                        reactor->Finish(gs);
                                      });
  }

  server::Node* node_;
  const server::Config* cfg_;
  AuthChecker* auth_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_cluster_service(const ServiceContext& ctx) {
  return std::make_unique<ClusterService>(ctx);
}

}  // namespace raftkv::api
