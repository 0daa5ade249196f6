// Node: one raftkv member — the raft loop, the apply loop, proposal tracking,
// linearizable reads, bootstrap, snapshots and the peer transport, wired
// together (DESIGN.md "Threads of a node"; docs/operations.md).
//
// Threads:
//   * raft loop (one thread) owns raft::Core and the DiskLogStorage. It wakes
//     for a tick (every --heartbeat-interval), an inbox item (peer message,
//     proposal, read request, snapshot made by the apply loop) or stop; drains
//     the inbox (bounded per round); then handles Readys: sends `messages`,
//     persists snapshot + entries + hard state with ONE save (one fsync) —
//     every proposal drained in the round lands in that one save (group
//     commit) —, releases `messages_after_persist`, applies committed
//     conf-change entries to the Core (see below), queues the committed
//     entries for the apply loop, hands read states over, advances.
//   * apply loop (one thread) applies committed entries in batches with
//     kv::Store::apply (one RocksDB batch incl. the applied index), completes
//     waiting proposals, releases linearizable reads whose index is applied,
//     installs received snapshots and starts local snapshots every
//     --snapshot-count entries: it takes a RocksDB snapshot (cheap) and hands
//     it to a snapshot thread, which flushes the store, streams the image to
//     a sealed temporary file in ~1 MiB pieces and posts the writer to the
//     raft loop; the raft loop makes it durable (rename) once its commit
//     index is, then compacts the log. Neither loop waits for the image, and
//     memory stays bounded whatever the store's size. One at a time; an
//     incoming snapshot cancels (and waits for) the one being made.
//     A small item (a committed batch of up to 8 entries, or up to 8 reads
//     to release) that would find the apply loop idle is processed by the raft
//     loop itself instead, under the same lock the apply loop holds for each
//     item (apply_exec_mu_): that saves a wake-up and a context switch per
//     lone request, and keeps the order of application.
//   * callers (gRPC threads) only validate, propose or read; propose() and
//     read_barrier() enqueue and return at once. Callbacks run later on the
//     apply loop (or the raft loop for errors).
//
// Conf-change hand-off: Core::apply_conf_change runs on the raft loop when the
// entry is handed out as committed, before advance(), in log order — the same
// order in which the apply loop later applies the entry's member metadata.
// The raft loop attaches the configuration current after each batch to it, so
// the apply loop always knows the ConfState at its applied index (snapshots
// need it).
//
// Restart: the Core starts with applied = the storage snapshot's index (not
// the store's applied index), so every committed entry after the snapshot is
// handed out again: the raft loop re-applies conf changes the snapshot does
// not cover, the apply loop rebuilds the member table and skips the kv apply
// of entries at or below kv::Store::applied_index(). Before a local snapshot
// the store is flushed, so its applied index is never below the snapshot's.
//
// Log entry payloads ("server envelope"):
//   kNormal, empty            the leader's no-op
//   kNormal, first byte 0x00  publish: 0x00 then a MemberRecord (members.h)
//   kNormal, first byte 0x01  member update (MemberUpdate): 0x01 then a
//                             MemberRecord whose peer URLs replace the member's
//   kNormal, otherwise        an encoded raftkvpb::InternalRequest (a valid
//                             protobuf never starts with byte 0: tag 0 is illegal)
//   kConfChange               raft::encode_conf_change; context = MemberRecord
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "base/status.h"
#include "kv/store.h"
#include "kv/watch_hub.h"
#include "raft/types.h"
#include "raftkv/internal.pb.h"
#include "server/config.h"
#include "server/members.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace raftkv::raft {
class Core;
}
namespace raftkv::storage {
class DiskLogStorage;
class FileSystem;
class SnapshotWriter;
}  // namespace raftkv::storage
namespace raftkv::transport {
class Transport;
}

