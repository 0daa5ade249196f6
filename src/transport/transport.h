// Transport: peer-to-peer messaging between raftkv members over gRPC
// (docs/transport.md has the wire protocol and the policies in full).
//
// Outgoing: send() sorts messages into one bounded queue per peer and returns
// at once; it never blocks the raft loop. One sender thread per peer keeps a
// long-lived Peer.Messages stream open and writes everything queued for that
// peer as one MessageBatch (bounded by max_batch_bytes). When the queue is full,
// or the peer is down (between a failed write and the next reconnection
// attempt), messages are dropped and the peer is reported unreachable: Raft
// tolerates lost messages (the leader retries from its progress tracking), and
// report_unreachable makes the leader probe instead of streaming blindly.
// Reconnection uses exponential backoff with jitter, bounded by backoff_max_ms.
// kSnapshot messages travel separately over Peer.SendSnapshot in chunks with a
// CRC-32C per chunk and for the whole image, one transfer per peer at a time;
// the outcome is reported through the snapshot-status callback.
//
// Incoming: the Peer service, registered on a grpc::ServerBuilder the caller
// owns, checks each batch header (protocol version, cluster id, addressing),
// decodes and validates each message (codec.h) and hands it to the deliver
// callback. The callback must not block: it returns false when the raft loop's
// inbox is full, and the message is dropped and counted (drop-with-report, for
// the same reason as above: blocking here would stall a gRPC thread and the
// peer's whole stream, including heartbeats, for one slow consumer).
//
// Callbacks (deliver, unreachable, snapshot status) run on transport or gRPC
// threads, never on the thread calling send(); they must be thread-safe and
// must not block (typically they push into the raft loop's inbox).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "base/status.h"
#include "raft/types.h"
#include "transport/codec.h"
#include "transport/snapshot_sink.h"

namespace grpc {
class ChannelCredentials;
class ServerBuilder;
}  // namespace grpc

namespace raftkv::transport {

struct TransportOptions {
  raft::NodeId local_id;    ///< This member's id (non-zero).
  uint64_t cluster_id = 0;  ///< Batches from any other cluster are refused.

  // --- sending
  uint64_t max_queue_messages = 4096;      ///< Per-peer queue bound (count).
  uint64_t max_queue_bytes = 64ull << 20;  ///< Per-peer queue bound (approximate bytes).
  /// A batch stops growing once it holds this many bytes (a single larger
  /// message still goes alone). The receiving server's max receive message
  /// size must exceed the largest batch (see Transport::register_service).
  uint64_t max_batch_bytes = 1ull << 20;
  uint64_t snapshot_chunk_bytes = 1ull << 20;  ///< Data bytes per SendSnapshot chunk.
  uint32_t backoff_initial_ms = 100;           ///< First reconnection delay.
  uint32_t backoff_max_ms = 3000;              ///< Reconnection delay cap.
  uint32_t connect_timeout_ms = 2000;          ///< Give up a connection attempt after this.
  /// Credentials for https:// peers (transport/tls.h make_channel_credentials);
  /// null: an https:// peer URL is refused by add_peer/update_peer.
  std::shared_ptr<grpc::ChannelCredentials> tls_credentials;

