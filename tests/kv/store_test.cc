// kv::Store semantics, operation by operation, mirroring etcd v3's MVCC store.
#include "kv/store.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "kv/errors.h"
#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using testing::compact_req;
using testing::del_req;
using testing::Harness;
using testing::put_req;
using testing::range_req;
using testing::TempDir;

std::vector<std::string> keys_of(const etcdserverpb::RangeResponse& r) {
  std::vector<std::string> out;
  for (const auto& kv : r.kvs()) out.push_back(kv.key());
  return out;
}

class StoreTest : public ::testing::Test {
 protected:
  TempDir tmp_;
  Harness h_{tmp_.sub("db")};
};

TEST_F(StoreTest, FreshStoreIsAtRevisionOneLikeEtcd) {
  EXPECT_EQ(h_.store().revision(), 1);
  EXPECT_EQ(h_.store().compact_revision(), -1);
  EXPECT_EQ(h_.store().applied_index().value(), 0u);
  auto r = h_.get(range_req("foo"));
  EXPECT_EQ(r.header().revision(), 1);
  EXPECT_EQ(r.count(), 0);
}

TEST_F(StoreTest, PutSetsCreateModVersionAndDeleteResetsVersion) {
  EXPECT_EQ(h_.put("foo", "a"), 2);
  EXPECT_EQ(h_.put("foo", "b"), 3);
  auto r = h_.get(range_req("foo"));
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).value(), "b");
  EXPECT_EQ(r.kvs(0).create_revision(), 2);
  EXPECT_EQ(r.kvs(0).mod_revision(), 3);
  EXPECT_EQ(r.kvs(0).version(), 2);
  EXPECT_EQ(r.header().revision(), 3);

  auto d = h_.apply(del_req("foo"));
  EXPECT_EQ(d.response.delete_range().deleted(), 1);
  EXPECT_EQ(d.response.delete_range().header().revision(), 4);
  EXPECT_EQ(h_.get(range_req("foo")).kvs_size(), 0);

  EXPECT_EQ(h_.put("foo", "c"), 5);
  r = h_.get(range_req("foo"));
  ASSERT_EQ(r.kvs_size(), 1);
  EXPECT_EQ(r.kvs(0).create_revision(), 5);  // re-created
  EXPECT_EQ(r.kvs(0).version(), 1);
  EXPECT_EQ(h_.store().applied_index().value(), 4u);  // four requests
}

TEST_F(StoreTest, RangeBoundsFollowEtcd) {
  for (const char* k : {"a", "ab", "b", "ba", "c"}) h_.put(k, std::string("v") + k);
  struct Case {
    const char* name;
    std::string key, end;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"single key", "ab", "", {"ab"}},
      {"missing single key", "zz", "", {}},
      {"half-open range", "a", "b", {"a", "ab"}},
      {"prefix a (end = a+1)", "a", "b", {"a", "ab"}},
      {"range_end \\0 = every key >= key", "b", std::string(1, '\0'), {"b", "ba", "c"}},
      {"key \\0 range_end \\0 = all keys",
       std::string(1, '\0'),
       std::string(1, '\0'),
       {"a", "ab", "b", "ba", "c"}},
      {"end before key = nothing", "c", "a", {}},
  };
  for (const auto& c : cases) {
    auto r = h_.get(range_req(c.key, c.end));
    EXPECT_EQ(keys_of(r), c.want) << c.name;
    EXPECT_EQ(r.count(), static_cast<int64_t>(c.want.size())) << c.name;
  }
}

TEST_F(StoreTest, RangeAtPastRevisionsSeesHistory) {
  h_.put("k", "v1");       // 2
  h_.put("k", "v2");       // 3
  h_.apply(del_req("k"));  // 4
  h_.put("k", "v3");       // 5
  struct Case {
    int64_t rev;
    std::string want;  // "" = absent
  };
  for (const Case& c :
       std::vector<Case>{{1, ""}, {2, "v1"}, {3, "v2"}, {4, ""}, {5, "v3"}, {0, "v3"}}) {
    auto r = h_.get(range_req("k", "", c.rev));
    if (c.want.empty()) {
      EXPECT_EQ(r.kvs_size(), 0) << "rev " << c.rev;
    } else {
      ASSERT_EQ(r.kvs_size(), 1) << "rev " << c.rev;
      EXPECT_EQ(r.kvs(0).value(), c.want) << "rev " << c.rev;
    }
    EXPECT_EQ(r.header().revision(), 5) << "header carries the current revision";
  }
  auto future = h_.store().range(range_req("k", "", 6));
  ASSERT_FALSE(future.is_ok());
  EXPECT_EQ(future.status(), errors::future_rev());
}

