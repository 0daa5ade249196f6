// Scenarios over an in-memory cluster: partitions, rejoining nodes, snapshot
// catch-up, joint consensus both ways, leadership transfer, ReadIndex across
// a leader change, and the Figure 8 (dissertation Figure 3.7) history.
#include <gtest/gtest.h>

#include "harness.h"
#include "raft/conf_change.h"

namespace raftkv::raft::testing {
namespace {

/// Ticks every node and stabilizes, `rounds` times or until `done`.
void run(Cluster& c, int rounds, const std::function<bool()>& done = nullptr) {
  for (int i = 0; i < rounds; ++i) {
    if (done && done()) return;
    c.tick_all();
    c.stabilize();
  }
}

/// Campaigns until `id` leads: a restarted node may first have to learn the
/// current term from the rejections of its first campaign.
uint64_t elect_until(Cluster& c, uint64_t id) {
  for (int i = 0; i < 3 && c.leader() != id; ++i) c.elect(id);
  return c.leader();
}

bool contains(const std::vector<std::string>& h, const std::string& s) {
  return std::find(h.begin(), h.end(), s) != h.end();
}

ConfChange joint(std::vector<ConfChangeSingle> changes) {
  ConfChange cc;
  cc.transition = ConfChangeTransition::kJointImplicit;
  cc.changes = std::move(changes);
  return cc;
}

TEST(Scenario, partitioned_leader_steps_down_and_its_uncommitted_entries_are_overwritten) {
  Cluster c({1, 2, 3, 4, 5});
  ASSERT_EQ(c.elect(1), 1u);
  ASSERT_TRUE(c.propose(1, "before").is_ok());
  c.partition({1, 2}, {3, 4, 5});
  ASSERT_TRUE(c.core(1).propose("lost").is_ok());
  c.stabilize();
  EXPECT_EQ(c.core(1).log().committed(), I(2)) << "minority side cannot commit";
  run(c, 60,
      [&] { return c.core(1).role() != Role::kLeader && c.leader() != 0 && c.leader() != 1; });
  EXPECT_NE(c.core(1).role(), Role::kLeader) << "check-quorum must depose the minority leader";
  uint64_t l = c.leader();
  ASSERT_TRUE(l >= 3) << l;
  ASSERT_TRUE(c.propose(l, "kept").is_ok());
  c.heal();
  run(c, 30);
  for (uint64_t id : c.ids()) {
    EXPECT_TRUE(contains(c.node(id).history, "kept")) << id;
    EXPECT_FALSE(contains(c.node(id).history, "lost")) << id;
    EXPECT_EQ(c.core(id).log().last_index(), c.core(l).log().last_index()) << id;
  }
  EXPECT_EQ(c.core(1).log().term(I(3)), c.core(l).log().term(I(3)));
}

TEST(Scenario, prevote_stops_a_rejoining_node_from_disrupting_the_leader) {
  Cluster c({1, 2, 3});
  ASSERT_EQ(c.elect(1), 1u);
  c.isolate(3);
  run(c, 100);
  EXPECT_EQ(c.core(3).term(), T(1)) << "pre-vote keeps the isolated node's term";
  c.heal();
  run(c, 20);
  EXPECT_EQ(c.leader(), 1u);
  EXPECT_EQ(c.core(1).term(), T(1));
  ASSERT_TRUE(c.propose(1, "x").is_ok());
  EXPECT_EQ(c.node(3).history.back(), "x");
}

TEST(Scenario, without_prevote_a_rejoining_node_forces_a_new_term) {
  // The counterpart of the test above: what pre-vote prevents.
  Cluster c({1, 2, 3}, [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  });
  ASSERT_EQ(c.elect(1), 1u);
  c.isolate(3);
  run(c, 100);
  EXPECT_GT(c.core(3).term(), T(5));
  c.heal();
  run(c, 40);
  EXPECT_GT(c.core(1).term(), T(5)) << "the rejoining node dragged everyone to its term";
}

TEST(Scenario, far_behind_follower_is_caught_up_by_snapshot) {
  Cluster c({1, 2, 3});
  ASSERT_EQ(c.elect(1), 1u);
  c.crash(3);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(c.propose(1, "v" + std::to_string(i)).is_ok());
  c.compact(1);
  c.compact(2);
  c.restart(3);
  run(c, 30, [&] { return c.node(3).history.size() == c.node(1).history.size(); });
  EXPECT_EQ(c.node(3).history, c.node(1).history);
  EXPECT_GT(c.storage(3).first_index(), I(100)) << "caught up through a snapshot, not entries";
  ASSERT_TRUE(c.propose(1, "after").is_ok());
  EXPECT_EQ(c.node(3).history.back(), "after");
}

TEST(Scenario, joint_consensus_grows_three_voters_to_five) {
  Cluster c({1, 2, 3});
  ASSERT_EQ(c.elect(1), 1u);
  ASSERT_TRUE(c.core(1)
                  .propose_conf_change(
                      joint({{ConfChangeType::kAddNode, N(4)}, {ConfChangeType::kAddNode, N(5)}}))
                  .is_ok());
  c.stabilize();
  c.add_node(4);
  c.add_node(5);
  run(c, 20,
      [&] { return !c.core(1).tracker().config.voters.joint() && c.node(5).history.size() >= 3; });
  for (uint64_t id : c.ids()) {
    ConfState cs = c.core(id).tracker().conf_state();
    EXPECT_EQ(cs.voters.size(), 5u) << id;
    EXPECT_TRUE(cs.voters_outgoing.empty()) << id;
  }
  // The new quorum (3 of 5) works without two of the original nodes.
  c.crash(2);
  c.crash(3);
  ASSERT_TRUE(c.propose(1, "five").is_ok());
  EXPECT_EQ(c.node(4).history.back(), "five");
  EXPECT_EQ(c.node(5).history.back(), "five");
}

TEST(Scenario, joint_consensus_shrinks_five_voters_to_three_removing_the_leader) {
  Cluster c({1, 2, 3, 4, 5});
  ASSERT_EQ(c.elect(1), 1u);
  ASSERT_TRUE(c.core(1)
                  .propose_conf_change(joint(
                      {{ConfChangeType::kRemoveNode, N(1)}, {ConfChangeType::kRemoveNode, N(2)}}))
                  .is_ok());
  run(c, 30, [&] {
    uint64_t l = c.leader();
    return l >= 3 && !c.core(l).tracker().config.voters.joint();
  });
  uint64_t l = c.leader();
  ASSERT_GE(l, 3u) << "the removed leader stepped down and a remaining voter leads";
  EXPECT_NE(c.core(1).role(), Role::kLeader);
  for (uint64_t id : {3, 4, 5}) {
    EXPECT_EQ(c.core(id).tracker().conf_state().voters, (std::vector<NodeId>{N(3), N(4), N(5)}));
  }
  c.crash(1);
  c.crash(2);
  ASSERT_TRUE(c.propose(l, "three").is_ok());
  for (uint64_t id : {3, 4, 5}) EXPECT_EQ(c.node(id).history.back(), "three");
}

TEST(Scenario, leadership_transfer_under_load) {
  Cluster c({1, 2, 3});
  ASSERT_EQ(c.elect(1), 1u);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.core(1).propose("p" + std::to_string(i)).is_ok());
  ASSERT_TRUE(c.core(1).transfer_leadership(N(3)).is_ok());
  EXPECT_EQ(c.core(1).propose("refused").code(), Code::kAborted);
  c.stabilize();
  EXPECT_EQ(c.leader(), 3u);
  ASSERT_TRUE(c.propose(3, "new leader").is_ok());
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.node(id).history.size(), 13u) << id;  // 2 no-ops and 11 proposals
    EXPECT_EQ(c.node(id).history.back(), "new leader");
    EXPECT_FALSE(contains(c.node(id).history, "refused"));
  }
}

