// etcdserverpb.Lease: LeaseGrant, LeaseRevoke, LeaseKeepAlive (bidi stream),
// LeaseTimeToLive, LeaseLeases (docs/coordination.md, "Leases").
//
// Grants and revokes go through Raft from any member. Expiry deadlines live in
// the leader's kv::Lessor only, so keep-alives and TimeToLive are served
// by the leader; a follower forwards them to the leader's advertised client
// URL with a gRPC client (as etcd forwards them to its leader), and answers
// Unavailable "etcdserver: no leader" when it knows none.
#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>

#include <spdlog/spdlog.h>

#include "api/service_util.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "kv/lessor.h"
#include "transport/transport.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using etcdserverpb::LeaseKeepAliveRequest;
using etcdserverpb::LeaseKeepAliveResponse;

Status no_leader() { return Status::unavailable("etcdserver: no leader"); }

uint64_t unix_ms_now() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::system_clock::now().time_since_epoch())
                                   .count());
}

// gRPC stubs to the current leader's client URL, one channel per member.
class LeaderChannel {
 public:
  explicit LeaderChannel(server::Node* node) : node_(node) {}

  /// A stub to the leader, or an error (no leader, leader without client URL).
  /// kFailedPrecondition when this member is itself the leader.
  Result<std::shared_ptr<etcdserverpb::Lease::Stub>> stub() {
    const uint64_t leader = node_->leader();
    if (leader == 0) return no_leader();
    if (leader == node_->member_id()) {
      return Status::failed_precondition("raftkv: this member is the leader");
    }
    std::lock_guard lk(mu_);
    auto it = stubs_.find(leader);
    if (it != stubs_.end()) return it->second;
    const server::MemberTable members = node_->members();
    auto m = members.find(leader);
    if (m == members.end() || m->second.client_urls.empty()) return no_leader();
    Result<std::string> target = transport::grpc_target_from_url(m->second.client_urls[0]);
    if (!target) return no_leader();
    auto stub = std::shared_ptr<etcdserverpb::Lease::Stub>(etcdserverpb::Lease::NewStub(
        grpc::CreateChannel(*target, grpc::InsecureChannelCredentials())));
    stubs_[leader] = stub;
    return stub;
  }

 private:
  server::Node* node_;
  std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<etcdserverpb::Lease::Stub>> stubs_;
};

// Status of a forwarded call as this member's client sees it: the leader's
// answer, except that an unreachable leader reads as "no leader".
grpc::Status forwarded_status(const grpc::Status& s) {
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE &&
      s.error_message().rfind("etcdserver:", 0) != 0) {
    return to_grpc_status(no_leader());
  }
  return s;
}

using KeepAliveDone = std::function<void(grpc::Status, LeaseKeepAliveResponse)>;

// One keep-alive forwarded to the leader: a stream carrying one request.
class ForwardedKeepAlive final
    : public grpc::ClientBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  static void run(etcdserverpb::Lease::Stub* stub, int64_t id, std::chrono::milliseconds timeout,
                  KeepAliveDone done) {
    auto* r = new ForwardedKeepAlive(std::move(done));
    r->req_.set_id(id);
    r->ctx_.set_deadline(std::chrono::system_clock::now() + timeout);
    stub->async()->LeaseKeepAlive(&r->ctx_, r);
    r->StartWriteLast(&r->req_, grpc::WriteOptions());
    r->StartRead(&r->resp_);
    r->StartCall();
  }

  void OnReadDone(bool ok) override { got_ = ok; }
  void OnDone(const grpc::Status& s) override {
    if (got_) {
      done_(grpc::Status::OK, std::move(resp_));
    } else {
      done_(s.ok() ? to_grpc_status(no_leader()) : forwarded_status(s), {});
    }
    delete this;
  }

 private:
  explicit ForwardedKeepAlive(KeepAliveDone done) : done_(std::move(done)) {}
  grpc::ClientContext ctx_;
  LeaseKeepAliveRequest req_;
  LeaseKeepAliveResponse resp_;
  bool got_ = false;
  KeepAliveDone done_;
};

class LeaseService final : public etcdserverpb::Lease::CallbackService {
 public:
  explicit LeaseService(const ServiceContext& ctx)
      : node_(ctx.node),
        opts_(ctx.store_options),
        min_ttl_seconds_(kv::lease_min_ttl_seconds(ctx.cfg->election_timeout_ms)),
        ids_(ctx.node->member_id(), unix_ms_now()),
        leader_(ctx.node),
        lessor_(make_hooks(ctx.node), lessor_options(*ctx.cfg)),
        auth_(ctx.auth) {
    lessor_.start();
  }

  ~LeaseService() override { lessor_.stop(); }

