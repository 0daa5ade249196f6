// v3electionpb.Election: Campaign, Proclaim, Leader, Observe, Resign with
// etcd's semantics — its concurrency Election recipe, run inside the server
// (docs/coordination.md, "Elections").
//
// A candidate's key is name/<lease hex>, holding its proposal, attached to
// its lease. The leader is the key under name/ with the lowest create
// revision. Campaign creates the key (or adopts it, updating the value) and
// waits — through the watch hub — until every key created before it is gone.
// LeaderKey.rev (the key's create revision) guards Proclaim and Resign: they
// act only while that very key still exists.
#include <mutex>
#include <optional>

#include "api/coordination.h"
#include "etcd/v3electionpb/v3election.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
namespace co = coordination;

// etcd's error strings (concurrency and v3election packages); etcd returns
// them as plain errors, which gRPC sends with code UNKNOWN.
grpc::Status not_leader() { return grpc::Status(grpc::StatusCode::UNKNOWN, "election: not leader"); }
grpc::Status no_leader() { return grpc::Status(grpc::StatusCode::UNKNOWN, "election: no leader"); }
grpc::Status missing_leader_key() {
  return grpc::Status(grpc::StatusCode::UNKNOWN, "\"leader\" field must be provided");
}

class ElectionService final : public v3electionpb::Election::CallbackService {
 public:
  explicit ElectionService(const ServiceContext& ctx)
      : node_(ctx.node), opts_(ctx.store_options), auth_(ctx.auth) {}

  // Every RPC acts for its caller (coordination.h): a candidate needs write
  // on its key name/<lease hex> (and on the lease's other keys) and read on
  // name/; Leader and Observe need read on name/.

  ServerUnaryReactor* Campaign(CallbackServerContext* ctx, const v3electionpb::CampaignRequest* req,
                               v3electionpb::CampaignResponse* reply) override {
    std::shared_ptr<co::Gate> gate;
    ServerUnaryReactor* reactor = co::Gate::make(&gate);
    const std::optional<std::string> caller = co::caller(*auth_, *ctx, *gate);
    if (!caller) return reactor;
    const std::string& user = *caller;
    v3electionpb::LeaderKey leader;
    leader.set_name(req->name());
    leader.set_key(co::owner_key(req->name(), req->lease()));
    leader.set_lease(req->lease());
    const std::string value = req->value();

    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = co::created_at(leader.key(), 0);
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(leader.key());
    put->set_value(value);
    put->set_lease(req->lease());
    txn.add_failure()->mutable_request_range()->set_key(leader.key());

    co::propose_txn(node_, opts_, user, std::move(txn), [this, gate, reply, leader, value, user](
                                                      Result<etcdserverpb::TxnResponse> r) mutable {
      if (!r) {
        gate->finish(to_grpc_status(r.status()));
        return;
      }
      if (r->succeeded()) {
        leader.set_rev(r->header().revision());
        wait_for_turn(gate, reply, user, leader);
        return;
      }
      const auto& kvs = r->responses(0).response_range().kvs();
      if (kvs.empty()) {
        gate->finish(not_leader());
        return;
      }
      leader.set_rev(kvs[0].create_revision());
      if (kvs[0].value() == value) {
        wait_for_turn(gate, reply, user, leader);
        return;
      }
      // Our key already exists with another value: publish the new one first.
      proclaim(user, leader, value, [this, gate, reply, leader, user](Result<etcdserverpb::TxnResponse> p) {
        if (!p) {
          gate->finish(to_grpc_status(p.status()));
        } else if (!p->succeeded()) {
          gate->finish(not_leader());
        } else {
          wait_for_turn(gate, reply, user, leader);
        }
      });
    });
    return reactor;
  }

  ServerUnaryReactor* Proclaim(CallbackServerContext* ctx, const v3electionpb::ProclaimRequest* req,
                               v3electionpb::ProclaimResponse* reply) override {
    std::shared_ptr<co::Gate> gate;
    ServerUnaryReactor* reactor = co::Gate::make(&gate);
    const std::optional<std::string> caller = co::caller(*auth_, *ctx, *gate);
    if (!caller) return reactor;
    const std::string& user = *caller;
    if (!req->has_leader()) {
      gate->finish(missing_leader_key());
      return reactor;
    }
    proclaim(user, req->leader(), req->value(), [this, gate, reply](Result<etcdserverpb::TxnResponse> r) {
      if (!r) {
        gate->finish(to_grpc_status(r.status()));
      } else if (!r->succeeded()) {
        gate->finish(not_leader());
      } else {
        finish_with_header(gate, reply, r->header());
      }
    });
    return reactor;
  }

