// AuthChecker: who is calling, and may they do this? The one object every
// client-facing service asks before it serves a request (docs/security.md).
//
// Guarding a handler is one call; the guard returns etcd's error as a Status
// (OK when auth is disabled or the caller is allowed):
//
//   // a read of [key, range_end) (Range, Watch create, ...):
//   if (Status s = auth->check_read(*ctx, req->key(), req->range_end()); !s.is_ok())
//     return finish_now(ctx, to_grpc_status(s));
//   // root-only operations (member add/remove/update/promote, defragment,
//   // snapshot, hash, hash-kv, move-leader, compaction):
//   if (Status s = auth->check_admin(*ctx); !s.is_ok()) return finish_now(ctx, to_grpc_status(s));
//   // anything proposed through Raft as an InternalRequest (Put, DeleteRange,
//   // Txn, Compact, LeaseRevoke, ...): checks every operation, recursively
//   // through nested txns, and stamps header.username / header.auth_revision
//   // so that every member re-checks at apply time:
//   if (Status s = auth->authorize(*ctx, &internal_request); !s.is_ok()) ...
//
// Identity: the `token` gRPC metadata (from Auth.Authenticate; simple or JWT,
// see auth_token.h); with --client-cert-auth and no token, the common name of
// the verified TLS client certificate (grpc::AuthContext "x509_common_name").
// No token and no certificate name: the empty user, refused with
// InvalidArgument "etcdserver: user name is empty" while auth is enabled.
//
// Errors (etcd's codes and messages): Unauthenticated "etcdserver: invalid
// auth token", InvalidArgument "etcdserver: user name is empty",
// PermissionDenied "etcdserver: permission denied", InvalidArgument
// "etcdserver: revision of auth store is old" (raised at apply time when the
// auth state changed between the check and the apply).
//
// Thread-safety: every method may be called from any thread at any time.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "base/status.h"
#include "raftkv/internal.pb.h"

namespace raftkv::server {
class Node;
}

namespace raftkv::api {

class TokenProvider;

/// The caller as the auth layer established it.
struct AuthInfo {
  std::string username;        ///< Empty: nobody (fine only while auth is disabled).
  uint64_t auth_revision = 0;  ///< Auth store revision the identity was checked against.
};

class AuthChecker {
 public:
  /// `tokens` outlives the checker. `client_cert_auth`: --client-cert-auth.
  AuthChecker(server::Node* node, TokenProvider* tokens, bool client_cert_auth);

  /// Who is calling. Auth disabled: OK with an empty AuthInfo (the token, if
  /// any, is ignored, as etcd does). Errors: invalid auth token.
  Result<AuthInfo> authenticate(const grpc::ServerContextBase& ctx) const;

  /// Read permission on [key, range_end) in etcd's range forms (empty
  /// range_end: the key alone; "\0": every key >= key).
  Status check_read(const grpc::ServerContextBase& ctx, std::string_view key,
                    std::string_view range_end) const;
  /// Write permission on [key, range_end).
  Status check_write(const grpc::ServerContextBase& ctx, std::string_view key,
                     std::string_view range_end) const;
  /// The caller has the root role (etcd's IsAdminPermitted).
  Status check_admin(const grpc::ServerContextBase& ctx) const;

  /// Checks every operation of `req` for the caller (kv::Store::check_permission)
  /// and stamps req->header().username / auth_revision, which the apply loop
  /// of every member checks again against its auth state.
  Status authorize(const grpc::ServerContextBase& ctx, raftkvpb::InternalRequest* req) const;

  /// The same checks for a caller already authenticated (e.g. a Range that
  /// authenticated before its read barrier and checks after it, against the
  /// auth state the barrier brought up to date).
  Status check_read(const AuthInfo& who, std::string_view key, std::string_view range_end) const;
  Status check_admin(const AuthInfo& who) const;

 private:
  server::Node* node_;
  TokenProvider* tokens_;
  const bool client_cert_auth_;
};

}  // namespace raftkv::api