namespace raftkv::server {

class NodeMetrics;

/// Finishes a proposal: status OK with the store's response, or the error
/// (etcd's message) the client gets.
using ProposeCallback = std::function<void(Status, raftkvpb::InternalResponse)>;
/// Finishes a read barrier: OK once the local store has applied the read index.
using ReadCallback = std::function<void(Status)>;

/// Finishes a membership change or a leadership move: OK once applied (or
/// done), or the error (etcd's message) the client gets.
using MemberCallback = std::function<void(Status)>;

/// One row of MemberList.
struct MemberInfo {
  MemberRecord record;
  bool is_learner = false;
};

/// Bounds of the node's queues (all counts).
struct NodeLimits {
  size_t max_waiting_proposals = 16384;  ///< Proposals in flight (registered, not finished).
  size_t max_waiting_reads = 16384;      ///< Read barriers in flight.
  size_t max_peer_inbox = 8192;          ///< Peer messages waiting for the raft loop.
  size_t max_apply_queue = 256;          ///< Ready batches waiting for the apply loop.
  size_t max_inbox_per_round = 4096;     ///< Items drained per raft-loop round.
  size_t max_member_ops = 64;            ///< Membership changes and leader moves waiting.
};

/// A point-in-time view for Maintenance.Status and logs.
struct NodeStatusView {
  uint64_t leader = 0;
  uint64_t term = 0;
  uint64_t last_index = 0;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  bool is_learner = false;
};

class Node {
 public:
  /// Opens the data directory (recovering the WAL, the store and the member
  /// table; bootstrapping a new cluster on first start with state "new"),
  /// starts the peer server on --listen-peer-urls, the transport, the raft
  /// loop and the apply loop.
  /// Errors: kInvalidArgument / kFailedPrecondition (configuration vs data
  /// directory), kCorruption, kIOError, kUnavailable (peer port in use).
  static Result<std::unique_ptr<Node>> start(const Config& cfg);

