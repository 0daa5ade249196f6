#include "raft/raft_log.h"

#include <algorithm>

#include "base/check.h"

namespace raftkv::raft {

namespace {
// A storage error other than the two expected codes means the log cannot be
// read: the node must stop rather than guess.
void check_storage(const Status& s) {
  if (s.is_ok() || s.code() == Code::kOutOfRange || s.code() == Code::kUnavailable) return;
  RAFTKV_CHECK_MSG(false, s.to_string().c_str());
}
}  // namespace

// ---------------------------------------------------------------------------
// Unstable

std::optional<Index> Unstable::maybe_first_index() const {
  if (snapshot) return snapshot->metadata.index + 1;
  return std::nullopt;
}

std::optional<Index> Unstable::maybe_last_index() const {
  if (!entries.empty()) return offset + (entries.size() - 1);
  if (snapshot) return snapshot->metadata.index;
  return std::nullopt;
}

std::optional<Term> Unstable::maybe_term(Index i) const {
  if (i < offset) {
    if (snapshot && snapshot->metadata.index == i) return snapshot->metadata.term;
    return std::nullopt;
  }
  if (entries.empty()) return std::nullopt;
  Index last = offset + (entries.size() - 1);
  if (i > last) return std::nullopt;
  return entries[distance(offset, i)].term;
}

void Unstable::stable_to(Index i, Term t) {
  std::optional<Term> got = maybe_term(i);
  if (!got || i < offset) return;  // gone, or in the snapshot
  if (*got != t) return;           // replaced since it was handed out
  size_t n = distance(offset, i) + 1;
  entries.erase(entries.begin(), entries.begin() + static_cast<ptrdiff_t>(n));
  offset = i + 1;
}

void Unstable::stable_snap_to(Index i) {
  if (snapshot && snapshot->metadata.index == i) snapshot.reset();
}

void Unstable::restore(const Snapshot& s) {
  offset = s.metadata.index + 1;
  entries.clear();
  snapshot = s;
}

void Unstable::truncate_and_append(const std::vector<Entry>& ents) {
  RAFTKV_CHECK(!ents.empty());
  Index from = ents.front().index;
  Index end = offset + entries.size();
  if (from == end) {
    // Directly after our tail.
  } else if (from <= offset) {
    // Replaces everything unstable (and hides storage entries from `from` on).
    offset = from;
    entries.clear();
  } else {
    // Truncate to [offset, from) then append.
    RAFTKV_CHECK_MSG(from < end, "unstable: gap before appended entries");
    entries.resize(distance(offset, from));
  }
  entries.insert(entries.end(), ents.begin(), ents.end());
}

std::vector<Entry> Unstable::slice(Index lo, Index hi) const {
  RAFTKV_CHECK(offset <= lo && lo <= hi && hi <= offset + entries.size());
  return std::vector<Entry>(entries.begin() + static_cast<ptrdiff_t>(distance(offset, lo)),
                            entries.begin() + static_cast<ptrdiff_t>(distance(offset, hi)));
}

// ---------------------------------------------------------------------------
// RaftLog

RaftLog::RaftLog(LogStorage* storage) : storage_(storage) {
  RAFTKV_CHECK(storage_ != nullptr);
  Index first = storage_->first_index();
  Index last = storage_->last_index();
  unstable_.offset = last + 1;
  committed_ = first - 1;
  applied_ = first - 1;
  applying_ = first - 1;
}

void RaftLog::set_applied_at_start(Index i) {
  RAFTKV_CHECK_MSG(i <= committed_, "applied index at restart is beyond the commit index");
  RAFTKV_CHECK(i >= first_index() - 1);
  applied_ = i;
  applying_ = i;
}

Index RaftLog::first_index() const {
  if (auto i = unstable_.maybe_first_index()) return *i;
  return storage_->first_index();
}

Index RaftLog::last_index() const {
  if (auto i = unstable_.maybe_last_index()) return *i;
  return storage_->last_index();
}

Result<Term> RaftLog::term_result(Index i) const {
  // The valid range is [first - 1, last]: first - 1 is the snapshot's index.
  Index dummy = first_index() - 1;
  if (i < dummy) return Status::out_of_range("log: index compacted");
  if (i > last_index()) return Status::unavailable("log: index beyond last");
  if (auto t = unstable_.maybe_term(i)) return *t;
  Result<Term> t = storage_->term(i);
  check_storage(t.status());
  return t;
}

Term RaftLog::term(Index i) const {
  Result<Term> t = term_result(i);
  return t.is_ok() ? *t : Term{0};
}

Term RaftLog::last_term() const {
  Result<Term> t = term_result(last_index());
  RAFTKV_CHECK_MSG(t.is_ok(), "log: term of the last entry must be known");
  return *t;
}

bool RaftLog::match_term(Index i, Term t) const {
  Result<Term> got = term_result(i);
  return got.is_ok() && *got == t;
}

bool RaftLog::is_up_to_date(Index last_idx, Term last_t) const {
  Term our = last_term();
  return last_t > our || (last_t == our && last_idx >= last_index());
}

Index RaftLog::find_conflict(const std::vector<Entry>& ents) const {
  for (const Entry& e : ents) {
    if (!match_term(e.index, e.term)) return e.index;
  }
  return Index{0};
}

Index RaftLog::find_conflict_by_term(Index index, Term t) const {
  // Bounded by the log length: each step moves one index down.
  for (;;) {
    Result<Term> got = term_result(index);
    if (!got.is_ok()) {
      // Beyond our log: start at our last entry instead. Compacted: stop.
      if (got.status().code() == Code::kUnavailable && index > last_index()) {
        index = last_index();
        continue;
      }
      return index;
    }
    if (*got <= t || index == Index{0}) return index;
    --index;
  }
}

std::optional<Index> RaftLog::maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                           const std::vector<Entry>& ents) {
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  Index last_new = prev_index + ents.size();
  Index ci = find_conflict(ents);
  if (ci != Index{0}) {
    RAFTKV_CHECK_MSG(ci > committed_, "log: a committed entry conflicts with the leader's");
    std::vector<Entry> rest(ents.begin() + static_cast<ptrdiff_t>(distance(prev_index + 1, ci)),
                            ents.end());
    append(rest);
  }
  commit_to(std::min(leader_commit, last_new));
  return last_new;
}