TEST_F(StoreTest, LimitMoreCountKeysOnlyCountOnly) {
  for (int i = 0; i < 5; ++i) h_.put("k" + std::to_string(i), "value");
  auto req = range_req("k", "l");
  req.set_limit(2);
  auto r = h_.get(req);
  EXPECT_EQ(keys_of(r), (std::vector<std::string>{"k0", "k1"}));
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.count(), 5);

  req.set_limit(5);
  r = h_.get(req);
  EXPECT_FALSE(r.more()) << "exactly limit keys: no more";

  req.set_limit(0);
  req.set_keys_only(true);
  r = h_.get(req);
  ASSERT_EQ(r.kvs_size(), 5);
  EXPECT_TRUE(r.kvs(0).value().empty());
  EXPECT_EQ(r.kvs(0).version(), 1);
  EXPECT_GT(r.kvs(0).mod_revision(), 0);

  req.set_keys_only(false);
  req.set_count_only(true);
  r = h_.get(req);
  EXPECT_EQ(r.kvs_size(), 0);
  EXPECT_EQ(r.count(), 5);
  EXPECT_FALSE(r.more());
}

TEST_F(StoreTest, SortTargetsAndEtcdDefaultOrder) {
  // Creation order c, a, b; then a is updated twice, b once.
  h_.put("c", "3");  // 2
  h_.put("a", "9");  // 3
  h_.put("b", "1");  // 4
  h_.put("a", "8");  // 5
  h_.put("a", "7");  // 6
  h_.put("b", "2");  // 7
  struct Case {
    const char* name;
    RangeRequest::SortTarget target;
    RangeRequest::SortOrder order;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"KEY NONE = key order", RangeRequest::KEY, RangeRequest::NONE, {"a", "b", "c"}},
      {"KEY ASCEND", RangeRequest::KEY, RangeRequest::ASCEND, {"a", "b", "c"}},
      {"KEY DESCEND", RangeRequest::KEY, RangeRequest::DESCEND, {"c", "b", "a"}},
      {"VERSION NONE defaults to ascend",
       RangeRequest::VERSION,
       RangeRequest::NONE,
       {"c", "b", "a"}},
      {"VERSION DESCEND", RangeRequest::VERSION, RangeRequest::DESCEND, {"a", "b", "c"}},
      {"CREATE ASCEND", RangeRequest::CREATE, RangeRequest::ASCEND, {"c", "a", "b"}},
      {"CREATE DESCEND", RangeRequest::CREATE, RangeRequest::DESCEND, {"b", "a", "c"}},
      {"MOD ASCEND", RangeRequest::MOD, RangeRequest::ASCEND, {"c", "a", "b"}},
      {"MOD DESCEND", RangeRequest::MOD, RangeRequest::DESCEND, {"b", "a", "c"}},
      {"VALUE ASCEND", RangeRequest::VALUE, RangeRequest::ASCEND, {"b", "c", "a"}},
      {"VALUE DESCEND", RangeRequest::VALUE, RangeRequest::DESCEND, {"a", "c", "b"}},
  };
  for (const auto& c : cases) {
    auto req = range_req("a", "d");
    req.set_sort_target(c.target);
    req.set_sort_order(c.order);
    EXPECT_EQ(keys_of(h_.get(req)), c.want) << c.name;
  }
  // The lock recipe: oldest creation first, limit 1.
  auto req = range_req("a", "d");
  req.set_sort_target(RangeRequest::CREATE);
  req.set_sort_order(RangeRequest::ASCEND);
  req.set_limit(1);
  auto r = h_.get(req);
  EXPECT_EQ(keys_of(r), std::vector<std::string>{"c"});
  EXPECT_TRUE(r.more());
  EXPECT_EQ(r.count(), 3);
}

TEST_F(StoreTest, UnorderedNonKeySortAppliesToTheFirstLimitPlusOneKeys) {
  // Versions: a 2, b 3, c 1.
  h_.put("a", "x");
  h_.put("a", "x");
  for (int i = 0; i < 3; ++i) h_.put("b", "x");
  h_.put("c", "x");
  auto req = range_req("a", "d");
  req.set_sort_target(RangeRequest::VERSION);
  req.set_limit(1);
  // etcd: no order means the limit+1 first keys (a, b), sorted ascending.
  auto r = h_.get(req);
  EXPECT_EQ(keys_of(r), std::vector<std::string>{"a"});
  EXPECT_TRUE(r.more());
  // An explicit order sorts every key first.
  req.set_sort_order(RangeRequest::ASCEND);
  EXPECT_EQ(keys_of(h_.get(req)), std::vector<std::string>{"c"});
}

TEST_F(StoreTest, RevisionFiltersPruneButCountDoesNot) {
  h_.put("a", "1");  // 2
  h_.put("b", "1");  // 3
  h_.put("c", "1");  // 4
  h_.put("a", "2");  // 5 (a: create 2, mod 5)
  struct Case {
    const char* name;
    int64_t min_mod, max_mod, min_create, max_create;
    std::vector<std::string> want;
  };
  const std::vector<Case> cases = {
      {"min_mod 4", 4, 0, 0, 0, {"a", "c"}},
      {"max_mod 3", 0, 3, 0, 0, {"b"}},
      {"min_create 3", 0, 0, 3, 0, {"b", "c"}},
      {"max_create 2 (etcd lock's waiter query)", 0, 0, 0, 2, {"a"}},
      {"mod in [3,4]", 3, 4, 0, 0, {"b", "c"}},
  };
  for (const auto& c : cases) {
    auto req = range_req("a", "z");
    req.set_min_mod_revision(c.min_mod);
    req.set_max_mod_revision(c.max_mod);
    req.set_min_create_revision(c.min_create);
    req.set_max_create_revision(c.max_create);
    auto r = h_.get(req);
    EXPECT_EQ(keys_of(r), c.want) << c.name;
    EXPECT_EQ(r.count(), 3) << c.name << ": count is taken before filtering (etcd)";
  }
}