  ServerUnaryReactor* LeaseGrant(CallbackServerContext* ctx,
                                 const etcdserverpb::LeaseGrantRequest* req,
                                 etcdserverpb::LeaseGrantResponse* reply) override {
    raftkvpb::InternalRequest ir;
    etcdserverpb::LeaseGrantRequest* g = ir.mutable_lease_grant();
    // Both filled here, by the proposer, so that applying is deterministic.
    g->set_id(req->id() != 0 ? req->id() : ids_.next());
    g->set_ttl(std::max(req->ttl(), min_ttl_seconds_));
    // Any authenticated user may grant (etcd); the user is stamped for the
    // apply-time check.
    if (Status a = auth_->authorize(*ctx, &ir); !a.is_ok()) return finish_now(ctx, to_grpc_status(a));
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    propose_and_finish(node_, opts_, std::move(ir), reactor, reply,
                       [](raftkvpb::InternalResponse& r) { return r.mutable_lease_grant(); });
    return reactor;
  }

  ServerUnaryReactor* LeaseRevoke(CallbackServerContext* ctx,
                                  const etcdserverpb::LeaseRevokeRequest* req,
                                  etcdserverpb::LeaseRevokeResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_lease_revoke() = *req;
    // Write on every key attached to the lease, checked again at apply time
    // against the keys attached then (etcd's checkLeasePuts).
    if (Status a = auth_->authorize(*ctx, &ir); !a.is_ok()) return finish_now(ctx, to_grpc_status(a));
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    propose_and_finish(node_, opts_, std::move(ir), reactor, reply,
                       [](raftkvpb::InternalResponse& r) { return r.mutable_lease_revoke(); });
    return reactor;
  }

