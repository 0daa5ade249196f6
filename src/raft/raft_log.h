// The log as the core sees it: durable entries behind LogStorage, plus the
// unstable tail (entries and possibly a snapshot handed out in a Ready but not
// yet acknowledged as persisted).
//
//   storage:   [snapshot]  first_index ........ last_index
//   unstable:                        offset ........... (may overwrite storage's tail)
//   view:      [snapshot]  first ...................... last
//   commit/applied:  applied <= committed <= last
//
// Unstable wins where both have an entry at the same index: a truncation the
// caller has not persisted yet still hides the storage entries it replaces.
#pragma once

#include <optional>
#include <vector>

#include "base/status.h"
#include "raft/log_storage.h"
#include "raft/types.h"

namespace raftkv::raft {

/// Entries (and possibly a snapshot) not yet persisted. Pure bookkeeping.
class Unstable {
 public:
  std::optional<Snapshot> snapshot;
  std::vector<Entry> entries;
  Index offset;  ///< Index of entries[0] (or where the next one would go).

  std::optional<Index> maybe_first_index() const;
  std::optional<Index> maybe_last_index() const;
  std::optional<Term> maybe_term(Index i) const;

  /// The caller persisted entries up to (i, t): drop them, unless the entry at
  /// i changed (term differs) since it was handed out.
  void stable_to(Index i, Term t);
  /// The caller installed the snapshot at index i.
  void stable_snap_to(Index i);
  void restore(const Snapshot& s);
  /// Appends `ents`, truncating any unstable entries they conflict with.
  /// REQUIRES: ents non-empty and contiguous.
  void truncate_and_append(const std::vector<Entry>& ents);
  /// Entries [lo, hi). REQUIRES: offset <= lo <= hi <= offset + size.
  std::vector<Entry> slice(Index lo, Index hi) const;
};

class RaftLog {
 public:
  /// Reads the storage bounds; committed and applied start at the snapshot index.
  /// REQUIRES: storage outlives the log.
  explicit RaftLog(LogStorage* storage);

  Index first_index() const;
  Index last_index() const;
  Term last_term() const;
  /// Term of entry i; Term{0} if i is beyond the log or compacted away
  /// (callers that must distinguish use term_result).
  Term term(Index i) const;
  /// kOutOfRange if compacted, kUnavailable if beyond the end.
  Result<Term> term_result(Index i) const;
  bool match_term(Index i, Term t) const;

  /// Candidate's log is at least as up to date as ours (§3.6.1).
  bool is_up_to_date(Index last_idx, Term last_t) const;

  /// Follower side of AppendEntries: if our entry at prev_index has prev_term,
  /// appends `ents` (truncating on the first conflict), advances commit to
  /// min(leader_commit, last new index) and returns the last new index.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term, Index leader_commit,
                                    const std::vector<Entry>& ents);
  /// Appends at the end (or over an unstable/uncommitted tail). Returns last index.
  /// REQUIRES: ents[0].index - 1 >= committed.
  Index append(const std::vector<Entry>& ents);

  /// First index in `ents` whose term conflicts with ours or is new; 0 if none.
  Index find_conflict(const std::vector<Entry>& ents) const;
  /// The largest index <= `index` whose term is <= `term` (fast backtracking
  /// hint, §5.3); stops at the compaction boundary.
  Index find_conflict_by_term(Index index, Term term) const;

  /// Entries [lo, last] up to `max_bytes` (at least one). kOutOfRange if
  /// lo was compacted.
  Result<std::vector<Entry>> entries_from(Index lo, uint64_t max_bytes) const;
  /// Entries [lo, hi) up to max_bytes.
  Result<std::vector<Entry>> slice(Index lo, Index hi, uint64_t max_bytes) const;

  /// Leader commit: to `max_index` only if that entry is of `term` (§3.6.2,
  /// Figure 3.7: never commit an older term's entry by counting replicas).
  bool maybe_commit(Index max_index, Term term);
  /// REQUIRES: index <= last_index(); never lowers committed.
  void commit_to(Index index);
  /// REQUIRES: committed >= index >= applied.
  void applied_to(Index index);

  /// Committed entries after `applied` not yet handed out, up to max_bytes.
  std::vector<Entry> next_committed_entries(uint64_t max_bytes) const;
  bool has_next_committed_entries() const;
  /// Highest index whose entry is both committed and handed out for apply.
  Index applying() const { return applying_; }
  void set_applying(Index i) { applying_ = i; }

  /// The latest snapshot: the unstable one if any, else storage's.
  Result<Snapshot> snapshot() const;
  /// Resets the log to the snapshot (follower install, §5.3).
  void restore(const Snapshot& s);

  /// Index up to which the log is durable and consistent with the view.
  Index persisted_index() const;

  Unstable& unstable() { return unstable_; }
  const Unstable& unstable() const { return unstable_; }
  LogStorage* storage() const { return storage_; }

  Index committed() const { return committed_; }
  Index applied() const { return applied_; }
  /// Restart only: positions applied (and applying) at `i`.
  void set_applied_at_start(Index i);

 private:
  LogStorage* storage_;
  Unstable unstable_;
  Index committed_;
  Index applied_;
  Index applying_;  // >= applied_: handed out in a Ready, not yet advanced
};

}  // namespace raftkv::raft
