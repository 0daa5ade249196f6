// The client-facing gRPC server of a member: etcd's v3 services on
// --listen-client-urls, mapped onto a server::Node (DESIGN.md "src/api/").
//
// Registered (gRPC callback API; handlers never block — they validate, then
// propose or read, and finish from the node's callback), one file each:
//   etcdserverpb.KV           kv_service.cc
//   etcdserverpb.Maintenance  maintenance_service.cc
//   etcdserverpb.Cluster      cluster_service.cc
//   etcdserverpb.Lease        lease_service.cc (expiry: server/lessor.h)
//   v3lockpb.Lock             lock_service.cc     (recipes: coordination.h)
//   v3electionpb.Election     election_service.cc
//   etcdserverpb.Watch        watch_service.cc
//   grpc.health.v1.Health     SERVING only while the member knows a leader
// Plain http:// client URLs are accepted by an HttpServer (http_server.h),
// which serves etcd's /health, /metrics, ... there (http_endpoints.h) and
// hands gRPC connections to this server; other URLs use gRPC's own listener.
// Every call is counted (grpc_metrics.h).
// A method a service does not implement answers UNIMPLEMENTED (gRPC's
// default). service_util.h holds what the services share.
//
// TLS: https:// listen URLs are served with cfg.client_tls (transport/tls.h);
// a handler gets the verified client certificate's common name with
// transport::peer_common_name(*server_context->auth_context()).
//
// Errors carry etcd's gRPC code and exact message (to_grpc_status is the one
// place raftkv::Code maps onto grpc::StatusCode). Every response header holds
// cluster_id, member_id, revision and raft_term.
#pragma once

#include <memory>

#include <grpcpp/grpcpp.h>

#include "base/status.h"
#include "server/config.h"
#include "server/node.h"

namespace raftkv::api {

class HttpServer;

/// The gRPC status a client gets for `st` (code mapped, message unchanged).
grpc::Status to_grpc_status(const Status& st);

class ClientServer {
 public:
  /// Builds and starts the server on every --listen-client-urls address.
  /// The receive limit is --max-request-bytes plus 512 KiB (as etcd), so a
  /// request somewhat too large still reaches validation and gets etcd's
  /// "request is too large". Errors: kUnavailable (address in use), kInvalidArgument.
  static Result<std::unique_ptr<ClientServer>> start(server::Node* node,
                                                     const server::Config& cfg);
  ~ClientServer();

  /// Stops accepting calls and waits up to `grace_ms` for the calls in
  /// flight (their proposals keep being applied meanwhile), then cancels the rest.
  void shutdown(int grace_ms);

 private:
  ClientServer() = default;
  struct Services;
  std::unique_ptr<Services> services_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;  ///< http:// client URLs and --listen-metrics-urls.
};

}  // namespace raftkv::api