  ServerUnaryReactor* LeaseTimeToLive(CallbackServerContext* ctx,
                                      const etcdserverpb::LeaseTimeToLiveRequest* req,
                                      etcdserverpb::LeaseTimeToLiveResponse* reply) override {
    // Asking for the attached keys needs read on each of them (etcd 3.4.26+,
    // which closed the leak of key names through this call); without keys
    // the call is open, as in etcd.
    if (req->keys()) {
      Result<AuthInfo> who = auth_->authenticate(*ctx);
      if (!who) return finish_now(ctx, to_grpc_status(who.status()));
      for (const std::string& k : node_->store()->lease_keys(req->id())) {
        if (Status a = auth_->check_read(*who, k, ""); !a.is_ok()) {
          return finish_now(ctx, to_grpc_status(a));
        }
      }
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    Result<kv::Lessor::LeaseView> v = lessor_.time_to_live(req->id());
    if (v || v.status().code() == Code::kNotFound) {
      reply->set_id(req->id());
      if (v) {
        reply->set_ttl(v->remaining_seconds);
        reply->set_grantedttl(v->granted_ttl_seconds);
        if (req->keys()) {
          for (std::string& k : node_->store()->lease_keys(req->id())) reply->add_keys(std::move(k));
        }
      } else {
        reply->set_ttl(-1);  // etcd: a lease that does not exist has TTL -1
      }
      fill_header(node_, reply->mutable_header());
      reply->mutable_header()->set_revision(node_->store()->revision());
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    // Not the lessor: ask the leader.
    Result<std::shared_ptr<etcdserverpb::Lease::Stub>> stub = leader_.stub();
    if (!stub) {
      reactor->Finish(to_grpc_status(stub.status().code() == Code::kFailedPrecondition
                                         ? no_leader()
                                         : stub.status()));
      return reactor;
    }
    auto* cctx = new grpc::ClientContext();
    cctx->set_deadline(std::chrono::system_clock::now() + node_->request_timeout());
    (*stub)->async()->LeaseTimeToLive(cctx, req, reply,
                                      [cctx, reactor, s = *stub](grpc::Status st) {
                                        delete cctx;
                                        reactor->Finish(forwarded_status(st));
                                      });
    return reactor;
  }

  ServerUnaryReactor* LeaseLeases(CallbackServerContext* ctx, const etcdserverpb::LeaseLeasesRequest*,
                                  etcdserverpb::LeaseLeasesResponse* reply) override {
    std::shared_ptr<kv::Store> store = node_->store();
    for (int64_t id : store->leases()) reply->add_leases()->set_id(id);
    fill_header(node_, reply->mutable_header());
    reply->mutable_header()->set_revision(store->revision());
    return finish_now(ctx, grpc::Status::OK);
  }

  grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>* LeaseKeepAlive(
      CallbackServerContext* ctx) override;

  /// Renews `id` here (leader) or at the leader; `done` runs once, maybe on another thread.
  ///
  /// A leader first confirms it still leads with a ReadIndex round (etcd's
  /// ensureLeadership): a leader cut off from the others, not yet aware that
  /// a new one was elected, would otherwise promise a full TTL from now while
  /// the new leader's deadline counts from its own, earlier, promotion — and
  /// the lease could expire before the promised time. After a quorum has
  /// answered this round, no new leader can be elected for an election
  /// timeout, so its promotion is later than the round and its deadline later
  /// than the one promised here.
  void keep_alive(int64_t id, KeepAliveDone done) {
    if (!lessor_.is_primary()) return renew_or_forward(id, std::move(done));
    node_->read_barrier([this, id, done = std::move(done)](Status st) mutable {
      if (!st.is_ok()) {
        done(to_grpc_status(st), {});
        return;
      }
      renew_or_forward(id, std::move(done));
    });
  }

  void renew_or_forward(int64_t id, KeepAliveDone done) {
    Result<int64_t> ttl = lessor_.renew(id);
    if (ttl || ttl.status().code() == Code::kNotFound) {
      LeaseKeepAliveResponse resp;
      resp.set_id(id);
      resp.set_ttl(ttl ? *ttl : 0);  // etcd: TTL 0 when the lease is gone
      fill_header(node_, resp.mutable_header());
      resp.mutable_header()->set_revision(node_->store()->revision());
      done(grpc::Status::OK, std::move(resp));
      return;
    }
    Result<std::shared_ptr<etcdserverpb::Lease::Stub>> stub = leader_.stub();
    if (!stub) {
      done(to_grpc_status(stub.status().code() == Code::kFailedPrecondition ? no_leader()
                                                                              : stub.status()),
           {});
      return;
    }
    ForwardedKeepAlive::run(stub->get(), id, node_->request_timeout(),
                            [s = *stub, done = std::move(done)](grpc::Status st,
                                                                LeaseKeepAliveResponse r) {
                              done(std::move(st), std::move(r));
                            });
  }

 private:
  static kv::Lessor::Hooks make_hooks(server::Node* node) {
    kv::Lessor::Hooks h;
    h.leader_term = [node]() -> uint64_t {
      return node->leader() == node->member_id() ? node->term() : 0;
    };
    h.applied_term = [node] { return node->applied_term(); };
    h.leases = [node] {
      std::shared_ptr<kv::Store> store = node->store();
      std::vector<std::pair<int64_t, int64_t>> out;
      for (int64_t id : store->leases()) {
        if (std::optional<int64_t> ttl = store->lease_ttl(id)) out.emplace_back(id, *ttl);
      }
      return out;
    };
    h.lease_ttl = [node](int64_t id) { return node->store()->lease_ttl(id); };
    h.revoke = [node](int64_t id) {
      raftkvpb::InternalRequest ir;
      ir.mutable_lease_revoke()->set_id(id);
      node->store()->auth().stamp_as_root(&ir);  // expiry revokes whatever the keys
      node->propose(std::move(ir), [id](Status st, raftkvpb::InternalResponse) {
        if (!st.is_ok() && st.code() != Code::kNotFound) {
          spdlog::warn("lease expiry: revoke failed (will retry): lease={:016x} error={}", id,
                       st.message());
        }
      });
    };
    h.now = [] { return kv::Lessor::Clock::now(); };
    return h;
  }

  static kv::Lessor::Options lessor_options(const server::Config& cfg) {
    kv::Lessor::Options o;
    o.tick_interval = std::chrono::milliseconds(std::max<uint32_t>(cfg.heartbeat_interval_ms, 10));
    return o;
  }

  server::Node* node_;
  const kv::StoreOptions opts_;
  const int64_t min_ttl_seconds_;
  kv::LeaseIdGenerator ids_;
  LeaderChannel leader_;
  kv::Lessor lessor_;
  AuthChecker* auth_;
};

// One keep-alive stream: read a request, renew, write the answer, read the
// next one — so at most one write is outstanding and a client that stops
// reading stops being served.
class KeepAliveStream final
    : public grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(LeaseService* service, CallbackServerContext* ctx)
      : service_(service), ctx_(ctx) {
    StartRead(&req_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);  // the client closed its side (or cancelled)
      return;
    }
    service_->keep_alive(req_.id(), [this](grpc::Status st, LeaseKeepAliveResponse resp) {
      if (!st.ok()) {
        Finish(st);
        return;
      }
      if (ctx_->IsCancelled()) {
        Finish(grpc::Status::CANCELLED);
        return;
      }
      resp_ = std::move(resp);
      StartWrite(&resp_);
    });
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::CANCELLED);
      return;
    }
    StartRead(&req_);
  }

  void OnDone() override { delete this; }

 private:
  LeaseService* service_;
  CallbackServerContext* ctx_;
  LeaseKeepAliveRequest req_;
  LeaseKeepAliveResponse resp_;
};

grpc::ServerBidiReactor<LeaseKeepAliveRequest, LeaseKeepAliveResponse>*
LeaseService::LeaseKeepAlive(CallbackServerContext* ctx) {
  return new KeepAliveStream(this, ctx);
}

}  // namespace

std::unique_ptr<grpc::Service> make_lease_service(const ServiceContext& ctx) {
  return std::make_unique<LeaseService>(ctx);
}

}  // namespace raftkv::api
