// v3lockpb.Lock: Lock and Unlock with etcd's semantics — its concurrency
// Mutex recipe, run inside the server (docs/coordination.md, "Locks").
//
// Lock(name, lease): the owner key is name/<lease hex>, created (with the
// lease) if absent; whoever's key under name/ has the lowest create revision
// holds the lock; the others wait — through the watch hub, not by polling —
// for the deletion of the key with the next-lower create revision, then
// check again. The answer's key is the owner key; its create revision (the
// header revision of a fresh acquisition) is the fencing token. A client
// that cancels while waiting has its key deleted. Unlock(key) deletes it.
#include "api/coordination.h"
#include "etcd/v3lockpb/v3lock.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
namespace co = coordination;

// etcd's concurrency.ErrSessionExpired: the lease ended while waiting.
grpc::Status session_expired() {
  return grpc::Status(grpc::StatusCode::UNKNOWN, "session: session is expired");
}

class LockService final : public v3lockpb::Lock::CallbackService {
 public:
  explicit LockService(const ServiceContext& ctx)
      : node_(ctx.node), opts_(ctx.store_options), auth_(ctx.auth) {}

  // The caller needs write on its owner key (and on every key already
  // attached to the lease) and read on name/: the permissions etcd's
  // in-server client asks for when it runs the recipe with the caller's token.
  ServerUnaryReactor* Lock(CallbackServerContext* ctx, const v3lockpb::LockRequest* req,
                           v3lockpb::LockResponse* reply) override {
    std::shared_ptr<co::Gate> gate;
    ServerUnaryReactor* reactor = co::Gate::make(&gate);
    const std::optional<std::string> caller = co::caller(*auth_, *ctx, *gate);
    if (!caller) return reactor;
    const std::string& user = *caller;
    const std::string key = co::owner_key(req->name(), req->lease());
    const std::string prefix = req->name() + "/";

    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = co::created_at(key, 0);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_lease(req->lease());
    *txn.add_success()->mutable_request_range() = co::create_ordered(prefix, /*first=*/true);
    txn.add_failure()->mutable_request_range()->set_key(key);
    *txn.add_failure()->mutable_request_range() = co::create_ordered(prefix, /*first=*/true);

    co::propose_txn(node_, opts_, user, std::move(txn), [this, gate, reply, key, prefix, user](
                                                      Result<etcdserverpb::TxnResponse> r) {
      if (!r) {
        gate->finish(to_grpc_status(r.status()));
        return;
      }
      const auto& existing = r->responses(0).response_range().kvs();
      if (!r->succeeded() && existing.empty()) {  // deleted between compare and read: impossible in one txn
        gate->finish(session_expired());
        return;
      }
      const int64_t my_rev = r->succeeded() ? r->header().revision() : existing[0].create_revision();
      const auto& owner = r->responses(1).response_range().kvs();
      if (owner.empty() || owner[0].create_revision() == my_rev) {
        answer(gate, reply, r->header(), user, key);
        return;
      }
      auto waiter = co::DeleteWaiter::start(
          node_, user, prefix, my_rev - 1,
          [this, gate, reply, key, my_rev, user](Result<etcdserverpb::ResponseHeader> h) {
            if (!h) {
              unlock_quietly(user, key);
              gate->finish(to_grpc_status(h.status()));
              return;
            }
            confirm_held(gate, reply, user, key, my_rev);
          });
      auto withdraw = [this, waiter, key, user] {
        waiter->cancel();
        unlock_quietly(user, key);
      };
      if (!gate->set_on_cancel(withdraw)) withdraw();
    });
    return reactor;
  }

  ServerUnaryReactor* Unlock(CallbackServerContext* ctx, const v3lockpb::UnlockRequest* req,
                             v3lockpb::UnlockResponse* reply) override {
    raftkvpb::InternalRequest ir;
    ir.mutable_delete_range()->set_key(req->key());
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    Status v = kv::Store::validate(ir, opts_);
    if (v.is_ok()) v = auth_->authorize(*ctx, &ir);  // write on the key, as KV.DeleteRange
    if (!v.is_ok()) {
      reactor->Finish(to_grpc_status(v));
      return reactor;
    }
    node_->propose(std::move(ir), [node = node_, reactor, reply](Status st,
                                                                  raftkvpb::InternalResponse r) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      *reply->mutable_header() = r.delete_range().header();  // UnlockResponse: header only
      fill_header(node, reply->mutable_header());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

 private:
  void answer(const std::shared_ptr<co::Gate>& gate, v3lockpb::LockResponse* reply,
              const etcdserverpb::ResponseHeader& header, const std::string& user,
              const std::string& key) {
    const bool delivered = gate->finish(grpc::Status::OK, [&] {
      *reply->mutable_header() = header;
      fill_header(node_, reply->mutable_header());
      reply->set_key(key);
    });
    if (!delivered) unlock_quietly(user, key);  // the client left: do not hold the lock for it
  }

  // After the wait: the lock is ours only if our key still exists (its lease
  // may have expired meanwhile).
  void confirm_held(std::shared_ptr<co::Gate> gate, v3lockpb::LockResponse* reply,
                    std::string user, std::string key, int64_t my_rev) {
    etcdserverpb::RangeRequest get;
    get.set_key(key);
    co::linearizable_range(node_, user, std::move(get), [this, gate, reply, user, key, my_rev](
                                                      Result<etcdserverpb::RangeResponse> r) {
      if (!r) {
        gate->finish(to_grpc_status(r.status()));
        return;
      }
      if (r->kvs_size() == 0 || r->kvs(0).create_revision() != my_rev) {
        gate->finish(session_expired());
        return;
      }
      answer(gate, reply, r->header(), user, key);
    });
  }

  void unlock_quietly(const std::string& user, const std::string& key) {
    raftkvpb::InternalRequest ir;
    ir.mutable_delete_range()->set_key(key);
    co::act_as(node_, user, &ir);
    node_->propose(std::move(ir), [](Status, raftkvpb::InternalResponse) {});
  }

  server::Node* node_;
  const kv::StoreOptions opts_;
  AuthChecker* auth_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_lock_service(const ServiceContext& ctx) {
  return std::make_unique<LockService>(ctx);
}

}  // namespace raftkv::api
