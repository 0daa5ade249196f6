#include "storage/disk_log_storage.h"

#include "base/check.h"

namespace raftkv::storage {

using raft::Entry;
using raft::Index;
using raft::Term;

Result<std::unique_ptr<DiskLogStorage>> DiskLogStorage::open(FileSystem* fs, const std::string& dir,
                                                             DiskLogStorageOptions options) {
  Result<std::unique_ptr<Wal>> wal = Wal::open(fs, join_path(dir, "wal"), options.wal);
  if (!wal) return wal.status();
  Result<std::unique_ptr<SnapshotStore>> store =
      SnapshotStore::open(fs, join_path(dir, "snap"), options.snapshots);
  if (!store) return store.status();
  std::unique_ptr<DiskLogStorage> s(
      new DiskLogStorage(std::move(*wal), std::move(*store), options));
  Wal& w = *s->wal_;

  // An older snapshot can stand in for a corrupt newer one only if the WAL
  // holds every entry after it (and agrees on its last entry's term).
  auto usable = [&w](const raft::SnapshotMetadata& m) {
    if (w.first_index() > m.index + 1) return false;
    if (m.index > w.last_index()) return true;
    Result<Term> t = w.term(m.index);
    return t.is_ok() && *t == m.term;
  };
  Result<SnapshotChoice> choice = s->snapshots_->choose(usable);
  if (!choice) return choice.status();
  const SnapshotMarker base = w.base();
  if (choice->metadata.has_value()) {
    const raft::SnapshotMetadata& m = *choice->metadata;
    if (m.index < base.index) {
      return Status::corruption("the WAL starts after index " + std::to_string(base.index.value()) +
                                " but the newest valid snapshot (" + choice->path +
                                ") is at index " + std::to_string(m.index.value()) +
                                ": entries in between are lost. To recover: stop this member, "
                                "remove its data directory, and re-add it to the cluster.");
    }
    Result<Term> t = w.term(m.index);
    if (m.index > base.index && !(t.is_ok() && *t == m.term)) {
      // The snapshot file is durable but its WAL marker was not written:
      // finish that save now. A snapshot holds only committed entries, and
      // the hard state of the interrupted save (commit >= the snapshot) may
      // be lost with it: raise the commit index to the snapshot's.
      SnapshotMarker marker{m.index, m.term};
      raft::HardState hs = w.hard_state();
      const bool raise = hs.commit < m.index;
      if (raise) hs.commit = m.index;
      RAFTKV_RETURN_IF_ERROR(w.save(raise ? &hs : nullptr, {}, &marker));
    }
    s->snapshot_meta_ = m;
    s->snapshot_path_ = choice->path;
  } else if (base.index != Index{}) {
    return Status::corruption("the WAL starts after index " + std::to_string(base.index.value()) +
                              " but no snapshot file is present in " + s->snapshots_->dir() +
                              ". To recover: stop this member, remove its data directory, and "
                              "re-add it to the cluster.");
  }
  return s;
}

void DiskLogStorage::cache_after_save(std::span<const Entry> entries) {
  // Keep the cache a contiguous run ending at last_index().
  while (!cache_.empty() &&
         (cache_.front().index < first_index() || cache_.back().index > last_index())) {
    if (cache_.front().index < first_index()) {
      cache_bytes_ -= cache_.front().size_bytes();
      cache_.pop_front();
    } else {
      cache_bytes_ -= cache_.back().size_bytes();
      cache_.pop_back();
    }
  }
  if (entries.empty()) return;
  // Drop cached entries the new ones replace.
  while (!cache_.empty() && cache_.back().index >= entries.front().index) {
    cache_bytes_ -= cache_.back().size_bytes();
    cache_.pop_back();
  }
  if (!cache_.empty() && cache_.back().index + 1 != entries.front().index) {
    cache_.clear();
    cache_bytes_ = 0;
  }
  for (const Entry& e : entries) {
    if (e.size_bytes() > options_.cache_max_bytes) {
      cache_.clear();
      cache_bytes_ = 0;
      continue;
    }
    cache_.push_back(e);
    cache_bytes_ += e.size_bytes();
    while (cache_bytes_ > options_.cache_max_bytes) {
      cache_bytes_ -= cache_.front().size_bytes();
      cache_.pop_front();
    }
  }
}

Status DiskLogStorage::save(const raft::HardState* hard_state, std::span<const Entry> entries,
                            const raft::Snapshot* snapshot) {
  if (!wal_->failure().is_ok()) return wal_->failure();
  std::optional<SnapshotMarker> marker;
  if (snapshot != nullptr && !snapshot->empty()) {
    const raft::SnapshotMetadata& m = snapshot->metadata;
    const std::string path = join_path(snapshots_->dir(), snapshot_file_name(m.index, m.term));
    bool have = false;
    if (Result<std::vector<std::string>> paths = snapshots_->list(); paths.is_ok()) {
      for (const std::string& p : *paths) have = have || p == path;
    }
    // A file streamed in earlier (SnapshotWriter) is not written twice.
    if (!have) RAFTKV_RETURN_IF_ERROR(snapshots_->save(*snapshot));
    if (!snapshot_meta_ || snapshot_meta_->index <= m.index) {
      snapshot_meta_ = m;
      snapshot_path_ = path;
    }
    marker = SnapshotMarker{m.index, m.term};
  }
  RAFTKV_RETURN_IF_ERROR(wal_->save(hard_state, entries, marker ? &*marker : nullptr));
  cache_after_save(entries);
  return Status::ok();
}

Status DiskLogStorage::add_snapshot(const raft::Snapshot& snapshot) {
  if (!wal_->failure().is_ok()) return wal_->failure();
  RAFTKV_CHECK_MSG(!snapshot.empty(), "add_snapshot of an empty snapshot");
  Result<std::unique_ptr<SnapshotWriter>> w = snapshots_->begin(snapshot.metadata);
  if (!w) return w.status();
  RAFTKV_RETURN_IF_ERROR((*w)->append(snapshot.data));
  return add_snapshot(**w);
}

Status DiskLogStorage::add_snapshot(SnapshotWriter& writer) {
  if (!wal_->failure().is_ok()) return wal_->failure();
  const raft::SnapshotMetadata& m = writer.metadata();
  RAFTKV_CHECK_MSG(m.index != Index{} && m.index <= last_index(), "add_snapshot past the log");
  RAFTKV_RETURN_IF_ERROR(writer.finish());
  if (!snapshot_meta_ || snapshot_meta_->index <= m.index) {
    snapshot_meta_ = m;
    snapshot_path_ = writer.path();
  }
  return Status::ok();
}

Status DiskLogStorage::compact(Index index) {
  RAFTKV_CHECK_MSG(index <= last_index(), "compact past the end of the log");
  if (index < first_index()) return Status::ok();
  Result<Term> t = wal_->term(index);
  if (!t) return t.status();
  SnapshotMarker marker{index, *t};
  RAFTKV_RETURN_IF_ERROR(wal_->save(nullptr, {}, &marker));
  cache_after_save({});
  return Status::ok();
}

Result<std::pair<raft::HardState, raft::ConfState>> DiskLogStorage::initial_state() const {
  raft::ConfState cs;
  if (snapshot_meta_) cs = snapshot_meta_->conf_state;
  return std::make_pair(wal_->hard_state(), cs);
}

Result<std::vector<Entry>> DiskLogStorage::entries(Index lo, Index hi, uint64_t max_bytes) const {
  if (lo < first_index()) return Status::out_of_range("entries compacted into a snapshot");
  if (hi > last_index() + 1 || lo > hi)
    return Status::unavailable("entries past the end of the log");
  std::vector<Entry> out;
  uint64_t bytes = 0;
  const Index cache_first = cache_.empty() ? last_index() + 1 : cache_.front().index;
  // Bounded by hi - lo.
  for (Index i = lo; i < hi; ++i) {
    if (i >= cache_first) {
      const Entry& e = cache_[distance(cache_first, i)];
      if (!out.empty() && bytes + e.size_bytes() > max_bytes) break;
      bytes += e.size_bytes();
      out.push_back(e);
      continue;
    }
    Result<Entry> e = wal_->read_entry(i);
    if (!e) return e.status();
    if (!out.empty() && bytes + e->size_bytes() > max_bytes) break;
    bytes += e->size_bytes();
    out.push_back(std::move(*e));
  }
  return out;
}

Result<Term> DiskLogStorage::term(Index i) const {
  if (i < first_index() - 1) return Status::out_of_range("index compacted into a snapshot");
  return wal_->term(i);
}

Result<raft::Snapshot> DiskLogStorage::snapshot() const {
  if (!snapshot_meta_) return raft::Snapshot{};
  return snapshots_->load(snapshot_path_);
}

}  // namespace raftkv::storage
