// raftkv_client: a small gRPC client for the etcd v3 API (raftkv or etcd) with failover.
//
// Used by raftkvctl and meant for raftkv-bench. Every call returns Status/Result; gRPC
// errors are turned into a Status whose message says what happened and what to do.
//
// Failover: the client keeps one channel per endpoint and a "current" endpoint. A unary
// call goes to the current endpoint; on a connection failure or a "not leader"-class error
// (Unavailable "etcdserver: no leader" / "leader changed" / "not leader", and for reads also
// "request timed out") it moves on to the next endpoint, at most two passes over the list
// with a short pause between them (bounded). Any other error is the answer and is returned
// as it is. A write that timed out on the server is not repeated: it may have been applied.
//
// Timeouts: connecting to one endpoint waits at most dial_timeout_ms; each request waits at
// most command_timeout_ms once connected.
//
// Threads: one Client may be used from several threads (gRPC channels and stubs are
// thread-safe; the current-endpoint index is atomic). Streams are used by one thread each,
// except cancel(), which any thread may call.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::client {

namespace pb = etcdserverpb;

/// Transport security, with etcdctl's flags and meaning: TLS is used for an
/// https:// endpoint, and for every endpoint when a CA, certificate or key is
/// given or insecure_transport is false.
struct ClientTls {
  std::string cacert;  ///< --cacert: CA bundle to verify servers ("" = system roots).
  std::string cert;    ///< --cert: client certificate (with key).
  std::string key;     ///< --key
  bool insecure_transport = true;         ///< --insecure-transport (etcdctl's default: true)
  bool insecure_skip_tls_verify = false;  ///< --insecure-skip-tls-verify
  // Filled by Client::create from the files above.
  std::string ca_pem, cert_pem, key_pem;

  bool forced() const {
    return !cacert.empty() || !cert.empty() || !key.empty() || !insecure_transport;
  }
};

struct ClientOptions {
  /// host:port, or http://host:port, or https://host:port (TLS).
  std::vector<std::string> endpoints;
  int64_t dial_timeout_ms = 2000;
  int64_t command_timeout_ms = 5000;
  ClientTls tls;
};

/// True for errors that mean "the cluster cannot serve right now" (connection refused,
/// no leader, timed out): raftkvctl exits with code 3 for these.
bool is_unavailable(const Status& s);

/// "127.0.0.1:2379" from "http://127.0.0.1:2379"; unchanged otherwise.
std::string endpoint_from_url(std::string_view url);

class WatchStream;
class KeepAliveStream;

/// Calls `cancel` once `*flag` becomes true (polled every 100 ms) on its own thread; the
/// thread ends when this object is destroyed. For Ctrl-C: the SIGINT handler sets the flag.
/// A null flag makes this a no-op.
class CancelOnFlag {
 public:
  CancelOnFlag(const std::atomic<bool>* flag, std::function<void()> cancel);
  ~CancelOnFlag();
  CancelOnFlag(const CancelOnFlag&) = delete;
  CancelOnFlag& operator=(const CancelOnFlag&) = delete;

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

class Client {
 public:
  /// Validates the options (at least one endpoint, host:port form, positive timeouts).
  /// Connects lazily: no network traffic happens here.
  static Result<std::unique_ptr<Client>> create(ClientOptions options);
  ~Client();

  Result<pb::RangeResponse> range(const pb::RangeRequest& req);
  Result<pb::PutResponse> put(const pb::PutRequest& req);
  Result<pb::DeleteRangeResponse> delete_range(const pb::DeleteRangeRequest& req);
  Result<pb::TxnResponse> txn(const pb::TxnRequest& req);
  Result<pb::CompactionResponse> compact(const pb::CompactionRequest& req);
  Result<pb::LeaseGrantResponse> lease_grant(const pb::LeaseGrantRequest& req);
  Result<pb::LeaseRevokeResponse> lease_revoke(const pb::LeaseRevokeRequest& req);
  Result<pb::LeaseTimeToLiveResponse> lease_time_to_live(const pb::LeaseTimeToLiveRequest& req);
  Result<pb::LeaseLeasesResponse> lease_leases();
  Result<pb::MemberListResponse> member_list();

