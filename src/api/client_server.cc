#include "api/client_server.h"

#include <algorithm>

#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "api/grpc_metrics.h"
#include "api/http_endpoints.h"
#include "api/http_server.h"
#include "api/auth_token.h"
#include "api/service_util.h"
#include "transport/tls.h"
#include "kv/errors.h"
#include "transport/transport.h"

namespace raftkv::api {
namespace {

// etcd's allowance above --max-request-bytes for gRPC framing.
constexpr int kGrpcOverheadBytes = 512 * 1024;

}  // namespace

grpc::Status to_grpc_status(const Status& st) {
  grpc::StatusCode c = grpc::StatusCode::UNKNOWN;
  switch (st.code()) {
    case Code::kOk: return grpc::Status::OK;
    case Code::kFailedPrecondition:
      // etcd's ErrGRPCCorrupt is DATA_LOSS, a code Status does not have.
      if (st.message() == kv::errors::kCorruptClusterMessage) c = grpc::StatusCode::DATA_LOSS;
      else c = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kInvalidArgument: c = grpc::StatusCode::INVALID_ARGUMENT; break;
    case Code::kNotFound: c = grpc::StatusCode::NOT_FOUND; break;
    case Code::kAlreadyExists: c = grpc::StatusCode::ALREADY_EXISTS; break;
    case Code::kOutOfRange: c = grpc::StatusCode::OUT_OF_RANGE; break;
    case Code::kResourceExhausted: c = grpc::StatusCode::RESOURCE_EXHAUSTED; break;
    case Code::kUnavailable: c = grpc::StatusCode::UNAVAILABLE; break;
    case Code::kDeadlineExceeded: c = grpc::StatusCode::DEADLINE_EXCEEDED; break;
    case Code::kAborted: c = grpc::StatusCode::ABORTED; break;
    case Code::kPermissionDenied: c = grpc::StatusCode::PERMISSION_DENIED; break;
    case Code::kUnauthenticated: c = grpc::StatusCode::UNAUTHENTICATED; break;
    case Code::kCorruption:
    case Code::kIOError:
    case Code::kInternal: c = grpc::StatusCode::INTERNAL; break;
  }
  return grpc::Status(c, st.message());
}

struct ClientServer::Services {
  server::Config cfg;  ///< A copy: services may keep pointers into it.
  ServiceContext ctx;
  std::unique_ptr<TokenProvider> tokens;
  std::unique_ptr<AuthChecker> auth;
  std::vector<std::unique_ptr<grpc::Service>> all;
};

Result<std::unique_ptr<ClientServer>> ClientServer::start(server::Node* node,
                                                          const server::Config& cfg) {
  std::unique_ptr<ClientServer> s(new ClientServer());
  s->services_ = std::make_unique<Services>();
  ServiceContext& ctx = s->services_->ctx;
  ctx.node = node;
  s->services_->cfg = cfg;
  ctx.cfg = &s->services_->cfg;
  ctx.store_options.max_request_bytes = cfg.max_request_bytes;
  ctx.store_options.max_txn_ops = static_cast<int>(cfg.max_txn_ops);
  Result<std::unique_ptr<TokenProvider>> tokens =
      make_token_provider(cfg.auth_token, std::chrono::seconds(cfg.auth_token_ttl_s));
  if (!tokens) return tokens.status();
  s->services_->tokens = std::move(*tokens);
  // With --client-cert-auth a verified client certificate's common name
  // authenticates the caller when no token is sent (etcd's rule).
  s->services_->auth = std::make_unique<AuthChecker>(node, s->services_->tokens.get(),
                                                     cfg.client_tls.client_cert_auth);
  ctx.tokens = s->services_->tokens.get();
  ctx.auth = s->services_->auth.get();
  // One line per service.
  s->services_->all.push_back(make_kv_service(ctx));
  s->services_->all.push_back(make_maintenance_service(ctx));
  s->services_->all.push_back(make_cluster_service(ctx));
  s->services_->all.push_back(make_auth_service(ctx));
  s->services_->all.push_back(make_lease_service(ctx));
  s->services_->all.push_back(make_lock_service(ctx));
  s->services_->all.push_back(make_election_service(ctx));
  s->services_->all.push_back(make_watch_service(ctx));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  std::vector<int> ports(cfg.listen_client_urls.size(), -1);  // -1: not on gRPC's listener
  std::vector<HttpListenerSpec> http_specs;
  for (const std::string& url : cfg.listen_metrics_urls) http_specs.push_back({url, false});
  for (size_t i = 0; i < cfg.listen_client_urls.size(); ++i) {
    if (cfg.listen_client_urls[i].rfind("http://", 0) == 0) {
      http_specs.push_back({cfg.listen_client_urls[i], true});
      continue;
    }
    Result<std::string> target = transport::grpc_target_from_url(cfg.listen_client_urls[i]);
    if (!target) return target.status();
    const bool tls = cfg.listen_client_urls[i].rfind("https://", 0) == 0;
    b.AddListeningPort(*target,
                       tls ? transport::make_server_credentials(cfg.client_tls)
                           : grpc::InsecureServerCredentials(),
                       &ports[i]);
  }
  register_process_metrics();
  Result<std::unique_ptr<HttpServer>> http =
      HttpServer::listen(http_specs, make_operational_endpoints(node));
  if (!http) return http.status();
  b.experimental().SetInterceptorCreators(
      make_grpc_metrics_interceptors(cfg.metrics == "extensive"));
  b.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_request_bytes) + kGrpcOverheadBytes);
  b.SetMaxSendMessageSize(INT32_MAX);
  for (const auto& service : s->services_->all) b.RegisterService(service.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || std::any_of(ports.begin(), ports.end(), [](int p) { return p == 0; })) {
    return Status::unavailable("cannot listen for clients on " + cfg.listen_client_urls[0] +
                               " (address in use?)");
  }
  s->http_ = std::move(*http);
  s->http_->start(s->server_.get());
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  node->add_leader_listener([health](bool has_leader) {
    if (health != nullptr) health->SetServingStatus(has_leader);
  });
  return s;
}

ClientServer::~ClientServer() { shutdown(0); }

void ClientServer::shutdown(int grace_ms) {
  if (http_) http_->stop();  // before gRPC: it hands connections to the server
  http_.reset();
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace raftkv::api
