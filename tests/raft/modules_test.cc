// Unit tests of the core's pure modules: quorum, inflights, progress,
// conf change (rules and codec), unstable log and log view, memory storage,
// ReadIndex bookkeeping. Quorum is also checked against a brute-force model.
#include <gtest/gtest.h>

#include <random>

#include "raft/conf_change.h"
#include "raft/inflights.h"
#include "raft/memory_storage.h"
#include "raft/progress.h"
#include "raft/quorum.h"
#include "raft/raft_log.h"
#include "raft/read_only.h"

namespace raftkv::raft {
namespace {

NodeId N(uint64_t v) {
  return NodeId{v};
}
Index I(uint64_t v) {
  return Index{v};
}
Term T(uint64_t v) {
  return Term{v};
}

class MapIndexer : public quorum::AckedIndexer {
 public:
  std::map<NodeId, Index> m;
  std::optional<Index> acked_index(NodeId id) const override {
    auto it = m.find(id);
    if (it == m.end()) return std::nullopt;
    return it->second;
  }
};

// ---- quorum -----------------------------------------------------------------

TEST(Quorum, majority_commit_is_highest_index_acked_by_a_majority) {
  quorum::MajorityConfig c({N(1), N(2), N(3)});
  MapIndexer a;
  a.m = {{N(1), I(5)}, {N(2), I(3)}, {N(3), I(1)}};
  EXPECT_EQ(c.committed_index(a), I(3));
  a.m.erase(N(2));  // unknown counts as 0
  EXPECT_EQ(c.committed_index(a), I(1));
}

TEST(Quorum, majority_commit_matches_brute_force_model) {
  std::mt19937_64 rng(7);
  for (int iter = 0; iter < 2000; ++iter) {
    size_t n = 1 + rng() % 7;
    std::vector<NodeId> ids;
    MapIndexer a;
    for (size_t i = 1; i <= n; ++i) {
      ids.push_back(N(i));
      a.m[N(i)] = I(rng() % 10);
    }
    quorum::MajorityConfig c(ids);
    // Model: the largest x such that more than half of the voters acked >= x.
    uint64_t best = 0;
    for (uint64_t x = 0; x <= 10; ++x) {
      size_t cnt = 0;
      for (auto& [id, idx] : a.m) cnt += idx.value() >= x;
      if (cnt * 2 > n) best = x;
    }
    ASSERT_EQ(c.committed_index(a), I(best)) << "iteration " << iter;
  }
}

TEST(Quorum, empty_majority_never_blocks_joint_decisions) {
  quorum::MajorityConfig empty;
  MapIndexer a;
  EXPECT_EQ(empty.committed_index(a).value(), UINT64_MAX);
  EXPECT_EQ(empty.vote_result({}), quorum::VoteResult::kWon);
}

TEST(Quorum, vote_result_won_lost_pending) {
  quorum::MajorityConfig c({N(1), N(2), N(3)});
  EXPECT_EQ(c.vote_result({{N(1), true}}), quorum::VoteResult::kPending);
  EXPECT_EQ(c.vote_result({{N(1), true}, {N(2), true}}), quorum::VoteResult::kWon);
  EXPECT_EQ(c.vote_result({{N(1), true}, {N(2), false}, {N(3), false}}), quorum::VoteResult::kLost);
  EXPECT_EQ(c.vote_result({{N(2), false}, {N(3), false}}), quorum::VoteResult::kLost);
}

TEST(Quorum, joint_commit_needs_both_majorities) {
  quorum::JointConfig j;
  j.incoming() = quorum::MajorityConfig({N(1), N(2), N(3)});
  j.outgoing() = quorum::MajorityConfig({N(3), N(4), N(5)});
  MapIndexer a;
  a.m = {{N(1), I(9)}, {N(2), I(9)}, {N(3), I(2)}, {N(4), I(4)}, {N(5), I(1)}};
  // incoming majority: 9; outgoing majority: 2.
  EXPECT_EQ(j.committed_index(a), I(2));
  EXPECT_EQ(j.vote_result({{N(1), true}, {N(2), true}}), quorum::VoteResult::kPending);
  EXPECT_EQ(j.vote_result({{N(1), true}, {N(2), true}, {N(4), true}, {N(5), true}}),
            quorum::VoteResult::kWon);
  EXPECT_EQ(j.vote_result({{N(1), true}, {N(2), true}, {N(4), false}, {N(5), false}}),
            quorum::VoteResult::kLost);
  EXPECT_EQ(j.ids().size(), 5u);
}

// ---- inflights --------------------------------------------------------------

TEST(Inflights, full_at_capacity_and_freed_by_acknowledgement) {
  Inflights in(3, 0);
  in.add(I(1), 10);
  in.add(I(2), 10);
  EXPECT_FALSE(in.full());
  in.add(I(5), 10);
  EXPECT_TRUE(in.full());
  in.free_le(I(2));
  EXPECT_EQ(in.count(), 1u);
  EXPECT_EQ(in.bytes(), 10u);
  in.add(I(6), 1);
  in.add(I(7), 1);  // wraps around the ring
  EXPECT_TRUE(in.full());
  in.free_le(I(100));
  EXPECT_EQ(in.count(), 0u);
  EXPECT_EQ(in.bytes(), 0u);
}

TEST(Inflights, byte_bound_pauses_before_message_bound) {
  Inflights in(100, 50);
  in.add(I(1), 30);
  EXPECT_FALSE(in.full());
  in.add(I(2), 30);
  EXPECT_TRUE(in.full());
  in.free_le(I(1));
  EXPECT_FALSE(in.full());
}

TEST(Inflights, ring_wraps_many_times_consistently) {
  Inflights in(4, 0);
  uint64_t next = 1;
  for (int round = 0; round < 100; ++round) {
    while (!in.full()) in.add(I(next++), 1);
    in.free_le(I(next - 3));
    ASSERT_EQ(in.count(), 2u);
  }
}

// ---- progress ---------------------------------------------------------------

TEST(Progress, probe_pauses_after_one_send_until_answer) {
  Progress p(I(5), 4, 0, false);
  EXPECT_FALSE(p.is_paused());
  p.probe_sent = true;
  EXPECT_TRUE(p.is_paused());
  EXPECT_TRUE(p.maybe_update(I(4)));
  EXPECT_FALSE(p.is_paused());
  EXPECT_EQ(p.match, I(4));
  EXPECT_EQ(p.next, I(5));
}

TEST(Progress, replicate_rejection_resets_next_to_match_plus_one) {
  Progress p(I(1), 4, 0, false);
  p.maybe_update(I(5));
  p.become_replicate();
  p.optimistic_update(I(9));
  EXPECT_EQ(p.next, I(10));
  EXPECT_FALSE(p.maybe_decr_to(I(4), I(0)));  // stale: below match
  EXPECT_TRUE(p.maybe_decr_to(I(7), I(0)));
  EXPECT_EQ(p.next, I(6));
}

TEST(Progress, probe_rejection_uses_hint_but_never_below_match) {
  Progress p(I(11), 4, 0, false);
  p.match = I(2);
  EXPECT_FALSE(p.maybe_decr_to(I(5), I(3)));  // not the probe we sent (next-1 = 10)
  EXPECT_TRUE(p.maybe_decr_to(I(10), I(4)));
  EXPECT_EQ(p.next, I(5));
  EXPECT_TRUE(p.maybe_decr_to(I(4), I(0)));
  EXPECT_EQ(p.next, I(3));  // match + 1
}

TEST(Progress, snapshot_state_pauses_and_resumes_after_snapshot) {
  Progress p(I(3), 4, 0, false);
  p.become_snapshot(I(20));
  EXPECT_TRUE(p.is_paused());
  p.become_probe();
  EXPECT_EQ(p.next, I(21));
  EXPECT_EQ(p.pending_snapshot, I(0));
}

// ---- conf change ------------------------------------------------------------

ProgressTracker tracker_of(ConfState cs) {
  ProgressTracker t(8, 0);
  EXPECT_TRUE(restore_conf_state(cs, I(10), &t).is_ok());
  return t;
}

TEST(ConfChange, simple_change_of_one_voter_is_allowed) {
  ProgressTracker t = tracker_of(ConfState{{N(1), N(2), N(3)}});
  auto r = ConfChanger(t, I(10)).simple({{ConfChangeType::kAddNode, N(4)}});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->config.voters.incoming().ids().size(), 4u);
  EXPECT_EQ(r->progress.at(N(4)).next, I(11));
}

TEST(ConfChange, simple_change_of_two_voters_is_refused) {
  ProgressTracker t = tracker_of(ConfState{{N(1), N(2), N(3)}});
  auto r = ConfChanger(t, I(10)).simple(
      {{ConfChangeType::kAddNode, N(4)}, {ConfChangeType::kAddNode, N(5)}});
  ASSERT_FALSE(r.is_ok());
  EXPECT_NE(r.status().message().find("joint"), std::string::npos);
}

TEST(ConfChange, removing_every_voter_is_refused) {
  ProgressTracker t = tracker_of(ConfState{{N(1)}});
  auto r = ConfChanger(t, I(10)).simple({{ConfChangeType::kRemoveNode, N(1)}});
  EXPECT_FALSE(r.is_ok());
}

TEST(ConfChange, enter_joint_keeps_outgoing_and_leave_drops_it) {
  ProgressTracker t = tracker_of(ConfState{{N(1), N(2), N(3)}});
  auto j = ConfChanger(t, I(10)).enter_joint(
      true, {{ConfChangeType::kAddNode, N(4)}, {ConfChangeType::kRemoveNode, N(1)}});
  ASSERT_TRUE(j.is_ok());
  EXPECT_TRUE(j->config.voters.joint());
  EXPECT_TRUE(j->config.voters.outgoing().contains(N(1)));
  EXPECT_FALSE(j->config.voters.incoming().contains(N(1)));
  EXPECT_TRUE(j->progress.count(N(1)));  // still needed by the outgoing half
  t.config = j->config;
  t.progress = j->progress;
  EXPECT_FALSE(ConfChanger(t, I(10)).enter_joint(false, {}).is_ok());  // already joint
  EXPECT_FALSE(ConfChanger(t, I(10)).simple({{ConfChangeType::kAddNode, N(9)}}).is_ok());
  auto l = ConfChanger(t, I(10)).leave_joint();
  ASSERT_TRUE(l.is_ok());
  EXPECT_FALSE(l->config.voters.joint());
  EXPECT_FALSE(l->progress.count(N(1)));
  EXPECT_EQ(l->config.voters.incoming().ids(), (std::vector<NodeId>{N(2), N(3), N(4)}));
}

TEST(ConfChange, demoting_voter_in_joint_stages_learner_next) {
  ProgressTracker t = tracker_of(ConfState{{N(1), N(2), N(3)}});
  auto j = ConfChanger(t, I(10)).enter_joint(false, {{ConfChangeType::kAddLearner, N(3)}});
  ASSERT_TRUE(j.is_ok());
  EXPECT_EQ(j->config.learners_next, std::vector<NodeId>{N(3)});
  EXPECT_TRUE(j->config.learners.empty());
  t.config = j->config;
  t.progress = j->progress;
  auto l = ConfChanger(t, I(10)).leave_joint();
  ASSERT_TRUE(l.is_ok());
  EXPECT_EQ(l->config.learners, std::vector<NodeId>{N(3)});
  EXPECT_TRUE(l->progress.at(N(3)).is_learner);
}

TEST(ConfChange, leave_without_joint_is_refused) {
  ProgressTracker t = tracker_of(ConfState{{N(1), N(2), N(3)}});
  EXPECT_FALSE(ConfChanger(t, I(10)).leave_joint().is_ok());
}

TEST(ConfChange, restore_rebuilds_joint_conf_state_exactly) {
  ConfState cs;
  cs.voters = {N(1), N(2), N(4)};
  cs.voters_outgoing = {N(1), N(2), N(3)};
  cs.learners = {N(5)};
  cs.learners_next = {N(3)};
  cs.auto_leave = true;
  ProgressTracker t(8, 0);
  ASSERT_TRUE(restore_conf_state(cs, I(3), &t).is_ok());
  EXPECT_EQ(t.conf_state(), cs);
  t.check_invariants();
}

TEST(ConfChange, restore_rejects_overlapping_learner_and_voter) {
  ConfState cs;
  cs.voters = {N(1), N(2)};
  cs.learners = {N(2)};
  ProgressTracker t(8, 0);
  EXPECT_FALSE(restore_conf_state(cs, I(3), &t).is_ok());
}

TEST(ConfChange, codec_round_trips_and_rejects_garbage) {
  ConfChange cc;
  cc.transition = ConfChangeTransition::kJointExplicit;
  cc.changes = {{ConfChangeType::kAddLearner, N(7)}, {ConfChangeType::kRemoveNode, N(2)}};
  cc.context = "member metadata";
  std::string enc = encode_conf_change(cc);
  auto dec = decode_conf_change(enc);
  ASSERT_TRUE(dec.is_ok());
  EXPECT_EQ(*dec, cc);
  EXPECT_EQ(decode_conf_change(enc.substr(0, enc.size() - 1)).status().code(), Code::kCorruption);
  EXPECT_EQ(decode_conf_change(enc + "x").status().code(), Code::kCorruption);
  std::string bad = enc;
  bad[0] = 9;  // unknown version
  EXPECT_EQ(decode_conf_change(bad).status().code(), Code::kCorruption);
  std::string huge_count = enc;
  huge_count[2] = char(0xff);
  huge_count[5] = char(0x7f);
  EXPECT_EQ(decode_conf_change(huge_count).status().code(), Code::kCorruption);
}

// ---- unstable log and log view ----------------------------------------------

Entry E(uint64_t term, uint64_t index, std::string data = "") {
  return Entry{T(term), I(index), EntryType::kNormal, std::move(data)};
}

TEST(Unstable, stable_to_ignores_entries_replaced_since_handed_out) {
  Unstable u;
  u.offset = I(5);
  u.truncate_and_append({E(1, 5), E(1, 6), E(1, 7)});
  u.truncate_and_append({E(2, 6)});  // replaces 6 and 7
  u.stable_to(I(7), T(1));           // the old 7 is gone: ignored
  EXPECT_EQ(u.entries.size(), 2u);
  u.stable_to(I(6), T(2));
  EXPECT_TRUE(u.entries.empty());
  EXPECT_EQ(u.offset, I(7));
}

TEST(Unstable, truncate_before_offset_hides_storage_tail) {
  Unstable u;
  u.offset = I(10);
  u.truncate_and_append({E(3, 8)});
  EXPECT_EQ(u.offset, I(8));
  EXPECT_EQ(u.maybe_last_index(), I(8));
}

TEST(RaftLog, view_combines_storage_and_unstable) {
  MemoryLogStorage s(ConfState{{N(1)}});
  ASSERT_TRUE(s.append({E(1, 1), E(1, 2), E(2, 3)}).is_ok());
  RaftLog log(&s);
  EXPECT_EQ(log.last_index(), I(3));
  log.append({E(3, 3), E(3, 4)});  // overwrite storage's 3 in the unstable tail
  EXPECT_EQ(log.term(I(3)), T(3));
  EXPECT_EQ(log.persisted_index(), I(2));
  auto all = log.slice(I(1), I(5), UINT64_MAX);
  ASSERT_TRUE(all.is_ok());
  ASSERT_EQ(all->size(), 4u);
  EXPECT_EQ((*all)[2].term, T(3));
}

TEST(RaftLog, slice_respects_byte_limit_but_returns_one_entry) {
  MemoryLogStorage s(ConfState{{N(1)}});
  ASSERT_TRUE(s.append({E(1, 1, std::string(100, 'a')), E(1, 2, std::string(100, 'b'))}).is_ok());
  RaftLog log(&s);
  auto one = log.slice(I(1), I(3), 1);
  ASSERT_TRUE(one.is_ok());
  EXPECT_EQ(one->size(), 1u);
}

TEST(RaftLog, maybe_commit_only_for_entry_of_given_term) {
  MemoryLogStorage s(ConfState{{N(1)}});
  ASSERT_TRUE(s.append({E(1, 1), E(2, 2)}).is_ok());
  RaftLog log(&s);
  EXPECT_FALSE(log.maybe_commit(I(2), T(3)));
  EXPECT_TRUE(log.maybe_commit(I(2), T(2)));
  EXPECT_EQ(log.committed(), I(2));
}

TEST(RaftLog, find_conflict_by_term_skips_whole_terms) {
  MemoryLogStorage s(ConfState{{N(1)}});
  ASSERT_TRUE(s.append({E(1, 1), E(2, 2), E(2, 3), E(4, 4), E(4, 5)}).is_ok());
  RaftLog log(&s);
  EXPECT_EQ(log.find_conflict_by_term(I(5), T(3)), I(3));
  EXPECT_EQ(log.find_conflict_by_term(I(5), T(1)), I(1));
  EXPECT_EQ(log.find_conflict_by_term(I(9), T(5)), I(5));  // beyond the end: start at last
}

TEST(RaftLog, compacted_term_reports_out_of_range) {
  MemoryLogStorage s(ConfState{{N(1)}});
  ASSERT_TRUE(s.append({E(1, 1), E(1, 2), E(1, 3)}).is_ok());
  ASSERT_TRUE(s.create_snapshot(I(2), ConfState{{N(1)}}, "x").is_ok());
  ASSERT_TRUE(s.compact(I(2)).is_ok());
  RaftLog log(&s);
  EXPECT_EQ(log.term_result(I(1)).status().code(), Code::kOutOfRange);
  EXPECT_EQ(*log.term_result(I(2)), T(1));  // the snapshot's term stays known
  EXPECT_EQ(log.slice(I(2), I(4), UINT64_MAX).status().code(), Code::kOutOfRange);
}

// ---- memory storage ---------------------------------------------------------

TEST(MemoryLogStorage, append_truncates_conflicting_tail) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.append({E(1, 1), E(1, 2), E(1, 3)}).is_ok());
  ASSERT_TRUE(s.append({E(2, 2)}).is_ok());
  EXPECT_EQ(s.last_index(), I(2));
  EXPECT_EQ(*s.term(I(2)), T(2));
}