TEST(Scenario, read_index_across_a_leader_change_never_returns_a_stale_index) {
  Cluster c({1, 2, 3});
  ASSERT_EQ(c.elect(1), 1u);
  c.partition({1}, {2, 3});
  ASSERT_TRUE(c.core(1).read_index("old-leader-read").is_ok());
  run(c, 60, [&] { return c.leader() == 2 || c.leader() == 3; });
  uint64_t l = c.leader();
  ASSERT_TRUE(l == 2 || l == 3);
  ASSERT_TRUE(c.propose(l, "w").is_ok());
  const Index write_index = c.core(l).log().committed();
  // A read that starts after the write completed, on the new leader and on a follower.
  ASSERT_TRUE(c.core(l).read_index("new-leader-read").is_ok());
  uint64_t f = l == 2 ? 3 : 2;
  ASSERT_TRUE(c.core(f).read_index("follower-read").is_ok());
  c.stabilize();
  ASSERT_EQ(c.node(l).read_states.size(), 1u);
  EXPECT_GE(c.node(l).read_states[0].index, write_index);
  ASSERT_EQ(c.node(f).read_states.size(), 1u);
  EXPECT_GE(c.node(f).read_states[0].index, write_index);
  c.heal();
  run(c, 30);
  // The deposed leader never confirmed its read: it must not be served at an
  // index older than the write.
  for (const ReadState& rs : c.node(1).read_states) EXPECT_GE(rs.index, write_index);
  EXPECT_TRUE(c.node(1).read_states.empty());
}

