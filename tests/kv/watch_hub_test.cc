// Tests of kv::WatchHub: ordering, filters, prev_kv, catch-up of slow and
// past watchers (tiny buffer bound), compaction, store swap.
#include "kv/watch_hub.h"

#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using testing::compact_req;
using testing::del_req;
using testing::put_req;
using testing::TempDir;

// A store the test applies to, and a getter the hub reads through.
class Fixture {
 public:
  explicit Fixture(const std::string& dir) { store_ = open(dir); }

  static std::shared_ptr<Store> open(const std::string& dir) {
    auto s = Store::open(dir, {});
    EXPECT_TRUE(s.is_ok()) << s.status().to_string();
    return std::shared_ptr<Store>(std::move(s.value()));
  }

  WatchHub::StoreGetter getter() {
    return [this] {
      std::lock_guard lk(mu_);
      return store_;
    };
  }

  // Applies to `store` (the current one by default); returns its events.
  std::vector<RevisionEvents> apply(const raftkvpb::InternalRequest& r, Store* store = nullptr) {
    if (store == nullptr) store = store_.get();
    uint64_t& index = next_index_[store];
    if (index == 0) index = store->applied_index().value() + 1;
    ApplyEntry e{raft::Index(index++), &r};
    auto res = store->apply(std::span<const ApplyEntry>(&e, 1));
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    return res.is_ok() ? res->events : std::vector<RevisionEvents>{};
  }

  void swap(std::shared_ptr<Store> s) {
    std::lock_guard lk(mu_);
    store_ = std::move(s);
  }

  Store& store() { return *store_; }

 private:
  std::mutex mu_;
  std::shared_ptr<Store> store_;
  std::map<Store*, uint64_t> next_index_;
};

// A WatchSpec; the designated-initializer form would name every field.
WatchSpec spec(std::string key, std::string range_end = "", int64_t start_revision = 0) {
  WatchSpec s;
  s.key = std::move(key);
  s.range_end = std::move(range_end);
  s.start_revision = start_revision;
  return s;
}

WatchHubOptions manual(size_t bound = 1024) {
  WatchHubOptions o;
  o.max_buffered_events = bound;
  o.start_worker = false;
  return o;
}

// Everything a watcher has received so far, flattened.
struct Seen {
  std::vector<int64_t> revisions;  // one per event
  std::vector<mvccpb::Event> events;
  int64_t compact_revision = 0;
};

void drain(WatchHub& hub, WatcherId id, Seen* seen, size_t max_events = 1 << 20) {
  while (true) {
    WatchDelivery d = hub.take(id, max_events);
    for (const RevisionEvents& r : d.revisions) {
      EXPECT_FALSE(r.events.empty());
      for (const mvccpb::Event& e : r.events) {
        seen->revisions.push_back(r.revision);
        seen->events.push_back(e);
      }
    }
    if (d.compact_revision != 0) seen->compact_revision = d.compact_revision;
    if (!d.more) return;
  }
}

void catch_up(WatchHub& hub, WatcherId id, Seen* seen) {
  for (int i = 0; i < 10000; ++i) {
    drain(hub, id, seen);
    if (!hub.run_catch_up_once()) break;
  }
  drain(hub, id, seen);
}

