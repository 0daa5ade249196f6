// One test per rule of the Raft dissertation (Figure 3.1 and chapters 3, 4,
// 6, 9, 10) and per feature of the core. Each name states the rule.
#include <gtest/gtest.h>

#include "harness.h"
#include "raft/conf_change.h"

namespace raftkv::raft::testing {
namespace {

void no_prevote(Config& c) {
  c.pre_vote = false;
}

Message msg(MessageType type, uint64_t from, uint64_t to, uint64_t term) {
  Message m;
  m.type = type;
  m.from = N(from);
  m.to = N(to);
  m.term = T(term);
  return m;
}

Entry E(uint64_t term, uint64_t index, std::string data = "") {
  return Entry{T(term), I(index), EntryType::kNormal, std::move(data)};
}

std::vector<Message> of_type(const std::vector<Message>& ms, MessageType t) {
  std::vector<Message> out;
  for (const Message& m : ms) {
    if (m.type == t) out.push_back(m);
  }
  return out;
}

ConfChange cc_of(std::vector<ConfChangeSingle> changes, std::string ctx = "",
                 ConfChangeTransition t = ConfChangeTransition::kAuto) {
  ConfChange cc;
  cc.changes = std::move(changes);
  cc.context = std::move(ctx);
  cc.transition = t;
  return cc;
}

/// Replaces node `id`'s durable state with `log` (terms for indexes 1..n) and
/// hard state term `term`, then restarts it.
void seed_log(Cluster& c, uint64_t id, std::vector<uint64_t> terms, uint64_t term,
              uint64_t commit = 0) {
  c.crash(id);
  std::vector<Entry> ents;
  for (size_t i = 0; i < terms.size(); ++i)
    ents.push_back(E(terms[i], i + 1, "e" + std::to_string(i + 1)));
  ASSERT_TRUE(c.storage(id).append(ents).is_ok());
  c.storage(id).set_hard_state(HardState{T(term), kNoNode, I(commit)});
  c.node(id).history.clear();
  for (uint64_t i = 0; i < commit; ++i) c.node(id).history.push_back(ents[i].data);
  c.restart(id);
}

/// Makes node 1 leader of a 3-node cluster with pre-vote off; returns the cluster.
std::unique_ptr<Cluster> three_with_leader(std::function<void(Config&)> tweak = no_prevote) {
  auto c = std::make_unique<Cluster>(std::vector<uint64_t>{1, 2, 3}, tweak);
  EXPECT_EQ(c->elect(1), 1u);
  return c;
}

// ============================ Elections (§3.4) ================================

TEST(Election, follower_starts_election_after_randomized_timeout) {
  Cluster c({1, 2, 3}, no_prevote);
  int rto = c.core(1).randomized_election_timeout_ticks();
  c.tick(1, rto - 1);
  EXPECT_EQ(c.core(1).role(), Role::kFollower);
  c.tick(1);
  EXPECT_EQ(c.core(1).role(), Role::kCandidate);
  EXPECT_EQ(c.core(1).term(), T(1));
}

TEST(Election, randomized_election_timeout_lies_in_et_to_twice_et) {
  std::set<int> seen;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Cluster c({1}, [&](Config& cfg) { cfg.seed = seed; });
    for (int k = 0; k < 5; ++k) {
      int t = c.core(1).randomized_election_timeout_ticks();
      ASSERT_GE(t, 10);
      ASSERT_LT(t, 20);
      seen.insert(t);
      c.core(1).campaign();  // resets the timeout
      c.stabilize();
    }
  }
  EXPECT_GT(seen.size(), 5u);  // actually randomized
}

TEST(Election, candidate_votes_for_itself_and_requests_votes_after_persisting) {
  Cluster c({1, 2, 3}, no_prevote);
  c.core(1).campaign();
  Ready rd = c.core(1).ready();
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->term, T(1));
  EXPECT_EQ(rd.hard_state->vote, N(1));
  EXPECT_TRUE(rd.must_sync);
  EXPECT_TRUE(of_type(rd.messages, MessageType::kVote).empty())
      << "vote requests must wait for fsync";
  auto after = rd.messages_after_persist.release(Persisted::kHardStateEntriesAndSnapshotAreDurable);
  auto votes = of_type(after, MessageType::kVote);
  ASSERT_EQ(votes.size(), 2u);
  EXPECT_EQ(votes[0].term, T(1));
  c.core(1).advance(rd);
}

TEST(Election, candidate_becomes_leader_with_majority_of_votes) {
  Cluster c({1, 2, 3, 4, 5}, no_prevote);
  c.core(1).campaign();
  c.drain(1);
  Message v = msg(MessageType::kVoteResponse, 2, 1, 1);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_EQ(c.core(1).role(), Role::kCandidate);
  v.from = N(3);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_EQ(c.core(1).role(), Role::kLeader);
  EXPECT_EQ(c.core(1).leader(), N(1));
}

TEST(Election, candidate_loses_election_when_majority_rejects) {
  Cluster c({1, 2, 3}, no_prevote);
  c.core(1).campaign();
  c.drain(1);
  Message v = msg(MessageType::kVoteResponse, 2, 1, 1);
  v.reject = true;
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  v.from = N(3);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_EQ(c.core(1).role(), Role::kFollower);
  EXPECT_EQ(c.core(1).term(), T(1));
}

TEST(Election, candidate_steps_down_on_higher_term) {
  Cluster c({1, 2, 3}, no_prevote);
  c.core(1).campaign();
  c.drain(1);
  Message h = msg(MessageType::kHeartbeat, 2, 1, 5);
  ASSERT_TRUE(c.core(1).step(h).is_ok());
  EXPECT_EQ(c.core(1).role(), Role::kFollower);
  EXPECT_EQ(c.core(1).term(), T(5));
  EXPECT_EQ(c.core(1).leader(), N(2));
}

TEST(Election, candidate_steps_down_on_append_from_leader_of_same_term) {
  Cluster c({1, 2, 3}, no_prevote);
  c.core(1).campaign();
  c.drain(1);
  Message a = msg(MessageType::kAppend, 2, 1, 1);
  ASSERT_TRUE(c.core(1).step(a).is_ok());
  EXPECT_EQ(c.core(1).role(), Role::kFollower);
  EXPECT_EQ(c.core(1).leader(), N(2));
  EXPECT_EQ(c.core(1).term(), T(1));
}

TEST(Election, follower_grants_at_most_one_vote_per_term) {
  Cluster c({1, 2, 3}, no_prevote);
  Message v = msg(MessageType::kVote, 2, 1, 1);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  v.from = N(3);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  v.from = N(2);  // a retransmission from the one we voted for
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  auto rs = of_type(c.drain(1), MessageType::kVoteResponse);
  ASSERT_EQ(rs.size(), 3u);
  EXPECT_FALSE(rs[0].reject);
  EXPECT_TRUE(rs[1].reject);
  EXPECT_FALSE(rs[2].reject);
  EXPECT_EQ(c.storage(1).hard_state().vote, N(2));
}

