#include "cli/client.h"

#include <fmt/format.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

namespace raftkv::client {
namespace {

using Clock = std::chrono::system_clock;  // gRPC deadlines take system_clock

constexpr int kMaxPasses = 2;  // passes over the endpoint list per call
constexpr int kPauseBetweenPassesMs = 300;
constexpr int kCancelPollMs = 100;

bool starts_with(std::string_view s, std::string_view p) {
  return s.substr(0, p.size()) == p;
}

/// etcd's errors that mean "this member cannot serve right now, another may". "No leader"
/// and "not leader" are answered before anything is proposed, so any request may move on.
/// "Leader changed" and a server-side timeout come after the request may have been proposed:
/// a write that got them may still be applied, so only reads (safe to repeat) move on —
/// repeating a write could apply it twice (an INCR counting twice).
bool is_not_leader_class(const grpc::Status& s, bool idempotent) {
  const std::string& m = s.error_message();
  if (s.error_code() == grpc::StatusCode::UNAVAILABLE) {
    return m == "etcdserver: no leader" || m == "etcdserver: not leader" ||
           (idempotent &&
            (m == "etcdserver: leader changed" || m == "etcdserver: request timed out"));
  }
  return s.error_code() == grpc::StatusCode::FAILED_PRECONDITION && m == "etcdserver: not leader";
}

/// A transport failure (nothing listening, connection reset) rather than a server's answer.
bool is_connection_error(const grpc::Status& s) {
  return s.error_code() == grpc::StatusCode::UNAVAILABLE &&
         !starts_with(s.error_message(), "etcdserver:");
}

Code code_of(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK:
      return Code::kOk;
    case grpc::StatusCode::INVALID_ARGUMENT:
      return Code::kInvalidArgument;
    case grpc::StatusCode::NOT_FOUND:
      return Code::kNotFound;
    case grpc::StatusCode::ALREADY_EXISTS:
      return Code::kAlreadyExists;
    case grpc::StatusCode::OUT_OF_RANGE:
      return Code::kOutOfRange;
    case grpc::StatusCode::FAILED_PRECONDITION:
      return Code::kFailedPrecondition;
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return Code::kResourceExhausted;
    case grpc::StatusCode::UNAVAILABLE:
      return Code::kUnavailable;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return Code::kDeadlineExceeded;
    case grpc::StatusCode::ABORTED:
      return Code::kAborted;
    case grpc::StatusCode::CANCELLED:
      return Code::kAborted;
    case grpc::StatusCode::PERMISSION_DENIED:
      return Code::kPermissionDenied;
    case grpc::StatusCode::UNAUTHENTICATED:
      return Code::kUnauthenticated;
    default:
      return Code::kInternal;
  }
}

/// A server's answer as a Status whose message keeps etcd's text (scripts match on it)
/// and adds what to do for the common cases.
Status from_grpc(const grpc::Status& s, const std::string& endpoint, int64_t timeout_ms) {
  const std::string& m = s.error_message();
  if (s.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Status::deadline_exceeded(
        fmt::format("timed out after {}ms waiting for {}: the cluster may have lost quorum or be "
                    "overloaded; retry, or raise --command-timeout",
                    timeout_ms, endpoint));
  }
  if (is_connection_error(s)) {
    return Status::unavailable(
        fmt::format("cannot connect to {}: is the server running? start one with `make run` ({})",
                    endpoint, m));
  }
  if (s.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
    return Status(Code::kFailedPrecondition,
                  fmt::format("the server at {} does not support this request "
                              "(gRPC UNIMPLEMENTED{}{})",
                              endpoint, m.empty() ? "" : ": ", m));
  }
  std::string hint;
  if (m == "etcdserver: mvcc: required revision has been compacted") {
    hint = " (that revision is no longer kept: ask for a newer one)";
  } else if (m == "etcdserver: mvcc: required revision is a future revision") {
    hint = " (the store has not reached that revision yet)";
  } else if (m == "etcdserver: requested lease not found") {
    hint = " (it expired or was revoked)";
  } else if (m == "etcdserver: mvcc: database space exceeded") {
    hint = " (compact old revisions, defragment, then disarm the NOSPACE alarm)";
  } else if (m == "etcdserver: request timed out") {
    hint = " (the cluster may have lost quorum; retry)";
  }
  return Status(code_of(s.error_code()), m + hint);
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) out += sep;
    out += v[i];
  }
  return out;
}

}  // namespace

