// NodeMetrics: the series a Node feeds, under etcd's names, labels and
// meanings so that etcd dashboards and alerts work unchanged
// (docs/operations.md "Monitoring"). The Raft core is never instrumented;
// these are measured around it, on the node's loops.
//
//   etcd_server_has_leader                  gauge   1 while this member knows a leader
//   etcd_server_is_leader                   gauge   1 while this member is the leader
//   etcd_server_leader_changes_seen_total   counter times a (new) leader was seen
//   etcd_server_proposals_committed_total   gauge   the commit index (as etcd: a gauge)
//   etcd_server_proposals_applied_total     gauge   the applied index of the store
//   etcd_server_proposals_pending           gauge   proposals waiting for their outcome
//   etcd_server_proposals_failed_total      counter proposals that failed: timed out,
//                                                   refused (too many, no leader), server stopped
//   etcd_disk_wal_fsync_duration_seconds    histogram one WAL group commit (write + fdatasync)
//   etcd_disk_backend_commit_duration_seconds histogram one RocksDB apply batch commit
//   etcd_network_peer_round_trip_time_seconds{To} histogram heartbeat → its response
//                                                   (matched by the tick stamp both carry),
//                                                   measured by the leader per follower
//   etcd_mvcc_db_total_size_in_bytes        gauge   the store's size as Status reports it
//   etcd_debugging_mvcc_keys_total          gauge   keys in the index
//
// Threads: on_leader / observe_wal_fsync / on_send / on_receive run on the
// raft loop only (the round-trip bookkeeping is not locked);
// observe_backend_commit on the apply loop; the rest on any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "base/metrics.h"
#include "raft/types.h"

namespace raftkv::server {

class NodeMetrics {
 public:
  using Clock = std::chrono::steady_clock;

  /// Values read at scrape time (each must be quick and thread-safe).
  struct Sources {
    std::function<uint64_t()> committed_index;
    std::function<uint64_t()> applied_index;
    std::function<uint64_t()> pending_proposals;
    std::function<uint64_t()> db_size_bytes;
    std::function<uint64_t()> keys;
  };

  explicit NodeMetrics(metrics::Registry& registry = metrics::Registry::global());
  /// Removes the sources.
  ~NodeMetrics();
  NodeMetrics(const NodeMetrics&) = delete;
  NodeMetrics& operator=(const NodeMetrics&) = delete;

  /// Publishes the scrape-time values; clear_sources() before what they read goes away.
  void set_sources(Sources s);
  void clear_sources();

  /// The soft state changed: `leader` (0 = none) as seen by member `self`.
  void on_leader(uint64_t leader, uint64_t previous_leader, uint64_t self);
  void observe_wal_fsync(Clock::duration d) { wal_fsync_.observe(seconds(d)); }
  void observe_backend_commit(Clock::duration d) { backend_commit_.observe(seconds(d)); }
  void on_proposals_failed(uint64_t n = 1) { proposals_failed_.inc(n); }

  /// Outgoing messages of the raft loop: remembers when each heartbeat left.
  void on_send(const std::vector<raft::Message>& msgs, Clock::time_point now);
  /// An incoming message: a heartbeat response closes the round trip.
  void on_receive(const raft::Message& m, Clock::time_point now);

 private:
  static double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  metrics::Registry& registry_;
  metrics::Gauge& has_leader_;
  metrics::Gauge& is_leader_;
  metrics::Counter& leader_changes_;
  metrics::Counter& proposals_failed_;
  metrics::Histogram& wal_fsync_;
  metrics::Histogram& backend_commit_;
  metrics::Family<metrics::Histogram>& peer_rtt_;
  /// Peer id -> heartbeat tick stamp -> when it was first sent (bounded).
  std::map<uint64_t, std::map<uint64_t, Clock::time_point>> heartbeat_sent_;
  std::map<uint64_t, metrics::Histogram*> peer_rtt_series_;
};

}  // namespace raftkv::server
