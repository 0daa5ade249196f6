#include "api/client_server.h"

#include <thread>

#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "kv/store.h"
#include "transport/transport.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// The etcd API level raftkv speaks, reported by Maintenance.Status so that
// clients gating features on the server version treat it as etcd 3.4.
constexpr const char* kApiVersion = "3.4.0";
// etcd's allowance above --max-request-bytes for gRPC framing.
constexpr int kGrpcOverheadBytes = 512 * 1024;

void fill_header(server::Node* node, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(node->cluster_id());
  h->set_member_id(node->member_id());
  h->set_raft_term(node->term());
}

/// Validates `req` like etcd's API layer, proposes it and finishes `reactor`
/// with the part of the applied response `pick` selects.
template <typename Resp, typename Pick>
void propose_and_finish(server::Node* node, const kv::StoreOptions& opts,
                        raftkvpb::InternalRequest req, ServerUnaryReactor* reactor, Resp* reply,
                        Pick pick) {
  Status v = kv::Store::validate(req, opts);
  if (!v.is_ok()) {
    reactor->Finish(to_grpc_status(v));
    return;
  }
  node->propose(std::move(req), [node, reactor, reply, pick](Status st,
                                                              raftkvpb::InternalResponse resp) {
    if (!st.is_ok()) {
      reactor->Finish(to_grpc_status(st));
      return;
    }
    *reply = std::move(*pick(resp));
    fill_header(node, reply->mutable_header());
    reactor->Finish(grpc::Status::OK);
  });
}

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(server::Node* node, kv::StoreOptions opts) : node_(node), opts_(opts) {}

  ServerUnaryReactor* Range(CallbackServerContext* ctx, const etcdserverpb::RangeRequest* req,
                            etcdserverpb::RangeResponse* reply) override {
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    raftkvpb::InternalRequest ir;
    *ir.mutable_range() = *req;
    Status v = kv::Store::validate(ir, opts_);
    if (!v.is_ok()) {
      reactor->Finish(to_grpc_status(v));
      return reactor;
    }
    auto serve = [node = node_, req, reply, reactor](Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      Result<etcdserverpb::RangeResponse> r = node->store()->range(*req);
      if (!r) {
        reactor->Finish(to_grpc_status(r.status()));
        return;
      }
      *reply = std::move(*r);
      fill_header(node, reply->mutable_header());
      reactor->Finish(grpc::Status::OK);
    };
    if (req->serializable()) {
      serve(Status::ok());  // local state, no leader needed
    } else {
      node_->read_barrier(std::move(serve));  // linearizable: ReadIndex first
    }
    return reactor;
  }

  ServerUnaryReactor* Put(CallbackServerContext* ctx, const etcdserverpb::PutRequest* req,
                          etcdserverpb::PutResponse* reply) override {
    return forward(ctx, *req, reply, &raftkvpb::InternalRequest::mutable_put,
                   &raftkvpb::InternalResponse::mutable_put);
  }

  ServerUnaryReactor* DeleteRange(CallbackServerContext* ctx,
                                  const etcdserverpb::DeleteRangeRequest* req,
                                  etcdserverpb::DeleteRangeResponse* reply) override {
    return forward(ctx, *req, reply, &raftkvpb::InternalRequest::mutable_delete_range,
                   &raftkvpb::InternalResponse::mutable_delete_range);
  }

  ServerUnaryReactor* Txn(CallbackServerContext* ctx, const etcdserverpb::TxnRequest* req,
                          etcdserverpb::TxnResponse* reply) override {
    return forward(ctx, *req, reply, &raftkvpb::InternalRequest::mutable_txn,
                   &raftkvpb::InternalResponse::mutable_txn);
  }

  ServerUnaryReactor* Compact(CallbackServerContext* ctx,
                              const etcdserverpb::CompactionRequest* req,
                              etcdserverpb::CompactionResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_compaction() = *req;
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    const bool physical = req->physical();
    const int64_t rev = req->revision();
    const auto timeout = node_->request_timeout();
    Status v = kv::Store::validate(ir, opts_);
    if (!v.is_ok()) {
      reactor->Finish(to_grpc_status(v));
      return reactor;
    }
    node_->propose(std::move(ir), [node = node_, reactor, reply, physical, rev, timeout](
                                      Status st, raftkvpb::InternalResponse resp) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      *reply = std::move(*resp.mutable_compaction());
      fill_header(node, reply->mutable_header());
      if (!physical) {
        reactor->Finish(grpc::Status::OK);
        return;
      }
      // physical=true answers once the compacted revisions are gone from
      // disk; the wait must not hold the apply loop, so it gets a thread.
      std::thread([store = node->store(), reactor, rev, timeout] {
        const bool done = store->wait_physical_compaction(rev, timeout);
        reactor->Finish(done ? grpc::Status::OK
                             : to_grpc_status(Status::unavailable("etcdserver: request timed out")));
      }).detach();
    });
    return reactor;
  }

 private:
  /// A write: wrap `req` in an InternalRequest through `wrap`, validate,
  /// propose, and answer with the applied response's part `unwrap` selects.
  template <typename Req, typename Resp>
  ServerUnaryReactor* forward(CallbackServerContext* ctx, const Req& req, Resp* reply,
                              Req* (raftkvpb::InternalRequest::*wrap)(),
                              Resp* (raftkvpb::InternalResponse::*unwrap)()) {
    raftkvpb::InternalRequest ir;
    *(ir.*wrap)() = req;
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    propose_and_finish(node_, opts_, std::move(ir), reactor, reply,
                       [unwrap](raftkvpb::InternalResponse& r) { return (r.*unwrap)(); });
    return reactor;
  }

  server::Node* node_;
  const kv::StoreOptions opts_;
};

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

 private:
  server::Node* node_;
};

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

