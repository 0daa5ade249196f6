#include "server/node_metrics.h"

#include "server/config.h"

namespace raftkv::server {
namespace {

constexpr const char* kCommitted = "etcd_server_proposals_committed_total";
constexpr const char* kApplied = "etcd_server_proposals_applied_total";
constexpr const char* kPending = "etcd_server_proposals_pending";
constexpr const char* kDbSize = "etcd_mvcc_db_total_size_in_bytes";
constexpr const char* kKeys = "etcd_debugging_mvcc_keys_total";

// etcd's buckets: 1 ms .. 8.192 s for disk, 0.1 ms .. 0.8192 s for peers.
std::vector<double> disk_buckets() { return metrics::exponential_buckets(0.001, 2, 14); }
// Heartbeats remembered per peer while unanswered (one per tick).
constexpr size_t kMaxUnansweredHeartbeats = 64;

std::vector<double> rtt_buckets() { return metrics::exponential_buckets(0.0001, 2, 14); }

std::function<double()> as_double(std::function<uint64_t()> f) {
  if (!f) return nullptr;
  return [f = std::move(f)] { return static_cast<double>(f()); };
}

}  // namespace

NodeMetrics::NodeMetrics(metrics::Registry& r)
    : registry_(r),
      has_leader_(r.gauge("etcd_server_has_leader",
                          "Whether or not a leader exists. 1 is existence, 0 is not.")),
      is_leader_(r.gauge("etcd_server_is_leader",
                         "Whether or not this member is a leader. 1 if is, 0 otherwise.")),
      leader_changes_(r.counter("etcd_server_leader_changes_seen_total",
                                "The number of leader changes seen.")),
      proposals_failed_(r.counter("etcd_server_proposals_failed_total",
                                  "The total number of failed proposals seen.")),
      wal_fsync_(r.histogram("etcd_disk_wal_fsync_duration_seconds",
                             "The latency distributions of fsync called by WAL.", disk_buckets())),
      backend_commit_(r.histogram("etcd_disk_backend_commit_duration_seconds",
                                  "The latency distributions of commit called by backend.",
                                  disk_buckets())),
      peer_rtt_(r.histogram_family("etcd_network_peer_round_trip_time_seconds",
                                   "Round-Trip-Time histogram between peers", {"To"},
                                   rtt_buckets())) {}

NodeMetrics::~NodeMetrics() { clear_sources(); }

void NodeMetrics::set_sources(Sources s) {
  using metrics::Type;
  registry_.set_callback(kCommitted, "The total number of consensus proposals committed.",
                         Type::kGauge, as_double(std::move(s.committed_index)));
  registry_.set_callback(kApplied, "The total number of consensus proposals applied.",
                         Type::kGauge, as_double(std::move(s.applied_index)));
  registry_.set_callback(kPending, "The current number of pending proposals to commit.",
                         Type::kGauge, as_double(std::move(s.pending_proposals)));
  registry_.set_callback(kDbSize, "Total size of the underlying database in bytes.", Type::kGauge,
                         as_double(std::move(s.db_size_bytes)));
  registry_.set_callback(kKeys, "Total number of keys.", Type::kGauge, as_double(std::move(s.keys)));
}

void NodeMetrics::clear_sources() { set_sources(Sources{}); }

void NodeMetrics::on_leader(uint64_t leader, uint64_t previous_leader, uint64_t self) {
  // As etcd: a change counts when a leader is known and differs from the last one.
  if (leader != 0 && leader != previous_leader) leader_changes_.inc();
  has_leader_.set(leader != 0 ? 1 : 0);
  is_leader_.set(leader != 0 && leader == self ? 1 : 0);
  if (leader != self) heartbeat_sent_.clear();
}

void NodeMetrics::on_send(const std::vector<raft::Message>& msgs, Clock::time_point now) {
  for (const raft::Message& m : msgs) {
    if (m.type != raft::MessageType::kHeartbeat) continue;
    auto& sent = heartbeat_sent_[m.to.value()];
    sent.emplace(m.index.value(), now);  // a resent stamp keeps its first send time
    if (sent.size() > kMaxUnansweredHeartbeats) sent.erase(sent.begin());
  }
}

void NodeMetrics::on_receive(const raft::Message& m, Clock::time_point now) {
  if (m.type != raft::MessageType::kHeartbeatResponse) return;
  auto peer = heartbeat_sent_.find(m.from.value());
  if (peer == heartbeat_sent_.end()) return;
  auto it = peer->second.find(m.index.value());
  if (it == peer->second.end()) return;
  const Clock::duration rtt = now - it->second;
  // Older stamps were answered out of order or lost: forget them too.
  peer->second.erase(peer->second.begin(), std::next(it));
  metrics::Histogram*& h = peer_rtt_series_[m.from.value()];
  if (h == nullptr) h = &peer_rtt_.with({format_id(m.from.value())});
  h->observe(seconds(rtt));
}

}  // namespace raftkv::server