CancelOnFlag::CancelOnFlag(const std::atomic<bool>* flag, std::function<void()> cancel) {
  if (flag == nullptr) return;
  thread_ = std::thread([this, flag, cancel = std::move(cancel)] {
    while (!done_.load()) {
      if (flag->load()) {
        cancel();
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kCancelPollMs));
    }
  });
}

CancelOnFlag::~CancelOnFlag() {
  done_.store(true);
  if (thread_.joinable()) thread_.join();
}

bool is_unavailable(const Status& s) {
  return s.code() == Code::kUnavailable || s.code() == Code::kDeadlineExceeded;
}

std::string endpoint_from_url(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (starts_with(url, scheme)) url.remove_prefix(scheme.size());
  }
  while (!url.empty() && url.back() == '/') url.remove_suffix(1);
  return std::string(url);
}

namespace {

Result<std::string> read_pem(const std::string& flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument(fmt::format("cannot read {} \"{}\"", flag, path));
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().find("-----BEGIN") == std::string::npos) {
    return Status::invalid_argument(fmt::format("{} \"{}\" holds no PEM data", flag, path));
  }
  return out.str();
}

std::shared_ptr<grpc::ChannelCredentials> channel_credentials(const ClientTls& tls,
                                                              bool https) {
  if (!https && !tls.forced()) return grpc::InsecureChannelCredentials();
  if (!tls.insecure_skip_tls_verify) {
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = tls.ca_pem;  // "" = gRPC's default roots
    o.pem_private_key = tls.key_pem;
    o.pem_cert_chain = tls.cert_pem;
    return grpc::SslCredentials(o);
  }
  // etcdctl --insecure-skip-tls-verify: encrypted, but any server certificate is accepted.
  namespace gx = grpc::experimental;
  gx::TlsChannelCredentialsOptions o;
  if (!tls.cert_pem.empty()) {
    o.set_certificate_provider(std::make_shared<gx::StaticDataCertificateProvider>(
        std::vector<gx::IdentityKeyCertPair>{{tls.key_pem, tls.cert_pem}}));
    o.watch_identity_key_cert_pairs();
  }
  o.set_verify_server_certs(false);
  o.set_check_call_host(false);
  o.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
  return gx::TlsCredentials(o);
}

}  // namespace

struct Client::Endpoint {
  Endpoint(std::string_view url, const ClientTls& tls) : address(endpoint_from_url(url)) {
    grpc::ChannelArguments args;
    // Reconnect quickly after a member restarts; the dial timeout bounds the wait anyway.
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
    args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
    args.SetMaxReceiveMessageSize(-1);  // etcd's default allows big range results
    channel = grpc::CreateCustomChannel(
        address, channel_credentials(tls, starts_with(url, "https://")), args);
    kv = pb::KV::NewStub(channel);
    watch = pb::Watch::NewStub(channel);
    lease = pb::Lease::NewStub(channel);
    cluster = pb::Cluster::NewStub(channel);
    maintenance = pb::Maintenance::NewStub(channel);
  }
  std::string address;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Watch::Stub> watch;
  std::unique_ptr<pb::Lease::Stub> lease;
  std::unique_ptr<pb::Cluster::Stub> cluster;
  std::unique_ptr<pb::Maintenance::Stub> maintenance;
};