  // --- receiving
  DecodeLimits limits;
  uint64_t max_receive_chunk_bytes = 16ull << 20;  ///< Larger snapshot chunks are refused.
  uint32_t max_concurrent_snapshot_receives = 4;   ///< More transfers at once are refused.
};

/// Counters, for tests, metrics and the operator.
struct TransportStats {
  uint64_t messages_sent = 0;
  uint64_t batches_sent = 0;
  uint64_t dropped_queue_full = 0;    ///< send() found the peer's queue full.
  uint64_t dropped_peer_down = 0;     ///< Dropped because the peer was down or the write failed.
  uint64_t dropped_unknown_peer = 0;  ///< Addressed to a member never added.
  uint64_t snapshots_sent = 0;
  uint64_t snapshots_failed = 0;
  uint64_t batches_received = 0;
  uint64_t messages_delivered = 0;
  uint64_t inbound_dropped = 0;   ///< deliver() returned false (inbox full).
  uint64_t inbound_rejected = 0;  ///< Streams refused: bad header or invalid message.
  uint64_t snapshots_received = 0;
  uint64_t snapshots_rejected = 0;
};

/// Hands one validated incoming message to the raft loop. Returns false if the
/// inbox is full; the message is then dropped. Must not block.
using DeliverFn = std::function<bool(raft::Message&& m)>;
/// A message to `peer` was dropped or the peer's stream broke.
using UnreachableFn = std::function<void(raft::NodeId peer)>;
/// A snapshot transfer to `peer` finished (`ok`) or failed.
using SnapshotStatusFn = std::function<void(raft::NodeId peer, bool ok)>;

struct TransportCallbacks {
  DeliverFn deliver;                 ///< Required.
  UnreachableFn unreachable;         ///< Optional.
  SnapshotStatusFn snapshot_status;  ///< Optional.
};

/// "http://host:port" or "https://host:port" -> "host:port" for gRPC; other
/// schemes, paths and missing ports are refused.
Result<std::string> grpc_target_from_url(const std::string& url);

class PeerService;
class PeerSender;
class Reporter;

class Transport {
 public:
  /// REQUIRES: options.local_id != 0, callbacks.deliver set, sink non-null.
  Transport(TransportOptions options, TransportCallbacks callbacks,
            std::shared_ptr<SnapshotSink> sink);
  /// Calls stop().
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  /// Registers the Peer service on `builder`. The caller builds and owns the
  /// server (it may also carry the client API) and must set its max receive
  /// message size above the peers' max_batch_bytes plus one message.
  /// REQUIRES: called at most once, before the server is built; the server
  /// is shut down before this Transport is destroyed.
  void register_service(grpc::ServerBuilder& builder);

  /// Starts a sender for member `id` at `url` ("http://host:port", or
  /// "https://host:port" over options.tls_credentials).
  /// Errors: kInvalidArgument (bad url, id 0 or local id), kAlreadyExists.
  Status add_peer(raft::NodeId id, const std::string& url);
  /// Points the sender for `id` at a new url; the current stream is closed.
  Status update_peer(raft::NodeId id, const std::string& url);
  /// Stops and joins the sender for `id`; queued messages are dropped. No-op
  /// for an unknown id.
  void remove_peer(raft::NodeId id);

  /// Queues `msgs` for their recipients (Message::to) and returns at once.
  /// Never blocks on the network. Any thread; typically the raft loop.
  void send(std::vector<raft::Message> msgs);

  /// Stops every sender and snapshot transfer, cancels the incoming streams
  /// and joins every thread this Transport started. After it returns no
  /// callback runs and incoming RPCs are refused (UNAVAILABLE). Idempotent.
  void stop();

  TransportStats stats() const;

 private:
  friend class PeerService;
  friend class PeerSender;

  /// A usable peer URL: well formed, and TLS credentials exist for https.
  Status check_peer_url(const std::string& url) const;

  const TransportOptions options_;
  const TransportCallbacks callbacks_;
  const std::shared_ptr<SnapshotSink> sink_;

  std::unique_ptr<Reporter> reporter_;
  std::unique_ptr<PeerService> service_;

  mutable std::mutex mu_;  // guards peers_, stopped_
  std::map<raft::NodeId, std::unique_ptr<PeerSender>> peers_;
  bool stopped_ = false;

  struct Counters {
    std::atomic<uint64_t> messages_sent{0}, batches_sent{0}, dropped_queue_full{0},
        dropped_peer_down{0}, dropped_unknown_peer{0}, snapshots_sent{0}, snapshots_failed{0},
        batches_received{0}, messages_delivered{0}, inbound_dropped{0}, inbound_rejected{0},
        snapshots_received{0}, snapshots_rejected{0};
  };
  Counters counters_;
};

}  // namespace raftkv::transport
