// Seeded random schedules over 3- and 5-node clusters: message drops,
// reordering and duplication, partitions, crashes that lose everything not
// persisted through a Ready (including crashes after the leader sent its
// appends but before it synced), compaction and snapshots, proposals and
// reads. After every step an independent checker asserts:
//   election safety        at most one leader per term;
//   log matching           an (index, term) pair always names the same entry
//                          with the same predecessor term, on every node;
//   leader completeness    a leader of term T holds every entry known
//                          committed at a term below T;
//   state machine safety   every node's applied history is a prefix of one
//                          common history.
//   linearizable reads     a ReadState's index is at least every index known
//                          committed when the read was requested (safe
//                          ReadIndex, and leader leases on seeds whose clocks
//                          run at one rate).
// A liveness phase then heals everything and requires a leader and a commit.
//
// Seeds: RAFT_PROPERTY_SEEDS (env) per cluster size; default 2000, or 50
// in sanitizer builds. RAFT_PROPERTY_FIRST_SEED replays from a given seed.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <random>
#include <sstream>

#include "harness.h"

namespace raftkv::raft::testing {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t kDefaultSeeds = 50;
#else
constexpr uint64_t kDefaultSeeds = 2000;
#endif

uint64_t env_u64(const char* name, uint64_t dflt) {
  const char* v = std::getenv(name);
  return v == nullptr ? dflt : std::strtoull(v, nullptr, 10);
}

class Checker {
 public:
  explicit Checker(Cluster& c) : c_(c) {}

  /// A read is being requested: it must be served at an index no lower than
  /// anything known committed now (a write acknowledged before the read began).
  void on_read(const std::string& ctx) { read_min_[ctx] = committed_.size(); }

  /// Returns "" if every invariant holds, else a description.
  std::string check() {
    for (uint64_t id : c_.ids()) {
      TestNode& n = c_.node(id);
      if (!n.up) continue;
      const Core& core = *n.core;
      core.check_invariants();
      // Election safety.
      if (core.role() == Role::kLeader) {
        auto [it, fresh] = leaders_.emplace(core.term().value(), id);
        if (!fresh && it->second != id) {
          return "two leaders in term " + std::to_string(core.term().value()) + ": " +
                 std::to_string(it->second) + " and " + std::to_string(id);
        }
      }
      const RaftLog& log = core.log();
      // Log matching.
      for (Index i = log.first_index(); i <= log.last_index(); ++i) {
        auto ents = log.slice(i, i + 1, UINT64_MAX);
        if (!ents.is_ok() || ents->size() != 1) return "unreadable log entry";
        const Entry& e = (*ents)[0];
        Result<Term> prev = log.term_result(i - 1);
        Key k{i.value(), e.term.value()};
        auto it = entries_.find(k);
        if (it == entries_.end()) {
          entries_.emplace(k, Seen{e.data, e.type, prev.is_ok() ? prev->value() : UINT64_MAX});
        } else {
          if (it->second.data != e.data || it->second.type != e.type) {
            return "log matching: two different entries at index " + std::to_string(i.value()) +
                   " term " + std::to_string(e.term.value());
          }
          if (prev.is_ok() && it->second.prev_term != UINT64_MAX &&
              it->second.prev_term != prev->value()) {
            return "log matching: different predecessors of index " + std::to_string(i.value());
          }
          if (prev.is_ok() && it->second.prev_term == UINT64_MAX)
            it->second.prev_term = prev->value();
        }
      }
      // Record commitment (index -> term, and the lowest term it was seen committed at).
      for (Index i = std::max(log.first_index(), Index{committed_.size() + 1});
           i <= log.committed(); ++i) {
        Result<Term> t = log.term_result(i);
        if (!t.is_ok()) break;
        committed_.push_back(Committed{t->value(), core.term().value()});
      }
      for (Index i = log.first_index(); i <= log.committed() && i.value() <= committed_.size();
           ++i) {
        Committed& ce = committed_[i.value() - 1];
        if (log.term(i).value() != ce.term) {
          return "committed entry " + std::to_string(i.value()) + " changed term on node " +
                 std::to_string(id);
        }
        ce.seen_at_term = std::min(ce.seen_at_term, core.term().value());
      }
      // Leader completeness.
      if (core.role() == Role::kLeader) {
        for (size_t k = 0; k < committed_.size(); ++k) {
          Index i{k + 1};
          if (committed_[k].seen_at_term >= core.term().value() || i < log.first_index()) continue;
          if (i > log.last_index() || log.term(i).value() != committed_[k].term) {
            return "leader completeness: leader " + std::to_string(id) + " of term " +
                   std::to_string(core.term().value()) + " lacks committed entry " +
                   std::to_string(i.value());
          }
        }
      }
      // Linearizable reads.
      for (size_t& k = read_cursor_[id]; k < n.read_states.size(); ++k) {
        const ReadState& rs = n.read_states[k];
        auto it = read_min_.find(rs.request_ctx);
        if (it == read_min_.end()) return "read state for an unknown request " + rs.request_ctx;
        if (rs.index.value() < it->second) {
          return "stale read: " + rs.request_ctx + " served at " +
                 std::to_string(rs.index.value()) + " but index " + std::to_string(it->second) +
                 " was committed before it began";
        }
      }
      // State machine safety.
      for (size_t k = 0; k < n.history.size(); ++k) {
        if (k < applied_.size()) {
          if (applied_[k] != n.history[k]) {
            return "state machine safety: node " + std::to_string(id) +
                   " applied a different entry at " + std::to_string(k + 1);
          }
        } else {
          applied_.push_back(n.history[k]);
        }
      }
    }
    return "";
  }

