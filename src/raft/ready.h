// Ready: everything the core wants done, handed to the caller in one batch.
//
// What the caller must do with a Ready, in this order (dissertation §10.2.1;
// DESIGN.md "threads of a node"):
//
//   1. Send `messages` — any time, even before step 2. These are the leader's
//      appends, heartbeats, snapshots and TimeoutNow, pre-votes and read-index
//      traffic: none of them claims anything about this node's durable state,
//      so the leader may write its log in parallel with its followers (§10.2.1).
//   2. Persist, with one sync: `snapshot` (if set: install it into storage and
//      the state machine), then `entries` (append, truncating any stored tail
//      they overwrite), then `hard_state` (if set).
//   3. Only then send the messages of `messages_after_persist`: vote requests
//      (the candidate's own vote must be durable), vote grants, append and
//      heartbeat acknowledgements. They are sealed in an AfterPersist value
//      that gives them up only to a caller stating that step 2 is done, so a
//      vote cannot leave before it is on disk by accident.
//   4. Apply `committed_entries` in order (after `snapshot`, if any). For a
//      kConfChange entry, decode it and call Core::apply_conf_change.
//   5. Serve `read_states`: each read may be answered once the state machine
//      has applied at least its index.
//   6. Call Core::advance(ready) with this same Ready.
//
// `soft_state` may be used at any time (e.g. to learn the leader).
// Between ready() and advance() the caller may keep stepping and ticking the
// core; what that produces arrives in the next Ready.
#pragma once

#include <optional>
#include <vector>

#include "raft/types.h"

namespace raftkv::raft {

/// The statement that releases AfterPersist messages. Spelled out at the call
/// site so the ordering is visible in the code that sends.
enum class Persisted { kHardStateEntriesAndSnapshotAreDurable };

/// Messages that may be sent only after the Ready they came in was persisted.
class AfterPersist {
 public:
  AfterPersist() = default;
  explicit AfterPersist(std::vector<Message> msgs) : msgs_(std::move(msgs)) {}

  bool empty() const { return msgs_.empty(); }
  size_t size() const { return msgs_.size(); }

  /// Gives up the messages (once; later calls return nothing).
  /// REQUIRES: the snapshot, entries and hard state of the same Ready are durable.
  std::vector<Message> release(Persisted) { return std::move(msgs_); }

 private:
  std::vector<Message> msgs_;
};

struct Ready {
  std::optional<SoftState> soft_state;   ///< Set when leader or role changed.
  std::optional<HardState> hard_state;   ///< Set when term, vote or commit changed.
  std::vector<Entry> entries;            ///< To append to stable storage.
  std::optional<Snapshot> snapshot;      ///< To install (storage + state machine).
  std::vector<Message> messages;         ///< May be sent immediately.
  AfterPersist messages_after_persist;   ///< Send after step 2 only.
  std::vector<Entry> committed_entries;  ///< To apply in order.
  std::vector<ReadState> read_states;    ///< Reads that may be served at an index.

  /// True if step 2 must sync (fsync): a new term or vote, new entries or a
  /// snapshot. A change of the commit index alone may be written lazily.
  bool must_sync = false;
};

}  // namespace raftkv::raft