TEST(Election, vote_grant_waits_for_persistence) {
  Cluster c({1, 2, 3}, no_prevote);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kVote, 2, 1, 1)).is_ok());
  Ready rd = c.core(1).ready();
  EXPECT_TRUE(of_type(rd.messages, MessageType::kVoteResponse).empty());
  ASSERT_TRUE(rd.hard_state);
  EXPECT_EQ(rd.hard_state->vote, N(2));
  EXPECT_EQ(rd.messages_after_persist.size(), 1u);
  c.core(1).advance(rd);
}

TEST(Election, follower_rejects_vote_for_log_with_older_last_term) {
  Cluster c({1, 2, 3}, no_prevote);
  seed_log(c, 1, {1, 2}, 2);
  Message v = msg(MessageType::kVote, 2, 1, 3);
  v.index = I(5);
  v.log_term = T(1);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  auto rs = of_type(c.drain(1), MessageType::kVoteResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].reject);
  EXPECT_EQ(c.core(1).term(), T(3));  // the term still advances
}

TEST(Election, follower_rejects_vote_for_shorter_log_with_same_last_term) {
  Cluster c({1, 2, 3}, no_prevote);
  seed_log(c, 1, {1, 2, 2}, 2);
  Message v = msg(MessageType::kVote, 2, 1, 3);
  v.index = I(2);
  v.log_term = T(2);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_TRUE(of_type(c.drain(1), MessageType::kVoteResponse)[0].reject);
}

TEST(Election, follower_grants_vote_for_log_at_least_as_up_to_date) {
  Cluster c({1, 2, 3}, no_prevote);
  seed_log(c, 1, {1, 2, 2}, 2);
  Message v = msg(MessageType::kVote, 2, 1, 3);
  v.index = I(1);
  v.log_term = T(3);  // higher last term wins even if shorter
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_FALSE(of_type(c.drain(1), MessageType::kVoteResponse)[0].reject);
}

TEST(Election, node_ignores_vote_request_with_lower_term) {
  Cluster c({1, 2, 3}, no_prevote);
  seed_log(c, 1, {}, 5);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kVote, 2, 1, 3)).is_ok());
  EXPECT_TRUE(c.drain(1).empty());
  EXPECT_EQ(c.core(1).vote(), kNoNode);
}

TEST(Election, higher_term_updates_term_and_clears_vote) {
  Cluster c({1, 2, 3}, no_prevote);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kVote, 2, 1, 1)).is_ok());
  EXPECT_EQ(c.core(1).vote(), N(2));
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kAppendResponse, 3, 1, 4)).is_ok());
  EXPECT_EQ(c.core(1).term(), T(4));
  EXPECT_EQ(c.core(1).vote(), kNoNode);
}

TEST(Election, granting_a_vote_resets_the_election_timer) {
  Cluster c({1, 2, 3}, no_prevote);
  int rto = c.core(1).randomized_election_timeout_ticks();
  c.tick(1, rto - 1);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kVote, 2, 1, 1)).is_ok());
  c.tick(1, 2);
  EXPECT_EQ(c.core(1).role(), Role::kFollower);
}

TEST(Election, single_voter_elects_itself_and_commits_its_noop) {
  Cluster c({1});
  EXPECT_EQ(c.elect(1), 1u);
  EXPECT_EQ(c.core(1).log().committed(), I(1));
  ASSERT_TRUE(c.propose(1, "x").is_ok());
  EXPECT_EQ(c.node(1).history, (std::vector<std::string>{"", "x"}));
}

TEST(Election, leader_appends_noop_entry_of_its_term) {
  auto c = three_with_leader();
  EXPECT_EQ(c->core(1).log().last_index(), I(1));
  EXPECT_EQ(c->core(1).log().term(I(1)), c->core(1).term());
  EXPECT_EQ(c->node(2).history, std::vector<std::string>{""});
}

// ============================ Pre-vote (§9.6) =================================

TEST(PreVote, precandidate_does_not_bump_its_term) {
  Cluster c({1, 2, 3});
  c.isolate(1);
  c.tick(1, 30);
  c.stabilize();
  EXPECT_EQ(c.core(1).role(), Role::kPreCandidate);
  EXPECT_EQ(c.core(1).term(), T(0));
}

TEST(PreVote, granting_a_prevote_changes_no_state) {
  Cluster c({1, 2, 3});
  Message v = msg(MessageType::kPreVote, 2, 1, 1);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  Ready rd = c.core(1).ready();
  auto rs = of_type(rd.messages, MessageType::kPreVoteResponse);  // sent at once
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_FALSE(rs[0].reject);
  EXPECT_EQ(rs[0].term, T(1));
  EXPECT_FALSE(rd.hard_state.has_value());
  c.core(1).advance(rd);
  EXPECT_EQ(c.core(1).term(), T(0));
  EXPECT_EQ(c.core(1).vote(), kNoNode);
}

TEST(PreVote, prevote_rejected_when_candidate_log_is_behind) {
  Cluster c({1, 2, 3});
  seed_log(c, 1, {1, 1}, 1);
  Message v = msg(MessageType::kPreVote, 2, 1, 2);
  ASSERT_TRUE(c.core(1).step(v).is_ok());
  EXPECT_TRUE(of_type(c.drain(1), MessageType::kPreVoteResponse)[0].reject);
}

TEST(PreVote, winning_prevote_starts_real_election) {
  Cluster c({1, 2, 3});
  EXPECT_EQ(c.elect(1), 1u);
  EXPECT_EQ(c.core(1).term(), T(1));
}

// =================== Check-quorum and leader stickiness (§6.2) ==============

TEST(CheckQuorum, leader_steps_down_without_active_quorum) {
  auto c = three_with_leader([](Config& cfg) { cfg.pre_vote = false; });
  c->isolate(1);
  for (int i = 0; i < 25 && c->core(1).role() == Role::kLeader; ++i) {
    c->tick(1);
    c->stabilize();
  }
  EXPECT_EQ(c->core(1).role(), Role::kFollower);
  EXPECT_EQ(c->core(1).leader(), kNoNode);
}

TEST(CheckQuorum, leader_stays_while_quorum_answers) {
  auto c = three_with_leader();
  c->isolate(3);
  for (int i = 0; i < 50; ++i) {
    c->tick(1);
    c->stabilize();
  }
  EXPECT_EQ(c->core(1).role(), Role::kLeader);
}

TEST(CheckQuorum, follower_ignores_votes_while_leader_is_recent) {
  auto c = three_with_leader();
  Message v = msg(MessageType::kVote, 3, 2, 5);
  v.index = I(100);
  v.log_term = T(100);
  ASSERT_TRUE(c->core(2).step(v).is_ok());
  EXPECT_TRUE(c->drain(2).empty());
  EXPECT_EQ(c->core(2).term(), T(1));
  EXPECT_EQ(c->core(2).leader(), N(1));
}

TEST(CheckQuorum, transfer_campaign_bypasses_leader_stickiness) {
  auto c = three_with_leader();
  Message v = msg(MessageType::kVote, 3, 2, 5);
  v.index = I(100);
  v.log_term = T(100);
  v.context = kCampaignTransferContext;
  ASSERT_TRUE(c->core(2).step(v).is_ok());
  auto rs = of_type(c->drain(2), MessageType::kVoteResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_FALSE(rs[0].reject);
  EXPECT_EQ(c->core(2).term(), T(5));
}

TEST(CheckQuorum, stale_leader_learns_newer_term_from_append_response) {
  Cluster c({1, 2, 3});
  seed_log(c, 1, {}, 5);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kAppend, 2, 1, 3)).is_ok());
  auto rs = of_type(c.drain(1), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].term, T(5));
}

