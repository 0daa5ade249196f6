#include "kv/watch_hub.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <utility>

#include "base/check.h"

namespace raftkv::kv {

namespace {

// Pause of the catch-up worker after a store read failed for another reason
// than compaction (an I/O error: the node is about to stop anyway).
constexpr auto kReadErrorBackoff = std::chrono::milliseconds(50);

}  // namespace

struct WatchHub::Watcher {
  WatcherId id = 0;
  WatchSpec spec;
  WatchNotify notify;
  /// First revision not yet appended to `buffer` (nor taken).
  int64_t next_revision = 0;
  bool synced = true;
  /// A catch-up read for this watcher is in flight (outside mu_).
  bool reading = false;
  /// Non-zero once the watcher ended because its next revision was compacted.
  int64_t compact_revision = 0;
  std::deque<RevisionEvents> buffer;
  size_t buffered_events = 0;
};

bool key_in_watch_range(std::string_view key, std::string_view range_key,
                        std::string_view range_end) {
  if (range_end.empty()) return key == range_key;
  if (range_end.size() == 1 && range_end[0] == '\0') return key >= range_key;
  return key >= range_key && key < range_end;
}

namespace {

// The part of `rev` a watcher with `spec` receives. `fill` supplies a
// missing prev_kv for a watcher that asked for it (null: events carry it);
// *fill_failed tells that it could not.
RevisionEvents filter_revision(const WatchSpec& spec, const RevisionEvents& rev,
                               const std::function<Status(mvccpb::Event*)>* fill = nullptr,
                               bool* fill_failed = nullptr) {
  RevisionEvents out;
  out.revision = rev.revision;
  for (const mvccpb::Event& e : rev.events) {
    if (e.type() == mvccpb::Event::PUT && spec.filter_put) continue;
    if (e.type() == mvccpb::Event::DELETE && spec.filter_delete) continue;
    if (!key_in_watch_range(e.kv().key(), spec.key, spec.range_end)) continue;
    out.events.push_back(e);
    if (!spec.prev_kv) {
      out.events.back().clear_prev_kv();
    } else if (fill != nullptr && !(*fill)(&out.events.back()).is_ok()) {
      *fill_failed = true;
    }
  }
  return out;
}

}  // namespace

WatchHub::WatchHub(StoreGetter get_store, WatchHubOptions options)
    : get_store_(std::move(get_store)), options_(options) {
  RAFTKV_CHECK(options_.max_buffered_events > 0);
  std::shared_ptr<Store> store = get_store_();
  revision_ = store->revision();
  store->set_event_prev_kv(false);  // until a watcher asks for prev_kv
  if (options_.start_worker) worker_ = std::thread([this] { worker_loop(); });
}

WatchHub::~WatchHub() { stop(); }

void WatchHub::stop() {
  {
    std::lock_guard lk(mu_);
    stopped_ = true;
    worker_cv_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

Result<WatcherId> WatchHub::add(const WatchSpec& spec, WatchNotify notify,
                                int64_t* start_revision) {
  // etcd: a range_end of "\0" means "every key >= key"; any other non-empty
  // range_end must be after the key.
  const bool to_end = spec.range_end.size() == 1 && spec.range_end[0] == '\0';
  if (!spec.range_end.empty() && !to_end && spec.key >= spec.range_end) {
    return Status::invalid_argument("mvcc: watcher range is empty");
  }
  auto w = std::make_unique<Watcher>();
  w->spec = spec;
  w->notify = std::move(notify);
  std::lock_guard lk(mu_);
  if (stopped_) return Status::unavailable("etcdserver: server stopped");
  w->id = next_id_++;
  if (spec.prev_kv && prev_kv_watchers_++ == 0) {
    // From the next change on, apply() reads the previous values; events of
    // changes applied before (still on their way to feed()) are filled in
    // there for this watcher.
    get_store_()->set_event_prev_kv(true);
  }
  w->next_revision = spec.start_revision > 0 ? spec.start_revision : revision_ + 1;
  w->synced = w->next_revision > revision_;
  if (start_revision != nullptr) *start_revision = w->next_revision;
  const WatcherId id = w->id;
  if (!w->synced) worker_cv_.notify_one();
  watchers_.emplace(id, std::move(w));
  return id;
}

void WatchHub::remove(WatcherId id) {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  if (it->second->spec.prev_kv && --prev_kv_watchers_ == 0) get_store_()->set_event_prev_kv(false);
  watchers_.erase(it);
}

WatchDelivery WatchHub::take(WatcherId id, size_t max_events) {
  WatchDelivery d;
  std::lock_guard lk(mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return d;
  Watcher& w = *it->second;
  size_t taken = 0;
  while (!w.buffer.empty() &&
         (d.revisions.empty() || taken + w.buffer.front().events.size() <= max_events)) {
    taken += w.buffer.front().events.size();
    d.revisions.push_back(std::move(w.buffer.front()));
    w.buffer.pop_front();
  }
  w.buffered_events -= taken;
  if (!w.buffer.empty()) {
    d.revision = d.revisions.back().revision;
    d.more = true;
    return d;
  }
  if (w.compact_revision != 0) {
    d.compact_revision = w.compact_revision;
    d.revision = w.next_revision - 1;
    return d;
  }
  if (w.synced) {
    d.revision = revision_;
  } else {
    d.revision = w.next_revision - 1;
    if (!w.reading) worker_cv_.notify_one();  // the buffer just emptied: next page
  }
  return d;
}

std::optional<int64_t> WatchHub::progress(WatcherId id) const {
  std::lock_guard lk(mu_);
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return std::nullopt;
  const Watcher& w = *it->second;
  if (!w.synced || !w.buffer.empty() || w.compact_revision != 0) return std::nullopt;
  return revision_;
}

void WatchHub::append_revision(Watcher& w, const RevisionEvents& rev) {
  RAFTKV_CHECK(rev.revision >= w.next_revision);
  RevisionEvents mine = filter_revision(w.spec, rev);
  w.next_revision = rev.revision + 1;
  if (mine.events.empty()) return;
  w.buffered_events += mine.events.size();
  w.buffer.push_back(std::move(mine));
}

void WatchHub::feed(const std::vector<RevisionEvents>& revisions) {
  std::vector<WatchNotify> notifies;
  {
    std::lock_guard lk(mu_);
    // Only events applied before a prev_kv watcher arrived lack prev_kv.
    std::shared_ptr<Store> store;
    const std::function<Status(mvccpb::Event*)> fill = [&](mvccpb::Event* ev) {
      if (ev->has_prev_kv()) return Status::ok();
      if (store == nullptr) store = get_store_();
      return store->fill_prev_kv(ev);
    };
    for (const RevisionEvents& rev : revisions) {
      if (rev.revision <= revision_) continue;  // already covered by a swapped-in store
      for (auto& [id, wp] : watchers_) {
        Watcher& w = *wp;
        if (!w.synced || rev.revision < w.next_revision) continue;
        bool fill_failed = false;
        RevisionEvents mine = filter_revision(w.spec, rev, &fill, &fill_failed);
        if (fill_failed || (!w.buffer.empty() && w.buffered_events + mine.events.size() >
                                                     options_.max_buffered_events)) {
          // Slow consumer: stop buffering; the worker reads this revision and
          // the following ones from the store once the buffer is taken. The
          // same for a prev_kv that could not be read here: the worker reads
          // it with the revision, and a failure there is handled there.
          w.synced = false;
          if (w.buffer.empty()) worker_cv_.notify_one();
          continue;
        }
        w.next_revision = rev.revision + 1;
        if (mine.events.empty()) continue;
        if (w.buffer.empty()) notifies.push_back(w.notify);
        w.buffered_events += mine.events.size();
        w.buffer.push_back(std::move(mine));
      }
      revision_ = rev.revision;
    }
  }
  for (WatchNotify& n : notifies) n();
}

void WatchHub::on_store_swapped() {
  std::shared_ptr<Store> store = get_store_();
  std::lock_guard lk(mu_);
  ++store_epoch_;
  revision_ = store->revision();
  store->set_event_prev_kv(prev_kv_watchers_ > 0);
  for (auto& [id, w] : watchers_) {
    if (w->compact_revision == 0 && w->next_revision <= revision_) w->synced = false;
  }
  worker_cv_.notify_one();
}

int64_t WatchHub::revision() const {
  std::lock_guard lk(mu_);
  return revision_;
}

WatchHub::Stats WatchHub::stats() const {
  Stats s;
  std::lock_guard lk(mu_);
  for (const auto& [id, w] : watchers_) {
    if (w->compact_revision != 0) continue;
    (w->synced ? s.synced : s.unsynced)++;
    s.buffered_events += w->buffered_events;
  }
  return s;
}

WatchHub::Watcher* WatchHub::pick_catch_up_locked() {
  auto eligible = [](const Watcher& w) {
    return !w.synced && !w.reading && w.compact_revision == 0 && w.buffer.empty();
  };
  for (auto it = watchers_.upper_bound(catch_up_cursor_); it != watchers_.end(); ++it) {
    if (eligible(*it->second)) return it->second.get();
  }
  for (auto it = watchers_.begin(); it != watchers_.end() && it->first <= catch_up_cursor_;
       ++it) {
    if (eligible(*it->second)) return it->second.get();
  }
  return nullptr;
}

bool WatchHub::run_catch_up_once() {
  std::unique_lock lk(mu_);
  Watcher* w = pick_catch_up_locked();
  if (w == nullptr) return false;
  return catch_up_locked(lk, *w);
}

bool WatchHub::catch_up_locked(std::unique_lock<std::mutex>& lk, Watcher& picked) {
  picked.reading = true;
  catch_up_cursor_ = picked.id;
  const WatcherId id = picked.id;
  const WatchSpec spec = picked.spec;
  const int64_t from = picked.next_revision;
  const uint64_t epoch = store_epoch_;
  lk.unlock();

  std::shared_ptr<Store> store = get_store_();
  Result<EventPage> page =
      store->events_since(from, spec.key, spec.range_end, spec.prev_kv, options_.max_buffered_events);
  const int64_t compact = store->compact_revision();
  store.reset();

  lk.lock();
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return true;  // removed meanwhile
  Watcher& w = *it->second;
  w.reading = false;
  // A swap (or anything else that moved the watcher) makes this page stale.
  if (epoch != store_epoch_ || w.next_revision != from || w.synced) return true;
  WatchNotify notify;
  if (!page) {
    if (page.status().code() != Code::kOutOfRange) {
      lk.unlock();
      std::this_thread::sleep_for(kReadErrorBackoff);
      lk.lock();
      return true;
    }
    w.compact_revision = std::max<int64_t>(compact, 1);
    notify = w.notify;
  } else {
    const bool was_empty = w.buffer.empty();
    for (const RevisionEvents& rev : page->revisions) {
      if (rev.revision >= w.next_revision) append_revision(w, rev);
    }
    w.next_revision = std::max(w.next_revision, page->next_revision);
    if (w.next_revision > revision_) w.synced = true;
    // Rejoining the synced group is announced too: progress() changes.
    if ((was_empty && !w.buffer.empty()) || w.synced) notify = w.notify;
  }
  if (notify) {
    lk.unlock();
    notify();
    lk.lock();
  }
  return true;
}

void WatchHub::worker_loop() {
  std::unique_lock lk(mu_);
  while (true) {
    Watcher* w = nullptr;
    worker_cv_.wait(lk, [&] {
      if (stopped_) return true;
      w = pick_catch_up_locked();
      return w != nullptr;
    });
    if (stopped_) return;
    (void)catch_up_locked(lk, *w);
  }
}

}  // namespace raftkv::kv
