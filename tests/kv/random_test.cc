// Randomized tests: the store against a simple reference model of etcd's MVCC
// semantics, and determinism across restarts, crashes, batchings and
// snapshot restores (identical HashKV).
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "kv/errors.h"
#include "kv/store.h"
#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using testing::Harness;
using testing::TempDir;

// ---------------------------------------------------------------- the model
// Full history per key, no index, no RocksDB, no compaction pruning: the
// obvious reading of etcd's rules.
struct Model {
  struct Version {
    int64_t mod = 0, create = 0, version = 0;
    std::string value;
    bool tombstone = false;
  };
  std::map<std::string, std::vector<Version>> history;
  int64_t rev = 1;
  int64_t compact = -1;

  const Version* at(const std::string& k, int64_t r) const {
    auto it = history.find(k);
    if (it == history.end()) return nullptr;
    const Version* best = nullptr;
    for (const auto& v : it->second) {
      if (v.mod <= r) best = &v;
    }
    return best != nullptr && !best->tombstone ? best : nullptr;
  }
  static bool in(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string(1, '\0')) return k >= key;
    return k >= key && k < end;
  }
  std::vector<std::pair<std::string, Version>> live(const std::string& key, const std::string& end,
                                                    int64_t r) const {
    std::vector<std::pair<std::string, Version>> out;
    for (const auto& [k, _] : history) {
      if (!in(k, key, end)) continue;
      if (const Version* v = at(k, r)) out.emplace_back(k, *v);
    }
    return out;
  }
  // Writes of one revision.
  void put(const std::string& k, const std::string& v, int64_t r) {
    const Version* prev = at(k, r);  // r includes earlier writes of this revision
    Version n;
    n.mod = r;
    n.create = prev != nullptr ? prev->create : r;
    n.version = prev != nullptr ? prev->version + 1 : 1;
    n.value = v;
    history[k].push_back(n);
  }
  void tombstone(const std::string& k, int64_t r) {
    Version n;
    n.mod = r;
    n.tombstone = true;
    history[k].push_back(n);
  }
};

std::string pick_key(std::mt19937_64& rng) {
  static const char* kKeys[] = {"a", "b", "ba", "bb", "c", "d", "e", "f", "g", "h", "zz"};
  return kKeys[rng() % (sizeof(kKeys) / sizeof(kKeys[0]))];
}
std::string pick_end(std::mt19937_64& rng, const std::string& key) {
  switch (rng() % 4) {
    case 0:
      return "";
    case 1:
      return std::string(1, '\0');
    default: {
      std::string e = key;
      e.back() = static_cast<char>(e.back() + 1 + static_cast<int>(rng() % 3));
      return e;
    }
  }
}

class ModelBased : public ::testing::TestWithParam<uint64_t> {};

