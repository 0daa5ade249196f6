// raft::Core — the Raft consensus algorithm as a deterministic state machine
// (Ongaro, "Consensus: Bridging Theory and Practice", 2014).
//
// No threads, clocks, sockets, files or global state. Time enters as tick(),
// messages as step(), client requests as propose()/read_index()/...; all
// output leaves through ready() (see ready.h for the caller's contract).
// Randomness comes from a generator seeded by Config::seed, so a run is a
// pure function of its inputs.
//
// Threading: one thread (the raft loop) owns a Core and calls everything.
//
// Implemented: randomized election timeouts in [election_ticks,
// 2*election_ticks) (§3.4); pre-vote (§9.6); check-quorum and leader
// stickiness (§6.2, §4.2.3); log replication with pipelining and per-follower
// flow control (§10.2); fast backtracking with the follower's (term, index)
// hint; commitment of current-term entries only, with a no-op at the start of
// each term (§3.6.2); snapshots for followers behind the compaction point
// (§5.3); batched ReadIndex (§6.4); leadership transfer (§3.10); learners and
// joint consensus (§4.3) with automatic leave; a bounded uncommitted tail and
// proposal size limit.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "raft/conf_change.h"
#include "raft/log_storage.h"
#include "raft/progress.h"
#include "raft/raft_log.h"
#include "raft/read_only.h"
#include "raft/ready.h"
#include "raft/types.h"

namespace raftkv::raft {

/// How the leader confirms it is still the leader before serving a read.
enum class ReadOnlyOption : uint8_t {
  /// ReadIndex (§6.4): a heartbeat round acknowledged by a quorum. Safe under
  /// any timing. The default.
  kSafe,
  /// Leader lease (§6.4.1): no round trip while a quorum acknowledged a
  /// heartbeat sent less than election_ticks - lease_clock_drift_ticks ticks
  /// ago. Safe only if every node's tick runs at the same rate within that
  /// drift (docs/raft.md); needs check_quorum. Falls back to kSafe when the
  /// lease is not held.
  kLeaseBased,
};

struct Config {
  NodeId id;  ///< This node's id; non-zero.
  /// A follower that hears nothing from a leader for a random number of ticks
  /// in [election_ticks, 2*election_ticks) starts an election.
  int election_ticks = 10;
  /// The leader sends heartbeats every heartbeat_ticks ticks.
  /// REQUIRES: heartbeat_ticks < election_ticks.
  int heartbeat_ticks = 1;
  /// Run a pre-vote round before bumping the term (§9.6), so a node that was
  /// partitioned away cannot disrupt a working leader when it returns.
  bool pre_vote = true;
  /// The leader steps down if it has not heard from a quorum within an
  /// election timeout; followers ignore vote requests while they have heard
  /// from a leader within the election timeout (leader stickiness).
  bool check_quorum = true;
  /// Upper bound of the entries' bytes in one append message (at least one
  /// entry is always sent).
  uint64_t max_size_per_msg_bytes = 1 << 20;
  /// Append messages in flight to one follower (replicate state).
  size_t max_inflight_msgs = 256;
  /// Entry bytes in flight to one follower; 0 = no byte bound.
  uint64_t max_inflight_bytes = 32ull << 20;
  /// Payload bytes of entries appended by the leader and not yet applied;
  /// further proposals are refused until the tail drains. 0 = no bound.
  uint64_t max_uncommitted_entries_bytes = 64ull << 20;
  /// Largest payload of one proposed entry. 0 = no bound.
  uint64_t max_proposal_bytes = (3ull << 20) / 2;
  /// Bytes of committed entries handed out in one Ready (at least one entry).
  uint64_t max_committed_bytes_per_ready = 64ull << 20;
  /// ReadIndex requests waiting for confirmation on the leader.
  size_t max_pending_reads = 4096;
  /// See ReadOnlyOption; every node of a cluster must use the same option.
  ReadOnlyOption read_only_option = ReadOnlyOption::kSafe;
  /// Lease mode: how many ticks of clock drift over an election timeout the
  /// lease allows for. REQUIRES: 0 <= lease_clock_drift_ticks < election_ticks.
  int lease_clock_drift_ticks = 1;
  /// Seed of the election-timeout generator; give every node a different one.
  uint64_t seed = 0;
  /// Index the state machine had applied when this core was (re)started.
  /// The snapshot index is used if larger.
  Index applied;

  /// OK, or InvalidArgument naming the field to change.
  Status validate() const;
};

/// A follower's replication progress as seen by the leader.
struct ProgressView {
  Index match;
  Index next;
  ProgressState state = ProgressState::kProbe;
  bool recent_active = false;
  bool is_learner = false;
  size_t inflight_msgs = 0;
  Index pending_snapshot;
};

struct NodeStatus {
  NodeId id;
  HardState hard_state;
  SoftState soft_state;
  Index applied;
  Index last_index;
  NodeId lead_transferee;
  ConfState config;
  std::map<NodeId, ProgressView> progress;  ///< Leader only; empty otherwise.
};

/// Message::context of vote requests triggered by a leadership transfer: they
/// bypass leader stickiness (the old leader asked for them).
inline constexpr const char* kCampaignTransferContext = "CampaignTransfer";

class Core {
 public:
  /// Starts from storage: hard state, configuration and log as persisted.
  /// REQUIRES: cfg.validate() is OK; storage outlives the core and its
  /// recovered state is consistent (commit within the log).
  Core(const Config& cfg, LogStorage* storage);

