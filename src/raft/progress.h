// Per-follower replication progress and the tracker holding the configuration
// (dissertation §3.5 nextIndex/matchIndex, §10.2 pipelining and flow control,
// §4.3 joint consensus).
//
// A follower's Progress is in one of three states:
//   probe     — the leader does not know where the follower's log matches; it
//               sends one append at a time and waits for the answer (or a
//               heartbeat response) before sending the next.
//   replicate — the follower is known to match up to `match`; the leader
//               streams appends optimistically (next advances on send),
//               bounded by the Inflights window.
//   snapshot  — the follower needs entries the leader has compacted; a
//               snapshot is on its way and nothing else is sent until the
//               follower answers or the send is reported failed.
#pragma once

#include <map>
#include <vector>

#include "raft/inflights.h"
#include "raft/quorum.h"
#include "raft/types.h"

namespace raftkv::raft {

enum class ProgressState : uint8_t { kProbe, kReplicate, kSnapshot };

const char* progress_state_name(ProgressState s);

class Progress {
 public:
  Progress(Index next, size_t max_inflight_msgs, uint64_t max_inflight_bytes, bool is_learner);

  Index match;  ///< Highest index known to be replicated on the follower.
  Index next;   ///< Index of the next entry to send. Invariant: match < next.
  ProgressState state = ProgressState::kProbe;
  /// In snapshot state: index of the snapshot being sent.
  Index pending_snapshot;
  /// True if the follower was heard from since the last check-quorum round.
  bool recent_active = false;
  /// In probe state: an append was sent and is awaiting an answer.
  bool probe_sent = false;
  bool is_learner = false;
  /// Lease mode: 1 + the leader's tick stamp of the newest heartbeat this
  /// follower acknowledged in the current term; 0 = none yet.
  uint64_t lease_ack_stamp = 0;
  Inflights inflights;

  void become_probe();
  void become_replicate();
  /// REQUIRES: snapshot_index > 0.
  void become_snapshot(Index snapshot_index);

  /// The follower acknowledged entries up to `n`. Returns false if the
  /// acknowledgement is stale (n <= match). Updates match and raises next.
  bool maybe_update(Index n);

  /// Replicate state: `last` was just sent, so the next send starts after it.
  void optimistic_update(Index last);

  /// The follower rejected an append whose previous index was `rejected`;
  /// `match_hint` is the leader's guess of the highest index that may match
  /// (derived from the follower's hint, §5.3 fast backtracking). Returns false
  /// if the rejection is stale.
  bool maybe_decr_to(Index rejected, Index match_hint);

  /// True if the leader must not send appends now.
  bool is_paused() const;

  void check_invariants() const;
};

/// The current configuration plus a Progress for every member (voters of both
/// halves, learners and learners_next) and the votes of the current election.
class ProgressTracker {
 public:
  struct Config {
    quorum::JointConfig voters;
    std::vector<NodeId> learners;       ///< sorted
    std::vector<NodeId> learners_next;  ///< sorted; ⊆ voters.outgoing
    bool auto_leave = false;
    bool operator==(const Config&) const = default;
  };

  ProgressTracker(size_t max_inflight_msgs, uint64_t max_inflight_bytes)
      : max_inflight_msgs_(max_inflight_msgs), max_inflight_bytes_(max_inflight_bytes) {}

  Config config;
  std::map<NodeId, Progress> progress;  // ordered: iteration order is deterministic

  Progress* get(NodeId id);
  const Progress* get(NodeId id) const;
  Progress make_progress(Index next, bool is_learner) const {
    return Progress(next, max_inflight_msgs_, max_inflight_bytes_, is_learner);
  }

  ConfState conf_state() const;
  bool is_singleton() const;  ///< exactly one voter and not joint
  bool is_voter(NodeId id) const { return config.voters.contains(id); }

  /// Highest index acknowledged by a quorum (joint-aware).
  Index committed() const;

  /// True if a quorum of voters has recent_active set (check-quorum, §6.2).
  bool quorum_active() const;

  void reset_votes() { votes_.clear(); }
  void record_vote(NodeId id, bool granted);
  /// Outcome of the current election from the votes recorded so far.
  quorum::VoteResult tally() const;

  /// Every member id (voters, learners), sorted.
  std::vector<NodeId> member_ids() const;

  /// Aborts if the config and the progress map disagree.
  void check_invariants() const;

 private:
  size_t max_inflight_msgs_;
  uint64_t max_inflight_bytes_;
  std::map<NodeId, bool> votes_;
};

}  // namespace raftkv::raft
