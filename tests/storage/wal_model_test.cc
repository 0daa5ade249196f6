// Model-based test of the WAL: seeded random sequences of appends, follower
// overwrites, compactions, installed snapshots, failing fsyncs and crashes,
// checked after every recovery against a plain in-memory reference log.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "storage/fault_file_system.h"
#include "storage/wal.h"
#include "test_util.h"

namespace raftkv::storage {
namespace {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::NodeId;
using raft::Term;
using testing::make_entry;

// The reference: what must be on disk after any crash (kDropUnsynced).
struct Model {
  uint64_t base_index = 0, base_term = 0;
  std::map<uint64_t, uint64_t> terms;  ///< index -> term, contiguous after base.
  HardState hs;
  uint64_t last() const { return terms.empty() ? base_index : terms.rbegin()->first; }
  uint64_t term_of(uint64_t i) const { return i == base_index ? base_term : terms.at(i); }
};

constexpr const char* kDir = "/m/wal";

void check(Wal* w, const Model& m, uint32_t seed, int step) {
  SCOPED_TRACE("seed " + std::to_string(seed) + " step " + std::to_string(step));
  ASSERT_EQ(w->base(), (SnapshotMarker{Index(m.base_index), Term(m.base_term)}));
  ASSERT_EQ(w->last_index(), Index(m.last()));
  ASSERT_EQ(w->hard_state(), m.hs);
  for (const auto& [i, t] : m.terms) {
    Result<Entry> e = w->read_entry(Index(i));
    ASSERT_TRUE(e.is_ok()) << i << ": " << e.status().to_string();
    ASSERT_EQ(*e, make_entry(i, t, 60));
  }
}

TEST(WalModel, RandomHistoriesWithCrashesRecoverExactlyTheAcknowledgedLog) {
  for (uint32_t seed = 1; seed <= 40; ++seed) {
    std::mt19937 rng(seed);
    auto pick = [&](uint64_t lo, uint64_t hi) {
      return std::uniform_int_distribution<uint64_t>(lo, hi)(rng);
    };
    FaultFileSystem fs;
    WalOptions o;
    o.segment_bytes = 4096;  // Many cuts and releases.
    auto w = std::move(Wal::open(&fs, kDir, o).value());
    Model m;
    uint64_t term = 1;
    for (int step = 0; step < 150; ++step) {
      const uint64_t op = pick(0, 99);
      if (op < 10) {  // Crash and recover.
        w.reset();
        fs.crash();
        Result<std::unique_ptr<Wal>> r = Wal::open(&fs, kDir, o);
        ASSERT_TRUE(r.is_ok()) << "seed " << seed << ": " << r.status().to_string();
        w = std::move(*r);
        check(w.get(), m, seed, step);
        continue;
      }
      std::vector<Entry> entries;
      std::optional<SnapshotMarker> marker;
      Model next = m;
      if (op < 55 || m.terms.empty()) {  // Append at the tail.
        for (uint64_t k = 0, n = pick(1, 6); k < n; ++k)
          entries.push_back(make_entry(m.last() + 1 + k, term, 60));
      } else if (op < 70) {  // A follower's conflicting suffix is replaced.
        ++term;
        const uint64_t from = pick(m.terms.begin()->first, m.last());
        for (uint64_t k = 0, n = pick(1, 4); k < n; ++k)
          entries.push_back(make_entry(from + k, term, 60));
        next.terms.erase(next.terms.lower_bound(from), next.terms.end());
      } else if (op < 85) {  // Compaction behind a snapshot.
        const uint64_t at = pick(m.base_index, m.last());
        marker = SnapshotMarker{Index(at), Term(m.term_of(at))};
        next.terms.erase(next.terms.begin(), next.terms.upper_bound(at));
      } else {  // A snapshot from the leader past the log: the log is discarded.
        ++term;
        const uint64_t at = m.last() + pick(1, 5);
        marker = SnapshotMarker{Index(at), Term(term)};
        next.terms.clear();
        for (uint64_t k = 0, n = pick(0, 3); k < n; ++k)
          entries.push_back(make_entry(at + 1 + k, term, 60));
      }
      if (marker) {
        next.base_index = marker->index.value();
        next.base_term = marker->term.value();
      }
      for (const Entry& e : entries) next.terms[e.index.value()] = e.term.value();
      HardState hs{Term(term), NodeId(pick(0, 3)),
                   Index(std::min(next.last(), pick(0, next.last())))};
      const bool with_hs = pick(0, 1) == 1;
      if (with_hs) next.hs = hs;
      const bool fail_sync = pick(0, 19) == 0;
      if (fail_sync) fs.fail_syncs(FaultFileSystem::Failure::kIO);
      Status s = w->save(with_hs ? &hs : nullptr, entries, marker ? &*marker : nullptr);
      fs.fail_syncs(FaultFileSystem::Failure::kNone);
      if (fail_sync) {
        // Not acknowledged: the model stays; the WAL refuses everything until restarted.
        ASSERT_FALSE(s.is_ok());
        w.reset();
        fs.crash();
        w = std::move(Wal::open(&fs, kDir, o).value());
        check(w.get(), m, seed, step);
        continue;
      }
      ASSERT_TRUE(s.is_ok()) << s.to_string();
      m = next;
      ASSERT_EQ(w->last_index(), Index(m.last()));
    }
    w.reset();
    fs.crash();
    auto final_wal = std::move(Wal::open(&fs, kDir, o).value());
    check(final_wal.get(), m, seed, -1);
    // Released segments really are gone: no more files than live ones.
    EXPECT_EQ(fs.list(kDir)->size(), final_wal->segment_paths().size());
  }
}

}  // namespace
}  // namespace raftkv::storage