Client::Client(ClientOptions options) : options_(std::move(options)) {
  for (const auto& e : options_.endpoints) {
    endpoints_.push_back(std::make_unique<Endpoint>(e, options_.tls));
  }
}

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (options.endpoints.empty()) {
    return Status::invalid_argument("no endpoint given: pass --endpoints host:port[,host:port]");
  }
  for (const std::string& url : options.endpoints) {
    const std::string e = endpoint_from_url(url);
    size_t colon = e.rfind(':');
    if (e.empty() || colon == std::string::npos || colon == 0 || colon + 1 == e.size()) {
      return Status::invalid_argument(
          fmt::format("bad endpoint \"{}\": expected host:port, e.g. 127.0.0.1:2379", e));
    }
  }
  ClientTls& tls = options.tls;
  if (tls.cert.empty() != tls.key.empty()) {
    return Status::invalid_argument("--cert and --key must be given together");
  }
  if (!tls.cacert.empty() && tls.ca_pem.empty()) {
    Result<std::string> pem = read_pem("--cacert", tls.cacert);
    if (!pem) return pem.status();
    tls.ca_pem = std::move(*pem);
  }
  if (!tls.cert.empty() && tls.cert_pem.empty()) {
    Result<std::string> cert = read_pem("--cert", tls.cert);
    if (!cert) return cert.status();
    Result<std::string> key = read_pem("--key", tls.key);
    if (!key) return key.status();
    tls.cert_pem = std::move(*cert);
    tls.key_pem = std::move(*key);
  }
  if (options.dial_timeout_ms <= 0 || options.command_timeout_ms <= 0) {
    return Status::invalid_argument("--dial-timeout and --command-timeout must be positive");
  }
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

std::string Client::current_endpoint() const {
  return endpoints_[current_.load()]->address;
}

void Client::set_deadline(grpc::ClientContext* ctx) const {
  ctx->set_deadline(Clock::now() + std::chrono::milliseconds(options_.command_timeout_ms));
}

Status Client::connect(size_t i) {
  Endpoint& e = endpoint(i);
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.dial_timeout_ms);
  if (e.channel->WaitForConnected(deadline)) return Status::ok();
  return Status::unavailable(fmt::format(
      "cannot connect to {}: is the server running? start one with `make run`", e.address));
}

Status Client::call(const char* what, bool idempotent, const Rpc& rpc) {
  const size_t n = endpoints_.size();
  Status last_connection_error;
  std::vector<std::string> unreachable;
  for (int pass = 0; pass < kMaxPasses; ++pass) {
    if (pass > 0) std::this_thread::sleep_for(std::chrono::milliseconds(kPauseBetweenPassesMs));
    const size_t start = current_.load();
    size_t not_leader_answers = 0;
    unreachable.clear();
    for (size_t k = 0; k < n; ++k) {
      const size_t i = (start + k) % n;
      Status c = connect(i);
      if (!c.is_ok()) {
        last_connection_error = c;
        unreachable.push_back(endpoint(i).address);
        continue;
      }
      grpc::ClientContext ctx;
      set_deadline(&ctx);
      grpc::Status s = rpc(endpoint(i), &ctx);
      if (s.ok()) {
        current_.store(i);
        return Status::ok();
      }
      if (is_connection_error(s)) {
        last_connection_error = from_grpc(s, endpoint(i).address, options_.command_timeout_ms);
        unreachable.push_back(endpoint(i).address);
        continue;
      }
      if (is_not_leader_class(s, idempotent)) {
        ++not_leader_answers;
        continue;
      }
      current_.store(i);
      Status err = from_grpc(s, endpoint(i).address, options_.command_timeout_ms);
      return Status(err.code(), fmt::format("{}: {}", what, err.message()));
    }
    // Only a missing leader may heal within a pause; unreachable endpoints stay so.
    if (not_leader_answers == 0) break;
    if (pass + 1 == kMaxPasses) {
      return Status::unavailable(fmt::format(
          "no leader: the cluster has lost quorum ({} of {} endpoints reachable); start the "
          "stopped members or wait for an election",
          n - unreachable.size(), n));
    }
  }
  if (n == 1) return last_connection_error;
  return Status::unavailable(
      fmt::format("cannot connect to any of {}: is the server running? start one with `make run`",
                  join(unreachable, ", ")));
}

#define RAFTKV_UNARY(method, stub, rpc_name, Req, Resp, idempotent)                     \
  Result<pb::Resp> Client::method(const pb::Req& req) {                                 \
    pb::Resp resp;                                                                      \
    Status s = call(#rpc_name, idempotent, [&](Endpoint& e, grpc::ClientContext* ctx) { \
      return e.stub->rpc_name(ctx, req, &resp);                                         \
    });                                                                                 \
    if (!s.is_ok()) return s;                                                           \
    return resp;                                                                        \
  }

