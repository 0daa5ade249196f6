// MemoryLogStorage: LogStorage kept in memory, for tests and the simulator.
//
// Holds what the caller persisted: the hard state, the latest snapshot
// (metadata and data), the configuration to restart with, and the entries
// after the snapshot. A "crash" in a test is dropping the Core and building a
// new one over the same MemoryLogStorage: whatever the caller did not write
// here is lost, exactly like unsynced bytes on disk.
//
// Threading: single-threaded, like the core that reads it.
#pragma once

#include <vector>

#include "base/status.h"
#include "raft/log_storage.h"
#include "raft/types.h"

namespace raftkv::raft {

class MemoryLogStorage : public LogStorage {
 public:
  /// An empty log whose configuration is `initial` (bootstrap of a new cluster;
  /// an empty ConfState for a node that will learn its configuration from a
  /// snapshot).
  explicit MemoryLogStorage(ConfState initial = {});

  // LogStorage
  Result<std::pair<HardState, ConfState>> initial_state() const override;
  Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const override;
  Result<Term> term(Index i) const override;
  Index first_index() const override;
  Index last_index() const override;
  Result<Snapshot> snapshot() const override;

  // Write side (what a Ready asks the caller to persist).

  /// Persists the hard state.
  void set_hard_state(const HardState& hs) { hard_state_ = hs; }
  /// The configuration a restarted core starts from; the application calls it
  /// with the result of Core::apply_conf_change as it applies conf entries.
  void set_conf_state(const ConfState& cs) { conf_state_ = cs; }

  /// Appends entries, first truncating any stored entries at or after
  /// ents[0].index (a leader overwrote an uncommitted tail). Entries already
  /// covered by the snapshot are skipped.
  /// REQUIRES: ents contiguous and ents[0].index <= last_index() + 1.
  Status append(const std::vector<Entry>& ents);

  /// Replaces everything with the snapshot (install, §5.3). kOutOfRange if it
  /// is older than the current one.
  Status apply_snapshot(const Snapshot& snap);

  /// Records a snapshot of the state machine at `index` without changing the
  /// log (the caller compacts separately). REQUIRES: index <= last_index().
  Status create_snapshot(Index index, const ConfState& cs, std::string data);

  /// Discards entries up to and including `compact_index` (they are covered by
  /// a snapshot); first_index() becomes compact_index + 1 and the term of
  /// compact_index stays known. kOutOfRange if already compacted.
  /// REQUIRES: compact_index <= last_index(); the caller created a snapshot at
  /// >= compact_index first (create_snapshot), or a lagging follower could
  /// not be caught up.
  Status compact(Index compact_index);

  const HardState& hard_state() const { return hard_state_; }
  size_t entry_count() const { return ents_.size() - 1; }

 private:
  HardState hard_state_;
  ConfState conf_state_;
  Snapshot snapshot_;
  // ents_[0] is a sentinel holding the snapshot's (index, term); real entries follow.
  std::vector<Entry> ents_;
};

}  // namespace raftkv::raft
