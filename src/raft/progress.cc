#include "raft/progress.h"

#include <algorithm>

#include "base/check.h"

namespace raftkv::raft {

const char* progress_state_name(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe:
      return "probe";
    case ProgressState::kReplicate:
      return "replicate";
    case ProgressState::kSnapshot:
      return "snapshot";
  }
  return "unknown";
}

Progress::Progress(Index next_index, size_t max_inflight_msgs, uint64_t max_inflight_bytes,
                   bool learner)
    : next(next_index), is_learner(learner), inflights(max_inflight_msgs, max_inflight_bytes) {
  RAFTKV_CHECK(next_index > Index{0});
}

void Progress::become_probe() {
  // Leaving snapshot state: the follower has (or will have) the snapshot, so
  // probing resumes right after it.
  if (state == ProgressState::kSnapshot) {
    Index pending = pending_snapshot;
    state = ProgressState::kProbe;
    next = std::max(match + 1, pending + 1);
  } else {
    state = ProgressState::kProbe;
    next = match + 1;
  }
  pending_snapshot = Index{0};
  probe_sent = false;
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = match + 1;
  pending_snapshot = Index{0};
  probe_sent = false;
  inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
  RAFTKV_CHECK(snapshot_index > Index{0});
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(Index n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return updated;
}

void Progress::optimistic_update(Index last) {
  RAFTKV_CHECK(state == ProgressState::kReplicate);
  next = last + 1;
}

bool Progress::maybe_decr_to(Index rejected, Index match_hint) {
  if (state == ProgressState::kReplicate) {
    // Stale unless it rejects something past what we know matches.
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe (or snapshot): only the answer to the probe we sent counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, match_hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::is_paused() const {
  switch (state) {
    case ProgressState::kProbe:
      return probe_sent;
    case ProgressState::kReplicate:
      return inflights.full();
    case ProgressState::kSnapshot:
      return true;
  }
  return true;
}

void Progress::check_invariants() const {
  RAFTKV_CHECK_MSG(match < next, "progress: match must be below next");
  RAFTKV_CHECK(state == ProgressState::kSnapshot || pending_snapshot == Index{0});
  RAFTKV_CHECK(state == ProgressState::kReplicate || inflights.count() == 0);
}

Progress* ProgressTracker::get(NodeId id) {
  auto it = progress.find(id);
  return it == progress.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::get(NodeId id) const {
  auto it = progress.find(id);
  return it == progress.end() ? nullptr : &it->second;
}

ConfState ProgressTracker::conf_state() const {
  ConfState cs;
  cs.voters = config.voters.incoming().ids();
  cs.voters_outgoing = config.voters.outgoing().ids();
  cs.learners = config.learners;
  cs.learners_next = config.learners_next;
  cs.auto_leave = config.auto_leave;
  return cs;
}

bool ProgressTracker::is_singleton() const {
  return config.voters.incoming().size() == 1 && !config.voters.joint();
}

namespace {
class MatchIndexer : public quorum::AckedIndexer {
 public:
  explicit MatchIndexer(const std::map<NodeId, Progress>& p) : p_(p) {}
  std::optional<Index> acked_index(NodeId id) const override {
    auto it = p_.find(id);
    if (it == p_.end()) return std::nullopt;
    return it->second.match;
  }

 private:
  const std::map<NodeId, Progress>& p_;
};
}  // namespace

Index ProgressTracker::committed() const {
  return config.voters.committed_index(MatchIndexer(progress));
}

bool ProgressTracker::quorum_active() const {
  std::map<NodeId, bool> active;
  for (const auto& [id, pr] : progress) {
    if (!pr.is_learner) active[id] = pr.recent_active;
  }
  return config.voters.vote_result(active) == quorum::VoteResult::kWon;
}

void ProgressTracker::record_vote(NodeId id, bool granted) {
  // The first answer counts; duplicates (retransmissions) change nothing.
  votes_.emplace(id, granted);
}

quorum::VoteResult ProgressTracker::tally() const {
  // Only voters' answers count; the joint config ignores every other id.
  return config.voters.vote_result(votes_);
}

std::vector<NodeId> ProgressTracker::member_ids() const {
  std::vector<NodeId> out;
  for (const auto& [id, pr] : progress) out.push_back(id);
  return out;
}

void ProgressTracker::check_invariants() const {
  for (NodeId id : config.voters.ids()) {
    const Progress* pr = get(id);
    RAFTKV_CHECK_MSG(pr != nullptr, "tracker: voter without progress");
    RAFTKV_CHECK_MSG(!pr->is_learner, "tracker: voter marked learner");
  }
  for (NodeId id : config.learners) {
    const Progress* pr = get(id);
    RAFTKV_CHECK_MSG(pr != nullptr, "tracker: learner without progress");
    RAFTKV_CHECK_MSG(pr->is_learner, "tracker: learner not marked learner");
    RAFTKV_CHECK_MSG(!config.voters.contains(id), "tracker: learner is also a voter");
  }
  for (NodeId id : config.learners_next) {
    RAFTKV_CHECK_MSG(config.voters.outgoing().contains(id),
                     "tracker: learners_next must be outgoing voters");
    RAFTKV_CHECK_MSG(!config.voters.incoming().contains(id),
                     "tracker: learners_next must not be incoming voters");
  }
  RAFTKV_CHECK_MSG(config.voters.joint() || config.learners_next.empty(),
                   "tracker: learners_next outside a joint config");
  RAFTKV_CHECK_MSG(config.voters.joint() || !config.auto_leave,
                   "tracker: auto_leave outside a joint config");
  for (const auto& [id, pr] : progress) {
    bool member = config.voters.contains(id) ||
                  std::binary_search(config.learners.begin(), config.learners.end(), id);
    RAFTKV_CHECK_MSG(member, "tracker: progress for a non-member");
    pr.check_invariants();
  }
}

}  // namespace raftkv::raft
