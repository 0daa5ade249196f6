// Store::validate: etcd's API-layer request checks (v3rpc/key.go), with the
// same error codes and messages, in the same order.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "kv/errors.h"
#include "kv/store.h"

namespace raftkv::kv {
namespace {

using etcdserverpb::RequestOp;
using etcdserverpb::TxnRequest;

Status check_range(const etcdserverpb::RangeRequest& r) {
  return r.key().empty() ? errors::empty_key() : Status::ok();
}

Status check_put(const etcdserverpb::PutRequest& r) {
  if (r.key().empty()) return errors::empty_key();
  if (r.ignore_value() && !r.value().empty()) return errors::value_provided();
  if (r.ignore_lease() && r.lease() != 0) return errors::lease_provided();
  return Status::ok();
}

Status check_delete(const etcdserverpb::DeleteRangeRequest& r) {
  return r.key().empty() ? errors::empty_key() : Status::ok();
}

Status check_txn(const TxnRequest& t, int64_t max_ops);

Status check_op(const RequestOp& op, int64_t max_ops) {
  switch (op.request_case()) {
    case RequestOp::kRequestRange:
      return check_range(op.request_range());
    case RequestOp::kRequestPut:
      return check_put(op.request_put());
    case RequestOp::kRequestDeleteRange:
      return check_delete(op.request_delete_range());
    case RequestOp::kRequestTxn:
      return check_txn(op.request_txn(), max_ops);
    case RequestOp::REQUEST_NOT_SET:
      break;
  }
  return errors::key_not_found();  // etcd's answer to an empty op
}

Status check_txn(const TxnRequest& t, int64_t max_ops) {
  int64_t opc = t.compare_size();
  opc = std::max<int64_t>(opc, t.success_size());
  opc = std::max<int64_t>(opc, t.failure_size());
  if (opc > max_ops) return errors::too_many_ops();
  for (const auto& c : t.compare()) {
    if (c.key().empty()) return errors::empty_key();
  }
  // Nested txns get what is left of the budget (etcd).
  for (const auto& op : t.success()) RAFTKV_RETURN_IF_ERROR(check_op(op, max_ops - opc));
  for (const auto& op : t.failure()) RAFTKV_RETURN_IF_ERROR(check_op(op, max_ops - opc));
  return Status::ok();
}

// [begin, end) with etcd's "affine" end: an empty end is +infinity.
struct Interval {
  std::string begin;
  std::string end;
};

bool hits(const std::vector<Interval>& dels, const std::string& key) {
  for (const auto& d : dels) {
    if (d.begin <= key && (d.end.empty() || key < d.end)) return true;
  }
  return false;
}

// etcd's checkIntervals: a key may be put at most once per txn, and never in
// a txn that also deletes it, across nesting levels (a then/else pair may put
// the same key: only one of them runs).
Status check_intervals(const google::protobuf::RepeatedPtrField<RequestOp>& ops,
                       std::set<std::string>* puts, std::vector<Interval>* dels) {
  for (const auto& op : ops) {
    if (!op.has_request_delete_range()) continue;
    const auto& d = op.request_delete_range();
    if (d.range_end() == std::string_view("\0", 1)) {
      // "Every key >= key". etcd 3.4 takes "\0" literally here, so the
      // interval is empty and a put of a deleted key slips through (etcd then
      // panics applying an ignore_value put of it); we treat it as the range
      // it means.
      dels->push_back({d.key(), ""});
    } else if (!d.range_end().empty()) {
      dels->push_back({d.key(), d.range_end()});
    } else {
      dels->push_back({d.key(), d.key() + std::string(1, '\0')});
    }
  }
  for (const auto& op : ops) {
    if (!op.has_request_txn()) continue;
    std::set<std::string> puts_then, puts_else;
    std::vector<Interval> dels_then, dels_else;
    RAFTKV_RETURN_IF_ERROR(check_intervals(op.request_txn().success(), &puts_then, &dels_then));
    RAFTKV_RETURN_IF_ERROR(check_intervals(op.request_txn().failure(), &puts_else, &dels_else));
    for (const auto& k : puts_then) {
      if (puts->count(k) != 0 || hits(*dels, k)) return errors::duplicate_key();
      puts->insert(k);
    }
    for (const auto& k : puts_else) {
      if (puts->count(k) != 0 && puts_then.count(k) == 0) return errors::duplicate_key();
      if (hits(*dels, k)) return errors::duplicate_key();
      puts->insert(k);
    }
    dels->insert(dels->end(), dels_then.begin(), dels_then.end());
    dels->insert(dels->end(), dels_else.begin(), dels_else.end());
  }
  for (const auto& op : ops) {
    if (!op.has_request_put()) continue;
    const std::string& k = op.request_put().key();
    if (puts->count(k) != 0 || hits(*dels, k)) return errors::duplicate_key();
    puts->insert(k);
  }
  return Status::ok();
}

}  // namespace

Status Store::validate(const raftkvpb::InternalRequest& request, const StoreOptions& options) {
  using R = raftkvpb::InternalRequest;
  if (options.max_request_bytes != UINT64_MAX &&
      request.ByteSizeLong() > options.max_request_bytes) {
    return errors::request_too_large();
  }
  switch (request.request_case()) {
    case R::kRange:
      return check_range(request.range());
    case R::kPut:
      return check_put(request.put());
    case R::kDeleteRange:
      return check_delete(request.delete_range());
    case R::kTxn: {
      const auto& t = request.txn();
      RAFTKV_RETURN_IF_ERROR(check_txn(t, options.max_txn_ops));
      {
        std::set<std::string> puts;
        std::vector<Interval> dels;
        RAFTKV_RETURN_IF_ERROR(check_intervals(t.success(), &puts, &dels));
      }
      std::set<std::string> puts;
      std::vector<Interval> dels;
      return check_intervals(t.failure(), &puts, &dels);
    }
    default:
      return Status::ok();
  }
}

}  // namespace raftkv::kv
