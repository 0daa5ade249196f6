// etcdserverpb.KV: Range (linearizable through ReadIndex, or serializable
// from local state), Put, DeleteRange, Txn, Compact.
#include "api/service_util.h"

#include <thread>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

class KvService final : public etcdserverpb::KV::CallbackService {
 public:
  KvService(server::Node* node, kv::StoreOptions opts, AuthChecker* auth)
      : node_(node), opts_(opts), auth_(auth) {}

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
    auto serve = [node = node_, auth = auth_, ctx, req, reply, reactor](Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      // Checked after the barrier: against auth state at least as new as
      // every change that completed before the read began.
      Status a = auth->check_read(*ctx, req->key(), req->range_end());
      if (!a.is_ok()) {
        reactor->Finish(to_grpc_status(a));
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
    if (v.is_ok()) v = auth_->authorize(*ctx, &ir);  // any authenticated user (etcd)
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
    // Every operation, nested txns included; re-checked at apply time.
    if (Status a = auth_->authorize(*ctx, &ir); !a.is_ok()) {
      reactor->Finish(to_grpc_status(a));
      return reactor;
    }
    propose_and_finish(node_, opts_, std::move(ir), reactor, reply,
                       [unwrap](raftkvpb::InternalResponse& r) { return (r.*unwrap)(); });
    return reactor;
  }

  server::Node* node_;
  const kv::StoreOptions opts_;
  AuthChecker* auth_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_kv_service(const ServiceContext& ctx) {
  return std::make_unique<KvService>(ctx.node, ctx.store_options, ctx.auth);
}

}  // namespace raftkv::api
