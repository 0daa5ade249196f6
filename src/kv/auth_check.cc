// Store::check_permission: which permission every operation of a request
// needs (kv/store.h), for the API layer and for apply alike.
#include <mutex>

#include "kv/auth_store.h"
#include "kv/store.h"

namespace raftkv::kv {
namespace {

// Bounds the recursion through nested txns (validate() bounds the ops per
// level; this bounds the depth, so a hostile request cannot exhaust the stack).
constexpr int kMaxTxnDepth = 64;

class Checker {
 public:
  Checker(const UserPermissions& perms, const std::map<int64_t, std::set<std::string>>& lease_keys)
      : perms_(perms), lease_keys_(lease_keys) {}

  bool need(PermKind kind, std::string_view key, std::string_view range_end) const {
    return perms_.allows(kind, KeyInterval::of(key, range_end));
  }

  bool lease_keys_writable(int64_t lease) const {
    auto it = lease_keys_.find(lease);
    if (it == lease_keys_.end()) return true;  // unknown lease: apply reports it
    for (const std::string& k : it->second) {
      if (!need(PermKind::kWrite, k, {})) return false;
    }
    return true;
  }

  bool range(const etcdserverpb::RangeRequest& r) const {
    return need(PermKind::kRead, r.key(), r.range_end());
  }
  bool put(const etcdserverpb::PutRequest& p) const {
    if (!need(PermKind::kWrite, p.key(), {})) return false;
    if (p.prev_kv() && !need(PermKind::kRead, p.key(), {})) return false;
    return p.lease() == 0 || lease_keys_writable(p.lease());
  }
  bool del(const etcdserverpb::DeleteRangeRequest& d) const {
    if (!need(PermKind::kWrite, d.key(), d.range_end())) return false;
    return !d.prev_kv() || need(PermKind::kRead, d.key(), d.range_end());
  }
  // Every compare and every operation of both branches: what a txn may do
  // is what its most privileged path may do.
  bool txn(const etcdserverpb::TxnRequest& t, int depth) const {
    if (depth > kMaxTxnDepth) return false;
    for (const auto& c : t.compare()) {
      if (!need(PermKind::kRead, c.key(), c.range_end())) return false;
    }
    for (const auto* ops : {&t.success(), &t.failure()}) {
      for (const auto& op : *ops) {
        switch (op.request_case()) {
          case etcdserverpb::RequestOp::kRequestRange:
            if (!range(op.request_range())) return false;
            break;
          case etcdserverpb::RequestOp::kRequestPut:
            if (!put(op.request_put())) return false;
            break;
          case etcdserverpb::RequestOp::kRequestDeleteRange:
            if (!del(op.request_delete_range())) return false;
            break;
          case etcdserverpb::RequestOp::kRequestTxn:
            if (!txn(op.request_txn(), depth + 1)) return false;
            break;
          default:
            break;
        }
      }
    }
    return true;
  }

 private:
  const UserPermissions& perms_;
  const std::map<int64_t, std::set<std::string>>& lease_keys_;
};

// The leases a request names (their keys matter for the check).
void collect_leases(const etcdserverpb::TxnRequest& t, int depth, std::set<int64_t>* out) {
  if (depth > kMaxTxnDepth) return;
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const auto& op : *ops) {
      if (op.has_request_put() && op.request_put().lease() != 0) {
        out->insert(op.request_put().lease());
      }
      if (op.has_request_txn()) collect_leases(op.request_txn(), depth + 1, out);
    }
  }
}

}  // namespace

Status Store::check_permission(const raftkvpb::InternalRequest& req, std::string_view user,
                               uint64_t auth_revision) const {
  using R = raftkvpb::InternalRequest;
  if (!auth_.enabled()) return Status::ok();
  if (AuthStore::is_auth_request(req)) return Status::ok();
  RAFTKV_RETURN_IF_ERROR(auth_.check_identity(user, auth_revision));
  const UserPermissions perms = auth_.permissions(user);
  if (perms.root) return Status::ok();

  std::set<int64_t> leases;
  if (req.has_put() && req.put().lease() != 0) leases.insert(req.put().lease());
  if (req.has_txn()) collect_leases(req.txn(), 0, &leases);
  if (req.has_lease_revoke()) leases.insert(req.lease_revoke().id());
  std::map<int64_t, std::set<std::string>> lease_keys;
  if (!leases.empty()) {
    std::shared_lock l(mu_);
    for (int64_t id : leases) {
      auto it = leases_.find(id);
      if (it != leases_.end()) lease_keys[id] = it->second.keys;
    }
  }
  const Checker c(perms, lease_keys);
  bool ok = true;
  switch (req.request_case()) {
    case R::kRange:
      ok = c.range(req.range());
      break;
    case R::kPut:
      ok = c.put(req.put());
      break;
    case R::kDeleteRange:
      ok = c.del(req.delete_range());
      break;
    case R::kTxn:
      ok = c.txn(req.txn(), 0);
      break;
    case R::kLeaseRevoke:
      ok = c.lease_keys_writable(req.lease_revoke().id());
      break;
    default:  // LeaseGrant, Compaction: any authenticated user (as etcd)
      break;
  }
  return ok ? Status::ok() : auth_errors::permission_denied();
}

}  // namespace raftkv::kv
