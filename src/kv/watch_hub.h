// kv::WatchHub: delivers the events of the replicated store to watchers (etcd
// v3 Watch semantics), every event exactly once and in revision order, with a
// bounded amount of memory per watcher (docs/kv.md, "The watch hub").
//
// A watcher covers one key, a range [key, range_end) or every key >= key
// (range_end "\0"), from a start revision, with optional NOPUT / NODELETE
// filters and prev_kv. It is in one of two groups, as in etcd's mvcc:
//   * synced: its next revision is after everything the hub has been fed; the
//     apply loop appends each new revision to its buffer (feed()).
//   * unsynced: it started in the past, its buffer overflowed, or the store
//     was swapped under it. A catch-up worker (a thread of the hub) reads the
//     history it misses from the store with Store::events_since, one page at a
//     time and only while its buffer is empty, until it reaches the hub's
//     revision; then it rejoins the synced group.
// Each watcher keeps `next_revision`, the first revision it has not been
// given. A revision is appended only when it is >= next_revision (and
// next_revision then moves past it), whoever appends it; that single rule is
// what makes the hand-over between the groups lose, duplicate or reorder
// nothing, even when the store is ahead of what the hub was fed.
//
// The consumer pulls: the hub calls the watcher's `notify` when there is
// something to take() (events, or the end of the watcher because of a
// compaction); the consumer takes at its own pace. A consumer that never
// takes costs at most `max_buffered_events` (plus one revision) of memory: its
// watcher goes unsynced and is caught up from the store later.
//
// prev_kv costs the store a value read per change, so the hub keeps the
// store's Store::set_event_prev_kv on only while some watcher asked for it.
// Changes applied before the first such watcher arrived reach feed() without
// prev_kv; feed() reads it for that watcher (Store::fill_prev_kv), so no
// event is ever delivered without the prev_kv it should carry.
//
// Threads: every method may be called from any thread, concurrently. feed()
// and on_store_swapped() are for the node's apply loop and never block on a
// consumer: they take the hub's mutex for in-memory work only (no I/O but
// the prev_kv reads just described, at most once per change) and
// call `notify` callbacks after releasing it. `notify` callbacks run on the
// apply loop or the catch-up worker; they must be quick and must not block.
// They may call take(), progress() and remove(): the hub's mutex is never held
// while a callback runs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "kv/store.h"

namespace raftkv::kv {

/// What a watcher watches (etcd's WatchCreateRequest, minus stream concerns).
struct WatchSpec {
  std::string key;        ///< The API layer turns an empty key into "\0" (etcd).
  std::string range_end;  ///< "" = key only; "\0" = every key >= key; else [key, range_end).
  /// First revision to deliver. <= 0: the revision after the hub's current
  /// one ("from now"). In the past: history is replayed from the store (or the
  /// watcher ends with compact_revision if that revision was compacted). In
  /// the future: nothing is delivered before it.
  int64_t start_revision = 0;
  bool prev_kv = false;        ///< Keep Event.prev_kv (stripped otherwise).
  bool filter_put = false;     ///< Drop PUT events (etcd's NOPUT).
  bool filter_delete = false;  ///< Drop DELETE events (etcd's NODELETE).
};

/// True when `key` lies in the range of (range_key, range_end) as etcd reads it.
bool key_in_watch_range(std::string_view key, std::string_view range_key,
                        std::string_view range_end);

/// Hub-wide watcher handle. 0 is never a valid id.
using WatcherId = uint64_t;

/// Called when an append finds a watcher's buffer empty, when the watcher
/// rejoins the synced group, and when it ends because of a compaction: the consumer then take()s until `more` is
/// false. To never miss one, clear any "ready" mark of yours BEFORE take().
/// Must be quick and never block (see the threading notes at the top).
using WatchNotify = std::function<void()>;

/// What take() hands over.
struct WatchDelivery {
  /// Whole revisions, ascending, each with its (filtered) events; never empty
  /// groups. Revisions never repeat across take() calls of one watcher.
  std::vector<RevisionEvents> revisions;
  /// Non-zero: the watcher's next revision was compacted away (this is etcd's
  /// compact_revision). The watcher is finished: remove() it.
  int64_t compact_revision = 0;
  /// The watcher has seen every revision <= this one (what etcd puts in the
  /// response header's revision).
  int64_t revision = 0;
  /// Events are still buffered (max_events stopped the take): take again.
  /// No notify announces them.
  bool more = false;
};

struct WatchHubOptions {
  /// Events a watcher may hold untaken before it goes unsynced; also the page
  /// size of a catch-up read. A single revision larger than this is still
  /// delivered whole (a revision is never split).
  size_t max_buffered_events = 1024;
  /// Run the catch-up worker thread. Off in tests that drive catch-up by hand
  /// with run_catch_up_once().
  bool start_worker = true;
};

class WatchHub {
 public:
  /// Returns the node's current store (it changes when a snapshot is
  /// installed). Called by the catch-up worker for each page; the hub never
  /// keeps the returned pointer beyond one read.
  using StoreGetter = std::function<std::shared_ptr<Store>()>;

