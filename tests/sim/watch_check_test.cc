// The watch checker on handcrafted watch histories: gaps, duplicates,
// reordering, split transactions and wrong events must be rejected; exact
// histories (also across a re-watch) and a legal compaction cancel pass.
#include <gtest/gtest.h>

#include "sim/watch_check.h"

namespace raftkv::sim {
namespace {

WatchEvent put(const std::string& k, const std::string& v) { return WatchEvent{k, false, v}; }
WatchEvent del(const std::string& k) { return WatchEvent{k, true, ""}; }

// rev 2 put k0; rev 3 put k1; rev 4 txn {put k0, put k1}; rev 5 delete k0; rev 6 put k2.
std::vector<WatchRevision> store_history() {
  return {
      {2, {put("k0", "a")}},
      {3, {put("k1", "b")}},
      {4, {put("k0", "c"), put("k1", "d")}},
      {5, {del("k0")}},
      {6, {put("k2", "e")}},
  };
}

WatchRecord prefix_watch(int64_t start) {
  WatchRecord w;
  w.id = 1;
  w.key = "k";
  w.range_end = "l";
  w.start_revision = start;
  return w;
}

TEST(WatchCheck, ExactHistoryPasses) {
  WatchRecord w = prefix_watch(1);
  w.received = store_history();
  w.complete_to = 6;
  EXPECT_EQ(check_watch(w, store_history()), "");
}

TEST(WatchCheck, SingleKeySeesOnlyItsPartOfATxn) {
  WatchRecord w;
  w.key = "k1";
  w.start_revision = 3;
  w.received = {{3, {put("k1", "b")}}, {4, {put("k1", "d")}}};
  w.complete_to = 6;
  EXPECT_EQ(check_watch(w, store_history()), "");
}

TEST(WatchCheck, FromKeyRange) {
  WatchRecord w;
  w.key = "k1";
  w.range_end = std::string(1, '\0');
  w.start_revision = 4;
  w.received = {{4, {put("k1", "d")}}, {6, {put("k2", "e")}}};
  w.complete_to = 6;
  EXPECT_EQ(check_watch(w, store_history()), "");
}

TEST(WatchCheck, GapIsRejected) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0], h[1], h[3], h[4]};  // revision 4 missing
  EXPECT_NE(check_watch(w, h).find("gap"), std::string::npos) << check_watch(w, h);
}

TEST(WatchCheck, DuplicateIsRejected) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0], h[1], h[2], h[2], h[3]};  // a re-watch from the wrong revision
  EXPECT_NE(check_watch(w, h).find("duplicate"), std::string::npos) << check_watch(w, h);
}

TEST(WatchCheck, OutOfOrderIsRejected) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0], h[1], h[2], h[1]};
  EXPECT_NE(check_watch(w, h).find("out of order"), std::string::npos);
}

TEST(WatchCheck, SplitTransactionIsRejected) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0], h[1], {4, {put("k0", "c")}}};  // k1's half of the txn lost
  EXPECT_NE(check_watch(w, h).find("store holds"), std::string::npos);
}

TEST(WatchCheck, WrongValueIsRejected) {
  WatchRecord w = prefix_watch(2);
  auto h = store_history();
  w.received = {{2, {put("k0", "x")}}};
  EXPECT_NE(check_watch(w, h), "");
}

TEST(WatchCheck, EventBeforeStartIsRejected) {
  WatchRecord w = prefix_watch(3);
  auto h = store_history();
  w.received = {h[0]};
  EXPECT_NE(check_watch(w, h).find("before its start"), std::string::npos);
}

TEST(WatchCheck, MissingTailIsRejectedWhenCompleteIsClaimed) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0], h[1], h[2]};
  w.complete_to = 4;
  EXPECT_EQ(check_watch(w, h), "");
  w.complete_to = 5;
  EXPECT_NE(check_watch(w, h).find("never received"), std::string::npos);
}

TEST(WatchCheck, CompactionCancel) {
  WatchRecord w = prefix_watch(1);
  auto h = store_history();
  w.received = {h[0]};
  w.compact_revision = 4;  // next revision 3 was compacted: legal cancel
  EXPECT_EQ(check_watch(w, h), "");
  w.compact_revision = 3;  // a compaction at 3 keeps revision 3: illegal
  EXPECT_NE(check_watch(w, h).find("was not compacted"), std::string::npos);
}

}  // namespace
}  // namespace raftkv::sim
