#include "sim/watch_check.h"

#include <cstddef>

namespace raftkv::sim {

namespace {

std::string describe(const WatchRevision& r) {
  std::string s = "rev " + std::to_string(r.revision) + " {";
  for (size_t i = 0; i < r.events.size(); ++i) {
    const WatchEvent& e = r.events[i];
    if (i > 0) s += ", ";
    s += e.deleted ? "DELETE " + e.key : "PUT " + e.key + "=" + e.value;
  }
  return s + "}";
}

}  // namespace

bool in_watch_range(const std::string& key, const std::string& range_key,
                    const std::string& range_end) {
  if (range_end.empty()) return key == range_key;
  if (range_end == std::string(1, '\0')) return key >= range_key;
  return key >= range_key && key < range_end;
}

std::string check_watch(const WatchRecord& w, const std::vector<WatchRevision>& history) {
  // The watcher's view of the history: its range, from its start revision.
  std::vector<WatchRevision> expected;
  for (const WatchRevision& r : history) {
    if (r.revision < w.start_revision) continue;
    WatchRevision f{r.revision, {}};
    for (const WatchEvent& e : r.events) {
      if (in_watch_range(e.key, w.key, w.range_end)) f.events.push_back(e);
    }
    if (!f.events.empty()) expected.push_back(std::move(f));
  }
  const std::string who = "watcher " + std::to_string(w.id) + " from revision " +
                          std::to_string(w.start_revision) + ": ";
  size_t next = 0;  // index into expected of the next revision owed
  int64_t last = 0;
  for (const WatchRevision& got : w.received) {
    if (got.events.empty()) return who + "received an empty " + describe(got);
    if (got.revision <= last) {
      return who + (got.revision == last ? "duplicate " : "out of order ") + describe(got) +
             " after revision " + std::to_string(last);
    }
    last = got.revision;
    if (got.revision < w.start_revision) {
      return who + "received " + describe(got) + " before its start revision";
    }
    if (next >= expected.size() || expected[next].revision > got.revision) {
      return who + "received " + describe(got) + ", which the store's history of its range "
                   "does not hold";
    }
    if (expected[next].revision < got.revision) {
      return who + "gap: missed " + describe(expected[next]) + " before " + describe(got);
    }
    if (expected[next].events != got.events) {
      return who + "received " + describe(got) + " but the store holds " + describe(expected[next]);
    }
    ++next;
  }
  if (w.compact_revision != 0) {
    // etcd cancels a watcher whose next revision was compacted away: a
    // compaction at C keeps revision C, so that revision must be below C.
    const int64_t wanted = last == 0 ? w.start_revision : last + 1;
    if (wanted >= w.compact_revision) {
      return who + "cancelled with compact_revision " + std::to_string(w.compact_revision) +
             " though its next revision " + std::to_string(wanted) + " was not compacted";
    }
    return "";
  }
  if (next < expected.size() && expected[next].revision <= w.complete_to) {
    return who + "claims to be complete up to revision " + std::to_string(w.complete_to) +
           " but never received " + describe(expected[next]);
  }
  return "";
}

}  // namespace raftkv::sim
