#include "api/coordination.h"

#include <cstdio>

namespace raftkv::api::coordination {

etcdserverpb::Compare created_at(const std::string& key, int64_t rev) {
  etcdserverpb::Compare c;
  c.set_key(key);
  c.set_target(etcdserverpb::Compare::CREATE);
  c.set_result(etcdserverpb::Compare::EQUAL);
  c.set_create_revision(rev);
  return c;
}

std::optional<std::string> caller(const AuthChecker& auth, const grpc::ServerContextBase& ctx,
                                  Gate& gate) {
  Result<AuthInfo> who = auth.authenticate(ctx);
  if (!who) {
    gate.finish(to_grpc_status(who.status()));
    return std::nullopt;
  }
  return who->username;
}

std::string owner_key(const std::string& name, int64_t lease) {
  char hex[24];
  std::snprintf(hex, sizeof hex, "%llx", static_cast<unsigned long long>(lease));
  return name + "/" + hex;
}

std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

void act_as(server::Node* node, const std::string& user, raftkvpb::InternalRequest* req) {
  req->mutable_header()->set_username(user);
  req->mutable_header()->set_auth_revision(node->store()->auth().revision());
}

namespace {

// The check the apply loop makes, made now: refused requests spare the log.
Status permitted(server::Node* node, const raftkvpb::InternalRequest& req) {
  return node->store()->check_permission(req, req.header().username(),
                                         req.header().auth_revision());
}

}  // namespace

void linearizable_range(server::Node* node, const std::string& user,
                        etcdserverpb::RangeRequest req, RangeDone done) {
  node->read_barrier([node, user, req = std::move(req), done = std::move(done)](Status st) {
    if (!st.is_ok()) {
      done(st);
      return;
    }
    // Checked after the barrier, against auth state at least as new as every
    // change that completed before the read began (as KV.Range).
    raftkvpb::InternalRequest ir;
    *ir.mutable_range() = req;
    act_as(node, user, &ir);
    if (Status a = permitted(node, ir); !a.is_ok()) {
      done(a);
      return;
    }
    done(node->store()->range(req));
  });
}

void propose_txn(server::Node* node, const kv::StoreOptions& opts, const std::string& user,
                 etcdserverpb::TxnRequest req, TxnDone done) {
  raftkvpb::InternalRequest ir;
  *ir.mutable_txn() = std::move(req);
  act_as(node, user, &ir);
  Status v = kv::Store::validate(ir, opts);
  if (v.is_ok()) v = permitted(node, ir);
  if (!v.is_ok()) {
    done(v);
    return;
  }
  node->propose(std::move(ir), [done = std::move(done)](Status st, raftkvpb::InternalResponse r) {
    if (!st.is_ok()) {
      done(st);
      return;
    }
    done(std::move(*r.mutable_txn()));
  });
}

etcdserverpb::RangeRequest create_ordered(const std::string& prefix, bool first,
                                          int64_t max_create_revision) {
  etcdserverpb::RangeRequest r;
  r.set_key(prefix);
  r.set_range_end(prefix_end(prefix));
  r.set_sort_target(etcdserverpb::RangeRequest::CREATE);
  r.set_sort_order(first ? etcdserverpb::RangeRequest::ASCEND : etcdserverpb::RangeRequest::DESCEND);
  r.set_limit(1);
  r.set_max_create_revision(max_create_revision);
  return r;
}

// ---------------------------------------------------------------- DeleteWaiter

std::shared_ptr<DeleteWaiter> DeleteWaiter::start(server::Node* node, std::string user,
                                                  std::string prefix, int64_t max_create_revision,
                                                  Done done) {
  std::shared_ptr<DeleteWaiter> w(new DeleteWaiter(node, std::move(user), std::move(prefix),
                                                   max_create_revision, std::move(done)));
  w->check();
  return w;
}

void DeleteWaiter::check() {
  linearizable_range(node_, user_, create_ordered(prefix_, /*first=*/false, max_rev_),
                     [self = shared_from_this()](Result<etcdserverpb::RangeResponse> r) {
                       self->on_range(std::move(r));
                     });
}

void DeleteWaiter::on_range(Result<etcdserverpb::RangeResponse> r) {
  if (!r) {
    finish(r.status());
    return;
  }
  if (r->kvs_size() == 0) {
    finish(r->header());
    return;
  }
  kv::WatchSpec spec;
  spec.key = r->kvs(0).key();
  spec.start_revision = r->header().revision() + 1;
  spec.filter_put = true;  // only the deletion matters
  {
    std::lock_guard lk(mu_);
    if (!done_) return;  // cancelled
  }
  std::weak_ptr<DeleteWaiter> weak = weak_from_this();
  Result<kv::WatcherId> id = node_->watch_hub().add(spec, [weak] {
    if (auto self = weak.lock()) self->on_notify();
  });
  if (!id) {
    finish(id.status());
    return;
  }
  bool cancelled = false;
  {
    std::lock_guard lk(mu_);
    watcher_ = *id;
    cancelled = !done_;
  }
  if (cancelled) {
    node_->watch_hub().remove(*id);
    return;
  }
  on_notify();  // a notify that ran before watcher_ was set found nothing to take
}

void DeleteWaiter::on_notify() {
  kv::WatcherId id = 0;
  {
    std::lock_guard lk(mu_);
    id = watcher_;
  }
  if (id == 0) return;
  bool deleted = false;
  bool compacted = false;
  for (int round = 0; round < 64; ++round) {
    kv::WatchDelivery d = node_->watch_hub().take(id, 1024);
    if (d.compact_revision != 0) compacted = true;
    for (const kv::RevisionEvents& rev : d.revisions) deleted = deleted || !rev.events.empty();
    if (!d.more || deleted || compacted) break;
  }
  if (!deleted && !compacted) return;
  {
    std::lock_guard lk(mu_);
    if (watcher_ != id) return;  // another notify handled it
    watcher_ = 0;
  }
  node_->watch_hub().remove(id);
  check();  // the next-lower key, if any
}

void DeleteWaiter::finish(Result<etcdserverpb::ResponseHeader> r) {
  Done done;
  {
    std::lock_guard lk(mu_);
    done = std::move(done_);
    done_ = nullptr;
  }
  if (done) done(std::move(r));
}

void DeleteWaiter::cancel() {
  kv::WatcherId id = 0;
  {
    std::lock_guard lk(mu_);
    done_ = nullptr;
    id = watcher_;
    watcher_ = 0;
  }
  if (id != 0) node_->watch_hub().remove(id);
}

// ---------------------------------------------------------------- Gate

class GateReactor final : public grpc::ServerUnaryReactor {
 public:
  explicit GateReactor(std::shared_ptr<Gate> gate) : gate_(std::move(gate)) {}
  void OnCancel() override { gate_->cancelled(); }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<Gate> gate_;
};

grpc::ServerUnaryReactor* Gate::make(std::shared_ptr<Gate>* gate) {
  *gate = std::make_shared<Gate>();
  auto* r = new GateReactor(*gate);
  (*gate)->reactor_ = r;
  return r;
}

bool Gate::finish(const grpc::Status& st, const std::function<void()>& fill) {
  {
    std::lock_guard lk(mu_);
    if (ended_) return false;
    ended_ = true;
    if (fill) fill();
  }
  reactor_->Finish(st);
  return true;
}

bool Gate::ended() {
  std::lock_guard lk(mu_);
  return ended_;
}

bool Gate::set_on_cancel(std::function<void()> fn) {
  std::lock_guard lk(mu_);
  if (ended_) return false;
  on_cancel_ = std::move(fn);
  return true;
}

void Gate::cancelled() {
  std::function<void()> fn;
  {
    std::lock_guard lk(mu_);
    if (ended_) return;
    ended_ = true;
    fn = std::move(on_cancel_);
    on_cancel_ = nullptr;
  }
  if (fn) fn();
  reactor_->Finish(grpc::Status::CANCELLED);
}

}  // namespace raftkv::api::coordination
