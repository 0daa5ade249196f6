#include "api/client_server.h"

#include <algorithm>

#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include "api/service_util.h"
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
  // One line per service.
  s->services_->all.push_back(make_kv_service(ctx));
  s->services_->all.push_back(make_maintenance_service(ctx));
  s->services_->all.push_back(make_cluster_service(ctx));

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder b;
  std::vector<int> ports(cfg.listen_client_urls.size(), 0);
  for (size_t i = 0; i < cfg.listen_client_urls.size(); ++i) {
    Result<std::string> target = transport::grpc_target_from_url(cfg.listen_client_urls[i]);
    if (!target) return target.status();
    b.AddListeningPort(*target, grpc::InsecureServerCredentials(), &ports[i]);
  }
  b.SetMaxReceiveMessageSize(static_cast<int>(cfg.max_request_bytes) + kGrpcOverheadBytes);
  b.SetMaxSendMessageSize(INT32_MAX);
  for (const auto& service : s->services_->all) b.RegisterService(service.get());
  s->server_ = b.BuildAndStart();
  if (!s->server_ || std::any_of(ports.begin(), ports.end(), [](int p) { return p == 0; })) {
    return Status::unavailable("cannot listen for clients on " + cfg.listen_client_urls[0] +
                               " (address in use?)");
  }
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  node->set_leader_listener([health](bool has_leader) {
    if (health != nullptr) health->SetServingStatus(has_leader);
  });
  return s;
}

ClientServer::~ClientServer() { shutdown(0); }

void ClientServer::shutdown(int grace_ms) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(grace_ms));
  server_->Wait();
  server_.reset();
}

}  // namespace raftkv::api