TEST(WatchHubTest, LiveEventsInOrderWithFiltersAndPrevKv) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual());
  std::atomic<int> notified{0};
  auto n = [&] { ++notified; };
  auto add = [&](WatchSpec s) {
    auto id = hub.add(s, n);
    EXPECT_TRUE(id.is_ok()) << id.status().to_string();
    return *id;
  };
  WatchSpec key = spec("a");
  WatchSpec prefix = spec("b/", "b0");
  WatchSpec all = spec(std::string(1, '\0'), std::string(1, '\0'));
  all.prev_kv = true;
  WatchSpec no_put = spec("a");
  no_put.filter_put = true;
  WatchSpec no_delete = spec("a");
  no_delete.filter_delete = true;
  const WatcherId w_key = add(key), w_prefix = add(prefix), w_all = add(all),
                  w_no_put = add(no_put), w_no_delete = add(no_delete);

  hub.feed(f.apply(put_req("a", "1")));    // rev 2
  hub.feed(f.apply(put_req("b/x", "1")));  // rev 3
  hub.feed(f.apply(put_req("a", "2")));    // rev 4
  hub.feed(f.apply(del_req("a")));         // rev 5
  hub.feed(f.apply(put_req("c", "1")));    // rev 6
  EXPECT_EQ(hub.revision(), 6);
  EXPECT_GT(notified.load(), 0);

  Seen s_key, s_prefix, s_all, s_no_put, s_no_delete;
  drain(hub, w_key, &s_key);
  drain(hub, w_prefix, &s_prefix);
  drain(hub, w_all, &s_all);
  drain(hub, w_no_put, &s_no_put);
  drain(hub, w_no_delete, &s_no_delete);
  EXPECT_EQ(s_key.revisions, (std::vector<int64_t>{2, 4, 5}));
  EXPECT_FALSE(s_key.events[1].has_prev_kv());  // prev_kv not asked: stripped
  EXPECT_EQ(s_prefix.revisions, (std::vector<int64_t>{3}));
  EXPECT_EQ(s_all.revisions, (std::vector<int64_t>{2, 3, 4, 5, 6}));
  ASSERT_TRUE(s_all.events[2].has_prev_kv());
  EXPECT_EQ(s_all.events[2].prev_kv().value(), "1");
  EXPECT_EQ(s_all.events[3].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(s_all.events[3].prev_kv().value(), "2");
  EXPECT_EQ(s_no_put.revisions, (std::vector<int64_t>{5}));
  EXPECT_EQ(s_no_delete.revisions, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(hub.progress(w_key), 6);
}

// The store reads previous values only while a watcher asks for prev_kv;
// changes applied before such a watcher arrived (still on their way to feed(),
// as between an apply and its feed on the apply loop) get theirs in feed().
TEST(WatchHubTest, PrevKvIsReadOnlyWhileAWatcherAsksForIt) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual());
  auto plain = hub.add(spec("k"), [] {});
  ASSERT_TRUE(plain.is_ok());
  EXPECT_FALSE(f.store().event_prev_kv());
  hub.feed(f.apply(put_req("k", "1")));                          // rev 2
  std::vector<RevisionEvents> put2 = f.apply(put_req("k", "2"));  // rev 3, not fed yet
  std::vector<RevisionEvents> del = f.apply(del_req("k"));        // rev 4, not fed yet
  ASSERT_EQ(put2.size(), 1u);
  EXPECT_FALSE(put2[0].events[0].has_prev_kv());  // no value read for it

  WatchSpec with_prev = spec("k");
  with_prev.prev_kv = true;
  auto w = hub.add(with_prev, [] {});
  ASSERT_TRUE(w.is_ok());
  EXPECT_TRUE(f.store().event_prev_kv());
  hub.feed(put2);
  hub.feed(del);
  hub.feed(f.apply(put_req("k", "3")));  // rev 5: creates the key again, no prev_kv
  hub.feed(f.apply(put_req("k", "4")));  // rev 6: prev_kv read by apply()

  Seen seen;
  drain(hub, *w, &seen);
  ASSERT_EQ(seen.revisions, (std::vector<int64_t>{3, 4, 5, 6}));
  ASSERT_TRUE(seen.events[0].has_prev_kv());
  EXPECT_EQ(seen.events[0].prev_kv().value(), "1");
  EXPECT_EQ(seen.events[0].prev_kv().mod_revision(), 2);
  EXPECT_EQ(seen.events[1].type(), mvccpb::Event::DELETE);
  ASSERT_TRUE(seen.events[1].has_prev_kv());
  EXPECT_EQ(seen.events[1].prev_kv().value(), "2");
  EXPECT_FALSE(seen.events[2].has_prev_kv());
  ASSERT_TRUE(seen.events[3].has_prev_kv());
  EXPECT_EQ(seen.events[3].prev_kv().value(), "3");
  Seen plain_seen;
  drain(hub, *plain, &plain_seen);
  EXPECT_EQ(plain_seen.revisions, (std::vector<int64_t>{2, 3, 4, 5, 6}));
  for (const mvccpb::Event& e : plain_seen.events) EXPECT_FALSE(e.has_prev_kv());

  hub.remove(*w);
  EXPECT_FALSE(f.store().event_prev_kv());
}

TEST(WatchHubTest, EmptyRangeIsRefusedAndRemovedWatchersGetNothing) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual());
  auto bad = hub.add(spec("b", "a"), [] {});
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().message(), "mvcc: watcher range is empty");
  auto id = hub.add(spec("a"), [] {});
  ASSERT_TRUE(id.is_ok());
  hub.remove(*id);
  hub.feed(f.apply(put_req("a", "1")));
  EXPECT_TRUE(hub.take(*id, 10).revisions.empty());
}