TEST(MemoryLogStorage, apply_snapshot_replaces_log_and_refuses_older) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.append({E(1, 1)}).is_ok());
  Snapshot snap;
  snap.metadata = SnapshotMetadata{I(10), T(3), ConfState{{N(1), N(2)}}};
  ASSERT_TRUE(s.apply_snapshot(snap).is_ok());
  EXPECT_EQ(s.first_index(), I(11));
  EXPECT_EQ(s.last_index(), I(10));
  EXPECT_EQ(s.initial_state()->second, snap.metadata.conf_state);
  Snapshot older = snap;
  older.metadata.index = I(5);
  EXPECT_EQ(s.apply_snapshot(older).code(), Code::kOutOfRange);
}

TEST(MemoryLogStorage, entries_bounded_by_bytes_and_errors_by_range) {
  MemoryLogStorage s;
  ASSERT_TRUE(s.append({E(1, 1, "aaaa"), E(1, 2, "bbbb"), E(1, 3)}).is_ok());
  EXPECT_EQ(s.entries(I(1), I(4), 30)->size(), 1u);
  EXPECT_EQ(s.entries(I(1), I(4), UINT64_MAX)->size(), 3u);
  EXPECT_EQ(s.entries(I(2), I(9), 100).status().code(), Code::kUnavailable);
  ASSERT_TRUE(s.compact(I(2)).is_ok());
  EXPECT_EQ(s.entries(I(2), I(3), 100).status().code(), Code::kOutOfRange);
  EXPECT_EQ(s.compact(I(1)).code(), Code::kOutOfRange);
}

// ---- read only --------------------------------------------------------------

TEST(ReadOnly, acknowledging_later_context_releases_earlier_requests) {
  ReadOnly ro(10);
  ASSERT_TRUE(ro.add(I(5), N(1), "a"));
  ASSERT_TRUE(ro.add(I(6), N(2), "b"));
  ASSERT_TRUE(ro.add(I(7), N(1), "c"));
  EXPECT_FALSE(ro.add(I(7), N(1), "b"));  // duplicate context
  EXPECT_EQ(ro.last_pending_ctx(), "c");
  EXPECT_EQ(ro.ack(N(3), "b")->size(), 1u);
  auto out = ro.advance("b");
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].ctx, "a");
  EXPECT_EQ(out[1].index, I(6));
  EXPECT_EQ(ro.pending(), 1u);
  EXPECT_TRUE(ro.advance("zzz").empty());
}

TEST(ReadOnly, bounded_queue_refuses_when_full) {
  ReadOnly ro(2);
  EXPECT_TRUE(ro.add(I(1), N(1), "a"));
  EXPECT_TRUE(ro.add(I(1), N(1), "b"));
  EXPECT_FALSE(ro.add(I(1), N(1), "c"));
}

}  // namespace
}  // namespace raftkv::raft