  ServerUnaryReactor* Resign(CallbackServerContext* ctx, const v3electionpb::ResignRequest* req,
                             v3electionpb::ResignResponse* reply) override {
    std::shared_ptr<co::Gate> gate;
    ServerUnaryReactor* reactor = co::Gate::make(&gate);
    const std::optional<std::string> caller = co::caller(*auth_, *ctx, *gate);
    if (!caller) return reactor;
    const std::string& user = *caller;
    if (!req->has_leader()) {
      gate->finish(missing_leader_key());
      return reactor;
    }
    resign(user, req->leader(), [this, gate, reply](Result<etcdserverpb::TxnResponse> r) {
      if (!r) {
        gate->finish(to_grpc_status(r.status()));
      } else {
        finish_with_header(gate, reply, r->header());
      }
    });
    return reactor;
  }

  ServerUnaryReactor* Leader(CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req,
                             v3electionpb::LeaderResponse* reply) override {
    std::shared_ptr<co::Gate> gate;
    ServerUnaryReactor* reactor = co::Gate::make(&gate);
    const std::optional<std::string> caller = co::caller(*auth_, *ctx, *gate);
    if (!caller) return reactor;
    const std::string& user = *caller;
    co::linearizable_range(node_, user, co::create_ordered(req->name() + "/", /*first=*/true),
                           [this, gate, reply](Result<etcdserverpb::RangeResponse> r) {
                             if (!r) {
                               gate->finish(to_grpc_status(r.status()));
                             } else if (r->kvs_size() == 0) {
                               gate->finish(no_leader());
                             } else {
                               gate->finish(grpc::Status::OK, [&] {
                                 *reply->mutable_header() = r->header();
                                 fill_header(node_, reply->mutable_header());
                                 *reply->mutable_kv() = r->kvs(0);
                               });
                             }
                           });
    return reactor;
  }

  grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* Observe(
      CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) override;

 private:
  template <typename Resp>
  void finish_with_header(const std::shared_ptr<co::Gate>& gate, Resp* reply,
                          const etcdserverpb::ResponseHeader& h) {
    gate->finish(grpc::Status::OK, [&] {
      *reply->mutable_header() = h;
      fill_header(node_, reply->mutable_header());
    });
  }

  void proclaim(const std::string& user, const v3electionpb::LeaderKey& leader,
                const std::string& value, co::TxnDone done) {
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = co::created_at(leader.key(), leader.rev());
    etcdserverpb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(leader.key());
    put->set_value(value);
    put->set_lease(leader.lease());
    co::propose_txn(node_, opts_, user, std::move(txn), std::move(done));
  }

  void resign(const std::string& user, const v3electionpb::LeaderKey& leader, co::TxnDone done) {
    etcdserverpb::TxnRequest txn;
    *txn.add_compare() = co::created_at(leader.key(), leader.rev());
    txn.add_success()->mutable_request_delete_range()->set_key(leader.key());
    co::propose_txn(node_, opts_, user, std::move(txn), std::move(done));
  }

  // Waits until every candidate that came before has gone, then answers with
  // the leader key; a cancelled or failed wait withdraws the candidacy.
  void wait_for_turn(std::shared_ptr<co::Gate> gate, v3electionpb::CampaignResponse* reply,
                     const std::string& user, v3electionpb::LeaderKey leader) {
    auto waiter = co::DeleteWaiter::start(
        node_, user, leader.name() + "/", leader.rev() - 1,
        [this, gate, reply, leader, user](Result<etcdserverpb::ResponseHeader> h) {
          if (!h) {
            resign(user, leader, [](Result<etcdserverpb::TxnResponse>) {});
            gate->finish(to_grpc_status(h.status()));
            return;
          }
          const bool delivered = gate->finish(grpc::Status::OK, [&] {
            *reply->mutable_header() = *h;
            fill_header(node_, reply->mutable_header());
            *reply->mutable_leader() = leader;
          });
          if (!delivered) resign(user, leader, [](Result<etcdserverpb::TxnResponse>) {});
        });
    auto withdraw = [this, waiter, leader, user] {
      waiter->cancel();
      resign(user, leader, [](Result<etcdserverpb::TxnResponse>) {});
    };
    if (!gate->set_on_cancel(withdraw)) withdraw();
  }

  server::Node* node_;
  const kv::StoreOptions opts_;
  AuthChecker* auth_;
};

