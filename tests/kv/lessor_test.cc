// Lessor rules with a fake clock and a fake store/leadership: expiry only on
// the primary, through a revoke proposal; full TTL again on promotion; no
// revokes after demotion; keep-alive; rate limit and retry of revokes.
#include "kv/lessor.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>

namespace raftkv::kv {
namespace {

using namespace std::chrono_literals;

struct Fake {
  Lessor::Clock::time_point now{};
  uint64_t leader_term = 0;
  std::optional<uint64_t> applied_term;  // unset: the leader applied an entry of its term
  std::map<int64_t, int64_t> store;  // id -> granted TTL
  std::vector<int64_t> revoked;      // revoke proposals, in order

  Lessor::Hooks hooks() {
    Lessor::Hooks h;
    h.leader_term = [this] { return leader_term; };
    h.applied_term = [this] { return applied_term.value_or(leader_term); };
    h.leases = [this] { return std::vector<std::pair<int64_t, int64_t>>(store.begin(), store.end()); };
    h.lease_ttl = [this](int64_t id) -> std::optional<int64_t> {
      auto it = store.find(id);
      if (it == store.end()) return std::nullopt;
      return it->second;
    };
    h.revoke = [this](int64_t id) { revoked.push_back(id); };
    h.now = [this] { return now; };
    return h;
  }
};

Lessor::Options opts() {
  Lessor::Options o;
  o.max_revokes_per_second = 1000;
  o.revoke_retry = 3s;
  return o;
}

TEST(Lessor, FollowerNeverRevokesAndRefusesRenew) {
  Fake f;
  f.store[1] = 2;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.now += 10s;
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
  EXPECT_FALSE(l.is_primary());
  EXPECT_EQ(l.renew(1).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(l.time_to_live(1).status().code(), Code::kFailedPrecondition);
}

TEST(Lessor, LeaderRevokesExpiredLeaseOnce) {
  Fake f;
  f.leader_term = 2;
  f.store[1] = 5;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.now += 4900ms;
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
  f.now += 100ms;
  l.tick();
  ASSERT_EQ(f.revoked, std::vector<int64_t>{1});
  // Not proposed again while the revoke is in flight...
  f.now += 1s;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 1u);
  // ...but again after the retry interval if it did not take effect.
  f.now += 2s;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 2u);
  // Once applied (gone from the store), nothing more.
  f.store.erase(1);
  f.now += 10s;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 2u);
}

TEST(Lessor, KeepAliveExtendsDeadline) {
  Fake f;
  f.leader_term = 2;
  f.store[7] = 3;
  Lessor l(f.hooks(), opts());
  l.tick();
  for (int i = 0; i < 10; ++i) {
    f.now += 2s;
    ASSERT_EQ(*l.renew(7), 3);
    l.tick();
  }
  EXPECT_TRUE(f.revoked.empty());
  Result<Lessor::LeaseView> v = l.time_to_live(7);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->granted_ttl_seconds, 3);
  EXPECT_EQ(v->remaining_seconds, 3);
  f.now += 1500ms;
  EXPECT_EQ(l.time_to_live(7)->remaining_seconds, 1);  // truncated, as etcd
  f.now += 1500ms;
  l.tick();
  EXPECT_EQ(f.revoked, std::vector<int64_t>{7});
  // An expired lease cannot be kept alive any more.
  EXPECT_EQ(l.renew(7).status().code(), Code::kNotFound);
}

TEST(Lessor, UnknownLeaseIsNotFound) {
  Fake f;
  f.leader_term = 1;
  Lessor l(f.hooks(), opts());
  EXPECT_EQ(l.renew(42).status().code(), Code::kNotFound);
  EXPECT_EQ(l.time_to_live(42).status().code(), Code::kNotFound);
}

TEST(Lessor, LeaseGrantedBetweenTicksCanBeRenewedAtOnce) {
  Fake f;
  f.leader_term = 1;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.store[9] = 4;  // applied after the last tick
  EXPECT_EQ(*l.renew(9), 4);
}