TEST_F(StoreTest, PutOptions) {
  h_.put("k", "v1", 0);
  // prev_kv
  auto req = put_req("k", "v2");
  req.mutable_put()->set_prev_kv(true);
  auto o = h_.apply(req);
  ASSERT_TRUE(o.status.is_ok());
  EXPECT_EQ(o.response.put().prev_kv().value(), "v1");
  EXPECT_EQ(o.response.put().prev_kv().mod_revision(), 2);
  // prev_kv on a new key: none
  req = put_req("new", "x");
  req.mutable_put()->set_prev_kv(true);
  o = h_.apply(req);
  EXPECT_FALSE(o.response.put().has_prev_kv());
  // ignore_value keeps the value, bumps the version
  req = put_req("k", "");
  req.mutable_put()->set_ignore_value(true);
  o = h_.apply(req);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  auto r = h_.get(range_req("k"));
  EXPECT_EQ(r.kvs(0).value(), "v2");
  EXPECT_EQ(r.kvs(0).version(), 3);
  // ignore_value / ignore_lease on a missing key
  for (bool value : {true, false}) {
    req = put_req("missing", "");
    if (value) {
      req.mutable_put()->set_ignore_value(true);
    } else {
      req.mutable_put()->set_ignore_lease(true);
    }
    const int64_t before = h_.store().revision();
    o = h_.apply(req);
    EXPECT_EQ(o.status, errors::key_not_found());
    EXPECT_EQ(h_.store().revision(), before) << "a failed put changes nothing";
  }
}

TEST_F(StoreTest, DeleteRangeCountsAndPrevKvs) {
  for (const char* k : {"a", "b", "c"}) h_.put(k, k);
  auto o = h_.apply(del_req("a", "c", /*prev_kv=*/true));
  EXPECT_EQ(o.response.delete_range().deleted(), 2);
  ASSERT_EQ(o.response.delete_range().prev_kvs_size(), 2);
  EXPECT_EQ(o.response.delete_range().prev_kvs(1).key(), "b");
  EXPECT_EQ(o.response.delete_range().header().revision(), 5);
  // Deleting nothing does not create a revision.
  o = h_.apply(del_req("a", "c"));
  EXPECT_EQ(o.response.delete_range().deleted(), 0);
  EXPECT_EQ(o.response.delete_range().header().revision(), 5);
  EXPECT_EQ(h_.store().revision(), 5);
}

raftkvpb::InternalRequest txn(std::vector<Compare> cmps, std::vector<etcdserverpb::RequestOp> ok,
                              std::vector<etcdserverpb::RequestOp> fail = {}) {
  raftkvpb::InternalRequest r;
  auto* t = r.mutable_txn();
  for (auto& c : cmps) *t->add_compare() = c;
  for (auto& o : ok) *t->add_success() = o;
  for (auto& o : fail) *t->add_failure() = o;
  return r;
}
etcdserverpb::RequestOp op_put(const std::string& k, const std::string& v) {
  etcdserverpb::RequestOp op;
  op.mutable_request_put()->set_key(k);
  op.mutable_request_put()->set_value(v);
  return op;
}
etcdserverpb::RequestOp op_get(const std::string& k, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_range()->set_key(k);
  op.mutable_request_range()->set_range_end(end);
  return op;
}
etcdserverpb::RequestOp op_del(const std::string& k, const std::string& end = "") {
  etcdserverpb::RequestOp op;
  op.mutable_request_delete_range()->set_key(k);
  op.mutable_request_delete_range()->set_range_end(end);
  return op;
}
Compare cmp(const std::string& key, Compare::CompareTarget t, Compare::CompareResult res, int64_t n,
            const std::string& value = "", const std::string& end = "") {
  Compare c;
  c.set_key(key);
  c.set_range_end(end);
  c.set_target(t);
  c.set_result(res);
  switch (t) {
    case Compare::VERSION:
      c.set_version(n);
      break;
    case Compare::CREATE:
      c.set_create_revision(n);
      break;
    case Compare::MOD:
      c.set_mod_revision(n);
      break;
    case Compare::LEASE:
      c.set_lease(n);
      break;
    case Compare::VALUE:
      c.set_value(value);
      break;
    default:
      break;
  }
  return c;
}