  /// Maintenance.Status of one endpoint, without failover (it asks about that member).
  /// `endpoint` need not be one of the configured endpoints (STATUS asks every member).
  Result<pb::StatusResponse> status(const std::string& endpoint);

  /// Streams Maintenance.Snapshot from the current endpoint (with failover for the
  /// connection), calling `on_chunk` for each message in order; a non-OK Status from
  /// `on_chunk` stops the stream and is returned. `cancel_flag`, when set by another thread
  /// or a signal handler, stops the download within ~100 ms with Aborted.
  Status snapshot(const std::function<Status(const pb::SnapshotResponse&)>& on_chunk,
                  const std::atomic<bool>* cancel_flag);

  /// Opens a watch (Watch.Watch with the "hasleader" metadata, as etcdctl does) and waits
  /// for the server's `created` answer. See WatchStream. When `cancel_flag` becomes true
  /// the stream is cancelled (next() returns false).
  Result<std::unique_ptr<WatchStream>> watch(const pb::WatchCreateRequest& req,
                                             const std::atomic<bool>* cancel_flag = nullptr);

  /// Opens a LeaseKeepAlive stream for `lease_id`. See KeepAliveStream.
  Result<std::unique_ptr<KeepAliveStream>> keep_alive(int64_t lease_id);

  /// The endpoint that answered last (or will be tried first).
  std::string current_endpoint() const;
  const ClientOptions& options() const { return options_; }

 private:
  struct Endpoint;
  explicit Client(ClientOptions options);

  /// Channel of endpoint `i`, connected within the dial timeout, or Unavailable.
  Status connect(size_t i);
  Endpoint& endpoint(size_t i) { return *endpoints_[i]; }

  /// Runs `rpc` against endpoints with failover (see the file comment). `idempotent`:
  /// repeating the request cannot change the outcome (reads).
  using Rpc = std::function<grpc::Status(Endpoint&, grpc::ClientContext*)>;
  Status call(const char* what, bool idempotent, const Rpc& rpc);
  void set_deadline(grpc::ClientContext* ctx) const;

  /// For streams: calls `attempt(i, &result)` on each endpoint that connects, in failover
  /// order, until it returns true ("this is the answer"); false moves on to the next
  /// endpoint with `result` as the error to report if none is left.
  using Attempt = std::function<bool(size_t, Status*)>;
  Status with_connected(const Attempt& attempt);

  ClientOptions options_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
  std::atomic<size_t> current_{0};

  friend class WatchStream;
  friend class KeepAliveStream;
};

/// One watch on a bidirectional Watch stream. Not copyable.
class WatchStream {
 public:
  ~WatchStream();
  /// Blocks for the next response. Returns false when the stream ended (cancel(), server
  /// cancel, connection loss): then finish() says why.
  bool next(pb::WatchResponse* resp);
  /// Stops the stream; next() returns false soon after. Any thread; idempotent.
  void cancel();
  /// Why the stream ended: OK after cancel(), else the server's or connection's error.
  Status finish();
  /// The `created` response (its header revision is where the watch starts).
  const pb::WatchResponse& created() const { return created_; }

 private:
  friend class Client;
  WatchStream() = default;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::WatchRequest, pb::WatchResponse>> stream_;
  pb::WatchResponse created_;
  std::atomic<bool> cancelled_{false};
  bool finished_ = false;
  std::unique_ptr<CancelOnFlag> canceller_;  // declared last: stops before the rest goes
};

/// A LeaseKeepAlive stream for one lease. Not copyable.
class KeepAliveStream {
 public:
  ~KeepAliveStream();
  /// Sends one keep-alive and waits for its answer (until it comes, the stream breaks or
  /// cancel() is called). Returns the response; its TTL is <= 0 when the lease is gone.
  Result<pb::LeaseKeepAliveResponse> refresh();
  /// Any thread; makes a blocked refresh() return Aborted.
  void cancel();

 private:
  friend class Client;
  KeepAliveStream() = default;
  int64_t lease_id_ = 0;
  grpc::ClientContext ctx_;
  std::unique_ptr<grpc::ClientReaderWriter<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse>>
      stream_;
};

}  // namespace raftkv::client