TEST(Lessor, LeaderIsPrimaryOnlyOnceItAppliedAnEntryOfItsTerm) {
  Fake f;
  f.leader_term = 3;
  f.applied_term = 2;  // an earlier-term entry (maybe a revoke) is still to be applied
  f.store[1] = 5;
  Lessor l(f.hooks(), opts());
  l.tick();
  EXPECT_FALSE(l.is_primary());
  EXPECT_EQ(l.renew(1).status().code(), Code::kFailedPrecondition);
  f.now += 10s;
  l.tick();
  EXPECT_TRUE(f.revoked.empty()) << "not primary: no expiry";
  f.applied_term = 3;
  l.tick();
  EXPECT_TRUE(l.is_primary());
  ASSERT_TRUE(l.renew(1).is_ok());
  EXPECT_EQ(*l.renew(1), 5);
}

TEST(Lessor, RevokedByClientIsForgotten) {
  Fake f;
  f.leader_term = 1;
  f.store[3] = 10;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.store.erase(3);
  EXPECT_EQ(l.renew(3).status().code(), Code::kNotFound);
}

TEST(Lessor, PromotionGivesEveryLeaseItsFullTtl) {
  Fake f;
  f.leader_term = 1;
  f.store[1] = 5;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.now += 4s;  // 1 s left under the old leader
  f.leader_term = 0;
  l.tick();
  f.now += 3s;  // no leader for a while: past the old deadline
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
  f.leader_term = 3;  // elected: full TTL from now
  l.tick();
  f.now += 4900ms;
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
  EXPECT_EQ(l.time_to_live(1)->remaining_seconds, 0);
  f.now += 100ms;
  l.tick();
  EXPECT_EQ(f.revoked, std::vector<int64_t>{1});
}

TEST(Lessor, NewTermAsLeaderAlsoPromotes) {
  Fake f;
  f.leader_term = 2;
  f.store[1] = 5;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.now += 4s;
  f.leader_term = 4;  // lost and regained leadership between two ticks
  l.tick();
  f.now += 4s;
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
}

TEST(Lessor, DemotedLeaderStopsExpiring) {
  Fake f;
  f.leader_term = 2;
  f.store[1] = 2;
  Lessor l(f.hooks(), opts());
  l.tick();
  f.leader_term = 0;
  f.now += 10s;
  l.tick();
  EXPECT_TRUE(f.revoked.empty());
}

TEST(Lessor, RevokesAreRateLimited) {
  Fake f;
  f.leader_term = 1;
  for (int64_t id = 1; id <= 25; ++id) f.store[id] = 1;
  Lessor::Options o = opts();
  o.max_revokes_per_second = 10;
  Lessor l(f.hooks(), o);
  l.tick();
  f.now += 2s;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 10u);
  f.now += 500ms;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 10u);
  f.now += 500ms;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 20u);
  f.now += 1s;
  l.tick();
  EXPECT_EQ(f.revoked.size(), 25u);
}

TEST(LeaseMinTtl, IsCeilingOfOneAndAHalfElectionTimeouts) {
  EXPECT_EQ(lease_min_ttl_seconds(1000), 2);
  EXPECT_EQ(lease_min_ttl_seconds(2000), 3);
  EXPECT_EQ(lease_min_ttl_seconds(100), 1);
  EXPECT_EQ(lease_min_ttl_seconds(5000), 8);
}

TEST(LeaseIdGenerator, UniquePositiveAndCarriesMemberBits) {
  LeaseIdGenerator a(0x1234abcd, 1700000000000);
  LeaseIdGenerator b(0x9999, 1700000000000);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int64_t x = a.next();
    const int64_t y = b.next();
    ASSERT_GT(x, 0);
    ASSERT_GT(y, 0);
    ASSERT_TRUE(seen.insert(x).second);
    ASSERT_TRUE(seen.insert(y).second);
  }
  EXPECT_EQ(static_cast<uint64_t>(a.next()) >> 48, 0x2bcdu);  // 0xabcd, sign bit cleared
  EXPECT_EQ(static_cast<uint64_t>(b.next()) >> 48, 0x1999u);  // sign bit cleared
}

}  // namespace
}  // namespace raftkv::kv