TEST_F(StoreTest, TxnComparesTable) {
  h_.put("k", "m");   // 2
  h_.put("k", "m");   // 3: create 2, mod 3, version 2
  h_.put("k2", "z");  // 4
  struct Case {
    const char* name;
    Compare c;
    bool want;
  };
  const std::vector<Case> cases = {
      {"VERSION EQUAL 2", cmp("k", Compare::VERSION, Compare::EQUAL, 2), true},
      {"VERSION NOT_EQUAL 2", cmp("k", Compare::VERSION, Compare::NOT_EQUAL, 2), false},
      {"VERSION GREATER 1", cmp("k", Compare::VERSION, Compare::GREATER, 1), true},
      {"VERSION LESS 2", cmp("k", Compare::VERSION, Compare::LESS, 2), false},
      {"CREATE EQUAL 2", cmp("k", Compare::CREATE, Compare::EQUAL, 2), true},
      {"MOD EQUAL 3", cmp("k", Compare::MOD, Compare::EQUAL, 3), true},
      {"MOD LESS 3", cmp("k", Compare::MOD, Compare::LESS, 3), false},
      {"LEASE EQUAL 0", cmp("k", Compare::LEASE, Compare::EQUAL, 0), true},
      {"VALUE EQUAL m", cmp("k", Compare::VALUE, Compare::EQUAL, 0, "m"), true},
      {"VALUE GREATER a", cmp("k", Compare::VALUE, Compare::GREATER, 0, "a"), true},
      {"VALUE LESS a", cmp("k", Compare::VALUE, Compare::LESS, 0, "a"), false},
      {"missing key: CREATE EQUAL 0 (the lock recipe)",
       cmp("nope", Compare::CREATE, Compare::EQUAL, 0), true},
      {"missing key: VERSION EQUAL 0", cmp("nope", Compare::VERSION, Compare::EQUAL, 0), true},
      {"missing key: VALUE always fails", cmp("nope", Compare::VALUE, Compare::NOT_EQUAL, 0, "x"),
       false},
      {"range: every key's MOD GREATER 1", cmp("k", Compare::MOD, Compare::GREATER, 1, "", "l"),
       true},
      {"range: every key's VALUE EQUAL m fails on k2",
       cmp("k", Compare::VALUE, Compare::EQUAL, 0, "m", "l"), false},
      {"empty range: CREATE EQUAL 0", cmp("x", Compare::CREATE, Compare::EQUAL, 0, "", "y"), true},
  };
  for (const auto& c : cases) {
    auto o = h_.apply(txn({c.c}, {op_get("k")}, {}));
    ASSERT_TRUE(o.status.is_ok()) << c.name << ": " << o.status.to_string();
    EXPECT_EQ(o.response.txn().succeeded(), c.want) << c.name;
  }
  EXPECT_EQ(h_.store().revision(), 4) << "read-only txns do not create revisions";
}