// ========================= Log replication (§3.5) ============================

TEST(Replication, leader_sends_appends_before_its_own_fsync) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose("x").is_ok());
  Ready rd = c->core(1).ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_EQ(rd.entries[0].index, I(2));
  EXPECT_EQ(of_type(rd.messages, MessageType::kAppend).size(), 2u);
  EXPECT_TRUE(rd.messages_after_persist.empty());
  ASSERT_TRUE(c->storage(1).append(rd.entries).is_ok());
  c->core(1).advance(rd);
}

TEST(Replication, follower_acknowledges_append_only_after_persisting) {
  Cluster c({1, 2, 3});
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.entries = {E(1, 1, "x")};
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  Ready rd = c.core(2).ready();
  EXPECT_TRUE(of_type(rd.messages, MessageType::kAppendResponse).empty());
  EXPECT_EQ(rd.entries.size(), 1u);
  auto after = rd.messages_after_persist.release(Persisted::kHardStateEntriesAndSnapshotAreDurable);
  ASSERT_EQ(of_type(after, MessageType::kAppendResponse).size(), 1u);
  EXPECT_EQ(after[0].index, I(1));
  ASSERT_TRUE(c.storage(2).append(rd.entries).is_ok());
  c.core(2).advance(rd);
}

TEST(Replication, follower_rejects_append_with_mismatched_prev_term) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1}, 2);
  Message a = msg(MessageType::kAppend, 1, 2, 3);
  a.index = I(2);
  a.log_term = T(2);
  a.entries = {E(3, 3)};
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].reject);
  EXPECT_EQ(rs[0].index, I(2));
  EXPECT_EQ(c.core(2).log().last_index(), I(2));
}

TEST(Replication, follower_rejects_append_with_missing_prev_entry) {
  Cluster c({1, 2, 3});
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.index = I(5);
  a.log_term = T(1);
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].reject);
  EXPECT_EQ(rs[0].reject_hint, I(0));  // our last index
}

TEST(Replication, follower_truncates_conflicting_entries_and_appends_new_ones) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1, 1}, 1);
  Message a = msg(MessageType::kAppend, 1, 2, 2);
  a.index = I(1);
  a.log_term = T(1);
  a.entries = {E(2, 2, "n2")};
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  EXPECT_EQ(c.core(2).log().last_index(), I(2));
  EXPECT_EQ(c.core(2).log().term(I(2)), T(2));
  c.drain(2);
  EXPECT_EQ(c.storage(2).last_index(), I(2));  // storage tail truncated too
}

TEST(Replication, follower_ignores_already_present_entries) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1, 1}, 1);
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.index = I(0);
  a.log_term = T(0);
  a.entries = {E(1, 1, "e1")};  // a delayed duplicate of the first append
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  EXPECT_EQ(c.core(2).log().last_index(), I(3)) << "must not truncate matching entries";
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  EXPECT_EQ(rs[0].index, I(1));
}

TEST(Replication, follower_commit_is_min_of_leader_commit_and_last_new_entry) {
  Cluster c({1, 2, 3});
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.entries = {E(1, 1), E(1, 2)};
  a.commit = I(10);
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  EXPECT_EQ(c.core(2).log().committed(), I(2));
}

TEST(Replication, append_below_commit_is_answered_with_commit_index) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1, 1}, 1, 3);
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.index = I(1);
  a.log_term = T(1);
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_FALSE(rs[0].reject);
  EXPECT_EQ(rs[0].index, I(3));
}

TEST(Replication, rejection_hint_names_last_entry_of_an_older_term) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 2, 2, 2, 2}, 2);
  Message a = msg(MessageType::kAppend, 1, 2, 3);
  a.index = I(5);
  a.log_term = T(1);  // leader has term 1 at 5: everything of term 2 conflicts
  ASSERT_TRUE(c.core(2).step(a).is_ok());
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_TRUE(rs[0].reject);
  EXPECT_EQ(rs[0].reject_hint, I(1));
  EXPECT_EQ(rs[0].log_term, T(1));
}

TEST(Replication, leader_backtracks_over_a_conflicting_term_in_one_round_trip) {
  Cluster c({1, 2, 3}, no_prevote);
  std::vector<uint64_t> lead(1, 1), stale(1, 1);
  for (int i = 0; i < 50; ++i) {
    lead.push_back(3);
    stale.push_back(2);
  }
  seed_log(c, 1, lead, 3);
  seed_log(c, 2, stale, 3);
  seed_log(c, 3, lead, 3);
  int rejects = 0;
  c.set_drop([&](const Message& m) {
    if (m.type == MessageType::kAppendResponse && m.reject && m.from == N(2)) ++rejects;
    return false;
  });
  EXPECT_EQ(c.elect(1), 1u);
  EXPECT_LE(rejects, 2);
  EXPECT_EQ(c.core(2).log().last_index(), I(52));
  EXPECT_EQ(c.core(2).log().term(I(30)), T(3));
}

TEST(Replication, leader_commits_once_a_majority_replicated) {
  auto c = three_with_leader();
  c->isolate(3);
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  EXPECT_EQ(c->core(1).log().committed(), I(2));
  EXPECT_EQ(c->node(1).history.back(), "x");
}

TEST(Replication, leader_without_majority_does_not_commit) {
  auto c = three_with_leader();
  c->isolate(1);
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  EXPECT_EQ(c->core(1).log().committed(), I(1));
}

TEST(Replication, leader_commits_only_current_term_entries) {
  // Figure 3.7: an entry of an older term is not committed by counting
  // replicas, only together with an entry of the leader's term.
  Cluster c({1, 2, 3}, no_prevote);
  seed_log(c, 1, {1, 2}, 2);
  seed_log(c, 2, {1}, 2);
  seed_log(c, 3, {1}, 2);
  c.core(1).campaign();
  c.drain(1);
  ASSERT_TRUE(c.core(1).step(msg(MessageType::kVoteResponse, 2, 1, 3)).is_ok());
  ASSERT_EQ(c.core(1).role(), Role::kLeader);
  c.drain(1);  // persists the no-op at index 3
  Message ack = msg(MessageType::kAppendResponse, 2, 1, 3);
  ack.index = I(2);
  ASSERT_TRUE(c.core(1).step(ack).is_ok());
  EXPECT_EQ(c.core(1).log().committed(), I(0)) << "entry 2 is of term 2, must not commit by count";
  ack.index = I(3);
  ASSERT_TRUE(c.core(1).step(ack).is_ok());
  EXPECT_EQ(c.core(1).log().committed(), I(3));
}

TEST(Replication, leader_does_not_count_its_own_unpersisted_entry) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose("x").is_ok());
  Ready rd = c->core(1).ready();
  Message ack = msg(MessageType::kAppendResponse, 2, 1, 1);
  ack.index = I(2);
  ASSERT_TRUE(c->core(1).step(ack).is_ok());
  EXPECT_EQ(c->core(1).log().committed(), I(1)) << "only one durable copy of entry 2";
  ASSERT_TRUE(c->storage(1).append(rd.entries).is_ok());
  c->core(1).advance(rd);
  EXPECT_EQ(c->core(1).log().committed(), I(2));
}