 private:
  struct Key {
    uint64_t index, term;
    bool operator<(const Key& o) const {
      return index != o.index ? index < o.index : term < o.term;
    }
  };
  struct Seen {
    std::string data;
    EntryType type;
    uint64_t prev_term;
  };
  struct Committed {
    uint64_t term;
    uint64_t seen_at_term;
  };
  Cluster& c_;
  std::map<uint64_t, uint64_t> leaders_;
  std::map<Key, Seen> entries_;
  std::vector<Committed> committed_;
  std::vector<std::string> applied_;
  std::map<std::string, uint64_t> read_min_;
  std::map<uint64_t, size_t> read_cursor_;

 public:
  std::string stats() const {
    size_t served = 0;
    for (const auto& [id, k] : read_cursor_) served += k;
    return "reads " + std::to_string(read_min_.size()) + " served " + std::to_string(served) +
           ", terms with a leader " + std::to_string(leaders_.size()) + ", committed " +
           std::to_string(committed_.size()) + ", distinct entries " +
           std::to_string(entries_.size());
  }
};

/// Runs one seeded schedule; returns "" or the first violation.
std::string run_seed(uint64_t seed, size_t nodes) {
  std::mt19937_64 rng(seed * 1000003 + nodes);
  auto pick = [&](uint64_t n) { return rng() % n; };
  auto chance = [&](uint64_t per_mille) { return rng() % 1000 < per_mille; };
  const bool pre_vote = chance(700);
  const bool check_quorum = chance(700);
  // Lease reads assume clocks advance at the same rate: those seeds use only
  // the common clock (no per-node skew).
  const bool lease = check_quorum && chance(400);
  const size_t inflight = 1 + pick(8);
  const uint64_t msg_bytes = 30 + pick(200);
  std::vector<uint64_t> ids;
  for (size_t i = 1; i <= nodes; ++i) ids.push_back(i);
  Cluster c(ids, [&](Config& cfg) {
    cfg.pre_vote = pre_vote;
    cfg.check_quorum = check_quorum;
    cfg.max_inflight_msgs = inflight;
    cfg.max_size_per_msg_bytes = msg_bytes;
    cfg.max_inflight_bytes = 0;
    cfg.seed = seed;
    cfg.heartbeat_ticks = 2;
    if (lease) cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  });
  Checker checker(c);
  const uint64_t drop_pm = pick(150), dup_pm = pick(50);
  int proposals = 0, reads = 0;
  std::ostringstream where;
  auto up_ids = [&] {
    std::vector<uint64_t> out;
    for (uint64_t id : ids) {
      if (c.node(id).up) out.push_back(id);
    }
    return out;
  };
  const int steps = 1500;
  for (int step = 0; step < steps; ++step) {
    const uint64_t r = pick(1000);
    auto up = up_ids();
    uint64_t id = ids[pick(ids.size())];
    auto& net = c.network();
    if (r < 150) {
      c.tick_all();  // the common clock
    } else if (r < 170) {
      if (lease) {
        c.tick_all();
      } else {
        c.tick(id);  // clock skew
      }
    } else if (r < 560) {
      // A burst of deliveries: mostly in order, some reordered, dropped or duplicated.
      for (uint64_t burst = 1 + pick(6); burst > 0 && !net.empty(); --burst) {
        size_t k = chance(700) ? 0 : pick(net.size());
        Message m = net[k];
        if (!chance(dup_pm)) net.erase(net.begin() + static_cast<ptrdiff_t>(k));
        if (chance(drop_pm)) {
          c.drop(m);
        } else {
          c.deliver(m);
        }
      }
    } else if (r < 830) {
      c.process_ready(id, /*crash_before_persist=*/chance(5));
    } else if (r < 890) {
      if (c.node(id).up) {
        Status s =
            c.core(id).propose("s" + std::to_string(seed) + "-" + std::to_string(proposals++));
        (void)s;  // refusals (no leader, transfer) are expected
      }
    } else if (r < 925) {
      if (c.node(id).up) {
        std::string ctx = "r" + std::to_string(reads++);
        checker.on_read(ctx);
        Status s = c.core(id).read_index(ctx);
        (void)s;
      }
    } else if (r < 935) {
      if (c.node(id).up && up.size() > 1) c.crash(id);
    } else if (r < 955) {
      if (!c.node(id).up) c.restart(id);
    } else if (r < 968) {
      if (chance(500)) {
        // A clean split into two sides.
        std::set<uint64_t> a, b;
        for (uint64_t x : ids) (chance(500) ? a : b).insert(x);
        c.heal();
        c.partition(a, b);
      } else {
        // One more broken link: partitions that are not transitive.
        uint64_t x = ids[pick(ids.size())], y = ids[pick(ids.size())];
        if (x != y) c.partition({x}, {y});
      }
    } else if (r < 975) {
      c.heal();
    } else if (r < 995) {
      if (c.node(id).up) c.compact(id);
    } else {
      if (c.node(id).up && c.core(id).role() == Role::kLeader) {
        Status s = c.core(id).transfer_leadership(NodeId{ids[pick(ids.size())]});
        (void)s;
      }
    }
    std::string v = checker.check();
    if (!v.empty()) return v + " (step " + std::to_string(step) + ")";
  }
  // Liveness: everything heals and restarts; a leader emerges and commits.
  c.heal();
  for (uint64_t id : ids) {
    if (!c.node(id).up) c.restart(id);
  }
  uint64_t leader = 0;
  for (int round = 0; round < 300 && leader == 0; ++round) {
    c.tick_all();
    c.stabilize();
    std::string v = checker.check();
    if (!v.empty()) return v + " (liveness phase)";
    leader = c.leader();
  }
  if (leader == 0) return "liveness: no leader after healing";
  const std::string last = "final-" + std::to_string(seed);
  bool done = false;
  for (int round = 0; round < 300 && !done; ++round) {
    leader = c.leader();
    if (leader != 0 && c.core(leader).propose(last).is_ok()) {
      c.stabilize();
    }
    c.tick_all();
    c.stabilize();
    std::string v = checker.check();
    if (!v.empty()) return v + " (liveness phase)";
    done = true;
    for (uint64_t id : ids) {
      const auto& h = c.node(id).history;
      done = done && std::find(h.begin(), h.end(), last) != h.end();
    }
  }
  if (std::getenv("RAFT_PROPERTY_STATS"))
    fprintf(stderr, "seed %lu: %s\n", seed, checker.stats().c_str());
  if (!done) {
    std::ostringstream os;
    os << "liveness: final proposal not applied everywhere;";
    for (uint64_t id : ids) {
      NodeStatus st = c.core(id).status();
      os << "\n  node " << id << " role " << int(st.soft_state.role) << " term "
         << st.hard_state.term.value() << " commit " << st.hard_state.commit.value() << " applied "
         << st.applied.value() << " last " << st.last_index.value() << " first "
         << c.core(id).log().first_index().value() << " history " << c.node(id).history.size()
         << " storage-first " << c.storage(id).first_index().value();
      for (const auto& [pid, pv] : st.progress) {
        os << "\n    peer " << pid.value() << " match " << pv.match.value() << " next "
           << pv.next.value() << " state " << progress_state_name(pv.state) << " active "
           << pv.recent_active << " pending_snap " << pv.pending_snapshot.value();
      }
    }
    return os.str();
  }
  return "";
}

void run_many(size_t nodes) {
  const uint64_t seeds = env_u64("RAFT_PROPERTY_SEEDS", kDefaultSeeds);
  const uint64_t first = env_u64("RAFT_PROPERTY_FIRST_SEED", 1);
  for (uint64_t seed = first; seed < first + seeds; ++seed) {
    std::string v = run_seed(seed, nodes);
    ASSERT_TRUE(v.empty()) << "seed " << seed << " with " << nodes << " nodes: " << v
                           << "\n  replay: RAFT_PROPERTY_FIRST_SEED=" << seed
                           << " RAFT_PROPERTY_SEEDS=1";
  }
}

TEST(Property, safety_invariants_hold_under_random_faults_3_nodes) {
  run_many(3);
}
TEST(Property, safety_invariants_hold_under_random_faults_5_nodes) {
  run_many(5);
}

}  // namespace
}  // namespace raftkv::raft::testing