TEST_F(StoreTest, TxnIsOneRevisionWithSubRevisionsAndSeesItsOwnWrites) {
  h_.put("a", "1");  // 2
  ApplyResult all;
  auto o =
      h_.apply(txn({cmp("a", Compare::VALUE, Compare::EQUAL, 0, "1")},
                   {op_get("b"), op_put("b", "2"), op_get("b"), op_put("c", "3"), op_del("a")}),
               &all);
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  const auto& t = o.response.txn();
  EXPECT_TRUE(t.succeeded());
  EXPECT_EQ(t.header().revision(), 3);
  ASSERT_EQ(t.responses_size(), 5);
  EXPECT_EQ(t.responses(0).response_range().kvs_size(), 0);
  EXPECT_EQ(t.responses(0).response_range().header().revision(), 2) << "before the first write";
  EXPECT_EQ(t.responses(1).response_put().header().revision(), 3);
  ASSERT_EQ(t.responses(2).response_range().kvs_size(), 1) << "reads see the txn's own put";
  EXPECT_EQ(t.responses(2).response_range().header().revision(), 3);
  EXPECT_EQ(t.responses(4).response_delete_range().deleted(), 1);
  EXPECT_EQ(h_.store().revision(), 3);
  // Events: one group for revision 3, in op order.
  ASSERT_EQ(all.events.size(), 1u);
  EXPECT_EQ(all.events[0].revision, 3);
  ASSERT_EQ(all.events[0].events.size(), 3u);
  EXPECT_EQ(all.events[0].events[0].kv().key(), "b");
  EXPECT_EQ(all.events[0].events[2].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(all.events[0].events[2].kv().mod_revision(), 3);
  EXPECT_EQ(all.events[0].events[2].prev_kv().value(), "1");
  // Sub-revisions: b and c both at mod 3.
  auto r = h_.get(range_req("b", "d"));
  ASSERT_EQ(r.kvs_size(), 2);
  EXPECT_EQ(r.kvs(0).mod_revision(), 3);
  EXPECT_EQ(r.kvs(1).mod_revision(), 3);
}

TEST_F(StoreTest, NestedTxnComparesUseTheStateBeforeTheTxn) {
  h_.put("x", "0");  // 2
  etcdserverpb::RequestOp nested;
  auto* n = nested.mutable_request_txn();
  // Evaluated before the outer put: x is still "0".
  *n->add_compare() = cmp("x", Compare::VALUE, Compare::EQUAL, 0, "0");
  *n->add_success() = op_put("y", "then");
  *n->add_failure() = op_put("y", "else");
  auto o = h_.apply(txn({}, {op_put("x", "1"), nested}));
  ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
  ASSERT_EQ(o.response.txn().responses_size(), 2);
  EXPECT_TRUE(o.response.txn().responses(1).response_txn().succeeded());
  EXPECT_EQ(o.response.txn().responses(1).response_txn().header().revision(), 0)
      << "etcd leaves nested txn headers empty";
  EXPECT_EQ(h_.get(range_req("y")).kvs(0).value(), "then");
  EXPECT_EQ(h_.store().revision(), 3);
}

TEST_F(StoreTest, TxnFailureBranchAndErrors) {
  auto o = h_.apply(txn({cmp("k", Compare::VERSION, Compare::GREATER, 0)}, {op_put("k", "s")},
                        {op_put("k", "f")}));
  EXPECT_FALSE(o.response.txn().succeeded());
  EXPECT_EQ(h_.get(range_req("k")).kvs(0).value(), "f");

  struct Case {
    const char* name;
    raftkvpb::InternalRequest req;
    Status want;
  };
  etcdserverpb::RequestOp ignore;
  ignore.mutable_request_put()->set_key("missing");
  ignore.mutable_request_put()->set_ignore_value(true);
  etcdserverpb::RequestOp future_get = op_get("k");
  future_get.mutable_request_range()->set_revision(100);
  etcdserverpb::RequestOp leased = op_put("l", "v");
  leased.mutable_request_put()->set_lease(77);
  const std::vector<Case> cases = {
      {"ignore_value on a missing key", txn({}, {ignore}), errors::key_not_found()},
      {"range at a future revision", txn({}, {future_get}), errors::future_rev()},
      {"put with an unknown lease", txn({}, {leased}), errors::lease_not_found()},
  };
  for (const auto& c : cases) {
    const int64_t before = h_.store().revision();
    auto out = h_.apply(c.req);
    EXPECT_EQ(out.status, c.want) << c.name;
    EXPECT_EQ(h_.store().revision(), before) << c.name;
  }
}

TEST_F(StoreTest, CompactionRules) {
  h_.put("a", "1");        // 2
  h_.put("a", "2");        // 3
  h_.put("b", "1");        // 4
  h_.apply(del_req("b"));  // 5
  h_.put("c", "1");        // 6
  auto o = h_.apply(compact_req(5));
  ASSERT_TRUE(o.status.is_ok());
  EXPECT_EQ(o.response.compaction().header().revision(), 6);
  EXPECT_EQ(h_.store().compact_revision(), 5);
  EXPECT_EQ(h_.store().revision(), 6) << "compaction does not create a revision";

  struct Case {
    int64_t rev;
    Status want;
  };
  for (const Case& c : std::vector<Case>{{4, errors::compacted()},
                                         {1, errors::compacted()},
                                         {5, Status::ok()},
                                         {6, Status::ok()},
                                         {7, errors::future_rev()}}) {
    auto r = h_.store().range(range_req("a", "z", c.rev));
    EXPECT_EQ(r.status(), c.want) << "range at " << c.rev;
  }
  auto at5 = h_.get(range_req("a", "z", 5));
  EXPECT_EQ(keys_of(at5), std::vector<std::string>{"a"})
      << "reads at the compaction point still work";
  EXPECT_EQ(h_.apply(compact_req(5)).status, errors::compacted()) << "again at the same revision";
  EXPECT_EQ(h_.apply(compact_req(3)).status, errors::compacted());
  EXPECT_EQ(h_.apply(compact_req(9)).status, errors::future_rev());
  EXPECT_EQ(h_.store().hash_kv(5).status(), errors::compacted())
      << "HashKV: <= compact is compacted";
  EXPECT_TRUE(h_.store().hash_kv(6).is_ok());

  // physical: the old revisions leave RocksDB in the background.
  EXPECT_TRUE(h_.store().wait_physical_compaction(5, std::chrono::seconds(30)));
  EXPECT_GE(h_.store().physical_compact_revision(), 5);
  // b was deleted at 5, the compaction point itself: its tombstone stays, so
  // a watcher from 5 still receives the delete (etcd-io/etcd#18089).
  EXPECT_EQ(h_.store().index_key_count(), 3u);
  auto from5 = h_.store().events_since(5, "b", "", false, 10);
  ASSERT_TRUE(from5.is_ok()) << from5.status().to_string();
  ASSERT_EQ(from5->revisions.size(), 1u);
  EXPECT_EQ(from5->revisions[0].revision, 5);
  EXPECT_EQ(from5->revisions[0].events[0].type(), mvccpb::Event::DELETE);
  // The next compaction takes it: then b's history is gone from the index.
  h_.put("d", "1");  // 7
  ASSERT_TRUE(h_.apply(compact_req(6)).status.is_ok());
  EXPECT_EQ(h_.store().index_key_count(), 3u) << "a, c and d";
}

TEST_F(StoreTest, HashKvCoversRevisionsUpToItsArgument) {
  h_.put("a", "1");  // 2
  h_.put("b", "1");  // 3
  auto at3 = h_.store().hash_kv(3);
  ASSERT_TRUE(at3.is_ok());
  EXPECT_EQ(at3->compact_revision(), -1);
  h_.put("a", "2");  // 4
  EXPECT_EQ(h_.store().hash_kv(3)->hash(), at3->hash()) << "later writes do not change HashKV(3)";
  EXPECT_NE(h_.store().hash_kv(4)->hash(), at3->hash());
  EXPECT_EQ(h_.store().hash_kv(0)->header().revision(), 4);
  EXPECT_EQ(h_.store().hash_kv(5).status(), errors::future_rev());

  // The same history elsewhere gives the same hash; one different value does not.
  TempDir tmp;
  Harness same(tmp.sub("same")), other(tmp.sub("other"));
  for (Harness* x : {&same, &other}) {
    x->put("a", "1");
    x->put("b", "1");
  }
  same.put("a", "2");
  other.put("a", "3");
  EXPECT_EQ(same.hash(), h_.hash());
  EXPECT_NE(other.hash(), h_.hash());
  // Compaction: the hash reports the compaction point and does not depend on
  // how far the physical removal has got.
  h_.apply(compact_req(3));
  same.apply(compact_req(3));
  ASSERT_TRUE(same.store().wait_physical_compaction(3, std::chrono::seconds(30)));
  EXPECT_EQ(h_.store().hash_kv(4)->compact_revision(), 3);
  EXPECT_EQ(same.hash(), h_.hash());
}

TEST_F(StoreTest, EventsCarryKvAndPrevKvPerRevision) {
  ApplyResult all;
  h_.apply(put_req("k", "v1"), &all);
  ASSERT_EQ(all.events.size(), 1u);
  EXPECT_EQ(all.events[0].events[0].type(), mvccpb::Event::PUT);
  EXPECT_EQ(all.events[0].events[0].kv().version(), 1);
  EXPECT_FALSE(all.events[0].events[0].has_prev_kv());
  h_.apply(put_req("k", "v2"), &all);
  EXPECT_EQ(all.events[0].events[0].prev_kv().value(), "v1");
  h_.apply(del_req("k"), &all);
  EXPECT_EQ(all.events[0].events[0].type(), mvccpb::Event::DELETE);
  EXPECT_EQ(all.events[0].events[0].kv().key(), "k");
  EXPECT_EQ(all.events[0].events[0].kv().mod_revision(), 4);
  EXPECT_EQ(all.events[0].events[0].prev_kv().value(), "v2");
  h_.apply(del_req("k"), &all);
  EXPECT_TRUE(all.events.empty()) << "no change, no event";
}

TEST_F(StoreTest, EventsSinceReplaysTheLiveEventsForWatchCatchUp) {
  // Record the live events of a mixed history.
  std::vector<RevisionEvents> live;
  auto record = [&](const raftkvpb::InternalRequest& r) {
    ApplyResult all;
    h_.apply(r, &all);
    for (auto& e : all.events) live.push_back(e);
  };
  record(put_req("a", "1"));
  record(put_req("b", "1"));
  record(put_req("a", "2"));
  record(del_req("a", "c"));
  record(txn({}, {op_put("a", "3"), op_put("c", "3")}));
  record(put_req("zz", "out of range"));
  const int64_t first = live.front().revision;

  auto page = h_.store().events_since(first, "a", std::string(1, '\0'), true, 1000);
  ASSERT_TRUE(page.is_ok()) << page.status().to_string();
  ASSERT_EQ(page->revisions.size(), live.size());
  for (size_t i = 0; i < live.size(); ++i) {
    ASSERT_EQ(page->revisions[i].revision, live[i].revision);
    ASSERT_EQ(page->revisions[i].events.size(), live[i].events.size());
    for (size_t j = 0; j < live[i].events.size(); ++j) {
      EXPECT_EQ(page->revisions[i].events[j].SerializeAsString(),
                live[i].events[j].SerializeAsString())
          << "revision " << live[i].revision << " event " << j;
    }
  }
  EXPECT_EQ(page->next_revision, h_.store().revision() + 1);

  // A key range, without prev_kv.
  page = h_.store().events_since(first, "b", "c", false, 1000);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->revisions.size(), 2u);  // put b, delete b
  EXPECT_EQ(page->revisions[1].events[0].type(), mvccpb::Event::DELETE);
  EXPECT_FALSE(page->revisions[1].events[0].has_prev_kv());

  // Paging: whole revisions, at least max_events per page.
  page = h_.store().events_since(first, "a", std::string(1, '\0'), false, 3);
  ASSERT_TRUE(page.is_ok());
  ASSERT_EQ(page->revisions.size(), 3u);  // 1 + 1 + 1 events
  auto next = h_.store().events_since(page->next_revision, "a", std::string(1, '\0'), false, 3);
  ASSERT_TRUE(next.is_ok());
  ASSERT_EQ(next->revisions.size(), 2u) << "the two-event delete, then the txn finishes the page";
  EXPECT_EQ(next->revisions[0].events.size(), 2u);

  // Below the compaction point: compacted, as etcd cancels such a watch.
  h_.apply(compact_req(first + 2));
  EXPECT_EQ(h_.store().events_since(first, "a", "", false, 10).status(), errors::compacted());
  EXPECT_TRUE(h_.store().events_since(first + 2, "a", "", false, 10).is_ok());
}