TEST(Replication, heartbeat_carries_min_of_match_and_commit) {
  auto c = three_with_leader();
  c->isolate(3);
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  c->tick(1);
  auto hb = of_type(c->drain(1), MessageType::kHeartbeat);
  ASSERT_EQ(hb.size(), 2u);
  for (const Message& m : hb) {
    EXPECT_EQ(m.commit, m.to == N(2) ? I(2) : I(1));
  }
}

TEST(Replication, probe_state_sends_one_append_at_a_time) {
  auto c = three_with_leader();
  c->isolate(3);
  ASSERT_TRUE(c->core(1).step(msg(MessageType::kAppendResponse, 3, 1, 1)).is_ok());
  c->core(1).report_unreachable(N(3));
  c->drain(1);
  ASSERT_EQ(c->core(1).status().progress.at(N(3)).state, ProgressState::kProbe);
  ASSERT_TRUE(c->core(1).propose("a").is_ok());
  ASSERT_TRUE(c->core(1).propose("b").is_ok());
  auto ms = c->drain(1);
  int to3 = 0;
  for (const Message& m : ms) to3 += m.type == MessageType::kAppend && m.to == N(3);
  EXPECT_EQ(to3, 1);
}

TEST(Replication, heartbeat_response_resumes_paused_probe) {
  auto c = three_with_leader();
  c->core(1).report_unreachable(N(3));
  ASSERT_TRUE(c->core(1).propose("a").is_ok());
  c->drain(1);  // the probe to 3 goes out and is lost
  ASSERT_TRUE(c->core(1).propose("b").is_ok());
  EXPECT_TRUE(of_type(c->drain(1), MessageType::kAppend).size() == 1u);  // only to 2
  ASSERT_TRUE(c->core(1).step(msg(MessageType::kHeartbeatResponse, 3, 1, 1)).is_ok());
  auto again = of_type(c->drain(1), MessageType::kAppend);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].to, N(3));
}

TEST(Replication, replicate_state_pipelines_up_to_max_inflight) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_inflight_msgs = 3;
  });
  ASSERT_EQ(c->core(1).status().progress.at(N(2)).state, ProgressState::kReplicate);
  int to2 = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c->core(1).propose("p" + std::to_string(i)).is_ok());
    for (const Message& m : c->drain(1)) to2 += m.type == MessageType::kAppend && m.to == N(2);
  }
  EXPECT_EQ(to2, 3);
  EXPECT_EQ(c->core(1).status().progress.at(N(2)).inflight_msgs, 3u);
}

TEST(Replication, proposals_of_one_batch_share_one_append_per_follower) {
  auto c = three_with_leader();
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(c->core(1).propose(p).is_ok());
  auto ap = of_type(c->drain(1), MessageType::kAppend);
  ASSERT_EQ(ap.size(), 2u);  // one to each follower
  for (const Message& m : ap) {
    ASSERT_EQ(m.entries.size(), 3u);
    EXPECT_EQ(m.entries[0].data, "a");
    EXPECT_EQ(m.entries[2].data, "c");
  }
}

TEST(Replication, commit_advances_of_one_batch_share_one_append_per_follower) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose("a").is_ok());  // index 2
  c->drain(1);
  ASSERT_TRUE(c->core(1).propose("b").is_ok());  // index 3
  c->drain(1);
  // Two acknowledgements from node 2, each moving the commit index.
  for (uint64_t idx : {2, 3}) {
    Message ack = msg(MessageType::kAppendResponse, 2, 1, 1);
    ack.index = I(idx);
    ASSERT_TRUE(c->core(1).step(ack).is_ok());
  }
  EXPECT_EQ(c->core(1).status().hard_state.commit, I(3));
  auto ap = of_type(c->drain(1), MessageType::kAppend);
  ASSERT_EQ(ap.size(), 2u);  // one to each follower, carrying the newest commit
  for (const Message& m : ap) {
    EXPECT_TRUE(m.entries.empty());
    EXPECT_EQ(m.commit, I(3));
  }
}

TEST(Replication, follower_forwards_back_to_back_proposals_in_one_message) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_size_per_msg_bytes = 100;
  });
  ASSERT_TRUE(c->core(2).propose(std::string(40, 'a')).is_ok());
  ASSERT_TRUE(c->core(2).propose(std::string(40, 'b')).is_ok());
  ASSERT_TRUE(c->core(2).propose(std::string(40, 'c')).is_ok());  // over 100 bytes: a new one
  ASSERT_TRUE(c->core(2).propose_conf_change(cc_of({{ConfChangeType::kAddLearner, N(4)}})).is_ok());
  ASSERT_TRUE(c->core(2).propose("d").is_ok());
  auto props = of_type(c->drain(2), MessageType::kPropose);
  ASSERT_EQ(props.size(), 4u);
  EXPECT_EQ(props[0].entries.size(), 2u);
  EXPECT_EQ(props[1].entries.size(), 1u);
  ASSERT_EQ(props[2].entries.size(), 1u);  // a conf change travels alone
  EXPECT_EQ(props[2].entries[0].type, EntryType::kConfChange);
  EXPECT_EQ(props[3].entries.size(), 1u);
  for (const Message& m : props) EXPECT_EQ(m.to, N(1));
}

TEST(Replication, inflight_byte_bound_pauses_replication) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_size_per_msg_bytes = 100;
    cfg.max_inflight_bytes = 250;
  });
  int to2 = 0;
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(c->core(1).propose(std::string(76, 'x')).is_ok());  // 100 bytes each
    for (const Message& m : c->drain(1)) to2 += m.type == MessageType::kAppend && m.to == N(2);
  }
  EXPECT_EQ(to2, 3);
}

TEST(Replication, rejected_append_moves_replicate_to_probe) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose("x").is_ok());
  c->drain(1);
  Message rej = msg(MessageType::kAppendResponse, 2, 1, 1);
  rej.reject = true;
  rej.index = I(2);  // rejects an index above match (1): not stale
  rej.reject_hint = I(1);
  rej.log_term = T(1);
  ASSERT_TRUE(c->core(1).step(rej).is_ok());
  EXPECT_EQ(c->core(1).status().progress.at(N(2)).state, ProgressState::kProbe);
  EXPECT_EQ(c->core(1).status().progress.at(N(2)).next, I(2));
}

TEST(Replication, max_size_per_msg_limits_entries_in_one_append) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_size_per_msg_bytes = 150;
  });
  c->isolate(2);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->core(1).propose(std::string(76, 'x')).is_ok());
  c->drain(1);
  c->heal();
  c->core(1).report_unreachable(N(2));
  ASSERT_TRUE(c->core(1).step(msg(MessageType::kHeartbeatResponse, 2, 1, 1)).is_ok());
  auto ap = of_type(c->drain(1), MessageType::kAppend);
  ASSERT_FALSE(ap.empty());
  for (const Message& m : ap) EXPECT_LE(m.entries.size(), 1u);
}

TEST(Replication, report_unreachable_moves_follower_to_probe) {
  auto c = three_with_leader();
  ASSERT_EQ(c->core(1).status().progress.at(N(2)).state, ProgressState::kReplicate);
  c->core(1).report_unreachable(N(2));
  EXPECT_EQ(c->core(1).status().progress.at(N(2)).state, ProgressState::kProbe);
}

