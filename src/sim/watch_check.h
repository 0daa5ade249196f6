// The watch checker: a watcher must see exactly the store's history of its
// range (docs/simulator.md, "Watches"). Plain values, no dependency on the
// code under test (the range rule is restated here, not borrowed from kv).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace raftkv::sim {

/// One event as a watcher sees it (etcd's mvccpb.Event without prev_kv).
struct WatchEvent {
  std::string key;
  bool deleted = false;
  std::string value;  ///< Empty for a delete.
  bool operator==(const WatchEvent&) const = default;
};

/// Every event of one revision (a transaction's events stay together).
struct WatchRevision {
  int64_t revision = 0;
  std::vector<WatchEvent> events;
};

/// What one simulated watch client received, over every re-watch it made
/// after its node went away (each from its last revision + 1, as etcd
/// clients do), as one stream.
struct WatchRecord {
  int id = 0;
  std::string key;
  std::string range_end;    ///< "" = key only; "\0" = every key >= key; else [key, range_end).
  int64_t start_revision = 0;  ///< First revision asked for (resolved "from now").
  std::vector<WatchRevision> received;  ///< In the order delivered.
  /// Non-zero: the watcher was cancelled with this compact_revision (etcd:
  /// its next revision was compacted away). Nothing is expected after it.
  int64_t compact_revision = 0;
  /// The watcher reported being complete up to this revision: every event of
  /// its range up to here must have been received. 0 = no such claim.
  int64_t complete_to = 0;
};

/// True when `key` lies in [key, range_end) as etcd reads a watch range.
bool in_watch_range(const std::string& key, const std::string& range_key,
                    const std::string& range_end);

/// Checks `w` against `history`: every revision of the store (ascending, all
/// keys). Returns "" when the watcher saw exactly its range's history from
/// its start revision: no gap, no duplicate, ascending revisions, each
/// revision's events whole and equal to the store's; otherwise what broke.
std::string check_watch(const WatchRecord& w, const std::vector<WatchRevision>& history);

}  // namespace raftkv::sim