TEST(WatchHubTest, OneTxnRevisionStaysWhole) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual(1));
  auto id = hub.add(spec("k", "l"), [] {});
  ASSERT_TRUE(id.is_ok());
  raftkvpb::InternalRequest txn;
  for (const char* k : {"k1", "k2", "k3"}) {
    auto* op = txn.mutable_txn()->add_success()->mutable_request_put();
    op->set_key(k);
    op->set_value("v");
  }
  hub.feed(f.apply(txn));
  WatchDelivery d = hub.take(*id, 1);  // larger than the bound and max_events: still whole
  ASSERT_EQ(d.revisions.size(), 1u);
  EXPECT_EQ(d.revisions[0].events.size(), 3u);
}

TEST(WatchHubTest, StartInThePastReplaysHistoryThenGoesLive) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual(2));
  for (int i = 0; i < 7; ++i) hub.feed(f.apply(put_req("k", std::to_string(i))));  // revs 2..8
  int64_t start = 0;
  WatchSpec past_with_prev = spec("k", "", 3);
  past_with_prev.prev_kv = true;
  auto id = hub.add(past_with_prev, [] {}, &start);
  ASSERT_TRUE(id.is_ok());
  EXPECT_EQ(start, 3);
  EXPECT_EQ(hub.stats().unsynced, 1u);
  EXPECT_FALSE(hub.progress(*id).has_value());
  Seen seen;
  catch_up(hub, *id, &seen);
  EXPECT_EQ(hub.stats().synced, 1u);
  hub.feed(f.apply(put_req("k", "live")));  // rev 9
  drain(hub, *id, &seen);
  EXPECT_EQ(seen.revisions, (std::vector<int64_t>{3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(seen.events[0].prev_kv().value(), "0");
}

TEST(WatchHubTest, SlowWatcherIsCaughtUpFromTheStoreWithoutLossOrDuplicates) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual(3));
  auto id = hub.add(spec("k", "l"), [] {});
  ASSERT_TRUE(id.is_ok());
  std::vector<int64_t> want;
  Seen seen;
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 7; ++i) {
      auto evs = f.apply(put_req("k" + std::to_string(i % 3), "v"));
      want.push_back(evs.at(0).revision);
      hub.feed(evs);
      // Memory stays bounded: at most the bound (plus one revision).
      EXPECT_LE(hub.stats().buffered_events, 4u);
    }
    // The consumer takes a little, catch-up runs a page, writes go on.
    WatchDelivery d = hub.take(*id, 2);
    for (const auto& r : d.revisions) seen.revisions.push_back(r.revision);
    (void)hub.run_catch_up_once();
  }
  catch_up(hub, *id, &seen);
  EXPECT_EQ(seen.revisions, want);
  EXPECT_EQ(hub.stats().synced, 1u);
}

TEST(WatchHubTest, StoreAheadOfTheHubDeliversEachRevisionOnce) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual(2));
  hub.feed(f.apply(put_req("k", "1")));  // rev 2
  auto id = hub.add(spec("k", "", 2), [] {});
  ASSERT_TRUE(id.is_ok());
  // Revs 3 and 4 applied, not fed yet (the apply loop is between the two).
  auto e3 = f.apply(put_req("k", "2"));
  auto e4 = f.apply(put_req("k", "3"));
  Seen seen;
  catch_up(hub, *id, &seen);
  hub.feed(e3);
  hub.feed(e4);
  hub.feed(f.apply(put_req("k", "4")));  // rev 5
  drain(hub, *id, &seen);
  EXPECT_EQ(seen.revisions, (std::vector<int64_t>{2, 3, 4, 5}));
}

TEST(WatchHubTest, CompactedStartEndsTheWatcherWithCompactRevision) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual());
  for (int i = 0; i < 5; ++i) hub.feed(f.apply(put_req("k", "v")));  // revs 2..6
  hub.feed(f.apply(compact_req(5)));
  std::atomic<int> notified{0};
  auto id = hub.add(spec("k", "", 3), [&] { ++notified; });
  ASSERT_TRUE(id.is_ok());
  Seen seen;
  catch_up(hub, *id, &seen);
  EXPECT_EQ(notified.load(), 1);
  EXPECT_TRUE(seen.revisions.empty());
  EXPECT_EQ(seen.compact_revision, 5);
  // Starting at the compaction point itself is fine (etcd).
  auto ok = hub.add(spec("k", "", 5), [] {});
  ASSERT_TRUE(ok.is_ok());
  Seen s2;
  catch_up(hub, *ok, &s2);
  EXPECT_EQ(s2.revisions, (std::vector<int64_t>{5, 6}));
  EXPECT_EQ(s2.compact_revision, 0);
}