TEST(Replication, append_with_entries_beyond_its_term_is_rejected_as_corrupt) {
  Cluster c({1, 2, 3});
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.entries = {E(2, 1)};
  EXPECT_EQ(c.core(2).step(a).code(), Code::kCorruption);
  a.entries = {E(1, 2)};  // not contiguous with prev index 0
  EXPECT_EQ(c.core(2).step(a).code(), Code::kCorruption);
}

// ============================ Snapshots (§5.3) ===============================

TEST(Snapshot, leader_sends_snapshot_when_follower_needs_compacted_entries) {
  auto c = three_with_leader();
  c->isolate(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c->propose(1, "v" + std::to_string(i)).is_ok());
  c->compact(1);
  c->heal();
  int snaps = 0;
  c->set_drop([&](const Message& m) {
    snaps += m.type == MessageType::kSnapshot;
    return false;
  });
  for (int i = 0; i < 3; ++i) {
    c->tick(1);
    c->stabilize();
  }
  EXPECT_EQ(snaps, 1);
  EXPECT_EQ(c->node(3).history, c->node(1).history);
  EXPECT_EQ(c->core(1).status().progress.at(N(3)).state, ProgressState::kReplicate);
}

TEST(Snapshot, follower_installs_snapshot_and_reports_its_last_index) {
  Cluster c({1, 2, 3});
  Message s = msg(MessageType::kSnapshot, 1, 2, 1);
  s.snapshot = Snapshot{};
  s.snapshot->metadata = SnapshotMetadata{I(3), T(1), ConfState{{N(1), N(2), N(3)}}};
  s.snapshot->data = encode_history({"a", "b", "c"});
  ASSERT_TRUE(c.core(2).step(s).is_ok());
  auto rs = of_type(c.drain(2), MessageType::kAppendResponse);
  ASSERT_EQ(rs.size(), 1u);
  EXPECT_EQ(rs[0].index, I(3));
  EXPECT_EQ(c.storage(2).first_index(), I(4));
  EXPECT_EQ(c.node(2).history, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(c.core(2).log().applied(), I(3));
}

TEST(Snapshot, follower_ignores_snapshot_not_newer_than_commit) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1, 1, 1}, 1, 4);
  Message s = msg(MessageType::kSnapshot, 1, 2, 1);
  s.snapshot = Snapshot{};
  s.snapshot->metadata = SnapshotMetadata{I(3), T(1), ConfState{{N(1), N(2), N(3)}}};
  ASSERT_TRUE(c.core(2).step(s).is_ok());
  Ready rd = c.core(2).ready();
  EXPECT_FALSE(rd.snapshot.has_value());
  auto after = rd.messages_after_persist.release(Persisted::kHardStateEntriesAndSnapshotAreDurable);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].index, I(4));
  c.core(2).advance(rd);
}

TEST(Snapshot, snapshot_whose_last_entry_matches_only_advances_commit) {
  Cluster c({1, 2, 3});
  seed_log(c, 2, {1, 1, 1, 1}, 1, 1);
  Message s = msg(MessageType::kSnapshot, 1, 2, 1);
  s.snapshot = Snapshot{};
  s.snapshot->metadata = SnapshotMetadata{I(3), T(1), ConfState{{N(1), N(2), N(3)}}};
  ASSERT_TRUE(c.core(2).step(s).is_ok());
  EXPECT_EQ(c.core(2).log().committed(), I(3));
  EXPECT_EQ(c.core(2).log().last_index(), I(4));
  EXPECT_FALSE(c.core(2).log().unstable().snapshot.has_value());
}

TEST(Snapshot, report_snapshot_failure_returns_follower_to_probe) {
  auto c = three_with_leader();
  c->isolate(3);
  ASSERT_TRUE(c->propose(1, "v").is_ok());
  c->compact(1);
  c->core(1).report_unreachable(N(3));
  ASSERT_TRUE(c->core(1).step(msg(MessageType::kHeartbeatResponse, 3, 1, 1)).is_ok());
  // 3's next (2) is still available: first make it need the snapshot.
  Message rej = msg(MessageType::kAppendResponse, 3, 1, 1);
  rej.reject = true;
  rej.index = c->core(1).status().progress.at(N(3)).next - 1;
  rej.reject_hint = I(0);
  ASSERT_TRUE(c->core(1).step(rej).is_ok());
  ASSERT_EQ(c->core(1).status().progress.at(N(3)).state, ProgressState::kSnapshot);
  c->core(1).report_snapshot(N(3), false);
  auto pv = c->core(1).status().progress.at(N(3));
  EXPECT_EQ(pv.state, ProgressState::kProbe);
  EXPECT_EQ(pv.pending_snapshot, I(0));
}

// ============================ Proposals ======================================

TEST(Proposal, follower_forwards_proposal_to_leader) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(2).propose("fwd").is_ok());
  auto ms = c->drain(2);
  ASSERT_EQ(ms.size(), 1u);
  EXPECT_EQ(ms[0].type, MessageType::kPropose);
  EXPECT_EQ(ms[0].to, N(1));
  EXPECT_EQ(ms[0].term, T(0));
  for (const Message& m : ms) c->deliver(m);
  c->stabilize();
  EXPECT_EQ(c->node(3).history.back(), "fwd");
}

TEST(Proposal, proposal_without_known_leader_is_dropped_with_unavailable) {
  Cluster c({1, 2, 3});
  EXPECT_EQ(c.core(1).propose("x").code(), Code::kUnavailable);
}

TEST(Proposal, proposal_larger_than_limit_is_refused) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_proposal_bytes = 10;
  });
  EXPECT_EQ(c->core(1).propose(std::string(11, 'x')).code(), Code::kInvalidArgument);
  EXPECT_TRUE(c->core(1).propose(std::string(10, 'x')).is_ok());
}

TEST(Proposal, uncommitted_tail_bound_refuses_proposals) {
  auto c = three_with_leader([](Config& cfg) {
    cfg.pre_vote = false;
    cfg.max_uncommitted_entries_bytes = 100;
  });
  c->isolate(1);
  ASSERT_TRUE(c->core(1).propose(std::string(60, 'a')).is_ok());
  EXPECT_EQ(c->core(1).propose(std::string(60, 'b')).code(), Code::kResourceExhausted);
  c->heal();
  c->stabilize();
  c->tick(1);
  c->stabilize();
  EXPECT_EQ(c->core(1).uncommitted_bytes(), 0u);
  EXPECT_TRUE(c->core(1).propose(std::string(60, 'b')).is_ok());
}

TEST(Proposal, proposals_refused_during_leadership_transfer) {
  auto c = three_with_leader();
  c->isolate(2);
  ASSERT_TRUE(c->propose(1, "behind").is_ok());
  ASSERT_TRUE(c->core(1).transfer_leadership(N(2)).is_ok());
  EXPECT_EQ(c->core(1).lead_transferee(), N(2));
  EXPECT_EQ(c->core(1).propose("x").code(), Code::kAborted);
}

// ============================ ReadIndex (§6.4) ===============================