RAFTKV_UNARY(range, kv, Range, RangeRequest, RangeResponse, true)
RAFTKV_UNARY(put, kv, Put, PutRequest, PutResponse, false)
RAFTKV_UNARY(delete_range, kv, DeleteRange, DeleteRangeRequest, DeleteRangeResponse, false)
RAFTKV_UNARY(txn, kv, Txn, TxnRequest, TxnResponse, false)
RAFTKV_UNARY(compact, kv, Compact, CompactionRequest, CompactionResponse, false)
RAFTKV_UNARY(lease_grant, lease, LeaseGrant, LeaseGrantRequest, LeaseGrantResponse, false)
RAFTKV_UNARY(lease_revoke, lease, LeaseRevoke, LeaseRevokeRequest, LeaseRevokeResponse, false)
RAFTKV_UNARY(lease_time_to_live, lease, LeaseTimeToLive, LeaseTimeToLiveRequest,
             LeaseTimeToLiveResponse, true)
#undef RAFTKV_UNARY

Result<pb::LeaseLeasesResponse> Client::lease_leases() {
  pb::LeaseLeasesResponse resp;
  Status s = call("LeaseLeases", true, [&](Endpoint& e, grpc::ClientContext* ctx) {
    return e.lease->LeaseLeases(ctx, pb::LeaseLeasesRequest(), &resp);
  });
  if (!s.is_ok()) return s;
  return resp;
}

Result<pb::MemberListResponse> Client::member_list() {
  pb::MemberListResponse resp;
  Status s = call("MemberList", true, [&](Endpoint& e, grpc::ClientContext* ctx) {
    return e.cluster->MemberList(ctx, pb::MemberListRequest(), &resp);
  });
  if (!s.is_ok()) return s;
  return resp;
}

Result<pb::StatusResponse> Client::status(const std::string& endpoint_address) {
  std::string address = endpoint_from_url(endpoint_address);
  Endpoint* e = nullptr;
  std::unique_ptr<Endpoint> temporary;
  for (auto& candidate : endpoints_) {
    if (candidate->address == address) e = candidate.get();
  }
  if (e == nullptr) {
    temporary = std::make_unique<Endpoint>(endpoint_address, options_.tls);
    e = temporary.get();
  }
  auto dial_deadline = Clock::now() + std::chrono::milliseconds(options_.dial_timeout_ms);
  if (!e->channel->WaitForConnected(dial_deadline)) {
    return Status::unavailable(
        fmt::format("cannot connect to {}: is the member running?", address));
  }
  grpc::ClientContext ctx;
  set_deadline(&ctx);
  pb::StatusResponse resp;
  grpc::Status s = e->maintenance->Status(&ctx, pb::StatusRequest(), &resp);
  if (!s.ok()) return from_grpc(s, address, options_.command_timeout_ms);
  return resp;
}

Status Client::with_connected(const Attempt& attempt) {
  const size_t n = endpoints_.size();
  const size_t start = current_.load();
  Status last;
  for (size_t k = 0; k < n; ++k) {
    const size_t i = (start + k) % n;
    last = connect(i);
    if (!last.is_ok()) continue;
    if (attempt(i, &last)) {
      if (last.is_ok()) current_.store(i);
      return last;
    }
  }
  return last;
}

Status Client::snapshot(const std::function<Status(const pb::SnapshotResponse&)>& on_chunk,
                        const std::atomic<bool>* cancel_flag) {
  // The download has no deadline (a large database takes long); Ctrl-C cancels it.
  return with_connected([&](size_t i, Status* result) {
    grpc::ClientContext ctx;
    CancelOnFlag canceller(cancel_flag, [&ctx] { ctx.TryCancel(); });
    auto reader = endpoint(i).maintenance->Snapshot(&ctx, pb::SnapshotRequest());
    pb::SnapshotResponse chunk;
    Status consumer_status;
    bool got_any = false;
    while (reader->Read(&chunk)) {
      got_any = true;
      consumer_status = on_chunk(chunk);
      if (!consumer_status.is_ok()) {
        ctx.TryCancel();
        break;
      }
    }
    grpc::Status s = reader->Finish();
    if (!consumer_status.is_ok()) {
      *result = consumer_status;
    } else if (cancel_flag != nullptr && cancel_flag->load()) {
      *result = Status::aborted("interrupted");
    } else {
      *result =
          s.ok() ? Status::ok() : from_grpc(s, endpoint(i).address, options_.command_timeout_ms);
    }
    // Only a stream that failed to connect may move on: delivered bytes cannot be resumed.
    return s.ok() || got_any || !is_connection_error(s) || !consumer_status.is_ok();
  });
}

