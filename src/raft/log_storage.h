// LogStorage: the read side of the log that the Raft core asks for.
//
// The core keeps only the unstable tail (entries handed out in a Ready but not
// yet acknowledged as persisted) in memory; everything durable it reads through
// this interface. src/storage/ implements it over the WAL; MemoryLogStorage
// implements it in memory for tests and the simulator.
//
// Threading: called only from the thread that owns the core (the raft loop).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "base/status.h"
#include "raft/types.h"

namespace raftkv::raft {

/// Error conventions (the core relies on these exact codes):
///  - Code::kOutOfRange:  the requested index was compacted into a snapshot.
///  - Code::kUnavailable: the requested index is not (yet) in the log, or a
///    snapshot is being prepared and is temporarily unavailable.
///  - anything else:      a storage failure; the core stops (it cannot make
///    progress without its log).
class LogStorage {
 public:
  virtual ~LogStorage() = default;

  /// Hard state and configuration as recovered at startup.
  virtual Result<std::pair<HardState, ConfState>> initial_state() const = 0;

  /// Entries with indexes in [lo, hi). Returns at least one entry when lo < hi,
  /// then stops before exceeding `max_bytes` (sum of Entry::size_bytes()).
  /// REQUIRES: first_index() <= lo <= hi <= last_index() + 1, else the errors above.
  virtual Result<std::vector<Entry>> entries(Index lo, Index hi, uint64_t max_bytes) const = 0;

  /// Term of entry i. Valid for first_index() - 1 (the snapshot's index, whose
  /// term is remembered) through last_index().
  virtual Result<Term> term(Index i) const = 0;

  /// Index of the first entry still in the log (snapshot index + 1).
  virtual Index first_index() const = 0;

  /// Index of the last entry in the log (the snapshot index if the log is empty).
  virtual Index last_index() const = 0;

  /// The most recent snapshot (empty() if none).
  virtual Result<Snapshot> snapshot() const = 0;
};

}  // namespace raftkv::raft