TEST(ReadIndex, read_waits_for_a_quorum_of_heartbeat_acks) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).read_index("r1").is_ok());
  auto hb = of_type(c->drain(1), MessageType::kHeartbeat);
  ASSERT_EQ(hb.size(), 2u);
  EXPECT_EQ(hb[0].context, "r1");
  EXPECT_TRUE(c->node(1).read_states.empty());
  c->deliver(hb[0]);
  c->stabilize();
  ASSERT_EQ(c->node(1).read_states.size(), 1u);
  EXPECT_EQ(c->node(1).read_states[0], (ReadState{I(1), "r1"}));
}

TEST(ReadIndex, reads_arriving_during_a_round_share_the_next_round) {
  auto c = three_with_leader();
  int heartbeats = 0;
  c->set_drop([&](const Message& m) {
    heartbeats += m.type == MessageType::kHeartbeat;
    return false;
  });
  ASSERT_TRUE(c->core(1).read_index("a").is_ok());
  ASSERT_TRUE(c->core(1).read_index("b").is_ok());
  ASSERT_TRUE(c->core(1).read_index("c").is_ok());
  ASSERT_TRUE(c->core(1).read_index("d").is_ok());
  c->stabilize();
  EXPECT_EQ(heartbeats, 4);  // two rounds of two heartbeats for four reads
  ASSERT_EQ(c->node(1).read_states.size(), 4u);
  EXPECT_EQ(c->node(1).read_states[3].request_ctx, "d");
}

TEST(ReadIndex, leader_waits_for_commit_in_its_term_before_serving_reads) {
  Cluster c({1, 2, 3}, no_prevote);
  c.set_drop([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  c.core(1).campaign();
  c.stabilize();
  ASSERT_EQ(c.core(1).role(), Role::kLeader);
  ASSERT_EQ(c.core(1).log().committed(), I(0));
  ASSERT_TRUE(c.core(1).read_index("r").is_ok());
  c.stabilize();
  EXPECT_TRUE(c.node(1).read_states.empty());
  c.set_drop(nullptr);
  c.tick(1);
  c.stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, I(1));
}

TEST(ReadIndex, follower_read_is_forwarded_and_answered_by_leader) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  ASSERT_TRUE(c->core(2).read_index("f").is_ok());
  c->stabilize();
  ASSERT_EQ(c->node(2).read_states.size(), 1u);
  EXPECT_EQ(c->node(2).read_states[0], (ReadState{I(2), "f"}));
  EXPECT_TRUE(c->node(1).read_states.empty());
}

TEST(ReadIndex, single_voter_serves_read_at_once) {
  Cluster c({1});
  c.elect(1);
  ASSERT_TRUE(c.core(1).read_index("s").is_ok());
  c.stabilize();
  ASSERT_EQ(c.node(1).read_states.size(), 1u);
  EXPECT_EQ(c.node(1).read_states[0].index, I(1));
}

TEST(ReadIndex, duplicate_pending_context_is_refused) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).read_index("dup").is_ok());
  EXPECT_EQ(c->core(1).read_index("dup").code(), Code::kAlreadyExists);
}

TEST(ReadIndex, read_without_leader_is_unavailable) {
  Cluster c({1, 2, 3});
  EXPECT_EQ(c.core(1).read_index("x").code(), Code::kUnavailable);
}

// ======================== Leadership transfer (§3.10) ========================

TEST(Transfer, caught_up_target_gets_timeout_now_and_wins) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).transfer_leadership(N(2)).is_ok());
  auto tn = of_type(c->drain(1), MessageType::kTimeoutNow);
  ASSERT_EQ(tn.size(), 1u);
  EXPECT_EQ(tn[0].to, N(2));
  for (const Message& m : tn) c->deliver(m);
  c->stabilize();
  EXPECT_EQ(c->leader(), 2u);
  EXPECT_EQ(c->core(2).term(), T(2));
  EXPECT_EQ(c->core(1).role(), Role::kFollower);
}

TEST(Transfer, lagging_target_is_caught_up_before_timeout_now) {
  auto c = three_with_leader();
  c->isolate(2);
  ASSERT_TRUE(c->propose(1, "a").is_ok());
  ASSERT_TRUE(c->core(1).transfer_leadership(N(2)).is_ok());
  EXPECT_TRUE(of_type(c->drain(1), MessageType::kTimeoutNow).empty());
  c->heal();
  c->tick(1);
  c->stabilize();
  EXPECT_EQ(c->leader(), 2u);
  ASSERT_GE(c->node(2).history.size(), 2u);
  EXPECT_EQ(c->node(2).history[1], "a");
}

TEST(Transfer, transfer_aborts_after_an_election_timeout) {
  auto c = three_with_leader();
  c->isolate(2);
  ASSERT_TRUE(c->core(1).transfer_leadership(N(2)).is_ok());
  for (int i = 0; i < 10; ++i) {
    c->tick(1);
    c->stabilize();
  }
  EXPECT_EQ(c->core(1).role(), Role::kLeader);
  EXPECT_EQ(c->core(1).lead_transferee(), kNoNode);
  EXPECT_TRUE(c->propose(1, "after").is_ok());
}

TEST(Transfer, follower_may_ask_leader_for_itself_only) {
  auto c = three_with_leader();
  EXPECT_EQ(c->core(2).transfer_leadership(N(3)).code(), Code::kFailedPrecondition);
  ASSERT_TRUE(c->core(2).transfer_leadership(N(2)).is_ok());
  c->stabilize();
  EXPECT_EQ(c->leader(), 2u);
}

TEST(Transfer, transfer_to_learner_is_refused) {
  Cluster c({1, 2, 3}, no_prevote, {4});
  c.elect(1);
  EXPECT_EQ(c.core(1).transfer_leadership(N(4)).code(), Code::kInvalidArgument);
}

// ============================ Membership (ch. 4) =============================

TEST(Membership, learner_receives_log_but_does_not_count_for_commit) {
  Cluster c({1, 2, 3}, no_prevote, {4});
  c.elect(1);
  c.isolate(2);
  c.isolate(3);
  ASSERT_TRUE(c.propose(1, "x").is_ok());
  EXPECT_EQ(c.core(1).log().committed(), I(1)) << "learner 4's copy must not count";
  c.heal();
  c.tick(1);
  c.stabilize();
  EXPECT_EQ(c.node(4).history, c.node(1).history);
}

TEST(Membership, learner_never_campaigns) {
  Cluster c({1, 2, 3}, nullptr, {4});
  c.tick(4, 100);
  c.stabilize();
  EXPECT_EQ(c.core(4).role(), Role::kFollower);
  EXPECT_EQ(c.core(4).term(), T(0));
}

TEST(Membership, second_change_refused_while_first_unapplied) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kAddLearner, N(4)}})).is_ok());
  EXPECT_EQ(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kAddLearner, N(5)}})).code(),
            Code::kFailedPrecondition);
  c->stabilize();
  EXPECT_TRUE(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kAddLearner, N(5)}})).is_ok());
}

TEST(Membership, two_voter_change_without_joint_is_refused) {
  auto c = three_with_leader();
  auto cc = cc_of({{ConfChangeType::kAddNode, N(4)}, {ConfChangeType::kRemoveNode, N(3)}});
  cc.transition = ConfChangeTransition::kAuto;  // several changes: enters joint (allowed)
  EXPECT_TRUE(c->core(1).propose_conf_change(cc).is_ok());
  c->stabilize();
  EXPECT_TRUE(c->core(1).tracker().config.voters.joint() == false)
      << "auto transition leaves the joint config by itself";
}

