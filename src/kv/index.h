// The in-memory MVCC key index: for every key, the ordered list of its changes
// (revision, create_revision, version, lease, tombstone) still retained after
// compaction. Values live in RocksDB under the change's revision; the index
// answers "which revision of which keys" so that range reads and compares need
// RocksDB only for values (keys_only / count_only / filters never touch it).
//
// Rebuilt from RocksDB at open (docs/kv.md explains and measures the choice).
//
// Not thread-safe by itself: kv::Store guards it with a shared_mutex (the
// apply thread mutates it under the exclusive lock; readers scan it under the
// shared lock).
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <absl/container/btree_map.h>

namespace raftkv::kv {

/// One change of one key.
struct KeyRev {
  int64_t main = 0;     ///< Revision of the change.
  int64_t create = 0;   ///< create_revision after the change (0 for a tombstone).
  int64_t version = 0;  ///< Version after the change (0 for a tombstone).
  int64_t lease = 0;    ///< Lease attached by the change (0 for none / tombstone).
  uint32_t sub = 0;     ///< Position of the change within its revision.
  uint32_t value_bytes = 0;
  bool tombstone = false;
};

/// etcd's reading of (key, range_end): empty range_end = the single key;
/// range_end "\0" = every key >= key; otherwise [key, range_end).
struct Bounds {
  std::string_view key;
  std::string_view end;
  bool single = true;
  bool to_end = false;

  static Bounds of(std::string_view key, std::string_view range_end) {
    Bounds b;
    b.key = key;
    if (range_end.empty()) return b;
    b.single = false;
    if (range_end.size() == 1 && range_end[0] == '\0') {
      b.to_end = true;
    } else {
      b.end = range_end;
    }
    return b;
  }
  bool contains(std::string_view k) const {
    if (single) return k == key;
    return k >= key && (to_end || k < end);
  }
};

class Index {
 public:
  /// Bytes a retained change counts against the quota: key, value and a fixed
  /// per-revision overhead (the revision key and record header on disk).
  static constexpr uint64_t kRevisionOverheadBytes = 32;
  static uint64_t entry_bytes(size_t key_bytes, const KeyRev& r) {
    return key_bytes + r.value_bytes + kRevisionOverheadBytes;
  }

  using Map = absl::btree_map<std::string, std::vector<KeyRev>, std::less<>>;

  /// A key's place in the index, found with one lookup and then used for the
  /// reads and the append of one change (the apply path makes one lookup per
  /// put instead of three). Any other change to the index invalidates it.
  class Slot {
    friend class Index;
    Map::iterator it_;
    bool found_ = false;
  };
  Slot find(std::string_view key) {
    Slot s;
    s.it_ = keys_.lower_bound(key);
    s.found_ = s.it_ != keys_.end() && s.it_->first == key;
    return s;
  }
  /// The slot's newest change, or nullptr.
  const KeyRev* latest(const Slot& s) const {
    return !s.found_ || s.it_->second.empty() ? nullptr : &s.it_->second.back();
  }
  /// The slot's newest change with main <= rev, or nullptr.
  const KeyRev* at(const Slot& s, int64_t rev) const {
    return s.found_ ? at_in(s.it_->second, rev) : nullptr;
  }
  /// Records a new change of the slot's key (inserting the key if it was not
  /// found); the slot then refers to it. REQUIRES: `key` is the slot's key and
  /// (r.main, r.sub) is newer than its latest change.
  void append(Slot& s, std::string_view key, const KeyRev& r);

  /// The key's newest change, or nullptr.
  const KeyRev* latest(std::string_view key) const {
    auto it = keys_.find(key);
    return it == keys_.end() || it->second.empty() ? nullptr : &it->second.back();
  }

  /// The key's newest change with main <= rev, or nullptr.
  const KeyRev* at(std::string_view key, int64_t rev) const {
    auto it = keys_.find(key);
    return it == keys_.end() ? nullptr : at_in(it->second, rev);
  }

  /// Calls f(key, change) for each key within `b` that is live (its newest
  /// change <= rev is a put), in ascending key order, while f returns true.
  template <typename F>
  void visit(const Bounds& b, int64_t rev, F&& f) const {
    if (b.single) {
      auto it = keys_.find(b.key);
      if (it == keys_.end()) return;
      const KeyRev* r = at_in(it->second, rev);
      if (r != nullptr && !r->tombstone) (void)f(it->first, *r);
      return;
    }
    for (auto it = keys_.lower_bound(b.key); it != keys_.end(); ++it) {
      if (!b.to_end && std::string_view(it->first) >= b.end) break;
      const KeyRev* r = at_in(it->second, rev);
      if (r == nullptr || r->tombstone) continue;
      if (!f(it->first, *r)) return;
    }
  }

  /// Calls f(key, changes) for every key with its retained changes, oldest first.
  template <typename F>
  void visit_histories(F&& f) const {
    for (const auto& [key, revs] : keys_) f(key, revs);
  }

  /// Records a new change. REQUIRES: (r.main, r.sub) is newer than the key's latest.
  void append(std::string_view key, const KeyRev& r);

  /// The retained change of `key` just before (main, sub), or nullptr.
  const KeyRev* before(std::string_view key, int64_t main, uint32_t sub) const;

  /// True if the change (main, sub) of `key` is retained.
  bool contains(std::string_view key, int64_t main, uint32_t sub) const;

  /// Forgets history at `rev` by etcd's rule: per key, every change older than
  /// the newest change <= rev goes; that change stays unless it is a tombstone
  /// below rev (then the key's older generation disappears entirely; a
  /// tombstone at rev stays for watchers starting at rev until a later
  /// compaction). Reads at >= rev are unaffected. Idempotent, and compact(a)
  /// then compact(b) == compact(b) for a <= b.
  void compact(int64_t rev);

  uint64_t logical_bytes() const { return logical_bytes_; }
  size_t key_count() const { return keys_.size(); }
  void clear() {
    keys_.clear();
    logical_bytes_ = 0;
  }

 private:
  static const KeyRev* at_in(const std::vector<KeyRev>& revs, int64_t rev) {
    auto it = std::upper_bound(revs.begin(), revs.end(), rev,
                               [](int64_t r, const KeyRev& k) { return r < k.main; });
    return it == revs.begin() ? nullptr : &*(it - 1);
  }

  // A B-tree, not std::map: a lookup on a large store touches a few nodes of
  // many keys each instead of one node per comparison (docs/kv.md).
  Map keys_;
  uint64_t logical_bytes_ = 0;
};

}  // namespace raftkv::kv