Index RaftLog::append(const std::vector<Entry>& ents) {
  if (ents.empty()) return last_index();
  RAFTKV_CHECK_MSG(ents.front().index - 1 >= committed_, "log: cannot overwrite committed entries");
  RAFTKV_CHECK_MSG(ents.front().index <= last_index() + 1, "log: gap before appended entries");
  for (size_t k = 1; k < ents.size(); ++k) {
    RAFTKV_CHECK(ents[k].index == ents[k - 1].index + 1);
    RAFTKV_CHECK(ents[k].term >= ents[k - 1].term);
  }
  unstable_.truncate_and_append(ents);
  return last_index();
}

Result<std::vector<Entry>> RaftLog::slice(Index lo, Index hi, uint64_t max_bytes) const {
  RAFTKV_CHECK(lo <= hi);
  if (lo < first_index()) return Status::out_of_range("log: entries compacted");
  RAFTKV_CHECK_MSG(hi <= last_index() + 1, "log: slice beyond the last entry");
  std::vector<Entry> out;
  if (lo == hi) return out;
  uint64_t bytes = 0;
  // Storage part: [lo, min(hi, unstable.offset)).
  Index split = unstable_.offset;
  if (lo < split) {
    Index shi = std::min(hi, split);
    Result<std::vector<Entry>> s = storage_->entries(lo, shi, max_bytes);
    check_storage(s.status());
    if (!s.is_ok()) return s.status();
    out = std::move(*s);
    for (const Entry& e : out) bytes += e.size_bytes();
    RAFTKV_CHECK(!out.empty());
    if (out.back().index + 1 < shi) return out;  // size limit hit inside storage
  }
  if (hi > split) {
    Index ulo = std::max(lo, split);
    for (Index i = ulo; i < hi; ++i) {
      const Entry& e = unstable_.entries[distance(unstable_.offset, i)];
      if (!out.empty() && bytes + e.size_bytes() > max_bytes) break;
      bytes += e.size_bytes();
      out.push_back(e);
    }
  }
  return out;
}

Result<std::vector<Entry>> RaftLog::entries_from(Index lo, uint64_t max_bytes) const {
  if (lo > last_index()) return std::vector<Entry>{};
  return slice(lo, last_index() + 1, max_bytes);
}

bool RaftLog::maybe_commit(Index max_index, Term t) {
  if (max_index > committed_ && term(max_index) == t) {
    commit_to(max_index);
    return true;
  }
  return false;
}

void RaftLog::commit_to(Index index) {
  if (index <= committed_) return;
  RAFTKV_CHECK_MSG(index <= last_index(), "log: commit index beyond the last entry");
  committed_ = index;
}

void RaftLog::applied_to(Index index) {
  RAFTKV_CHECK_MSG(index <= committed_ && index >= applied_, "log: applied out of range");
  applied_ = index;
  applying_ = std::max(applying_, index);
}

bool RaftLog::has_next_committed_entries() const {
  if (unstable_.snapshot) return false;  // install the snapshot first
  Index lo = std::max(applying_ + 1, first_index());
  return committed_ + 1 > lo;
}

std::vector<Entry> RaftLog::next_committed_entries(uint64_t max_bytes) const {
  if (!has_next_committed_entries()) return {};
  Index lo = std::max(applying_ + 1, first_index());
  Result<std::vector<Entry>> r = slice(lo, committed_ + 1, max_bytes);
  RAFTKV_CHECK_MSG(r.is_ok(), "log: committed entries must be readable");
  return std::move(*r);
}

Result<Snapshot> RaftLog::snapshot() const {
  if (unstable_.snapshot) return *unstable_.snapshot;
  Result<Snapshot> s = storage_->snapshot();
  check_storage(s.status());
  return s;
}

void RaftLog::restore(const Snapshot& s) {
  RAFTKV_CHECK(s.metadata.index > committed_);
  committed_ = s.metadata.index;
  unstable_.restore(s);
}

Index RaftLog::persisted_index() const {
  if (unstable_.snapshot) return Index{0};
  Index stored = storage_->last_index();
  return std::min(stored, unstable_.offset - 1);
}

}  // namespace raftkv::raft