grpc::Status to_grpc_status(const Status& st) {
  grpc::StatusCode c = grpc::StatusCode::UNKNOWN;
  switch (st.code()) {
    case Code::kOk: return grpc::Status::OK;
    case Code::kInvalidArgument: c = grpc::StatusCode::INVALID_ARGUMENT; break;
    case Code::kNotFound: c = grpc::StatusCode::NOT_FOUND; break;
    case Code::kAlreadyExists: c = grpc::StatusCode::ALREADY_EXISTS; break;
    case Code::kOutOfRange: c = grpc::StatusCode::OUT_OF_RANGE; break;
    case Code::kFailedPrecondition: c = grpc::StatusCode::FAILED_PRECONDITION; break;
    case Code::kResourceExhausted: c = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case Code::kUnavailable: c = grpc::StatusCode::UNAVAILABLE; break;
    case Code::kDeadlineExceeded: c = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case Code::kAborted: c = grpc::StatusCode::ABORTED; break;
    case Code::kPermissionDenied: c = grpc::StatusCode::PERMISSION_DENIED; break;
    case Code::kUnauthenticated: c = grpc::StatusCode::UNAUTHENTICATED; break;
    case Code::kCorruption:
    case Code::kIOError:
    case Code::kInternal: c = grpc::StatusCode::INTERNAL; break;
  }
  return grpc::Status(c, st.message());
}

struct ClientServer::Services {
  std::unique_ptr<KvService> kv;
  std::unique_ptr<MaintenanceService> maintenance;
  std::unique_ptr<ClusterService> cluster;
};

Result<std::unique_ptr<ClientServer>> ClientServer::start(server::Node* node,
                                                          const server::Config& cfg) {
  std::unique_ptr<ClientServer> s(new ClientServer());
  kv::StoreOptions opts;
  opts.max_request_bytes = cfg.max_request_bytes;
  opts.max_txn_ops = static_cast<int>(cfg.max_txn_ops);
  s->services_ = std::make_unique<Services>();
  s->services_->kv = std::make_unique<KvService>(node, opts);
  s->services_->maintenance = std::make_unique<MaintenanceService>(node);
  s->services_->cluster = std::make_unique<ClusterService>(node);

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  std::vector<int> ports(cfg.listen_client_urls.size(), 0);
  for (size_t i = 0; i < cfg.listen_client_urls.size(); ++i) {
    Result<std::string> target = transport::grpc_target_from_url(cfg.listen_client_urls[i]);
    if (!target) return target.status();
    b.AddListeningPort(*target, grpc::InsecureServerCredentials(), &ports[i]);
  }
  b.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_request_bytes) + kGrpcOverheadBytes);
  b.SetMaxSendMessageSize(INT32_MAX);
  b.RegisterService(s->services_->kv.get());
  b.RegisterService(s->services_->maintenance.get());
  b.RegisterService(s->services_->cluster.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || std::any_of(ports.begin(), ports.end(), [](int p) { return p == 0; })) {
    return Status::unavailable("cannot listen for clients on " + cfg.listen_client_urls[0] +
                               " (address in use?)");
  }
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  node->set_leader_listener([health](bool has_leader) {
    if (health != nullptr) health->SetServingStatus(has_leader);
  });
  return s;
}

ClientServer::~ClientServer() { shutdown(0); }

void ClientServer::shutdown(int grace_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace raftkv::api
