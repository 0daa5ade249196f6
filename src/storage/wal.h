// Wal: the write-ahead log — Raft entries, hard state and snapshot markers in
// checksummed records (wal_format.h) inside preallocated segment files.
//
// Writing. save() is the group commit of one Raft Ready: the snapshot marker,
// the entries and the hard state are framed into one buffer, written with ONE
// write and made durable with ONE fdatasync before save() returns OK. Only
// then may the caller acknowledge anything (DESIGN invariant 3). When the batch
// does not fit in the current segment a new segment is cut: the new file gets
// a prefix (segment header, current snapshot marker, current hard state) and
// the batch in the same single write, then the file is synced and its
// directory fsynced.
//
// The log is append-only on disk. Entries that overwrite existing indexes (a
// follower whose conflicting suffix is replaced, Raft §5.3) are appended after
// the old ones; the in-memory index drops the old suffix at once and recovery
// replays the same rule ("an entry at index i replaces every entry >= i").
// A snapshot marker (index, term) drops the log prefix <= index when the log
// holds (index, term), else the whole log (§5.3 InstallSnapshot). Segments
// whose entries all lie at or below the marker, and before which every
// segment was released, are deleted.
//
// Recovery (open()): every segment is read in order and every record
// validated. The first record that fails validation at offset X is:
//   - a torn tail, if X is in the last segment and either nothing valid
//     follows it, or everything valid that follows belongs to the same batch
//     (write) as X and the damaged range holds an all-zero 512-byte sector
//     (a page of the unfinished write that never reached the disk).
//     Recovery then truncates the segment at the end of the last COMPLETE
//     batch (records of an unfinished batch were never acknowledged) and the
//     node starts;
//   - corruption otherwise: open() returns Code::kCorruption naming the file,
//     the offset, what was expected and what was found, and what to do.
// Nothing is skipped silently.
//
// Failure policy: a failed write or fdatasync (ENOSPC, EIO, ...) puts the WAL
// in a failed state. Every later call returns that first error; nothing is
// retried (after a failed fsync the kernel may have dropped the dirty pages,
// so a retry that "succeeds" proves nothing) and nothing it could not persist
// is acknowledged. The process must restart and recover from disk.
//
// Threading: one thread (the raft loop) calls everything.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "raft/types.h"
#include "storage/file_system.h"
#include "storage/wal_format.h"

namespace raftkv::storage {

struct WalOptions {
  /// Size each new segment is preallocated to. A batch larger than this gets
  /// a segment of its own, sized to fit.
  uint64_t segment_bytes = 64ull << 20;
};

/// What recovery found and did (for logs and tests).
struct WalRecoveryReport {
  uint64_t segments = 0;
  uint64_t records = 0;
  /// Bytes of a torn or unfinished last batch that were cut off (0 if clean).
  uint64_t truncated_bytes = 0;
  /// Path of the segment that was truncated or removed (empty if none).
  std::string repaired_segment;
};

class Wal {
 public:
  /// Opens the WAL in directory `dir` (created if missing), recovering it.
  /// An empty directory gets a fresh log. Returns Code::kCorruption if a
  /// record before the last valid one fails validation, a segment is missing,
  /// or the records contradict each other.
  static Result<std::unique_ptr<Wal>> open(FileSystem* fs, std::string dir, WalOptions options,
                                           WalRecoveryReport* report = nullptr);

  ~Wal();
  Wal(const Wal&) = delete;
  Wal& operator=(const Wal&) = delete;

  /// Appends one group commit: `marker` (if any), then `entries`, then
  /// `hard_state` (if any), with one write and one fdatasync. OK means durable.
  /// REQUIRES: entries are consecutive; the first one's index is in
  /// [first_index(), last_index() + 1] after `marker` is applied; a marker's
  /// index is >= the current base index.
  Status save(const raft::HardState* hard_state, std::span<const raft::Entry> entries,
              const SnapshotMarker* marker = nullptr);

  /// Reads and re-validates entry `i` from disk.
  /// kOutOfRange if i <= base().index; kUnavailable if i > last_index().
  Result<raft::Entry> read_entry(raft::Index i);

  /// Term of entry `i`, for base().index <= i <= last_index(), from memory.
  Result<raft::Term> term(raft::Index i) const;

  /// The snapshot point the log starts after ((0,0) for a log from the start).
  SnapshotMarker base() const { return base_; }
  raft::Index first_index() const { return base_.index + 1; }
  raft::Index last_index() const {
    return log_.empty() ? base_.index : log_first_ + (log_.size() - 1);
  }
  /// The last hard state saved (empty() if none).
  const raft::HardState& hard_state() const { return hard_state_; }

  /// The first error that put the WAL in the failed state, or OK.
  const Status& failure() const { return failed_; }

  /// Paths of the segment files in use, oldest first (tests, tools).
  std::vector<std::string> segment_paths() const;

 private:
  struct Segment;
  struct Loc {
    raft::Term term;
    uint64_t seq = 0;
    uint64_t offset = 0;
    uint64_t size_bytes = 0;
  };
  Wal(FileSystem* fs, std::string dir, WalOptions options);

  Status recover(WalRecoveryReport* report);
  Status create_first_segment();
  Status cut_segment(const std::string& batch_bytes, raft::Index first_new_index);
  Status release_segments();
  Status fail(Status s);
  Segment* find_segment(uint64_t seq);

  // Log updates shared by save() and recovery. Return kCorruption on records
  // that contradict the log.
  Status apply_marker(const SnapshotMarker& m);
  Status apply_entry(raft::Index index, const Loc& loc);

  FileSystem* fs_;
  std::string dir_;
  WalOptions options_;
  std::vector<std::unique_ptr<Segment>> segments_;  ///< Ordered by seq; back() is written.
  uint64_t write_offset_ = 0;  ///< Where the next record goes in segments_.back().
  uint32_t next_batch_ = 1;
  SnapshotMarker base_;
  /// log_[k] is entry base_.index + 1 + k. During recovery it may start later
  /// (log_first_ > base+1) until markers close the gap; see recover().
  std::deque<Loc> log_;
  raft::Index log_first_{1};
  raft::HardState hard_state_;
  Status failed_;
  std::string buf_;  ///< Reused batch buffer.
};

}  // namespace raftkv::storage
