#include "raft/memory_storage.h"

#include "base/check.h"

namespace raftkv::raft {

MemoryLogStorage::MemoryLogStorage(ConfState initial) : conf_state_(std::move(initial)) {
  ents_.push_back(Entry{});  // sentinel at index 0, term 0
}

Result<std::pair<HardState, ConfState>> MemoryLogStorage::initial_state() const {
  return std::make_pair(hard_state_, conf_state_);
}

Index MemoryLogStorage::first_index() const {
  return ents_[0].index + 1;
}

Index MemoryLogStorage::last_index() const {
  return ents_[0].index + (ents_.size() - 1);
}

Result<Term> MemoryLogStorage::term(Index i) const {
  Index off = ents_[0].index;
  if (i < off) return Status::out_of_range("memory storage: index compacted");
  if (distance(off, i) >= ents_.size())
    return Status::unavailable("memory storage: index beyond last");
  return ents_[distance(off, i)].term;
}

Result<std::vector<Entry>> MemoryLogStorage::entries(Index lo, Index hi, uint64_t max_bytes) const {
  Index off = ents_[0].index;
  if (lo <= off) return Status::out_of_range("memory storage: entries compacted");
  if (hi > last_index() + 1) return Status::unavailable("memory storage: entries beyond last");
  RAFTKV_CHECK(lo <= hi);
  std::vector<Entry> out;
  uint64_t bytes = 0;
  for (Index i = lo; i < hi; ++i) {
    const Entry& e = ents_[distance(off, i)];
    if (!out.empty() && bytes + e.size_bytes() > max_bytes) break;
    bytes += e.size_bytes();
    out.push_back(e);
  }
  return out;
}

Result<Snapshot> MemoryLogStorage::snapshot() const {
  return snapshot_;
}

Status MemoryLogStorage::append(const std::vector<Entry>& ents) {
  if (ents.empty()) return Status::ok();
  for (size_t k = 1; k < ents.size(); ++k) RAFTKV_CHECK(ents[k].index == ents[k - 1].index + 1);
  Index first = first_index();
  if (ents.back().index < first) return Status::ok();  // all compacted already
  size_t skip = ents.front().index < first ? distance(ents.front().index, first) : 0;
  Index start = ents[skip].index;
  RAFTKV_CHECK_MSG(start <= last_index() + 1, "memory storage: gap before appended entries");
  ents_.resize(distance(ents_[0].index, start));  // truncate a conflicting tail
  ents_.insert(ents_.end(), ents.begin() + static_cast<ptrdiff_t>(skip), ents.end());
  return Status::ok();
}

Status MemoryLogStorage::apply_snapshot(const Snapshot& snap) {
  if (snap.metadata.index <= snapshot_.metadata.index) {
    return Status::out_of_range("memory storage: snapshot older than the current one");
  }
  snapshot_ = snap;
  conf_state_ = snap.metadata.conf_state;
  ents_.clear();
  ents_.push_back(Entry{snap.metadata.term, snap.metadata.index, EntryType::kNormal, {}});
  return Status::ok();
}

Status MemoryLogStorage::create_snapshot(Index index, const ConfState& cs, std::string data) {
  if (index <= snapshot_.metadata.index) {
    return Status::out_of_range("memory storage: snapshot not newer than the current one");
  }
  RAFTKV_CHECK_MSG(index <= last_index(), "memory storage: snapshot beyond the last entry");
  Result<Term> t = term(index);
  if (!t.is_ok()) return t.status();
  snapshot_.metadata = SnapshotMetadata{index, *t, cs};
  snapshot_.data = std::move(data);
  return Status::ok();
}

Status MemoryLogStorage::compact(Index compact_index) {
  Index off = ents_[0].index;
  if (compact_index <= off) return Status::out_of_range("memory storage: already compacted");
  RAFTKV_CHECK_MSG(compact_index <= last_index(), "memory storage: compact beyond the last entry");
  size_t k = distance(off, compact_index);
  Entry sentinel{ents_[k].term, ents_[k].index, EntryType::kNormal, {}};
  ents_.erase(ents_.begin(), ents_.begin() + static_cast<ptrdiff_t>(k));
  ents_[0] = sentinel;
  return Status::ok();
}

}  // namespace raftkv::raft
