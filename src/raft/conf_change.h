// Membership changes (dissertation chapter 4): applying a ConfChange to a
// configuration, validating it, rebuilding a configuration from a ConfState,
// and the byte encoding of a ConfChange inside a kConfChange log entry.
//
// Rules enforced (each violation is a Status naming the problem):
//  - a "simple" change (no joint step) may change at most one voter, because
//    only then do a majority of the old and of the new set always overlap
//    (§4.1); several voter changes must go through a joint configuration;
//  - a joint configuration cannot be entered while joint, nor left while not;
//  - the (incoming) voter set may never become empty;
//  - a learner is never also a voter; a voter demoted to learner while it is
//    still needed by the outgoing half is staged in learners_next and becomes
//    a learner when the joint configuration is left.
//
// Pure: operates on a copy of the tracker's configuration and progress map and
// returns the result; the core swaps it in.
#pragma once

#include <map>
#include <string>
#include <utility>

#include "base/status.h"
#include "raft/progress.h"
#include "raft/types.h"

namespace raftkv::raft {

struct TrackerState {
  ProgressTracker::Config config;
  std::map<NodeId, Progress> progress;
};

class ConfChanger {
 public:
  /// `last_index` seeds next = last_index + 1 for members added by a change.
  ConfChanger(const ProgressTracker& tracker, Index last_index)
      : tracker_(tracker), last_index_(last_index) {}

  /// Enters a joint configuration: outgoing := current voters, then applies
  /// `changes` to the incoming half.
  Result<TrackerState> enter_joint(bool auto_leave,
                                   const std::vector<ConfChangeSingle>& changes) const;
  /// Leaves the joint configuration: drops the outgoing half, turns
  /// learners_next into learners and forgets members no longer present.
  Result<TrackerState> leave_joint() const;
  /// Applies changes that alter at most one voter, without a joint step.
  Result<TrackerState> simple(const std::vector<ConfChangeSingle>& changes) const;

  /// Dispatches on the ConfChange: leave (empty changes), joint (transition
  /// not kAuto, or more than one change), or simple.
  Result<TrackerState> apply(const ConfChange& cc) const;

 private:
  Status apply_changes(TrackerState* s, const std::vector<ConfChangeSingle>& changes) const;
  void make_voter(TrackerState* s, NodeId id) const;
  void make_learner(TrackerState* s, NodeId id) const;
  void remove(TrackerState* s, NodeId id) const;
  void init_progress(TrackerState* s, NodeId id, bool is_learner) const;
  static Status check(const TrackerState& s);
  TrackerState copy() const { return TrackerState{tracker_.config, tracker_.progress}; }

  const ProgressTracker& tracker_;
  Index last_index_;
};

/// True if the ConfChange would need a joint configuration.
bool conf_change_enters_joint(const ConfChange& cc);

/// Rebuilds the configuration described by `cs` into `tracker` (replacing its
/// config and progress), using the same rules as live changes: voters and
/// learners of the outgoing half first, then the joint step. Returns an error
/// if `cs` is not a configuration reachable by valid changes.
Status restore_conf_state(const ConfState& cs, Index last_index, ProgressTracker* tracker);

// ---------------------------------------------------------------------------
// Encoding of a ConfChange as the data of a kConfChange entry (little endian):
//
//   +---------+------------+-----------+----------------------------+
//   | version | transition | count u32 | count × (type u8, id u64)  |
//   |  u8 = 1 |     u8     |           |                            |
//   +---------+------------+-----------+----------------------------+
//   | context length u32 | context bytes                           |
//   +--------------------+-----------------------------------------+
//
// decode_conf_change validates the version, every enum value, the count
// against the remaining length, and that nothing trails the context.
std::string encode_conf_change(const ConfChange& cc);
Result<ConfChange> decode_conf_change(const std::string& data);

}  // namespace raftkv::raft