  /// Validates `cfg` and storage and returns a core, or the reason not.
  static Result<std::unique_ptr<Core>> create(const Config& cfg, LogStorage* storage);

  Core(const Core&) = delete;
  Core& operator=(const Core&) = delete;

  // --- Inputs ---------------------------------------------------------------

  /// Advances logical time by one tick: election timeouts for followers and
  /// candidates, heartbeats and check-quorum for the leader.
  void tick();

  /// Processes a message from a peer. Errors: InvalidArgument for a message
  /// not addressed to this node or malformed; a forwarded proposal the leader
  /// refuses returns the same error propose() would.
  Status step(const Message& m);

  /// Proposes `data` for the log. A follower forwards it to the leader.
  /// Errors (the proposal is dropped):
  ///   kUnavailable        no leader is known (election in progress);
  ///   kAborted            a leadership transfer is in progress;
  ///   kInvalidArgument    data exceeds Config::max_proposal_bytes;
  ///   kResourceExhausted  the leader's uncommitted tail is at its bound;
  ///   kFailedPrecondition this node was removed from the configuration.
  /// OK means appended (leader) or forwarded (follower), not committed.
  Status propose(std::string data);

  /// Proposes a membership change; same errors as propose(), plus
  /// kFailedPrecondition when another change is not yet applied, or when it
  /// would enter a joint config while joint (or leave one while not), and
  /// kInvalidArgument when the change is invalid for the current config.
  Status propose_conf_change(const ConfChange& cc);

  /// The application calls this when it applies a committed kConfChange entry
  /// (decoded with decode_conf_change). The change takes effect now, on every
  /// node at the same log position (docs/raft.md explains this choice). An
  /// invalid change is rejected identically on every node and leaves the
  /// configuration unchanged. Returns the new configuration, which the
  /// application persists with its applied index.
  Result<ConfState> apply_conf_change(const ConfChange& cc);

  /// Asks for a linearizable read point. `ctx` identifies the request and
  /// comes back in a ReadState once the leader confirmed its leadership;
  /// it must be unique among pending requests. A follower forwards to the
  /// leader. Errors: kUnavailable (no leader), kResourceExhausted (too many
  /// pending reads), kAlreadyExists (ctx already pending).
  Status read_index(std::string ctx);

  /// Leader: hands leadership to `target` (catches it up, then TimeoutNow);
  /// proposals are refused until it completes or an election timeout passes.
  /// A follower may ask for itself only (target == its id): the request is
  /// forwarded to the leader. Errors: kUnavailable (no leader known),
  /// kFailedPrecondition (follower asking for another node), kInvalidArgument
  /// (target is not a voter).
  Status transfer_leadership(NodeId target);

  /// Starts an election now (as if the election timeout fired). In lease
  /// mode it is ignored while this node heard from a leader within the
  /// election timeout (an early vote for itself would break the lease).
  void campaign();

  /// The transport could not reach `id`: stop pipelining to it.
  void report_unreachable(NodeId id);
  /// The transport finished sending a snapshot to `id` (ok) or gave up. The
  /// transport must report every kSnapshot message it was handed: until it
  /// does, the follower stays in snapshot state and receives nothing else.
  void report_snapshot(NodeId id, bool ok);

  // --- Outputs --------------------------------------------------------------

  /// True if ready() would return something to do. False while a Ready is
  /// outstanding (handed out and not yet advanced).
  bool has_ready() const;
  /// Collects the pending work. REQUIRES: no Ready outstanding.
  Ready ready();
  /// Acknowledges that `rd` (the outstanding Ready) was handled as ready.h
  /// describes. REQUIRES: rd is the Ready returned by the last ready().
  void advance(const Ready& rd);

  NodeStatus status() const;

  // --- Accessors (tests, simulator, invariant checkers) -----------------------
  NodeId id() const { return id_; }
  Term term() const { return term_; }
  Role role() const { return role_; }
  NodeId leader() const { return leader_; }
  NodeId vote() const { return vote_; }
  NodeId lead_transferee() const { return lead_transferee_; }
  const RaftLog& log() const { return log_; }
  const ProgressTracker& tracker() const { return tracker_; }
  int randomized_election_timeout_ticks() const { return randomized_election_timeout_; }
  /// Uncommitted payload bytes the leader is tracking.
  uint64_t uncommitted_bytes() const { return uncommitted_bytes_; }
  /// Aborts if an internal invariant is broken (tests call it after each step).
  void check_invariants() const;

 private:
  enum class CampaignType { kPreElection, kElection, kTransfer };