TEST_F(StoreTest, QuotaRejectsWritesButAllowsDeletesAndCompaction) {
  TempDir tmp;
  StoreOptions o;
  o.quota_backend_bytes = 4096;
  Harness h(tmp.sub("q"), o);
  const std::string big(1000, 'x');
  int accepted = 0;
  Status last;
  for (int i = 0; i < 10; ++i) {
    auto out = h.apply(put_req("k", big));
    last = out.status;
    if (out.status.is_ok()) ++accepted;
  }
  EXPECT_EQ(accepted, 3);
  EXPECT_EQ(last, errors::no_space());
  EXPECT_LE(h.store().logical_size_bytes(), 4096u);
  // A txn with a put is refused; a delete and a compaction are not.
  auto t = txn({}, {op_put("t", big)});
  EXPECT_EQ(h.apply(t).status, errors::no_space());
  const int64_t rev = h.store().revision();
  EXPECT_TRUE(h.apply(compact_req(rev)).status.is_ok());
  // Compaction freed the old revisions: writes work again without an alarm dance.
  EXPECT_TRUE(h.apply(put_req("k", big)).status.is_ok());
  EXPECT_TRUE(h.apply(del_req("k")).status.is_ok());
}

TEST_F(StoreTest, LeasesGrantAttachRevoke) {
  raftkvpb::InternalRequest g;
  g.mutable_lease_grant()->set_id(7);
  g.mutable_lease_grant()->set_ttl(10);
  auto o = h_.apply(g);
  ASSERT_TRUE(o.status.is_ok());
  EXPECT_EQ(o.response.lease_grant().id(), 7);
  EXPECT_EQ(o.response.lease_grant().ttl(), 10);
  EXPECT_EQ(h_.apply(g).status, errors::lease_exists());
  g.mutable_lease_grant()->set_id(8);
  g.mutable_lease_grant()->set_ttl(9000000001);
  EXPECT_EQ(h_.apply(g).status, errors::lease_ttl_too_large());

  EXPECT_EQ(h_.apply(put_req("x", "1", 99)).status, errors::lease_not_found());
  h_.put("a", "1", 7);
  h_.put("b", "1", 7);
  h_.put("c", "1", 7);
  h_.put("c", "2", 0);  // detaches c
  EXPECT_EQ(h_.store().lease_keys(7), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(h_.get(range_req("a")).kvs(0).lease(), 7);
  // ignore_lease keeps the lease.
  auto keep = put_req("a", "2");
  keep.mutable_put()->set_ignore_lease(true);
  EXPECT_TRUE(h_.apply(keep).status.is_ok());
  EXPECT_EQ(h_.get(range_req("a")).kvs(0).lease(), 7);

  const int64_t before = h_.store().revision();
  raftkvpb::InternalRequest rv;
  rv.mutable_lease_revoke()->set_id(7);
  ApplyResult all;
  o = h_.apply(rv, &all);
  ASSERT_TRUE(o.status.is_ok());
  EXPECT_EQ(h_.store().revision(), before + 1) << "all attached keys go in one revision";
  EXPECT_EQ(o.response.lease_revoke().header().revision(), before + 1);
  ASSERT_EQ(all.events.size(), 1u);
  EXPECT_EQ(all.events[0].events.size(), 2u);
  EXPECT_EQ(keys_of(h_.get(range_req("a", "z"))), std::vector<std::string>{"c"});
  EXPECT_FALSE(h_.store().lease_exists(7));
  EXPECT_EQ(h_.apply(rv).status, errors::lease_not_found());

  // Leases survive a restart, with their keys.
  g.mutable_lease_grant()->set_id(9);
  g.mutable_lease_grant()->set_ttl(5);
  ASSERT_TRUE(h_.apply(g).status.is_ok());
  h_.put("z", "1", 9);
  h_.reopen();
  EXPECT_TRUE(h_.store().lease_exists(9));
  EXPECT_EQ(h_.store().lease_keys(9), std::vector<std::string>{"z"});
}

TEST_F(StoreTest, EntriesWithoutRequestsOnlyAdvanceTheAppliedIndex) {
  auto p = put_req("k", "v");
  std::vector<ApplyEntry> batch = {
      {raft::Index(1), nullptr}, {raft::Index(2), &p}, {raft::Index(3), nullptr}};
  auto res = h_.store().apply(batch);
  ASSERT_TRUE(res.is_ok());
  ASSERT_EQ(res->outcomes.size(), 1u);
  EXPECT_EQ(res->outcomes[0].index.value(), 2u);
  EXPECT_EQ(h_.store().applied_index().value(), 3u);
  EXPECT_EQ(h_.store().revision(), 2);
}

TEST(StoreValidate, EtcdErrorTable) {
  StoreOptions o;
  o.max_txn_ops = 3;
  o.max_request_bytes = 1024;
  struct Case {
    const char* name;
    raftkvpb::InternalRequest req;
    Status want;
  };
  auto with_put = [](auto f) {
    auto r = put_req("k", "v");
    f(r.mutable_put());
    return r;
  };
  std::vector<Case> cases;
  cases.push_back({"put empty key", put_req("", "v"), errors::empty_key()});
  cases.push_back({"put ignore_value with value",
                   with_put([](auto* p) { p->set_ignore_value(true); }), errors::value_provided()});
  cases.push_back({"put ignore_lease with lease", with_put([](auto* p) {
                     p->set_ignore_lease(true);
                     p->set_lease(5);
                   }),
                   errors::lease_provided()});
  cases.push_back({"delete empty key", del_req(""), errors::empty_key()});
  {
    raftkvpb::InternalRequest r;
    r.mutable_range();
    cases.push_back({"range empty key", r, errors::empty_key()});
  }
  cases.push_back(
      {"request too large", put_req("k", std::string(2000, 'x')), errors::request_too_large()});
  cases.push_back({"too many ops",
                   txn({}, {op_put("a", ""), op_put("b", ""), op_put("c", ""), op_put("d", "")}),
                   errors::too_many_ops()});
  cases.push_back({"compare with empty key",
                   txn({cmp("", Compare::VERSION, Compare::EQUAL, 0)}, {}), errors::empty_key()});
  cases.push_back({"empty op", txn({}, {etcdserverpb::RequestOp()}), errors::key_not_found()});
  cases.push_back(
      {"duplicate put", txn({}, {op_put("a", "1"), op_put("a", "2")}), errors::duplicate_key()});
  cases.push_back({"put inside a deleted range", txn({}, {op_del("a", "c"), op_put("b", "1")}),
                   errors::duplicate_key()});
  cases.push_back({"put and delete of one key", txn({}, {op_put("a", "1"), op_del("a")}),
                   errors::duplicate_key()});
  {
    etcdserverpb::RequestOp keep = op_put("b", "");
    keep.mutable_request_put()->set_ignore_value(true);
    cases.push_back({"put of a key deleted by a range_end \\0 delete (etcd misses this)",
                     txn({}, {op_del("a", std::string(1, '\0')), keep}), errors::duplicate_key()});
  }
  cases.push_back({"two deletes are fine", txn({}, {op_del("a"), op_del("a", "b")}), Status::ok()});
  cases.push_back({"same key in success and failure is fine",
                   txn({}, {op_put("a", "1")}, {op_put("a", "2")}), Status::ok()});
  {
    etcdserverpb::RequestOp nested;
    *nested.mutable_request_txn()->add_success() = op_put("a", "n");
    cases.push_back({"put in a nested txn and its parent", txn({}, {op_put("a", "1"), nested}),
                     errors::duplicate_key()});
    etcdserverpb::RequestOp then_else;
    *then_else.mutable_request_txn()->add_success() = op_put("a", "t");
    *then_else.mutable_request_txn()->add_failure() = op_put("a", "e");
    cases.push_back({"nested then/else may put the same key", txn({}, {then_else}), Status::ok()});
  }
  cases.push_back({"plain put is valid", put_req("k", "v"), Status::ok()});
  for (const auto& c : cases) {
    EXPECT_EQ(Store::validate(c.req, o), c.want) << c.name;
  }
  // The apply path reaches the same verdict for shape errors.
  TempDir tmp;
  Harness h(tmp.sub("v"));
  EXPECT_EQ(h.apply(put_req("", "v")).status, errors::empty_key());
  EXPECT_EQ(h.apply(txn({}, {op_put("a", "1"), op_put("a", "2")})).status, errors::duplicate_key());
  EXPECT_EQ(h.store().revision(), 1);
}

TEST(StoreErrors, CodesAndMessagesAreEtcds) {
  EXPECT_EQ(errors::compacted().code(), Code::kOutOfRange);
  EXPECT_EQ(errors::compacted().message(),
            "etcdserver: mvcc: required revision has been compacted");
  EXPECT_EQ(errors::future_rev().message(),
            "etcdserver: mvcc: required revision is a future revision");
  EXPECT_EQ(errors::no_space().code(), Code::kResourceExhausted);
  EXPECT_EQ(errors::no_space().message(), "etcdserver: mvcc: database space exceeded");
  EXPECT_EQ(errors::lease_not_found().code(), Code::kNotFound);
  EXPECT_EQ(errors::key_not_found().message(), "etcdserver: key not found");
  EXPECT_EQ(errors::duplicate_key().message(), "etcdserver: duplicate key given in txn request");
}

}  // namespace
}  // namespace raftkv::kv
