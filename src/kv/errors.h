// etcd's errors for the KV layer, as Status values with etcd's exact gRPC code
// and message (etcdserver/api/v3rpc/rpctypes). Clients match on the message
// string, so these must never be reworded.
#pragma once

#include "base/status.h"

namespace raftkv::kv::errors {

inline Status empty_key() {
  return Status::invalid_argument("etcdserver: key is not provided");
}
inline Status key_not_found() {
  return Status::invalid_argument("etcdserver: key not found");
}
inline Status value_provided() {
  return Status::invalid_argument("etcdserver: value is provided");
}
inline Status lease_provided() {
  return Status::invalid_argument("etcdserver: lease is provided");
}
inline Status too_many_ops() {
  return Status::invalid_argument("etcdserver: too many operations in txn request");
}
inline Status duplicate_key() {
  return Status::invalid_argument("etcdserver: duplicate key given in txn request");
}
inline Status request_too_large() {
  return Status::invalid_argument("etcdserver: request is too large");
}
inline Status compacted() {
  return Status::out_of_range("etcdserver: mvcc: required revision has been compacted");
}
inline Status future_rev() {
  return Status::out_of_range("etcdserver: mvcc: required revision is a future revision");
}
inline Status no_space() {
  return Status::resource_exhausted("etcdserver: mvcc: database space exceeded");
}
/// etcd's ErrGRPCCorrupt is codes.DataLoss, which Status has no code for: the
/// API layer maps this exact message onto DATA_LOSS (api::to_grpc_status).
/// Not kCorruption: that code means "the bytes on disk are bad" and stops the
/// store when an apply returns it.
inline constexpr const char* kCorruptClusterMessage = "etcdserver: corrupt cluster";
inline Status corrupt_cluster() { return Status::failed_precondition(kCorruptClusterMessage); }
inline Status lease_not_found() {
  return Status::not_found("etcdserver: requested lease not found");
}
inline Status lease_exists() {
  return Status::failed_precondition("etcdserver: lease already exists");
}
inline Status lease_ttl_too_large() {
  return Status::out_of_range("etcdserver: too large lease TTL");
}

}  // namespace raftkv::kv::errors