  /// The hub starts at get_store()->revision(): REQUIRES no apply runs
  /// between that read and the first feed() (construct it before the apply
  /// loop starts).
  WatchHub(StoreGetter get_store, WatchHubOptions options = {});
  /// Calls stop().
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  /// Registers a watcher. Returns its id and sets *start_revision to the
  /// first revision it will be given (the resolved "from now").
  /// Errors: InvalidArgument "mvcc: watcher range is empty" (a range_end
  ///         other than "" and "\0" that is <= key), Unavailable after stop().
  /// `notify` may run before add() returns (a compacted start is detected by
  /// the worker at any time).
  Result<WatcherId> add(const WatchSpec& spec, WatchNotify notify,
                        int64_t* start_revision = nullptr);

  /// Forgets a watcher; no notify for it runs after remove() returns except
  /// one already running. Unknown ids are ignored.
  void remove(WatcherId id);

  /// Takes up to `max_events` buffered events (at least one whole revision
  /// if any is buffered, even a larger one). Unknown id: an empty delivery.
  WatchDelivery take(WatcherId id, size_t max_events);

  /// For progress notifications: the revision the watcher is complete up to,
  /// or nullopt while it is unsynced or has events waiting (etcd sends a
  /// progress notification only to watchers that are caught up).
  std::optional<int64_t> progress(WatcherId id) const;

  /// Apply loop: the events of one applied batch (ApplyResult::events,
  /// ascending revisions, each revision whole). Never blocks on consumers.
  void feed(const std::vector<RevisionEvents>& revisions);

  /// Apply loop, after the node replaced its store (snapshot install): every
  /// watcher not ahead of the new store is re-synced from it (or ends with
  /// compact_revision if its next revision was compacted there).
  void on_store_swapped();

  /// The last revision fed (or the store's at construction / swap).
  int64_t revision() const;

  /// Catch-up work done inline (tests with start_worker = false): reads one
  /// page for one unsynced watcher whose buffer is empty. Returns false when
  /// there was nothing to do.
  bool run_catch_up_once();

  /// Stops the worker; later add() calls fail. Idempotent.
  void stop();

  /// Counters for tests and Maintenance-style reporting.
  struct Stats {
    size_t synced = 0;
    size_t unsynced = 0;
    size_t buffered_events = 0;
  };
  Stats stats() const;

 private:
  struct Watcher;

  // Appends the part of `rev` the watcher wants (REQUIRES mu_ held and
  // rev.revision >= w.next_revision); moves next_revision past it.
  static void append_revision(Watcher& w, const RevisionEvents& rev);
  void worker_loop();
  // Picks an unsynced watcher with an empty buffer (round-robin); mu_ held.
  Watcher* pick_catch_up_locked();
  // Reads one page for `w` (unlocking mu_ around the store read) and applies
  // it unless the watcher moved meanwhile. REQUIRES lk holds mu_.
  bool catch_up_locked(std::unique_lock<std::mutex>& lk, Watcher& w);

  const StoreGetter get_store_;
  const WatchHubOptions options_;

  mutable std::mutex mu_;
  std::condition_variable worker_cv_;  ///< Catch-up work may be available, or stop.
  std::map<WatcherId, std::unique_ptr<Watcher>> watchers_;
  WatcherId next_id_ = 1;
  WatcherId catch_up_cursor_ = 0;  ///< Round-robin position among unsynced watchers.
  size_t prev_kv_watchers_ = 0;    ///< Watchers with prev_kv: the store reads previous values.
  int64_t revision_ = 0;           ///< Last revision fed (or the store's at start/swap).
  uint64_t store_epoch_ = 0;       ///< +1 per store swap; pages read before one are dropped.
  bool stopped_ = false;
  std::thread worker_;
};

}  // namespace raftkv::kv