TEST(WatchHubTest, StoreSwapResyncsOrCancelsEveryWatcher) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHub hub(f.getter(), manual(4));
  std::vector<raftkvpb::InternalRequest> log;
  for (int i = 0; i < 3; ++i) log.push_back(put_req("k", std::to_string(i)));  // revs 2..4
  for (const auto& r : log) hub.feed(f.apply(r));
  auto behind = hub.add(spec("k"), [] {});   // next revision 5
  auto ahead = hub.add(spec("k", "", 20), [] {});
  ASSERT_TRUE(behind.is_ok() && ahead.is_ok());

  // A "snapshot" store that applied the same log and more, with revs 5..9
  // on k and a compaction at 7 only for the second scenario below.
  std::shared_ptr<Store> next = Fixture::open(tmp.sub("b"));
  for (const auto& r : log) (void)f.apply(r, next.get());
  for (int i = 0; i < 5; ++i) (void)f.apply(put_req("k", "n" + std::to_string(i)), next.get());
  f.swap(next);
  hub.on_store_swapped();
  EXPECT_EQ(hub.revision(), 9);
  Seen s_behind;
  catch_up(hub, *behind, &s_behind);
  EXPECT_EQ(s_behind.revisions, (std::vector<int64_t>{5, 6, 7, 8, 9}));
  EXPECT_EQ(hub.stats().synced, 2u);

  // Swap again to a store compacted past the watcher's next revision.
  auto late = hub.add(spec("k", "", 9), [] {});  // unsynced until caught up
  ASSERT_TRUE(late.is_ok());
  std::shared_ptr<Store> third = Fixture::open(tmp.sub("c"));
  for (const auto& r : log) (void)f.apply(r, third.get());
  for (int i = 0; i < 8; ++i) (void)f.apply(put_req("k", "m"), third.get());  // revs 5..12
  (void)f.apply(compact_req(11), third.get());
  f.swap(third);
  hub.on_store_swapped();
  Seen s_late, s_behind2;
  catch_up(hub, *late, &s_late);
  catch_up(hub, *behind, &s_behind2);
  EXPECT_EQ(s_late.compact_revision, 11);
  EXPECT_EQ(s_behind2.compact_revision, 11);  // next revision 10 < 11
  Seen s_ahead;
  drain(hub, *ahead, &s_ahead);
  EXPECT_TRUE(s_ahead.revisions.empty());
  EXPECT_EQ(s_ahead.compact_revision, 0);
}

// The worker thread and a slow consumer thread against a fast writer.
TEST(WatchHubTest, ConcurrentSlowConsumerSeesExactHistory) {
  TempDir tmp;
  Fixture f(tmp.sub("a"));
  WatchHubOptions o;
  o.max_buffered_events = 8;
  WatchHub hub(f.getter(), o);
  std::mutex mu;
  std::condition_variable cv;
  bool ready = false;
  auto id = hub.add(spec("k", "l"), [&] {
    std::lock_guard lk(mu);
    ready = true;
    cv.notify_one();
  });
  ASSERT_TRUE(id.is_ok());
  constexpr int kWrites = 1500;
  std::vector<int64_t> seen;
  std::thread consumer([&] {
    while (seen.size() < static_cast<size_t>(kWrites)) {
      {
        std::unique_lock lk(mu);
        cv.wait_for(lk, std::chrono::milliseconds(20), [&] { return ready; });
        ready = false;
      }
      WatchDelivery d;
      do {
        d = hub.take(*id, 5);
        for (const auto& r : d.revisions) seen.push_back(r.revision);
        if (seen.size() % 50 == 0) std::this_thread::sleep_for(std::chrono::microseconds(300));
      } while (d.more);
    }
  });
  std::vector<int64_t> want;
  for (int i = 0; i < kWrites; ++i) {
    auto evs = f.apply(put_req("k" + std::to_string(i % 10), "v"));
    want.push_back(evs.at(0).revision);
    hub.feed(evs);
    EXPECT_LE(hub.stats().buffered_events, 9u);
  }
  consumer.join();
  EXPECT_EQ(seen, want);
}

}  // namespace
}  // namespace raftkv::kv