// Observe: sends the current leader, then every change of leader or of the
// leader's value. The stream keeps one write outstanding and only the newest
// unsent leader, so a slow reader costs one message of memory.
class ObserveStream final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  // `user`: the authenticated caller, who needs read on name/ (checked once,
  // when the stream begins, as a watch is checked when it is created).
  ObserveStream(server::Node* node, const std::string& user, std::string name)
      : state_(std::make_shared<State>()) {
    state_->node = node;
    state_->prefix = std::move(name) + "/";
    state_->stream = this;
    state_->self = state_;
    std::shared_ptr<State> st = state_;
    co::linearizable_range(node, user, co::create_ordered(st->prefix, /*first=*/true),
                           [st](Result<etcdserverpb::RangeResponse> r) {
                             std::lock_guard lk(st->mu);
                             if (st->stream == nullptr || st->ending) return;
                             if (!r) {
                               st->end(to_grpc_status(r.status()));
                               return;
                             }
                             st->offer(*r);
                             st->watch_from(r->header().revision() + 1);
                           });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lk(state_->mu);
    state_->writing = false;
    if (!ok) {
      state_->end(grpc::Status::CANCELLED);
      return;
    }
    state_->pump();
  }

  void OnCancel() override {
    std::lock_guard lk(state_->mu);
    state_->end(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    kv::WatcherId id = 0;
    {
      std::lock_guard lk(state_->mu);
      state_->stream = nullptr;
      id = state_->watcher;
      state_->watcher = 0;
    }
    if (id != 0) state_->node->watch_hub().remove(id);
    delete this;
  }

 private:
  struct State {
    // Recursive: gRPC may run OnWriteDone inline from StartWrite.
    std::recursive_mutex mu;
    server::Node* node = nullptr;
    std::string prefix;
    ObserveStream* stream = nullptr;  ///< Null once the call is done.
    kv::WatcherId watcher = 0;
    bool writing = false;
    bool ending = false;
    std::string sent_key;  ///< Leader last queued: key and mod revision.
    int64_t sent_mod = 0;
    std::optional<v3electionpb::LeaderResponse> next;  ///< Newest unsent.

    // mu held. Queues the leader `r` shows if it differs from the last one.
    void offer(const etcdserverpb::RangeResponse& r) {
      if (r.kvs_size() == 0) return;  // no leader now: wait for one
      const mvccpb::KeyValue& kv = r.kvs(0);
      if (kv.key() == sent_key && kv.mod_revision() == sent_mod) return;
      sent_key = kv.key();
      sent_mod = kv.mod_revision();
      v3electionpb::LeaderResponse out;
      *out.mutable_header() = r.header();
      fill_header(node, out.mutable_header());
      *out.mutable_kv() = kv;
      next = std::move(out);
      pump();
    }

    void pump() {
      if (stream == nullptr || writing || ending || !next) return;
      writing = true;
      current = std::move(*next);
      next.reset();
      stream->StartWrite(&current);
    }

    void end(const grpc::Status& s) {
      if (stream == nullptr || ending) return;
      ending = true;
      if (watcher != 0) {
        node->watch_hub().remove(watcher);
        watcher = 0;
      }
      stream->Finish(s);
    }

    void watch_from(int64_t rev) {
      kv::WatchSpec spec;
      spec.key = prefix;
      spec.range_end = co::prefix_end(prefix);
      spec.start_revision = rev;
      std::weak_ptr<State> weak = self;
      Result<kv::WatcherId> id = node->watch_hub().add(spec, [weak] {
        if (auto st = weak.lock()) st->on_notify();
      });
      if (!id) {
        end(to_grpc_status(id.status()));
        return;
      }
      watcher = *id;
      on_notify();
    }

    void on_notify() {
      std::lock_guard lk(mu);
      if (stream == nullptr || ending || watcher == 0) return;
      int64_t last = 0;
      for (int round = 0; round < 64; ++round) {
        kv::WatchDelivery d = node->watch_hub().take(watcher, 1024);
        if (d.compact_revision != 0) {
          // Missed history: start over from the current leader.
          node->watch_hub().remove(watcher);
          watcher = 0;
          etcdserverpb::RangeRequest req = co::create_ordered(prefix, /*first=*/true);
          Result<etcdserverpb::RangeResponse> r = node->store()->range(req);
          if (!r) {
            end(to_grpc_status(r.status()));
            return;
          }
          offer(*r);
          watch_from(r->header().revision() + 1);
          return;
        }
        if (!d.revisions.empty()) last = d.revisions.back().revision;
        if (!d.more) break;
      }
      if (last == 0) return;
      // The leader as of the newest revision seen.
      etcdserverpb::RangeRequest req = co::create_ordered(prefix, /*first=*/true);
      req.set_revision(last);
      Result<etcdserverpb::RangeResponse> r = node->store()->range(req);
      if (!r) {
        req.set_revision(0);  // compacted meanwhile: the current leader will do
        r = node->store()->range(req);
      }
      if (!r) {
        end(to_grpc_status(r.status()));
        return;
      }
      offer(*r);
    }

    v3electionpb::LeaderResponse current;  ///< The write in flight.
    std::weak_ptr<State> self;
  };

  std::shared_ptr<State> state_;
};

// An Observe refused before it began (its caller did not authenticate).
class RefusedObserve final : public grpc::ServerWriteReactor<v3electionpb::LeaderResponse> {
 public:
  explicit RefusedObserve(const grpc::Status& s) { Finish(s); }
  void OnDone() override { delete this; }
};

grpc::ServerWriteReactor<v3electionpb::LeaderResponse>* ElectionService::Observe(
    CallbackServerContext* ctx, const v3electionpb::LeaderRequest* req) {
  Result<AuthInfo> who = auth_->authenticate(*ctx);
  if (!who) return new RefusedObserve(to_grpc_status(who.status()));
  return new ObserveStream(node_, who->username, req->name());
}

}  // namespace

std::unique_ptr<grpc::Service> make_election_service(const ServiceContext& ctx) {
  return std::make_unique<ElectionService>(ctx);
}

}  // namespace raftkv::api