  // Role transitions.
  void reset(Term term);
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();

  // Elections.
  void tick_election();
  void tick_heartbeat();
  void hup(CampaignType t);
  void start_campaign(CampaignType t);
  void poll(NodeId from, bool granted);
  bool promotable() const;
  bool has_unapplied_conf_changes() const;
  void reset_randomized_election_timeout();
  uint64_t next_random();

  // Message handling.
  Status step_leader(const Message& m);
  Status step_candidate(const Message& m);
  Status step_follower(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);
  void handle_transfer_leader(NodeId transferee);
  bool restore(const Snapshot& s);
  static Status validate_message(const Message& m);

  // Leader: replication.
  Status propose_entries(std::vector<Entry> ents);
  Status check_conf_change_proposal(const ConfChange& cc) const;
  bool append_entries(std::vector<Entry>* ents);
  bool maybe_send_append(NodeId to, bool send_if_empty);
  bool maybe_send_snapshot(NodeId to, Progress& pr);
  void send_heartbeat(NodeId to, const std::string& ctx);
  /// Marks every follower as due an append (with `send_if_empty`, an empty
  /// one carries a new commit index); flush_appends sends them.
  void bcast_append();
  void mark_append_due(NodeId to, bool send_if_empty);
  /// Sends the appends marked due since the last Ready, as many as each
  /// follower's window allows. Called when the next Ready is built, so every
  /// proposal and commit advance of one batch of steps shares one message per
  /// follower instead of one each.
  void flush_appends();
  void bcast_heartbeat(const std::string& ctx);
  bool maybe_commit();
  void on_commit_advanced();
  void send_timeout_now(NodeId to);
  void abort_leader_transfer() { lead_transferee_ = kNoNode; }
  void maybe_auto_leave_joint();

  // Leader: reads.
  Status leader_read_index(NodeId from, const std::string& ctx);
  Status start_read(NodeId from, const std::string& ctx);
  void respond_read(const ReadOnly::Request& req);
  bool committed_in_current_term() const;
  /// Lease mode: a quorum acknowledged a heartbeat recent enough that no
  /// other leader can have been elected since (see ReadOnlyOption).
  bool lease_valid() const;
  /// This node heard from a leader (or started) less than an election
  /// timeout ago: it does not vote for another candidate (stickiness).
  bool heard_leader_recently() const;

  // Membership.
  void switch_to_config(TrackerState s);
  void step_down_after_removal();

  /// Sends a request (proposal, read, transfer) to the known leader, or
  /// returns Unavailable with `no_leader_message` if none is known.
  Status forward_to_leader(Message m, const char* no_leader_message);
  void send(Message m);
  HardState hard_state() const { return HardState{term_, vote_, log_.committed()}; }
  SoftState soft_state() const { return SoftState{leader_, role_}; }

  const NodeId id_;
  const Config cfg_;
  RaftLog log_;
  ProgressTracker tracker_;
  ReadOnly read_only_;

  Term term_;
  NodeId vote_;
  Role role_ = Role::kFollower;
  NodeId leader_;
  NodeId lead_transferee_;
  bool is_learner_ = false;
  /// Index of the latest conf-change entry the leader appended; no new change
  /// is proposed until it is applied (one change at a time, §4.1).
  Index pending_conf_index_;
  uint64_t uncommitted_bytes_ = 0;
  /// A TimeoutNow arrived while a committed conf change was still unapplied:
  /// campaign as soon as it is applied (cleared by any term change).
  bool campaign_after_apply_ = false;
  /// Reads received before the leader committed an entry of its term (§6.4:
  /// its commit index is not yet known to be current).
  std::vector<std::pair<NodeId, std::string>> reads_awaiting_commit_;

  /// Ticks since this core started; stamps heartbeats for the leader lease.
  uint64_t now_ticks_ = 0;
  /// Lease mode: set once this leader sent TimeoutNow in its term. The
  /// transferee's forced election ignores stickiness, so no lease based on
  /// earlier acknowledgements can be trusted for the rest of the term.
  bool lease_revoked_ = false;
  /// Lease mode: a (re)started node behaves as if it had just heard from a
  /// leader, since it may have acknowledged one before crashing.
  bool startup_guard_ = false;
  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  uint64_t rng_state_;

  // Output buffers, moved into the next Ready.
  /// Leader: followers due an append at the next Ready, and whether an empty
  /// one is wanted (to carry the commit index). Cleared on every role change.
  std::map<NodeId, bool> append_due_;
  /// Payload bytes of the last forwarded proposal, and whether it holds
  /// client entries only: while it is the last message in msgs_,
  /// forward_to_leader merges the next one into it (kPropose is sent nowhere
  /// else, so a kPropose at the back of msgs_ is that proposal).
  uint64_t forwarded_bytes_ = 0;
  bool forwarded_mergeable_ = false;
  std::vector<Message> msgs_;
  std::vector<Message> msgs_after_persist_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_;
  HardState prev_hard_;
  bool ready_outstanding_ = false;
};

}  // namespace raftkv::raft