Result<std::unique_ptr<WatchStream>> Client::watch(const pb::WatchCreateRequest& req,
                                                   const std::atomic<bool>* cancel_flag) {
  std::unique_ptr<WatchStream> created;
  Status s = with_connected([&](size_t i, Status* result) {
    std::unique_ptr<WatchStream> w(new WatchStream());
    // A "require leader" watch: the member cancels it if it loses its leader.
    w->ctx_.AddMetadata("hasleader", "true");
    w->stream_ = endpoint(i).watch->Watch(&w->ctx_);
    pb::WatchRequest create;
    *create.mutable_create_request() = req;
    WatchStream* raw = w.get();
    w->canceller_ = std::make_unique<CancelOnFlag>(cancel_flag, [raw] { raw->cancel(); });
    if (w->stream_->Write(create) && w->stream_->Read(&w->created_) && w->created_.created()) {
      created = std::move(w);
      *result = Status::ok();
      return true;
    }
    w->stream_->WritesDone();
    w->ctx_.TryCancel();
    grpc::Status gs = w->stream_->Finish();
    w->finished_ = true;
    if (!gs.ok() && is_connection_error(gs)) {
      *result = from_grpc(gs, endpoint(i).address, options_.command_timeout_ms);
      return false;
    }
    if (w->created_.compact_revision() != 0) {
      *result = Status::out_of_range(fmt::format(
          "watch: start revision {} has been compacted (the oldest kept is {}): watch from a "
          "newer revision",
          req.start_revision(), w->created_.compact_revision()));
    } else {
      std::string reason =
          w->created_.cancel_reason().empty() ? gs.error_message() : w->created_.cancel_reason();
      *result = Status(gs.ok() ? Code::kInternal : code_of(gs.error_code()),
                       fmt::format("watch was not created: {}", reason));
    }
    return true;
  });
  if (!s.is_ok()) return s;
  return created;
}

WatchStream::~WatchStream() {
  canceller_.reset();
  if (!finished_) {
    cancel();
    (void)finish();
  }
}

bool WatchStream::next(pb::WatchResponse* resp) {
  if (finished_ || cancelled_.load()) return false;
  return stream_->Read(resp);
}

void WatchStream::cancel() {
  if (!cancelled_.exchange(true)) ctx_.TryCancel();
}

Status WatchStream::finish() {
  if (finished_) return Status::ok();
  finished_ = true;
  grpc::Status s = stream_->Finish();
  if (cancelled_.load() || s.ok()) return Status::ok();
  return from_grpc(s, "the watched endpoint", 0);
}

Result<std::unique_ptr<KeepAliveStream>> Client::keep_alive(int64_t lease_id) {
  std::unique_ptr<KeepAliveStream> ka;
  Status s = with_connected([&](size_t i, Status* result) {
    ka.reset(new KeepAliveStream());
    ka->lease_id_ = lease_id;
    ka->stream_ = endpoint(i).lease->LeaseKeepAlive(&ka->ctx_);
    *result = Status::ok();
    return true;
  });
  if (!s.is_ok()) return s;
  return ka;
}

KeepAliveStream::~KeepAliveStream() {
  cancel();
  stream_->WritesDone();
  (void)stream_->Finish();
}

Result<pb::LeaseKeepAliveResponse> KeepAliveStream::refresh() {
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease_id_);
  pb::LeaseKeepAliveResponse resp;
  if (!stream_->Write(req) || !stream_->Read(&resp)) {
    return Status::unavailable(
        "lease keep-alive stream broke: the member went away or the call was cancelled");
  }
  return resp;
}

void KeepAliveStream::cancel() {
  ctx_.TryCancel();
}

}  // namespace raftkv::client
