// Shared by the client-facing services: what every handler needs to answer
// like etcd (response headers, propose-and-finish, the store options used for
// validation). One service per file (kv_service.cc, maintenance_service.cc,
// cluster_service.cc, ...); client_server.cc only builds and registers them.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/service_type.h>

#include "api/auth_checker.h"
#include "api/client_server.h"
#include "etcd/etcdserverpb/rpc.pb.h"
#include "kv/store.h"
#include "raftkv/internal.pb.h"
#include "server/config.h"
#include "server/node.h"

namespace raftkv::api {

// The etcd API level raftkv speaks, reported by Maintenance.Status so that
// clients gating features on the server version treat it as etcd 3.4.
inline constexpr const char* kApiVersion = "3.4.0";

/// What every service is built from. Outlives the services.
struct ServiceContext {
  server::Node* node = nullptr;
  const server::Config* cfg = nullptr;
  kv::StoreOptions store_options;  ///< Limits used by kv::Store::validate.
  AuthChecker* auth = nullptr;     ///< Guards every handler (auth_checker.h).
  TokenProvider* tokens = nullptr; ///< Issues and resolves auth tokens (auth_token.h).
};

/// Fills cluster_id, member_id and raft_term (the caller sets revision where
/// the store did not already).
inline void fill_header(server::Node* node, etcdserverpb::ResponseHeader* h) {
  h->set_cluster_id(node->cluster_id());
  h->set_member_id(node->member_id());
  h->set_raft_term(node->term());
}

/// Validates `req` like etcd's API layer, proposes it and finishes `reactor`
/// with the part of the applied response `pick` selects.
template <typename Resp, typename Pick>
void propose_and_finish(server::Node* node, const kv::StoreOptions& opts,
                        raftkvpb::InternalRequest req, grpc::ServerUnaryReactor* reactor,
                        Resp* reply, Pick pick) {
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

/// Finishes a unary call at once with `st`.
inline grpc::ServerUnaryReactor* finish_now(grpc::CallbackServerContext* ctx,
                                            const grpc::Status& st) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(st);
  return reactor;
}

// Factories, one per service file.
std::unique_ptr<grpc::Service> make_kv_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_maintenance_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_cluster_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_auth_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_lease_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_lock_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_election_service(const ServiceContext& ctx);
std::unique_ptr<grpc::Service> make_watch_service(const ServiceContext& ctx);

}  // namespace raftkv::api
