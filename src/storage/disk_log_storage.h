// DiskLogStorage: raft::LogStorage over the WAL and the snapshot store, the
// durable side of a node's log.
//
// Layout of a member's data directory:
//   <dir>/wal/    WAL segments (wal.h)
//   <dir>/snap/   snapshot files (snapshot_store.h)
//
// The raft loop calls save() with each Ready's hard state, entries and
// snapshot (one group commit: one write, one fdatasync; a snapshot's file is
// made durable first), then serves the core's reads. Recent entries are kept
// in memory (up to cache_max_bytes, the newest ones) so a leader replicates
// fresh entries without reading the disk; older ones are read back from their
// segment and re-validated.
//
// Opening joins the WAL with the newest usable snapshot (snapshot_store.h's
// load rule). If the snapshot is newer than what the WAL records (a crash
// between writing the snapshot file and the WAL marker), the marker is
// written then, completing the interrupted save.
//
// Threading: the raft loop only.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "raft/log_storage.h"
#include "storage/snapshot_store.h"
#include "storage/wal.h"

namespace raftkv::storage {

struct DiskLogStorageOptions {
  WalOptions wal;
  SnapshotStoreOptions snapshots;
  /// Bound on the in-memory tail of entries (sum of Entry::size_bytes()).
  uint64_t cache_max_bytes = 32ull << 20;
};

class DiskLogStorage final : public raft::LogStorage {
 public:
  /// Opens or creates the data directory `dir`. Errors: kCorruption (with the
  /// operator's next step in the message), kIOError.
  static Result<std::unique_ptr<DiskLogStorage>> open(FileSystem* fs, const std::string& dir,
                                                      DiskLogStorageOptions options = {});

  /// Persists one Ready: `snapshot` (file, then WAL marker), `entries` and
  /// `hard_state`. OK means all of it is durable. After an error the storage
  /// is failed for good (wal.h, failure policy).
  /// REQUIRES: as Wal::save; entries after a snapshot start after its index.
  Status save(const raft::HardState* hard_state, std::span<const raft::Entry> entries,
              const raft::Snapshot* snapshot = nullptr);

  /// Stores a snapshot of state the member applied itself (its own log covers
  /// it) and makes it the one snapshot() returns, WITHOUT discarding any log
  /// entry: the caller then compacts to an earlier index with compact(), so
  /// slow followers can still catch up from the log (a catch-up margin).
  /// REQUIRES: snapshot.metadata.index <= last_index() and the log holds it.
  Status add_snapshot(const raft::Snapshot& snapshot);
  /// The same for a snapshot streamed into `writer` (from this storage's
  /// snapshot_store(), possibly on another thread): finishes it here.
  Status add_snapshot(SnapshotWriter& writer);

  /// Discards the log up to and including `index` (a snapshot covering it
  /// must already be in the snapshot store). Segments wholly below are deleted.
  /// REQUIRES: index <= last_index(). No-op if index < first_index().
  Status compact(raft::Index index);

  SnapshotStore& snapshot_store() { return *snapshots_; }
  /// Metadata of the newest snapshot known (none if there is none).
  const std::optional<raft::SnapshotMetadata>& snapshot_metadata() const { return snapshot_meta_; }
  /// Entries currently held in the in-memory tail (tests, metrics).
  uint64_t cached_entries() const { return cache_.size(); }

  // raft::LogStorage.
  Result<std::pair<raft::HardState, raft::ConfState>> initial_state() const override;
  Result<std::vector<raft::Entry>> entries(raft::Index lo, raft::Index hi,
                                           uint64_t max_bytes) const override;
  Result<raft::Term> term(raft::Index i) const override;
  raft::Index first_index() const override { return wal_->first_index(); }
  raft::Index last_index() const override { return wal_->last_index(); }
  Result<raft::Snapshot> snapshot() const override;

 private:
  DiskLogStorage(std::unique_ptr<Wal> wal, std::unique_ptr<SnapshotStore> snapshots,
                 DiskLogStorageOptions options)
      : wal_(std::move(wal)), snapshots_(std::move(snapshots)), options_(options) {}
  void cache_after_save(std::span<const raft::Entry> entries);

  std::unique_ptr<Wal> wal_;
  std::unique_ptr<SnapshotStore> snapshots_;
  DiskLogStorageOptions options_;
  std::optional<raft::SnapshotMetadata> snapshot_meta_;
  std::string snapshot_path_;
  /// Newest entries, contiguous, ending at last_index() when not empty.
  std::deque<raft::Entry> cache_;
  uint64_t cache_bytes_ = 0;
};

}  // namespace raftkv::storage