TEST(Membership, change_takes_effect_when_applied) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kAddLearner, N(4)}})).is_ok());
  EXPECT_EQ(c->core(1).tracker().progress.count(N(4)), 0u) << "not before it is applied";
  c->stabilize();
  EXPECT_EQ(c->core(1).tracker().progress.count(N(4)), 1u);
  EXPECT_EQ(c->core(2).tracker().config.learners, std::vector<NodeId>{N(4)});
}

TEST(Membership, removed_leader_steps_down_and_hands_over) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kRemoveNode, N(1)}})).is_ok());
  c->stabilize();
  EXPECT_NE(c->core(1).role(), Role::kLeader);
  uint64_t l = c->leader();
  EXPECT_TRUE(l == 2 || l == 3) << l;
  ASSERT_TRUE(c->propose(l, "after").is_ok());
  EXPECT_EQ(c->node(2).history.back(), "after");
}

TEST(Membership, invalid_change_is_rejected_on_apply_and_leaves_config_unchanged) {
  // Every node applies the same entries against the same configuration, so an
  // invalid change is refused identically everywhere.
  auto c = three_with_leader();
  for (uint64_t id : {1, 2, 3}) {
    ConfState before = c->core(id).tracker().conf_state();
    EXPECT_EQ(c->core(id).apply_conf_change(ConfChange{}).status().code(),
              Code::kFailedPrecondition);
    auto remove_all = cc_of({{ConfChangeType::kRemoveNode, N(1)},
                             {ConfChangeType::kRemoveNode, N(2)},
                             {ConfChangeType::kRemoveNode, N(3)}});
    EXPECT_EQ(c->core(id).apply_conf_change(remove_all).status().code(), Code::kInvalidArgument);
    EXPECT_EQ(c->core(id).tracker().conf_state(), before);
  }
}

TEST(Membership, auto_leave_joint_after_entering) {
  auto c = three_with_leader();
  auto cc = cc_of({{ConfChangeType::kAddLearner, N(4)}}, "", ConfChangeTransition::kJointImplicit);
  ASSERT_TRUE(c->core(1).propose_conf_change(cc).is_ok());
  c->stabilize();
  EXPECT_FALSE(c->core(1).tracker().config.voters.joint());
  EXPECT_FALSE(c->core(3).tracker().config.voters.joint());
  // Two conf entries were applied: the enter and the automatic leave.
  int confs = 0;
  for (const std::string& h : c->node(3).history) confs += h.rfind("conf:", 0) == 0;
  EXPECT_EQ(confs, 2);
}

TEST(Membership, explicit_joint_waits_for_application_to_leave) {
  auto c = three_with_leader();
  auto cc = cc_of({{ConfChangeType::kAddLearner, N(4)}}, "", ConfChangeTransition::kJointExplicit);
  ASSERT_TRUE(c->core(1).propose_conf_change(cc).is_ok());
  c->stabilize();
  EXPECT_TRUE(c->core(1).tracker().config.voters.joint());
  EXPECT_EQ(c->core(1).propose_conf_change(cc_of({{ConfChangeType::kAddNode, N(5)}})).code(),
            Code::kFailedPrecondition);
  ASSERT_TRUE(c->core(1).propose_conf_change(ConfChange{}).is_ok());
  c->stabilize();
  EXPECT_FALSE(c->core(1).tracker().config.voters.joint());
}

TEST(Membership, node_with_unapplied_conf_change_does_not_campaign) {
  // A node must not campaign under a configuration it has not finished applying.
  Cluster d({1, 2, 3}, no_prevote);
  Entry cce;
  cce.term = T(1);
  cce.index = I(1);
  cce.type = EntryType::kConfChange;
  cce.data = encode_conf_change(cc_of({{ConfChangeType::kAddLearner, N(4)}}));
  Message a = msg(MessageType::kAppend, 1, 2, 1);
  a.entries = {cce};
  a.commit = I(1);
  ASSERT_TRUE(d.core(2).step(a).is_ok());
  ASSERT_EQ(d.core(2).log().committed(), I(1));
  d.core(2).campaign();  // applied is still 0: refuses
  EXPECT_EQ(d.core(2).role(), Role::kFollower);
  EXPECT_EQ(d.core(2).term(), T(1));
}

// ============================ Ready / restart ================================

TEST(ReadyContract, no_ready_when_nothing_changed) {
  auto c = three_with_leader();
  EXPECT_FALSE(c->core(2).has_ready());
  ASSERT_TRUE(c->core(2).step(msg(MessageType::kHeartbeat, 1, 2, 1)).is_ok());
  Ready rd = c->core(2).ready();
  EXPECT_FALSE(rd.hard_state.has_value()) << "unchanged hard state is not reported";
  EXPECT_FALSE(rd.must_sync);
  c->core(2).advance(rd);
}

TEST(ReadyContract, steps_between_ready_and_advance_land_in_next_ready) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->core(1).propose("a").is_ok());
  Ready rd = c->core(1).ready();
  EXPECT_FALSE(c->core(1).has_ready());
  ASSERT_TRUE(c->core(1).propose("b").is_ok());
  ASSERT_TRUE(c->storage(1).append(rd.entries).is_ok());
  c->core(1).advance(rd);
  Ready rd2 = c->core(1).ready();
  ASSERT_EQ(rd2.entries.size(), 1u);
  EXPECT_EQ(rd2.entries[0].data, "b");
  ASSERT_TRUE(c->storage(1).append(rd2.entries).is_ok());
  c->core(1).advance(rd2);
}

TEST(ReadyContractDeathTest, ready_twice_without_advance_aborts) {
  Cluster c({1});
  c.core(1).campaign();
  Ready rd = c.core(1).ready();
  EXPECT_DEATH({ Ready again = c.core(1).ready(); }, "before advance");
  c.core(1).advance(rd);
}

TEST(Restart, node_recovers_term_vote_commit_and_log_from_storage) {
  auto c = three_with_leader();
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  HardState before{c->core(2).term(), c->core(2).vote(), c->core(2).log().committed()};
  c->crash(2);
  c->restart(2);
  EXPECT_EQ(c->core(2).term(), before.term);
  EXPECT_EQ(c->core(2).vote(), before.vote);
  EXPECT_EQ(c->core(2).log().committed(), before.commit);
  EXPECT_EQ(c->core(2).log().applied(), I(2));
  EXPECT_EQ(c->core(2).log().last_index(), I(2));
  EXPECT_EQ(c->core(2).role(), Role::kFollower);
}

TEST(Restart, unpersisted_entries_are_lost_in_a_crash) {
  auto c = three_with_leader();
  c->isolate(1);
  ASSERT_TRUE(c->core(1).propose("lost").is_ok());
  c->process_ready(1, /*crash_before_persist=*/true);
  c->restart(1);
  EXPECT_EQ(c->core(1).log().last_index(), I(1));
}