TEST(Scenario, figure_8_older_term_entry_is_not_committed_by_replica_count) {
  // Dissertation Figure 3.7. Commit rule checks only; elections forced by hand.
  auto tweak = [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
    cfg.max_size_per_msg_bytes = 1;  // one entry per append
  };
  Cluster c({1, 2, 3, 4, 5}, tweak);
  ASSERT_EQ(c.elect(1), 1u);  // term 1, no-op at index 1 everywhere
  // (a) S1 replicates "a" (index 2, term 1) to S2 only.
  c.partition({1, 2}, {3, 4, 5});
  ASSERT_TRUE(c.propose(1, "a").is_ok());
  ASSERT_EQ(c.core(2).log().last_index(), I(2));
  // (b) S1 crashes; S5 wins term 2 with S3, S4 and appends its no-op at index 2 alone.
  c.crash(1);
  c.heal();
  c.set_drop([](const Message& m) { return m.from == N(5) && m.type == MessageType::kAppend; });
  ASSERT_EQ(c.elect(5), 5u);
  ASSERT_EQ(c.core(5).log().term(I(2)), T(2));
  // (c) S5 crashes; S1 restarts and wins term 3; it spreads index 2 (term 1)
  // to S3 but not its own no-op (index 3, term 3). The leader's own appends
  // are held back and index 2 is delivered by hand, as S1 would send it.
  c.crash(5);
  c.restart(1);
  c.set_drop([](const Message& m) { return m.from == N(1) && m.type == MessageType::kAppend; });
  ASSERT_EQ(elect_until(c, 1), 1u);
  ASSERT_EQ(c.core(1).term(), T(3));
  for (uint64_t to : {2, 3}) {
    Message m;
    m.type = MessageType::kAppend;
    m.from = N(1);
    m.to = N(to);
    m.term = T(3);
    m.index = I(1);
    m.log_term = T(1);
    m.commit = I(1);
    m.entries = {Entry{T(1), I(2), EntryType::kNormal, "a"}};
    ASSERT_TRUE(c.core(to).step(m).is_ok());
  }
  c.stabilize();
  ASSERT_EQ(c.core(3).log().term(I(2)), T(1));
  ASSERT_EQ(c.core(1).status().progress.at(N(3)).match, I(2));
  EXPECT_EQ(c.core(1).log().committed(), I(1))
      << "index 2 (term 1) is on a majority but must not commit";
  // (d) S1 crashes; S5 restarts and wins term 4 (its last term 2 beats term 1):
  // it legitimately overwrites index 2 everywhere.
  c.crash(1);
  c.restart(5);
  c.set_drop(nullptr);
  ASSERT_EQ(elect_until(c, 5), 5u);
  c.restart(1);
  run(c, 10);
  for (uint64_t id : c.ids()) {
    EXPECT_EQ(c.core(id).log().term(I(2)), T(2)) << id;
    EXPECT_FALSE(contains(c.node(id).history, "a"))
        << "node " << id << " applied an overwritten entry";
  }
}

TEST(Scenario, figure_8_current_term_entry_commits_older_entries_with_it) {
  auto tweak = [](Config& cfg) {
    cfg.pre_vote = false;
    cfg.check_quorum = false;
  };
  Cluster c({1, 2, 3, 4, 5}, tweak);
  ASSERT_EQ(c.elect(1), 1u);
  c.partition({1, 2}, {3, 4, 5});
  ASSERT_TRUE(c.propose(1, "a").is_ok());
  c.crash(1);
  c.heal();
  c.set_drop([](const Message& m) { return m.from == N(5) && m.type == MessageType::kAppend; });
  ASSERT_EQ(c.elect(5), 5u);
  c.crash(5);
  c.restart(1);
  c.set_drop(nullptr);
  c.partition({5}, {1, 2, 3, 4});
  ASSERT_EQ(elect_until(c, 1), 1u);  // replicates index 2 and its term-3 no-op to a majority
  EXPECT_EQ(c.core(1).log().committed(), I(3));
  c.restart(5);
  c.heal();
  c.core(5).campaign();  // S5 can no longer win: its log is behind a majority
  run(c, 10);
  EXPECT_EQ(c.leader(), 1u);
  for (uint64_t id : c.ids()) EXPECT_EQ(c.node(id).history[1], "a") << id;
}

}  // namespace
}  // namespace raftkv::raft::testing