  /// Calls stop().
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Writes what a new member of a new cluster starts from (raftkv.meta and
  /// the bootstrap log: one conf change per member of --initial-cluster,
  /// committed) into cfg.data_dir, which must hold no log yet. The member's
  /// first start then finds a bootstrapped data directory. Used by backup
  /// restore (server/backup.h), which puts the restored store beside it.
  static Status bootstrap_data_dir(const Config& cfg);

  /// Proposes `req` (header id and member id are filled here). `done` runs
  /// exactly once: with the applied outcome, or with an error — Unavailable
  /// "etcdserver: request timed out" / "etcdserver: no leader", or
  /// ResourceExhausted "etcdserver: too many requests". Any thread.
  void propose(raftkvpb::InternalRequest req, ProposeCallback done);

  /// Waits (without blocking the caller) for a linearizable read point:
  /// `done(OK)` runs on the apply loop once this member applied the read
  /// index the leader confirmed (ReadIndex, §6.4), or with an error as
  /// propose(). Any thread.
  void read_barrier(ReadCallback done);

  /// The current store (replaced when a snapshot is installed). Any thread.
  std::shared_ptr<kv::Store> store() const;

  uint64_t cluster_id() const { return cluster_id_; }
  uint64_t member_id() const { return member_id_; }
  uint64_t term() const { return term_.load(); }
  uint64_t leader() const { return leader_.load(); }
  bool is_leader() const { return leader_.load() == member_id_; }
  /// Term of the last entry the apply loop applied. A leader whose
  /// applied_term() equals term() has applied every entry of earlier terms
  /// in its log (its own term's first entry follows them): the lessor acts
  /// only from then on (docs/coordination.md, "Leases"). Any thread.
  uint64_t applied_term() const { return applied_term_pub_.load(); }
  const Config& config() const { return cfg_; }
  NodeStatusView status() const;
  MemberTable members() const;
  /// The member table with each member's learner flag, as of the applied index.
  std::vector<MemberInfo> member_list() const;

  /// Proposes a membership change (members.h). Checked on the raft loop
  /// against the applied member table with check_member_change(); a promotion
  /// is also refused unless the learner is in sync with the leader, which
  /// only the leader knows: a follower answers FailedPrecondition
  /// "etcdserver: not leader" (the Cluster service then forwards the call to
  /// the leader, as etcd does). Changes from this member go one at a time;
  /// later ones wait (bounded). `done` runs exactly once: OK after the change
  /// is applied here (member_list() then shows it), or the error. Any thread.
  void change_members(MemberChange change, MemberCallback done);

  /// Maintenance.MoveLeader: hands leadership to voter `target` (§3.10).
  /// Errors: FailedPrecondition "etcdserver: not leader" (asked on a
  /// follower), FailedPrecondition "etcdserver: bad leader transferee"
  /// (unknown member or a learner), Unavailable "etcdserver: request timed
  /// out, leader transfer took too long". OK at once if this member is the
  /// target. `done` runs once, on the raft loop. Any thread.
  void move_leader(uint64_t target, MemberCallback done);

  /// Called once (from the apply loop) when this member applies its own
  /// removal from the cluster; the process should then stop. Set before traffic.
  void set_removed_listener(std::function<void()> fn);

  /// Adds a function called (from the raft loop, under a node mutex: keep it
  /// quick, never call back into the node) whenever this member gains or
  /// loses a known leader, and once right away with the current state. Add
  /// before any traffic; listeners are never removed (used by the health
  /// service and by watch streams that require a leader).
  void add_leader_listener(std::function<void(bool has_leader)> fn);
  /// Drops every leader listener (before the services they call are destroyed).
  void clear_leader_listeners();

  /// The watch hub, fed by the apply loop after every applied batch and
  /// re-synced when a snapshot replaces the store. Lives as long as the node.
  kv::WatchHub& watch_hub() { return *watch_hub_; }

  /// Stops: no new proposals; the raft loop finishes its current Ready; the
  /// apply loop applies what was handed to it; waiting calls fail with
  /// Unavailable; the transport and the peer server stop; the store is
  /// flushed and closed. Idempotent. Not from a callback.
  void stop();

  /// Lays down etcd's request timeout: 5 s + 2 × election timeout.
  std::chrono::milliseconds request_timeout() const { return request_timeout_; }

 private:
  struct Proposal {
    uint64_t id = 0;
    std::string data;
  };
  struct Waiter {
    ProposeCallback done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct ReadWaiter {
    ReadCallback done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct ReadBatch {
    std::vector<ReadWaiter> waiters;
    std::chrono::steady_clock::time_point sent;
  };
  // Apply-queue items, in the order the raft loop produced them.
  struct CommittedBatch {
    std::vector<raft::Entry> entries;
    raft::ConfState conf_state;  ///< Configuration after the batch's conf changes.
    std::set<raft::Index> rejected;  ///< Conf-change entries the Core refused.
  };
  struct InstallSnapshot {
    raft::Snapshot snapshot;
  };
  struct ReleaseReads {
    raft::Index index;
    std::vector<ReadWaiter> waiters;
  };
  using ApplyItem = std::variant<CommittedBatch, InstallSnapshot, ReleaseReads>;
  struct MemberOp {
    MemberChange change;
    MemberCallback done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct MemberWaiter {
    std::string payload;  ///< The proposed entry data; its application completes the op.
    MemberCallback done;
    std::chrono::steady_clock::time_point deadline;
  };
  struct LeaderMove {
    uint64_t target = 0;
    bool started = false;  ///< The transfer was asked of the Core.
    MemberCallback done;
    std::chrono::steady_clock::time_point deadline;
  };

  explicit Node(const Config& cfg);
  Status open();
  Status bootstrap_new_cluster();
  Status recover_store_from_snapshot();
  Status join_existing_cluster();
  Status start_network();
  void start_threads();

  // Raft loop.
  void raft_loop();
  void drain_inbox();
  void handle_ready();
  void on_tick();
  void issue_reads(bool retry_inflight);
  void persist_local_snapshot(std::unique_ptr<storage::SnapshotWriter> made);
  void push_apply(ApplyItem item);
  void maybe_publish();
  void process_member_ops();
  Status propose_member_op(const MemberOp& op);
  void process_leader_moves();
  void maybe_auto_promote();
  void notify_removed_members();

  // Apply loop (and the raft loop, for small items: push_apply).
  void apply_loop();
  void process_apply_item(ApplyItem& item);
  void apply_committed(CommittedBatch& b);
  void apply_member_payload(const raft::Entry& e, bool rejected);
  void finish_member_waiter(const std::string& payload, Status st);
  void install_snapshot(const raft::Snapshot& snap);
  void maybe_make_snapshot();
  struct SnapshotJob;
  Status write_local_snapshot(SnapshotJob& job, kv::Store& store, kv::SnapshotStream& stream,
                              const MemberTable& members);
  void reap_snapshot_job(bool cancel);
  void release_reads();
  Status swap_store_from_image(const std::string& image);

  // Waiters.
  void finish_proposal(uint64_t id, Status st, raftkvpb::InternalResponse resp);
  Status timeout_status() const;
  void fail_all_waiters(const Status& st);
  void add_peer_locked_table(const MemberRecord& m);

  const Config cfg_;
  const NodeLimits limits_;
  const std::chrono::milliseconds request_timeout_;
  uint64_t cluster_id_ = 0;
  uint64_t member_id_ = 0;

  std::unique_ptr<storage::FileSystem> fs_;
  std::unique_ptr<storage::DiskLogStorage> log_;
  std::unique_ptr<raft::Core> core_;
  std::unique_ptr<transport::Transport> transport_;
  std::unique_ptr<grpc::Service> membership_service_;  ///< Served on the peer port.
  std::unique_ptr<grpc::Server> peer_server_;

  mutable std::mutex store_mu_;
  std::shared_ptr<kv::Store> store_;
  std::unique_ptr<kv::WatchHub> watch_hub_;  ///< Created before the apply loop starts.
  std::string store_dir_name_;  ///< Directory name of store_ inside the data dir.

  mutable std::mutex members_mu_;
  MemberTable members_;
  std::set<uint64_t> learners_;  ///< Learners of the applied configuration.
  MemberTable join_peers_;       ///< Members learned from peers when joining (transport only).
  std::function<void()> removed_listener_;
  bool removed_ = false;

  // Published by the raft loop.
  std::atomic<uint64_t> term_{0}, leader_{0}, last_index_{0}, commit_index_{0};
  std::atomic<bool> published_{false};
  std::vector<std::function<void(bool)>> leader_listeners_;  ///< Guarded by inbox_mu_.

  // Raft-loop inbox (guarded by inbox_mu_).
  std::mutex inbox_mu_;
  std::condition_variable inbox_cv_;
  std::deque<raft::Message> peer_inbox_;
  std::deque<Proposal> proposals_;
  std::vector<ReadWaiter> new_reads_;
  /// A local snapshot sealed by the snapshot thread, for the raft loop to finish.
  std::unique_ptr<storage::SnapshotWriter> made_snapshot_;
  std::vector<raft::NodeId> unreachable_;
  std::vector<std::pair<raft::NodeId, bool>> snapshot_reports_;
  std::deque<MemberOp> new_member_ops_;
  std::deque<LeaderMove> new_moves_;
  bool stopping_ = false;

  // Membership changes: raft-loop queue, and the one in flight (the apply
  // loop finishes it, guarded by member_wait_mu_).
  std::deque<MemberOp> member_ops_;
  std::vector<LeaderMove> moves_;
  struct RemovalNotice {
    raft::Term log_term;  ///< Term and index of the entry that removed the member.
    raft::Index index;
    std::chrono::steady_clock::time_point until;  ///< Then its transport peer is removed.
  };
  std::map<raft::NodeId, RemovalNotice> removal_notices_;
  std::mutex member_wait_mu_;
  std::optional<MemberWaiter> member_waiter_;
  std::chrono::steady_clock::time_point last_auto_promote_{};

  // Raft-loop private state.
  std::deque<Proposal> stalled_;  ///< Refused for lack of a leader; retried each tick.
  std::map<std::string, ReadBatch> inflight_reads_;  ///< ReadIndex ctx -> batch.
  std::vector<ReadWaiter> unsent_reads_;             ///< Waiting for a leader.
  uint64_t read_seq_ = 0;
  raft::HardState hard_state_;      ///< Latest from the Core.
  raft::Index persisted_commit_;    ///< Commit index last written to the WAL.
  uint64_t last_leader_ = 0;
  raft::ConfState applied_conf_raft_;  ///< Core's configuration after the last hand-out.
  std::chrono::steady_clock::time_point last_publish_try_{};

  // Proposal waiters (any thread).
  std::mutex wait_mu_;
  std::map<uint64_t, Waiter> waiters_;  ///< Ascending id == ascending deadline.
  std::atomic<uint64_t> next_request_id_{1};
  std::atomic<size_t> waiting_reads_{0};

  // Apply queue (guarded by apply_mu_).
  /// Held while an apply item is processed, by the apply loop or by the raft
  /// loop applying a small item inline; it guards the apply-loop state below.
  /// Taken before apply_mu_.
  std::mutex apply_exec_mu_;
  std::mutex apply_mu_;
  std::condition_variable apply_cv_;       ///< Apply loop waits for items.
  std::condition_variable apply_space_cv_; ///< Raft loop waits for space.
  std::deque<ApplyItem> apply_queue_;
  bool apply_stop_ = false;

  // Apply-loop state (guarded by apply_exec_mu_).
  std::multimap<raft::Index, ReadWaiter> pending_reads_;
  raft::ConfState applied_conf_;
  raft::Index applied_index_;   ///< Last entry seen by the apply loop (incl. skipped ones).
  raft::Term applied_term_;
  std::atomic<uint64_t> applied_term_pub_{0};  ///< applied_term_, for other threads.
  raft::Index last_snapshot_index_;
  raft::ConfState last_snapshot_conf_;  ///< Configuration of the newest snapshot.
  /// The local snapshot being written by its own thread (at most one).
  struct SnapshotJob {
    raft::SnapshotMetadata metadata;
    raft::Index prev_index;  ///< last_snapshot_index_/conf_ before it, restored if it fails
    raft::ConfState prev_conf;
    std::atomic<bool> cancel{false};
    std::atomic<bool> done{false};
    Status result;  ///< Written by the job before `done`.
    std::thread thread;
  };
  std::unique_ptr<SnapshotJob> snapshot_job_;

  std::unique_ptr<NodeMetrics> metrics_;  ///< node_metrics.h: the etcd_server_* series.
  // A NOSPACE activation this member proposed is in flight (apply loop).
  std::atomic<bool> raising_nospace_{false};
  void maybe_raise_nospace(const kv::Store& store, const kv::ApplyOutcome& o);

  std::thread raft_thread_;
  std::thread apply_thread_;
  std::once_flag stop_once_;
};

}  // namespace raftkv::server