TEST_P(ModelBased, StoreAgreesWithReferenceModelOverRandomOps) {
  const uint64_t seed = GetParam();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937_64 rng(seed);
  TempDir tmp;
  Harness h(tmp.sub("db"));
  Model m;
  constexpr int kOps = 2500;
  for (int step = 0; step < kOps; ++step) {
    const int kind = static_cast<int>(rng() % 100);
    if (kind < 35) {  // put
      const std::string k = pick_key(rng), v = "v" + std::to_string(rng() % 1000);
      auto o = h.apply(testing::put_req(k, v));
      ASSERT_TRUE(o.status.is_ok());
      m.put(k, v, ++m.rev);
      ASSERT_EQ(o.response.put().header().revision(), m.rev);
    } else if (kind < 45) {  // delete range
      const std::string k = pick_key(rng), e = pick_end(rng, k);
      auto o = h.apply(testing::del_req(k, e));
      const auto victims = m.live(k, e, m.rev);
      ASSERT_EQ(o.response.delete_range().deleted(), static_cast<int64_t>(victims.size()));
      if (!victims.empty()) {
        ++m.rev;
        for (const auto& [vk, _] : victims) m.tombstone(vk, m.rev);
      }
      ASSERT_EQ(o.response.delete_range().header().revision(), m.rev);
    } else if (kind < 60) {  // txn: if version(k) == n then put k2 / else delete k2
      const std::string k = pick_key(rng), k2 = pick_key(rng);
      const int64_t n = static_cast<int64_t>(rng() % 3);
      raftkvpb::InternalRequest r;
      auto* c = r.mutable_txn()->add_compare();
      c->set_key(k);
      c->set_target(Compare::VERSION);
      c->set_result(Compare::EQUAL);
      c->set_version(n);
      auto* p = r.mutable_txn()->add_success()->mutable_request_put();
      p->set_key(k2);
      p->set_value("t" + std::to_string(step));
      r.mutable_txn()->add_failure()->mutable_request_delete_range()->set_key(k2);
      auto o = h.apply(r);
      ASSERT_TRUE(o.status.is_ok()) << o.status.to_string();
      const Model::Version* cur = m.at(k, m.rev);
      const bool ok = (cur != nullptr ? cur->version : 0) == n;
      ASSERT_EQ(o.response.txn().succeeded(), ok);
      if (ok) {
        m.put(k2, "t" + std::to_string(step), ++m.rev);
      } else if (m.at(k2, m.rev) != nullptr) {
        m.tombstone(k2, ++m.rev);
      }
      ASSERT_EQ(o.response.txn().header().revision(), m.rev);
    } else if (kind < 63) {  // compaction
      const int64_t lo = std::max<int64_t>(m.compact, 0);
      const int64_t at = lo + static_cast<int64_t>(rng() % static_cast<uint64_t>(m.rev - lo + 2));
      auto o = h.apply(testing::compact_req(at));
      if (at <= m.compact) {
        ASSERT_EQ(o.status, errors::compacted());
      } else if (at > m.rev) {
        ASSERT_EQ(o.status, errors::future_rev());
      } else {
        ASSERT_TRUE(o.status.is_ok());
        m.compact = at;
      }
    } else {  // range read, possibly historical, with limit / sort
      const std::string k = pick_key(rng), e = pick_end(rng, k);
      const int64_t back = static_cast<int64_t>(rng() % 40);
      const int64_t at = rng() % 3 == 0 ? 0 : m.rev - back + 2;
      RangeRequest req = testing::range_req(k, e, at);
      const int64_t limit = static_cast<int64_t>(rng() % 4);
      req.set_limit(limit);
      const bool descend = rng() % 4 == 0;
      if (descend) req.set_sort_order(RangeRequest::DESCEND);
      auto res = h.store().range(req);
      const int64_t eff = at <= 0 ? m.rev : at;
      if (at > m.rev) {
        ASSERT_EQ(res.status(), errors::future_rev());
        continue;
      }
      if (eff < m.compact) {
        ASSERT_EQ(res.status(), errors::compacted());
        continue;
      }
      ASSERT_TRUE(res.is_ok()) << res.status().to_string();
      auto want = m.live(k, e, eff);
      ASSERT_EQ(res->count(), static_cast<int64_t>(want.size()));
      if (descend) std::reverse(want.begin(), want.end());
      const bool more = limit > 0 && static_cast<int64_t>(want.size()) > limit;
      if (more) want.resize(static_cast<size_t>(limit));
      ASSERT_EQ(res->more(), more);
      ASSERT_EQ(res->header().revision(), m.rev);
      ASSERT_EQ(res->kvs_size(), static_cast<int>(want.size()));
      for (size_t i = 0; i < want.size(); ++i) {
        const auto& kv = res->kvs(static_cast<int>(i));
        ASSERT_EQ(kv.key(), want[i].first);
        ASSERT_EQ(kv.value(), want[i].second.value);
        ASSERT_EQ(kv.create_revision(), want[i].second.create);
        ASSERT_EQ(kv.mod_revision(), want[i].second.mod);
        ASSERT_EQ(kv.version(), want[i].second.version);
      }
    }
    ASSERT_EQ(h.store().revision(), m.rev);
    if (step == kOps / 2) h.reopen();  // the index rebuilt from disk must agree too
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, ModelBased, ::testing::Values(1u, 2u, 3u));

// ---------------------------------------------------------------- determinism

std::vector<raftkvpb::InternalRequest> random_log(uint64_t seed, int n) {
  std::mt19937_64 rng(seed);
  std::vector<raftkvpb::InternalRequest> log;
  int64_t rev_guess = 1;
  for (int i = 0; i < n; ++i) {
    const int kind = static_cast<int>(rng() % 20);
    if (kind < 11) {
      log.push_back(
          testing::put_req(pick_key(rng) + std::to_string(rng() % 30),
                           std::string(rng() % 200, static_cast<char>('a' + rng() % 26))));
      ++rev_guess;
    } else if (kind < 14) {
      const std::string k = pick_key(rng);
      log.push_back(testing::del_req(k, pick_end(rng, k)));
    } else if (kind < 18) {
      raftkvpb::InternalRequest r;
      auto* c = r.mutable_txn()->add_compare();
      c->set_key(pick_key(rng) + std::to_string(rng() % 30));
      c->set_target(Compare::MOD);
      c->set_result(Compare::GREATER);
      c->set_mod_revision(static_cast<int64_t>(rng() % static_cast<uint64_t>(rev_guess + 1)));
      auto* p = r.mutable_txn()->add_success()->mutable_request_put();
      p->set_key(pick_key(rng) + std::to_string(rng() % 30));
      p->set_value("txn");
      auto* d = r.mutable_txn()->add_success()->mutable_request_delete_range();
      d->set_key("zz");
      r.mutable_txn()->add_failure()->mutable_request_range()->set_key("a");
      log.push_back(r);
    } else if (kind < 19) {
      // Often fails (compacted / future): failures must be deterministic too.
      log.push_back(testing::compact_req(rev_guess - static_cast<int64_t>(rng() % 50)));
    } else {
      raftkvpb::InternalRequest r;
      r.mutable_lease_grant()->set_id(static_cast<int64_t>(rng() % 5) + 1);
      r.mutable_lease_grant()->set_ttl(30);
      log.push_back(r);
      log.push_back(testing::put_req("leased" + std::to_string(rng() % 4), "v",
                                     static_cast<int64_t>(rng() % 5) + 1));
      if (rng() % 3 == 0) {
        raftkvpb::InternalRequest rv;
        rv.mutable_lease_revoke()->set_id(static_cast<int64_t>(rng() % 5) + 1);
        log.push_back(rv);
      }
    }
  }
  return log;
}

// Applies log[from, to) at indexes from+1.. in random batch sizes; returns
// every outcome status and revision in order.
std::vector<std::string> apply_log(Store& s, const std::vector<raftkvpb::InternalRequest>& log,
                                   size_t from, size_t to, std::mt19937_64& rng) {
  std::vector<std::string> trace;
  size_t i = from;
  while (i < to) {
    const size_t n = std::min<size_t>(to - i, 1 + rng() % 25);
    std::vector<ApplyEntry> batch;
    for (size_t j = i; j < i + n; ++j) batch.push_back({raft::Index(j + 1), &log[j]});
    auto r = s.apply(batch);
    EXPECT_TRUE(r.is_ok()) << r.status().to_string();
    if (!r.is_ok()) return trace;
    for (const auto& o : r->outcomes) {
      trace.push_back(o.status.to_string() + "@" + o.response.SerializeAsString());
    }
    i += n;
  }
  return trace;
}

TEST(Determinism, SameLogSameHashAcrossReopenCrashAndSnapshotRestore) {
  for (uint64_t seed : {11u, 12u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    const auto log = random_log(seed, 3000);
    const size_t mid = log.size() / 2;
    TempDir tmp;
    std::mt19937_64 rng(seed * 7919);

    // A: straight through.
    auto a = Store::open(tmp.sub("a"), StoreOptions());
    ASSERT_TRUE(a.is_ok());
    auto trace_a = apply_log(*a.value(), log, 0, mid, rng);

    // Snapshot of A at mid, restored as C.
    auto snap = a.value()->snapshot();
    ASSERT_TRUE(snap.is_ok());
    std::vector<std::string> chunks;
    for (int guard = 0; guard < 100000; ++guard) {
      auto c = snap.value()->next_chunk();
      ASSERT_TRUE(c.is_ok());
      if (!c->has_value()) break;
      chunks.push_back(**c);
    }
    snap.value().reset();
    size_t pos = 0;
    auto c =
        Store::restore(tmp.sub("c"), StoreOptions(), [&]() -> Result<std::optional<std::string>> {
          if (pos >= chunks.size()) return std::optional<std::string>();
          return std::optional<std::string>(chunks[pos++]);
        });
    ASSERT_TRUE(c.is_ok()) << c.status().to_string();
    ASSERT_EQ(c.value()->applied_index().value(), mid);

    auto rest_a = apply_log(*a.value(), log, mid, log.size(), rng);
    trace_a.insert(trace_a.end(), rest_a.begin(), rest_a.end());
    auto trace_c = apply_log(*c.value(), log, mid, log.size(), rng);

    // B: crash (no flush, RocksDB WAL off) midway, then replay after applied_index().
    StoreOptions crashy;
    crashy.flush_on_close = false;
    std::vector<std::string> trace_b;
    {
      auto b = Store::open(tmp.sub("b"), crashy);
      ASSERT_TRUE(b.is_ok());
      trace_b = apply_log(*b.value(), log, 0, mid, rng);
    }
    auto b = Store::open(tmp.sub("b"), crashy);
    ASSERT_TRUE(b.is_ok()) << b.status().to_string();
    const size_t resume = b.value()->applied_index().value();
    ASSERT_LE(resume, mid);
    trace_b.resize(0);  // outcomes before the crash were answered already; compare the tail
    auto tail_b = apply_log(*b.value(), log, resume, log.size(), rng);
    // D: clean close and reopen midway.
    std::vector<std::string> trace_d;
    {
      auto d = Store::open(tmp.sub("d"), StoreOptions());
      ASSERT_TRUE(d.is_ok());
      trace_d = apply_log(*d.value(), log, 0, mid, rng);
    }
    auto d = Store::open(tmp.sub("d"), StoreOptions());
    ASSERT_TRUE(d.is_ok());
    auto tail_d = apply_log(*d.value(), log, mid, log.size(), rng);
    trace_d.insert(trace_d.end(), tail_d.begin(), tail_d.end());

    EXPECT_EQ(trace_d, trace_a) << "same responses and errors, whatever the batching";
    const std::vector<std::string> a_tail(trace_a.end() - static_cast<long>(trace_c.size()),
                                          trace_a.end());
    EXPECT_EQ(trace_c, a_tail);
    const std::vector<std::string> a_tail_b(trace_a.end() - static_cast<long>(tail_b.size()),
                                            trace_a.end());
    EXPECT_EQ(tail_b, a_tail_b);

    const int64_t rev = a.value()->revision();
    for (Store* s : {b.value().get(), c.value().get(), d.value().get()}) {
      EXPECT_EQ(s->revision(), rev);
      EXPECT_EQ(s->compact_revision(), a.value()->compact_revision());
      EXPECT_EQ(s->applied_index(), a.value()->applied_index());
      EXPECT_EQ(s->logical_size_bytes(), a.value()->logical_size_bytes());
      EXPECT_EQ(s->leases(), a.value()->leases());
      EXPECT_EQ(s->hash_kv(0)->hash(), a.value()->hash_kv(0)->hash());
      // And at a historical revision above the compaction point.
      const int64_t past = std::max<int64_t>(a.value()->compact_revision() + 1, rev - 10);
      EXPECT_EQ(s->hash_kv(past)->hash(), a.value()->hash_kv(past)->hash());
      // The history a watcher would be sent is the same too.
      auto flat = [&](Store* x) {
        std::string out;
        auto page = x->events_since(past, "a", std::string(1, '\0'), true, 100000);
        EXPECT_TRUE(page.is_ok()) << page.status().to_string();
        if (!page.is_ok()) return out;
        for (const auto& r : page->revisions) {
          for (const auto& e : r.events) out += e.SerializeAsString();
        }
        return out;
      };
      const std::string want = flat(a.value().get());
      EXPECT_FALSE(want.empty());
      EXPECT_EQ(flat(s), want);
    }
  }
}

}  // namespace
}  // namespace raftkv::kv