TEST(ConfigValidation, messages_name_the_field_to_change) {
  Config cfg = test_config(1);
  cfg.election_ticks = 1;
  Status s = cfg.validate();
  EXPECT_EQ(s.code(), Code::kInvalidArgument);
  EXPECT_NE(s.message().find("election_ticks"), std::string::npos);
  cfg = test_config(0);
  EXPECT_NE(cfg.validate().message().find("id"), std::string::npos);
  cfg = test_config(1);
  cfg.max_inflight_msgs = 0;
  EXPECT_NE(cfg.validate().message().find("max_inflight_msgs"), std::string::npos);
  MemoryLogStorage st(ConfState{{N(1)}});
  cfg = test_config(1);
  cfg.applied = I(5);
  EXPECT_FALSE(Core::create(cfg, &st).is_ok());
  cfg.applied = I(0);
  EXPECT_TRUE(Core::create(cfg, &st).is_ok());
  // Recovered state that contradicts itself is refused, not trusted.
  MemoryLogStorage bad(ConfState{{N(1)}});
  bad.set_hard_state(HardState{T(1), kNoNode, I(7)});  // commit beyond an empty log
  EXPECT_EQ(Core::create(cfg, &bad).status().code(), Code::kCorruption);
  ConfState overlapping;
  overlapping.voters = {N(1)};
  overlapping.learners = {N(1)};
  MemoryLogStorage bad_conf(overlapping);
  EXPECT_EQ(Core::create(cfg, &bad_conf).status().code(), Code::kInvalidArgument);
}

TEST(StatusView, reports_role_commit_and_follower_progress) {
  auto c = three_with_leader();
  c->isolate(3);
  ASSERT_TRUE(c->propose(1, "x").is_ok());
  NodeStatus s = c->core(1).status();
  EXPECT_EQ(s.soft_state.role, Role::kLeader);
  EXPECT_EQ(s.hard_state.commit, I(2));
  EXPECT_EQ(s.applied, I(2));
  ASSERT_EQ(s.progress.size(), 3u);
  EXPECT_EQ(s.progress.at(N(2)).match, I(2));
  EXPECT_EQ(s.progress.at(N(2)).next, I(3));
  EXPECT_EQ(s.progress.at(N(3)).match, I(1));
  EXPECT_TRUE(c->core(2).status().progress.empty());
}

}  // namespace
}  // namespace raftkv::raft::testing

namespace raftkv::raft::testing {
namespace {

// ============================ Lease reads (§6.4.1) ===========================

void lease(Config& cfg) {
  cfg.pre_vote = false;
  cfg.read_only_option = ReadOnlyOption::kLeaseBased;
}

/// A lease-mode cluster with leader 1 whose lease is fresh. Startup guards are
/// run out first (a started node refuses votes for one election timeout).
std::unique_ptr<Cluster> lease_cluster() {
  auto c = std::make_unique<Cluster>(std::vector<uint64_t>{1, 2, 3}, lease);
  for (int i = 0; i < 40 && c->leader() == 0; ++i) {
    c->tick_all();
    c->stabilize();
  }
  EXPECT_NE(c->leader(), 0u);
  return c;
}

TEST(LeaseRead, served_without_a_heartbeat_round_while_lease_is_held) {
  auto c = lease_cluster();
  uint64_t l = c->leader();
  c->tick(l);
  c->stabilize();  // a heartbeat round refreshes the lease
  ASSERT_TRUE(c->core(l).read_index("lease").is_ok());
  auto ms = c->drain(l);
  EXPECT_TRUE(of_type(ms, MessageType::kHeartbeat).empty()) << "no round trip needed";
  ASSERT_EQ(c->node(l).read_states.size(), 1u);
  EXPECT_EQ(c->node(l).read_states[0].index, c->core(l).log().committed());
}

TEST(LeaseRead, expired_lease_falls_back_to_a_heartbeat_round) {
  auto c = lease_cluster();
  uint64_t l = c->leader();
  c->tick(l);
  c->stabilize();
  c->isolate(l);
  c->tick(l, 9);  // election_ticks - drift ticks without acknowledgement
  c->stabilize();
  ASSERT_EQ(c->core(l).role(), Role::kLeader);
  ASSERT_TRUE(c->core(l).read_index("late").is_ok());
  auto hb = of_type(c->drain(l), MessageType::kHeartbeat);
  ASSERT_EQ(hb.size(), 2u);
  EXPECT_EQ(hb[0].context, "late");
  EXPECT_TRUE(c->node(l).read_states.empty());
}

TEST(LeaseRead, leadership_transfer_revokes_the_lease_for_the_term) {
  auto c = lease_cluster();
  uint64_t l = c->leader();
  uint64_t other = l == 1 ? 2 : 1;
  c->isolate(other);
  ASSERT_TRUE(c->core(l).transfer_leadership(N(other)).is_ok());
  c->tick(l, 10);  // the transfer times out and is aborted
  c->stabilize();
  ASSERT_EQ(c->core(l).role(), Role::kLeader);
  ASSERT_EQ(c->core(l).lead_transferee(), kNoNode);
  c->core(l).report_unreachable(N(other));
  c->heal();
  // Even with fresh acknowledgements no lease read is served: the TimeoutNow
  // may still arrive and trigger an election that ignores stickiness.
  c->tick(l);
  c->set_drop([](const Message& m) { return m.type == MessageType::kTimeoutNow; });
  c->stabilize();
  ASSERT_TRUE(c->core(l).read_index("after-transfer").is_ok());
  EXPECT_FALSE(of_type(c->drain(l), MessageType::kHeartbeat).empty()) << "must confirm by a round";
}

TEST(LeaseRead, restarted_node_refuses_votes_for_an_election_timeout) {
  auto c = lease_cluster();
  uint64_t f = c->leader() == 3 ? 2 : 3;
  c->crash(f);
  c->restart(f);
  Message v;
  v.type = MessageType::kVote;
  v.from = N(c->leader() == 1 ? 2 : 1);
  v.to = N(f);
  v.term = c->core(f).term() + 5;
  v.index = I(100);
  v.log_term = T(100);
  ASSERT_TRUE(c->core(f).step(v).is_ok());
  EXPECT_TRUE(c->drain(f).empty()) << "may have acknowledged a lease before crashing";
  c->tick(f, 10);
  ASSERT_TRUE(c->core(f).step(v).is_ok());
  EXPECT_EQ(of_type(c->drain(f), MessageType::kVoteResponse).size(), 1u);
}

TEST(LeaseRead, explicit_campaign_is_ignored_while_a_leader_was_heard) {
  auto c = lease_cluster();
  uint64_t f = c->leader() == 3 ? 2 : 3;
  Term before = c->core(f).term();
  c->core(f).campaign();
  EXPECT_EQ(c->core(f).role(), Role::kFollower);
  EXPECT_EQ(c->core(f).term(), before);
}

TEST(LeaseRead, lease_mode_requires_check_quorum) {
  Config cfg = test_config(1);
  cfg.read_only_option = ReadOnlyOption::kLeaseBased;
  cfg.check_quorum = false;
  EXPECT_NE(cfg.validate().message().find("check_quorum"), std::string::npos);
  cfg.check_quorum = true;
  cfg.lease_clock_drift_ticks = 10;
  EXPECT_NE(cfg.validate().message().find("lease_clock_drift_ticks"), std::string::npos);
}

}  // namespace
}  // namespace raftkv::raft::testing
