#include "raft/core.h"

#include <algorithm>
#include <limits>

#include "base/check.h"
#include "raft/conf_change.h"

namespace raftkv::raft {

namespace {

constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();

bool is_vote_request(MessageType t) {
  return t == MessageType::kVote || t == MessageType::kPreVote;
}

/// Messages that speak for this node's durable state leave only after the
/// Ready they belong to was persisted: a vote request (the candidate's own
/// vote), a vote grant, append and heartbeat acknowledgements.
bool needs_persist_first(MessageType t) {
  switch (t) {
    case MessageType::kVote:
    case MessageType::kVoteResponse:
    case MessageType::kAppendResponse:
    case MessageType::kHeartbeatResponse:
      return true;
    default:
      return false;
  }
}

/// Forwarded requests carry no term: the receiving leader handles them
/// whatever term they were sent in.
bool is_termless(MessageType t) {
  return t == MessageType::kPropose || t == MessageType::kReadIndex ||
         t == MessageType::kTransferLeader;
}

MessageType vote_response_type(MessageType t) {
  return t == MessageType::kVote ? MessageType::kVoteResponse : MessageType::kPreVoteResponse;
}

bool all_normal(const std::vector<Entry>& ents) {
  for (const Entry& e : ents) {
    if (e.type != EntryType::kNormal) return false;
  }
  return true;
}

uint64_t payload_bytes(const std::vector<Entry>& ents) {
  uint64_t n = 0;
  for (const Entry& e : ents) n += e.data.size();
  return n;
}

}  // namespace

// ---------------------------------------------------------------------------
// Config

Status Config::validate() const {
  if (id == kNoNode) return Status::invalid_argument("raft config: id must be non-zero");
  if (heartbeat_ticks <= 0) {
    return Status::invalid_argument("raft config: heartbeat_ticks must be at least 1");
  }
  if (election_ticks <= heartbeat_ticks) {
    return Status::invalid_argument(
        "raft config: election_ticks must be greater than heartbeat_ticks (typically 10x)");
  }
  if (max_size_per_msg_bytes == 0) {
    return Status::invalid_argument("raft config: max_size_per_msg_bytes must be positive");
  }
  if (max_inflight_msgs == 0) {
    return Status::invalid_argument("raft config: max_inflight_msgs must be at least 1");
  }
  if (max_inflight_bytes != 0 && max_inflight_bytes < max_size_per_msg_bytes) {
    return Status::invalid_argument(
        "raft config: max_inflight_bytes must be 0 (unbounded) or >= max_size_per_msg_bytes");
  }
  if (max_committed_bytes_per_ready == 0) {
    return Status::invalid_argument("raft config: max_committed_bytes_per_ready must be positive");
  }
  if (read_only_option == ReadOnlyOption::kLeaseBased && !check_quorum) {
    return Status::invalid_argument(
        "raft config: lease-based reads need check_quorum (followers' stickiness holds the lease)");
  }
  if (lease_clock_drift_ticks < 0 || lease_clock_drift_ticks >= election_ticks) {
    return Status::invalid_argument(
        "raft config: lease_clock_drift_ticks must be in [0, election_ticks)");
  }
  if (max_pending_reads == 0) {
    return Status::invalid_argument("raft config: max_pending_reads must be at least 1");
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Construction

Result<std::unique_ptr<Core>> Core::create(const Config& cfg, LogStorage* storage) {
  RAFTKV_RETURN_IF_ERROR(cfg.validate());
  if (storage == nullptr) return Status::invalid_argument("raft: storage must not be null");
  Result<std::pair<HardState, ConfState>> init = storage->initial_state();
  if (!init.is_ok()) return init.status();
  const HardState& hs = init->first;
  Index first = storage->first_index();
  Index last = storage->last_index();
  if (hs.commit < first - 1 || hs.commit > last) {
    return Status::corruption("raft: stored commit index is outside the stored log");
  }
  ProgressTracker probe(cfg.max_inflight_msgs, cfg.max_inflight_bytes);
  RAFTKV_RETURN_IF_ERROR(restore_conf_state(init->second, last, &probe));
  if (cfg.applied > hs.commit) {
    return Status::invalid_argument("raft config: applied index is beyond the stored commit index");
  }
  return std::make_unique<Core>(cfg, storage);
}

Core::Core(const Config& cfg, LogStorage* storage)
    : id_(cfg.id),
      cfg_(cfg),
      log_(storage),
      tracker_(cfg.max_inflight_msgs, cfg.max_inflight_bytes),
      read_only_(cfg.max_pending_reads),
      rng_state_(cfg.seed ^ (cfg.id.value() * 0x9E3779B97F4A7C15ull)) {
  Status v = cfg.validate();
  RAFTKV_CHECK_MSG(v.is_ok(), v.message().c_str());
  Result<std::pair<HardState, ConfState>> init = storage->initial_state();
  RAFTKV_CHECK_MSG(init.is_ok(), "raft: storage initial_state failed");
  const auto& [hs, cs] = *init;
  Status rs = restore_conf_state(cs, log_.last_index(), &tracker_);
  RAFTKV_CHECK_MSG(rs.is_ok(), rs.message().c_str());
  const Progress* self = tracker_.get(id_);
  is_learner_ = self != nullptr && self->is_learner;
  if (!hs.empty()) {
    term_ = hs.term;
    vote_ = hs.vote;
    log_.commit_to(hs.commit);
  }
  log_.set_applied_at_start(std::max(cfg.applied, log_.first_index() - 1));
  become_follower(term_, kNoNode);
  startup_guard_ = cfg_.read_only_option == ReadOnlyOption::kLeaseBased;
  prev_hard_ = hard_state();
  prev_soft_ = soft_state();
}

// ---------------------------------------------------------------------------
// Randomness and role transitions

uint64_t Core::next_random() {
  // SplitMix64: tiny, portable, good enough to spread election timeouts.
  uint64_t z = (rng_state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

void Core::reset_randomized_election_timeout() {
  randomized_election_timeout_ =
      cfg_.election_ticks + static_cast<int>(next_random() % uint64_t(cfg_.election_ticks));
}

void Core::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  leader_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_leader_transfer();
  tracker_.reset_votes();
  const Index last = log_.last_index();
  for (auto& [id, pr] : tracker_.progress) {
    bool learner = pr.is_learner;
    pr = tracker_.make_progress(last + 1, learner);
    if (id == id_) pr.match = log_.persisted_index();
  }
  pending_conf_index_ = Index{0};
  campaign_after_apply_ = false;
  lease_revoked_ = false;
  uncommitted_bytes_ = 0;
  read_only_.reset();
  reads_awaiting_commit_.clear();
  append_due_.clear();
}

void Core::become_follower(Term term, NodeId leader) {
  reset(term);
  leader_ = leader;
  role_ = Role::kFollower;
}

void Core::become_pre_candidate() {
  RAFTKV_CHECK_MSG(role_ != Role::kLeader, "raft: leader cannot become pre-candidate");
  // A pre-vote changes neither term nor vote: nothing to persist.
  tracker_.reset_votes();
  leader_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void Core::become_candidate() {
  RAFTKV_CHECK_MSG(role_ != Role::kLeader, "raft: leader cannot become candidate");
  reset(term_ + 1);
  vote_ = id_;
  role_ = Role::kCandidate;
}

void Core::become_leader() {
  RAFTKV_CHECK_MSG(role_ != Role::kFollower, "raft: follower cannot become leader directly");
  reset(term_);
  leader_ = id_;
  role_ = Role::kLeader;
  Progress* self = tracker_.get(id_);
  RAFTKV_CHECK(self != nullptr);
  self->become_replicate();
  self->match = log_.persisted_index();
  // Every entry up to here may hold a conf change we have not seen applied:
  // wait for all of it before proposing another (conservative, §4.1).
  pending_conf_index_ = log_.last_index();
  // The no-op that lets this term commit (§3.6.2, §6.4).
  std::vector<Entry> noop(1);
  RAFTKV_CHECK_MSG(append_entries(&noop), "raft: the leader's empty entry is never refused");
}

// ---------------------------------------------------------------------------
// Ticks and elections

void Core::tick() {
  ++now_ticks_;
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Core::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) startup_guard_ = false;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    hup(CampaignType::kPreElection);
  }
}

void Core::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      if (Progress* self = tracker_.get(id_)) self->recent_active = true;
      if (!tracker_.quorum_active()) {
        // §6.2: a leader that cannot reach a quorum stops acting as one, so
        // clients go find the real leader.
        become_follower(term_, kNoNode);
        return;
      }
      for (auto& [id, pr] : tracker_.progress) {
        if (id != id_) pr.recent_active = false;
      }
    }
    // A transfer that did not finish within an election timeout is abandoned (§3.10).
    abort_leader_transfer();
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat(read_only_.last_pending_ctx());
  }
}

bool Core::promotable() const {
  const Progress* self = tracker_.get(id_);
  return self != nullptr && !self->is_learner && tracker_.is_voter(id_) &&
         !log_.unstable().snapshot.has_value();
}

bool Core::has_unapplied_conf_changes() const {
  if (log_.committed() <= log_.applied()) return false;
  Result<std::vector<Entry>> ents = log_.slice(log_.applied() + 1, log_.committed() + 1, kNoLimit);
  if (!ents.is_ok()) return false;
  for (const Entry& e : *ents) {
    if (e.type == EntryType::kConfChange) return true;
  }
  return false;
}

void Core::campaign() {
  if (cfg_.read_only_option == ReadOnlyOption::kLeaseBased && role_ != Role::kLeader &&
      heard_leader_recently()) {
    return;
  }
  hup(CampaignType::kPreElection);
}

bool Core::heard_leader_recently() const {
  return (leader_ != kNoNode || startup_guard_) && election_elapsed_ < cfg_.election_ticks;
}

void Core::hup(CampaignType t) {
  if (role_ == Role::kLeader) return;
  if (!promotable()) return;
  // A node must not campaign with a configuration it has not finished applying.
  if (has_unapplied_conf_changes()) return;
  if (t == CampaignType::kPreElection && !cfg_.pre_vote) t = CampaignType::kElection;
  start_campaign(t);
}

void Core::start_campaign(CampaignType t) {
  Term vote_term;
  MessageType type;
  if (t == CampaignType::kPreElection) {
    become_pre_candidate();
    vote_term = term_ + 1;  // the term we would campaign in; ours is unchanged
    type = MessageType::kPreVote;
  } else {
    become_candidate();
    vote_term = term_;
    type = MessageType::kVote;
  }
  const Role expected = t == CampaignType::kPreElection ? Role::kPreCandidate : Role::kCandidate;
  poll(id_, true);
  // A single-voter cluster wins on its own vote; poll() moved on already.
  if (role_ != expected) return;
  const Index last = log_.last_index();
  const Term last_term = log_.last_term();
  for (NodeId to : tracker_.config.voters.ids()) {
    if (to == id_) continue;
    Message m;
    m.type = type;
    m.to = to;
    m.term = vote_term;
    m.index = last;
    m.log_term = last_term;
    if (t == CampaignType::kTransfer) m.context = kCampaignTransferContext;
    send(std::move(m));
  }
}

void Core::poll(NodeId from, bool granted) {
  tracker_.record_vote(from, granted);
  switch (tracker_.tally()) {
    case quorum::VoteResult::kWon:
      if (role_ == Role::kPreCandidate) {
        start_campaign(CampaignType::kElection);
      } else if (role_ == Role::kCandidate) {
        become_leader();
        bcast_append();
      }
      break;
    case quorum::VoteResult::kLost:
      become_follower(term_, kNoNode);
      break;
    case quorum::VoteResult::kPending:
      break;
  }
}

// ---------------------------------------------------------------------------
// Step

Status Core::validate_message(const Message& m) {
  if (m.type > MessageType::kTransferLeader)
    return Status::invalid_argument("raft: unknown message type");
  if (m.type == MessageType::kAppend) {
    Index expect = m.index + 1;
    for (const Entry& e : m.entries) {
      if (e.index != expect || e.term > m.term || e.term == Term{0}) {
        return Status::corruption("raft: append carries non-contiguous or future-term entries");
      }
      ++expect;
    }
    if (m.log_term > m.term) return Status::corruption("raft: append prev term above its term");
  }
  if (m.type == MessageType::kSnapshot && (!m.snapshot || m.snapshot->empty())) {
    return Status::corruption("raft: snapshot message without a snapshot");
  }
  if (!is_termless(m.type) && m.term == Term{0}) {
    return Status::invalid_argument("raft: peer message without a term");
  }
  return Status::ok();
}

Status Core::step(const Message& m) {
  if (m.to != id_) return Status::invalid_argument("raft: message addressed to another node");
  if (m.from == id_ || m.from == kNoNode) return Status::invalid_argument("raft: bad sender");
  RAFTKV_RETURN_IF_ERROR(validate_message(m));

  if (!is_termless(m.type)) {
    if (m.term > term_) {
      if (is_vote_request(m.type)) {
        const bool forced = m.context == kCampaignTransferContext;
        const bool in_lease = cfg_.check_quorum && heard_leader_recently();
        // Leader stickiness (§4.2.3): a node that heard from a leader within
        // the minimum election timeout ignores (pre-)votes, so a removed or
        // partitioned node cannot depose a working leader.
        if (!forced && in_lease) return Status::ok();
      }
      if (m.type == MessageType::kPreVote ||
          (m.type == MessageType::kPreVoteResponse && !m.reject)) {
        // Pre-votes never move terms; a granted pre-vote carries the term the
        // pre-candidate would campaign in.
      } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                 m.type == MessageType::kSnapshot) {
        become_follower(m.term, m.from);
      } else {
        become_follower(m.term, kNoNode);
      }
    } else if (m.term < term_) {
      if ((cfg_.check_quorum || cfg_.pre_vote) &&
          (m.type == MessageType::kHeartbeat || m.type == MessageType::kAppend)) {
        // A stale leader (e.g. one we stopped hearing while partitioned and
        // whose pre-votes we refused) learns our term and steps down.
        Message r;
        r.type = MessageType::kAppendResponse;
        r.to = m.from;
        send(std::move(r));
      } else if (m.type == MessageType::kPreVote) {
        Message r;
        r.type = MessageType::kPreVoteResponse;
        r.to = m.from;
        r.term = term_;
        r.reject = true;
        send(std::move(r));
      }
      return Status::ok();
    }
  }

  if (is_vote_request(m.type)) {
    handle_vote_request(m);
    return Status::ok();
  }
  switch (role_) {
    case Role::kLeader:
      return step_leader(m);
    case Role::kCandidate:
    case Role::kPreCandidate:
      return step_candidate(m);
    case Role::kFollower:
      return step_follower(m);
  }
  return Status::ok();
}

void Core::handle_vote_request(const Message& m) {
  const bool can_vote = vote_ == m.from || (vote_ == kNoNode && leader_ == kNoNode) ||
                        (m.type == MessageType::kPreVote && m.term > term_);
  Message r;
  r.type = vote_response_type(m.type);
  r.to = m.from;
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    // §3.6.1: grant only to a candidate whose log is at least as up to date.
    r.term = m.term;
    if (m.type == MessageType::kVote) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.term = term_;
    r.reject = true;
  }
  send(std::move(r));
}

Status Core::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kPropose:
    case MessageType::kReadIndex:
    case MessageType::kTransferLeader:
      // Only the leader serves forwarded requests; forwarding again could loop.
      return Status::unavailable("raft: not the leader; request dropped");
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_append(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_heartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_snapshot(m);
      break;
    case MessageType::kTimeoutNow:
      // §3.10: the leader asks us to start an election at once, skipping the
      // pre-vote and overriding stickiness (it is the one stepping aside).
      if (has_unapplied_conf_changes()) {
        // Campaign once the configuration is applied (see advance()); e.g. a
        // removed leader hands over in the same round that commits its removal.
        campaign_after_apply_ = true;
      } else {
        hup(CampaignType::kTransfer);
      }
      break;
    case MessageType::kReadIndexResponse:
      read_states_.push_back(ReadState{m.index, m.context});
      break;
    default:
      break;  // stale responses
  }
  return Status::ok();
}

Status Core::step_candidate(const Message& m) {
  const MessageType mine =
      role_ == Role::kPreCandidate ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  switch (m.type) {
    case MessageType::kPropose:
    case MessageType::kReadIndex:
    case MessageType::kTransferLeader:
      return Status::unavailable("raft: election in progress; request dropped");
    case MessageType::kAppend:
      become_follower(m.term, m.from);  // a leader of our term exists (§3.4)
      handle_append(m);
      break;
    case MessageType::kHeartbeat:
      become_follower(m.term, m.from);
      handle_heartbeat(m);
      break;
    case MessageType::kSnapshot:
      become_follower(m.term, m.from);
      handle_snapshot(m);
      break;
    default:
      if (m.type == mine) poll(m.from, !m.reject);
      break;
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Follower: AppendEntries, heartbeats, snapshots

void Core::handle_append(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is known to match (committed entries
    // never change); tell the leader where we are.
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  if (std::optional<Index> last_new = log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
    r.index = *last_new;
    send(std::move(r));
    return;
  }
  // §5.3 optimization: instead of one index per round trip, hint the largest
  // index <= prev whose term is <= the leader's prev term; the leader skips
  // straight past every entry of a conflicting term.
  Index hint = std::min(m.index, log_.last_index());
  hint = log_.find_conflict_by_term(hint, m.log_term);
  r.reject = true;
  r.index = m.index;
  r.reject_hint = hint;
  r.log_term = log_.term(hint);
  send(std::move(r));
}

void Core::handle_heartbeat(const Message& m) {
  // The leader sends min(match, commit), so this never passes our log.
  log_.commit_to(m.commit);
  Message r;
  r.type = MessageType::kHeartbeatResponse;
  r.to = m.from;
  r.index = m.index;  // echo the leader's tick stamp (lease)
  r.context = m.context;
  send(std::move(r));
}

void Core::handle_snapshot(const Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  r.index = restore(*m.snapshot) ? log_.last_index() : log_.committed();
  send(std::move(r));
}

bool Core::restore(const Snapshot& s) {
  const SnapshotMetadata& md = s.metadata;
  if (md.index <= log_.committed()) return false;
  RAFTKV_CHECK_MSG(role_ == Role::kFollower, "raft: only a follower installs a snapshot");
  const ConfState& cs = md.conf_state;
  auto in = [&](const std::vector<NodeId>& v) {
    return std::find(v.begin(), v.end(), id_) != v.end();
  };
  if (!in(cs.voters) && !in(cs.learners) && !in(cs.voters_outgoing)) {
    return false;  // a snapshot for a configuration we are not part of
  }
  if (log_.match_term(md.index, md.term)) {
    // We already have the entry: just learn that it is committed.
    log_.commit_to(md.index);
    return false;
  }
  log_.restore(s);
  Status st = restore_conf_state(cs, log_.last_index(), &tracker_);
  RAFTKV_CHECK_MSG(st.is_ok(), "raft: snapshot carries an impossible configuration");
  const Progress* self = tracker_.get(id_);
  is_learner_ = self != nullptr && self->is_learner;
  return true;
}

// ---------------------------------------------------------------------------
// Leader

Status Core::step_leader(const Message& m) {
  switch (m.type) {
    case MessageType::kPropose:
      return propose_entries(m.entries);
    case MessageType::kReadIndex:
      return leader_read_index(m.from, m.context);
    case MessageType::kTransferLeader:
      handle_transfer_leader(m.from);
      return Status::ok();
    case MessageType::kAppendResponse:
    case MessageType::kHeartbeatResponse: {
      Progress* pr = tracker_.get(m.from);
      if (pr == nullptr) return Status::ok();  // not (or no longer) a member
      if (m.type == MessageType::kAppendResponse) {
        handle_append_response(m, *pr);
      } else {
        handle_heartbeat_response(m, *pr);
      }
      return Status::ok();
    }
    default:
      return Status::ok();
  }
}

void Core::handle_append_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  if (m.reject) {
    Index match_hint = m.reject_hint;
    if (m.log_term > Term{0}) {
      // Skip every entry whose term is above the follower's hint term.
      match_hint = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    }
    if (pr.maybe_decr_to(m.index, match_hint)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      maybe_send_append(m.from, true);
    }
    return;
  }
  const bool was_paused = pr.is_paused();
  if (!pr.maybe_update(m.index)) return;
  if (pr.state == ProgressState::kProbe) {
    pr.become_replicate();
  } else if (pr.state == ProgressState::kSnapshot && pr.match + 1 >= log_.first_index()) {
    // The follower installed the snapshot (or caught up otherwise).
    pr.become_probe();
    pr.become_replicate();
  } else if (pr.state == ProgressState::kReplicate) {
    pr.inflights.free_le(m.index);
  }
  if (maybe_commit()) {
    on_commit_advanced();
    bcast_append();
  }
  // Pipeline: entries the window held back go at the next Ready (an empty
  // append, if the window was shut, exposes a gap the acks left).
  mark_append_due(m.from, was_paused);
  Progress* p = tracker_.get(m.from);
  if (p != nullptr && m.from == lead_transferee_ && p->match == log_.last_index()) {
    send_timeout_now(m.from);
  }
}

void Core::handle_heartbeat_response(const Message& m, Progress& pr) {
  pr.recent_active = true;
  pr.probe_sent = false;
  pr.lease_ack_stamp = std::max(pr.lease_ack_stamp, m.index.value() + 1);
  // The follower is alive: if the window is full its acks (or our appends)
  // were lost; reopen one slot so the next append exposes the gap.
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) pr.inflights.free_first_one();
  if (pr.match < log_.last_index()) maybe_send_append(m.from, true);
  if (m.context.empty()) return;
  const std::set<NodeId>* acks = read_only_.ack(m.from, m.context);
  if (acks == nullptr) return;
  std::map<NodeId, bool> votes;
  for (NodeId id : *acks) votes[id] = true;
  if (tracker_.config.voters.vote_result(votes) != quorum::VoteResult::kWon) return;
  for (const ReadOnly::Request& req : read_only_.advance(m.context)) respond_read(req);
  // Reads that arrived during this round share the next one.
  if (read_only_.pending() > 0) bcast_heartbeat(read_only_.last_pending_ctx());
}

void Core::handle_transfer_leader(NodeId transferee) {
  Progress* pr = tracker_.get(transferee);
  if (pr == nullptr || pr->is_learner || !tracker_.is_voter(transferee)) return;
  if (lead_transferee_ != kNoNode) {
    if (lead_transferee_ == transferee) return;  // already under way
    abort_leader_transfer();
  }
  if (transferee == id_) return;  // already the leader
  // The transfer must finish within one election timeout (tick_heartbeat).
  election_elapsed_ = 0;
  lead_transferee_ = transferee;
  if (pr->match == log_.last_index()) {
    send_timeout_now(transferee);
  } else {
    maybe_send_append(transferee, true);
  }
}

void Core::send_timeout_now(NodeId to) {
  lease_revoked_ = true;
  Message m;
  m.type = MessageType::kTimeoutNow;
  m.to = to;
  send(std::move(m));
}

Status Core::propose(std::string data) {
  if (cfg_.max_proposal_bytes != 0 && data.size() > cfg_.max_proposal_bytes) {
    return Status::invalid_argument("raft: proposal of " + std::to_string(data.size()) +
                                    " bytes exceeds max_proposal_bytes (" +
                                    std::to_string(cfg_.max_proposal_bytes) + ")");
  }
  std::vector<Entry> ents(1);
  ents[0].data = std::move(data);
  return propose_entries(std::move(ents));
}

Status Core::check_conf_change_proposal(const ConfChange& cc) const {
  if (pending_conf_index_ > log_.applied()) {
    return Status::failed_precondition(
        "raft: a configuration change at index " + std::to_string(pending_conf_index_.value()) +
        " is not applied yet (applied " + std::to_string(log_.applied().value()) +
        "); propose the next change after it is applied");
  }
  const bool joint = tracker_.config.voters.joint();
  if (joint && !cc.leave_joint()) {
    return Status::failed_precondition(
        "raft: in a joint configuration; only leaving it (an empty change) is allowed");
  }
  if (!joint && cc.leave_joint()) {
    return Status::failed_precondition("raft: not in a joint configuration; nothing to leave");
  }
  Result<TrackerState> probe = ConfChanger(tracker_, log_.last_index()).apply(cc);
  return probe.status();
}

Status Core::propose_conf_change(const ConfChange& cc) {
  std::vector<Entry> ents(1);
  ents[0].type = EntryType::kConfChange;
  ents[0].data = encode_conf_change(cc);
  return propose_entries(std::move(ents));
}

Status Core::propose_entries(std::vector<Entry> ents) {
  if (ents.empty()) return Status::invalid_argument("raft: empty proposal");
  if (role_ != Role::kLeader) {
    Message m;
    m.type = MessageType::kPropose;
    m.entries = std::move(ents);
    return forward_to_leader(std::move(m), "raft: no leader; proposal dropped");
  }
  if (tracker_.get(id_) == nullptr) {
    return Status::failed_precondition("raft: this node was removed from the configuration");
  }
  if (lead_transferee_ != kNoNode) {
    return Status::aborted("raft: leadership transfer to node " +
                           std::to_string(lead_transferee_.value()) +
                           " in progress; proposal dropped");
  }
  for (Entry& e : ents) {
    if (cfg_.max_proposal_bytes != 0 && e.data.size() > cfg_.max_proposal_bytes) {
      return Status::invalid_argument("raft: proposal exceeds max_proposal_bytes");
    }
    if (e.type == EntryType::kConfChange) {
      Result<ConfChange> cc = decode_conf_change(e.data);
      if (!cc.is_ok()) return cc.status();
      RAFTKV_RETURN_IF_ERROR(check_conf_change_proposal(*cc));
    }
  }
  if (!append_entries(&ents)) {
    return Status::resource_exhausted(
        "raft: uncommitted log at max_uncommitted_entries_bytes; proposal dropped, retry later");
  }
  for (const Entry& e : ents) {
    if (e.type == EntryType::kConfChange) pending_conf_index_ = e.index;
  }
  bcast_append();
  return Status::ok();
}

bool Core::append_entries(std::vector<Entry>* ents) {
  const uint64_t bytes = payload_bytes(*ents);
  // Refuse only when something is already outstanding, so that a single entry
  // larger than the bound can still make progress.
  if (cfg_.max_uncommitted_entries_bytes != 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + bytes > cfg_.max_uncommitted_entries_bytes) {
    return false;
  }
  uncommitted_bytes_ += bytes;
  Index li = log_.last_index();
  for (size_t i = 0; i < ents->size(); ++i) {
    (*ents)[i].term = term_;
    (*ents)[i].index = li + 1 + i;
  }
  Index last = log_.append(*ents);
  // The leader's own acknowledgement comes when the entries are persisted
  // (advance), so a commit never counts a copy that is not durable.
  Progress* self = tracker_.get(id_);
  if (self != nullptr) self->next = std::max(self->next, last + 1);
  return true;
}

bool Core::maybe_send_snapshot(NodeId to, Progress& pr) {
  if (!pr.recent_active) return false;  // not worth a snapshot until it answers
  Result<Snapshot> snap = log_.snapshot();
  if (!snap.is_ok() || snap->empty()) return false;  // being prepared: retry later
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  pr.become_snapshot(snap->metadata.index);
  m.snapshot = std::move(*snap);
  send(std::move(m));
  return true;
}

bool Core::maybe_send_append(NodeId to, bool send_if_empty) {
  Progress* pr = tracker_.get(to);
  if (pr == nullptr || to == id_ || pr->is_paused()) return false;
  const Index prev = pr->next - 1;
  Result<Term> prev_term = log_.term_result(prev);
  if (!prev_term.is_ok()) {
    if (prev_term.status().code() == Code::kOutOfRange) return maybe_send_snapshot(to, *pr);
    return false;
  }
  Result<std::vector<Entry>> ents = log_.entries_from(pr->next, cfg_.max_size_per_msg_bytes);
  if (!ents.is_ok()) return maybe_send_snapshot(to, *pr);
  if (ents->empty() && !send_if_empty) return false;
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  if (!ents->empty()) {
    uint64_t bytes = 0;
    for (const Entry& e : *ents) bytes += e.size_bytes();
    const Index last = ents->back().index;
    switch (pr->state) {
      case ProgressState::kReplicate:
        pr->optimistic_update(last);
        pr->inflights.add(last, bytes);
        break;
      case ProgressState::kProbe:
        pr->probe_sent = true;
        break;
      case ProgressState::kSnapshot:
        RAFTKV_CHECK_MSG(false, "raft: sending append in snapshot state");
    }
  } else if (pr->state == ProgressState::kProbe) {
    pr->probe_sent = true;
  }
  m.entries = std::move(*ents);
  send(std::move(m));
  return true;
}

void Core::send_heartbeat(NodeId to, const std::string& ctx) {
  const Progress* pr = tracker_.get(to);
  if (pr == nullptr) return;
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  // Never tell a follower to commit past what it is known to hold.
  m.commit = std::min(pr->match, log_.committed());
  m.index = Index{now_ticks_};  // the follower echoes it (lease)
  m.context = ctx;
  send(std::move(m));
}

void Core::bcast_append() {
  for (auto& [id, pr] : tracker_.progress) {
    if (id != id_) mark_append_due(id, true);
  }
}

void Core::mark_append_due(NodeId to, bool send_if_empty) {
  bool& if_empty = append_due_[to];
  if_empty = if_empty || send_if_empty;
}

void Core::flush_appends() {
  std::map<NodeId, bool> due;
  due.swap(append_due_);
  if (role_ != Role::kLeader) return;
  for (const auto& [id, send_if_empty] : due) {
    if (!maybe_send_append(id, send_if_empty)) continue;
    // Pipeline what one message could not carry, while the window allows.
    for (size_t i = 1; i < cfg_.max_inflight_msgs; ++i) {
      if (!maybe_send_append(id, false)) break;
    }
  }
}

void Core::bcast_heartbeat(const std::string& ctx) {
  for (auto& [id, pr] : tracker_.progress) {
    if (id != id_) send_heartbeat(id, ctx);
  }
}

bool Core::maybe_commit() {
#if defined(RAFTKV_SIM_MUTATION) && RAFTKV_SIM_MUTATION == 1
  // Simulator self-test only (src/sim/CMakeLists.txt; never built by default):
  // the §3.6.2 bug — commit an earlier term's entry by counting its replicas.
  if (tracker_.committed() > log_.committed()) {
    log_.commit_to(tracker_.committed());
    return true;
  }
  return false;
#endif
  // §3.6.2: count replicas only for an entry of the current term; earlier
  // entries commit indirectly with it.
  return log_.maybe_commit(tracker_.committed(), term_);
}

void Core::on_commit_advanced() {
  if (!committed_in_current_term() || reads_awaiting_commit_.empty()) return;
  auto waiting = std::move(reads_awaiting_commit_);
  reads_awaiting_commit_.clear();
  for (auto& [from, ctx] : waiting) {
    Status s = start_read(from, ctx);
    (void)s;  // a refused read is dropped; the requester retries
  }
}

bool Core::committed_in_current_term() const {
  return log_.term(log_.committed()) == term_;
}

namespace {
class LeaseIndexer : public quorum::AckedIndexer {
 public:
  LeaseIndexer(const ProgressTracker& t, NodeId self, uint64_t now)
      : t_(t), self_(self), now_(now) {}
  std::optional<Index> acked_index(NodeId id) const override {
    if (id == self_) return Index{now_ + 1};
    const Progress* pr = t_.get(id);
    if (pr == nullptr) return std::nullopt;
    return Index{pr->lease_ack_stamp};
  }

 private:
  const ProgressTracker& t_;
  NodeId self_;
  uint64_t now_;
};
}  // namespace

bool Core::lease_valid() const {
  if (cfg_.read_only_option != ReadOnlyOption::kLeaseBased || role_ != Role::kLeader) return false;
  if (lease_revoked_ || lead_transferee_ != kNoNode) return false;
  // The newest stamp acknowledged by a quorum (self counts as "now").
  const Index q = tracker_.config.voters.committed_index(LeaseIndexer(tracker_, id_, now_ticks_));
  if (q == Index{0}) return false;
  const uint64_t stamp = q.value() - 1;
  RAFTKV_CHECK(stamp <= now_ticks_);
  return now_ticks_ - stamp < uint64_t(cfg_.election_ticks - cfg_.lease_clock_drift_ticks);
}

void Core::report_unreachable(NodeId id) {
  if (role_ != Role::kLeader) return;
  Progress* pr = tracker_.get(id);
  if (pr != nullptr && pr->state == ProgressState::kReplicate) pr->become_probe();
}

void Core::report_snapshot(NodeId id, bool ok) {
  if (role_ != Role::kLeader) return;
  Progress* pr = tracker_.get(id);
  if (pr == nullptr || pr->state != ProgressState::kSnapshot) return;
  if (!ok) pr->pending_snapshot = Index{0};
  // Either way wait for the follower's answer (or a heartbeat response) before
  // probing again.
  pr->become_probe();
  pr->probe_sent = true;
}

Status Core::transfer_leadership(NodeId target) {
  if (role_ == Role::kLeader) {
    if (!tracker_.is_voter(target)) {
      return Status::invalid_argument("raft: transfer target is not a voter");
    }
    handle_transfer_leader(target);
    return Status::ok();
  }
  if (target != id_) {
    return Status::failed_precondition(
        "raft: not the leader; ask the leader to transfer, or ask for this node itself");
  }
  Message m;
  m.type = MessageType::kTransferLeader;
  return forward_to_leader(std::move(m), "raft: no leader to transfer from");
}

// ---------------------------------------------------------------------------
// ReadIndex (§6.4)

Status Core::read_index(std::string ctx) {
  if (role_ == Role::kLeader) return leader_read_index(id_, ctx);
  Message m;
  m.type = MessageType::kReadIndex;
  m.context = std::move(ctx);
  return forward_to_leader(std::move(m), "raft: no leader; read dropped");
}

Status Core::forward_to_leader(Message m, const char* no_leader_message) {
  if (leader_ == kNoNode) return Status::unavailable(no_leader_message);
  // Client proposals forwarded back to back travel as one message, up to
  // the size of one append (conf changes travel alone: the leader refuses a
  // message whole if one of its entries does not fit the configuration).
  const bool mergeable = m.type == MessageType::kPropose && all_normal(m.entries);
  if (mergeable && forwarded_mergeable_ && !msgs_.empty()) {
    Message& last = msgs_.back();
    const uint64_t bytes = payload_bytes(m.entries);
    if (last.type == MessageType::kPropose && last.to == leader_ &&
        forwarded_bytes_ + bytes <= cfg_.max_size_per_msg_bytes) {
      last.entries.insert(last.entries.end(), std::make_move_iterator(m.entries.begin()),
                          std::make_move_iterator(m.entries.end()));
      forwarded_bytes_ += bytes;
      return Status::ok();
    }
  }
  if (m.type == MessageType::kPropose) {
    forwarded_bytes_ = payload_bytes(m.entries);
    forwarded_mergeable_ = mergeable;
  }
  m.to = leader_;
  send(std::move(m));
  return Status::ok();
}

Status Core::leader_read_index(NodeId from, const std::string& ctx) {
  if (tracker_.is_singleton() && tracker_.is_voter(id_)) {
    // Nobody else can have been elected: the commit index is current once an
    // entry of this term committed.
    if (committed_in_current_term()) {
      respond_read(ReadOnly::Request{log_.committed(), from, ctx});
      return Status::ok();
    }
  }
  if (committed_in_current_term() && lease_valid()) {
    respond_read(ReadOnly::Request{log_.committed(), from, ctx});
    return Status::ok();
  }
  if (!committed_in_current_term()) {
    // Our commit index may lag what a previous leader committed; wait for the
    // no-op of this term to commit (§6.4 step 1).
    if (reads_awaiting_commit_.size() >= cfg_.max_pending_reads) {
      return Status::resource_exhausted("raft: too many pending reads; retry later");
    }
    reads_awaiting_commit_.emplace_back(from, ctx);
    return Status::ok();
  }
  return start_read(from, ctx);
}

Status Core::start_read(NodeId from, const std::string& ctx) {
#if defined(RAFTKV_SIM_MUTATION) && RAFTKV_SIM_MUTATION == 3
  // Simulator self-test only (src/sim/CMakeLists.txt; never built by default):
  // serve the read at the commit index without confirming leadership.
  respond_read(ReadOnly::Request{log_.committed(), from, ctx});
  return Status::ok();
#endif
  if (tracker_.is_singleton() && tracker_.is_voter(id_)) {
    respond_read(ReadOnly::Request{log_.committed(), from, ctx});
    return Status::ok();
  }
  if (read_only_.full())
    return Status::resource_exhausted("raft: too many pending reads; retry later");
  const bool round_in_flight = read_only_.pending() > 0;
  if (!read_only_.add(log_.committed(), from, ctx)) {
    return Status::already_exists("raft: a read with this context is already pending");
  }
  const std::set<NodeId>* acks = read_only_.ack(id_, ctx);
  RAFTKV_CHECK(acks != nullptr);
  // Batching: one heartbeat round at a time. A read arriving while a round is
  // in flight waits for the next one, which carries the newest context and so
  // confirms every read queued before it (the tick's heartbeat also carries it).
  if (!round_in_flight) bcast_heartbeat(ctx);
  return Status::ok();
}

void Core::respond_read(const ReadOnly::Request& req) {
  if (req.from == id_) {
    read_states_.push_back(ReadState{req.index, req.ctx});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = req.from;
  m.index = req.index;
  m.context = req.ctx;
  send(std::move(m));
}

// ---------------------------------------------------------------------------
// Membership (chapter 4)

Result<ConfState> Core::apply_conf_change(const ConfChange& cc) {
  Result<TrackerState> next = ConfChanger(tracker_, log_.last_index()).apply(cc);
  if (!next.is_ok()) return next.status();
  switch_to_config(std::move(*next));
  return tracker_.conf_state();
}

void Core::switch_to_config(TrackerState s) {
  tracker_.config = std::move(s.config);
  tracker_.progress = std::move(s.progress);
  tracker_.check_invariants();
  const Progress* self = tracker_.get(id_);
  is_learner_ = self != nullptr && self->is_learner;
  if (role_ != Role::kLeader) return;
  if (self == nullptr || !tracker_.is_voter(id_)) {
    step_down_after_removal();
    return;
  }
  // The quorum changed: the commit index may move, and new members need the log.
  if (maybe_commit()) {
    on_commit_advanced();
    bcast_append();
  } else {
    for (auto& [id, pr] : tracker_.progress) {
      if (id != id_ && !pr.is_paused()) maybe_send_append(id, true);
    }
  }
  if (lead_transferee_ != kNoNode && !tracker_.is_voter(lead_transferee_)) abort_leader_transfer();
}

void Core::step_down_after_removal() {
  // §4.2.2: a leader removed from the configuration steps down once the change
  // is committed (it is applied, so it is). To spare the cluster an election
  // timeout, hand leadership to the most caught-up remaining voter.
  NodeId best = kNoNode;
  Index best_match{0};
  for (NodeId id : tracker_.config.voters.ids()) {
    const Progress* pr = tracker_.get(id);
    if (id == id_ || pr == nullptr) continue;
    if (best == kNoNode || pr->match > best_match) {
      best = id;
      best_match = pr->match;
    }
  }
  if (best != kNoNode && best_match == log_.last_index()) send_timeout_now(best);
  become_follower(term_, kNoNode);
}

void Core::maybe_auto_leave_joint() {
  if (role_ != Role::kLeader || !tracker_.config.auto_leave || !tracker_.config.voters.joint())
    return;
  if (pending_conf_index_ > log_.applied()) return;
  if (lead_transferee_ != kNoNode) return;
  std::vector<Entry> ents(1);
  ents[0].type = EntryType::kConfChange;
  ents[0].data = encode_conf_change(ConfChange{});
  if (!append_entries(&ents)) return;  // uncommitted bound: retried on the next advance
  pending_conf_index_ = ents[0].index;
  bcast_append();
}

// ---------------------------------------------------------------------------
// Ready / advance

void Core::send(Message m) {
  m.from = id_;
  if (!is_termless(m.type) && m.term == Term{0}) m.term = term_;
  if (is_termless(m.type)) m.term = Term{0};
  RAFTKV_CHECK(m.to != id_ && m.to != kNoNode);
  if (needs_persist_first(m.type)) {
    msgs_after_persist_.push_back(std::move(m));
  } else {
    msgs_.push_back(std::move(m));
  }
}

bool Core::has_ready() const {
  if (ready_outstanding_) return false;
  if (role_ == Role::kLeader) {
    for (const auto& [id, send_if_empty] : append_due_) {
      const Progress* pr = tracker_.get(id);
      if (pr != nullptr && !pr->is_paused() && (send_if_empty || pr->next <= log_.last_index()))
        return true;
    }
  }
  if (soft_state() != prev_soft_) return true;
  if (hard_state() != prev_hard_) return true;
  if (log_.unstable().snapshot || !log_.unstable().entries.empty()) return true;
  if (!msgs_.empty() || !msgs_after_persist_.empty() || !read_states_.empty()) return true;
  return log_.has_next_committed_entries();
}

Ready Core::ready() {
  RAFTKV_CHECK_MSG(!ready_outstanding_, "raft: ready() called again before advance()");
  flush_appends();
  Ready rd;
  rd.entries = log_.unstable().entries;
  rd.snapshot = log_.unstable().snapshot;
  rd.committed_entries = log_.next_committed_entries(cfg_.max_committed_bytes_per_ready);
  if (!rd.committed_entries.empty()) log_.set_applying(rd.committed_entries.back().index);
  SoftState ss = soft_state();
  if (ss != prev_soft_) {
    rd.soft_state = ss;
    prev_soft_ = ss;
  }
  HardState hs = hard_state();
  if (hs != prev_hard_) {
    rd.hard_state = hs;
    rd.must_sync = hs.term != prev_hard_.term || hs.vote != prev_hard_.vote;
    prev_hard_ = hs;
  }
  rd.must_sync = rd.must_sync || rd.snapshot.has_value() || !rd.entries.empty();
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.messages_after_persist = AfterPersist(std::move(msgs_after_persist_));
  msgs_after_persist_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();
  ready_outstanding_ = true;
  return rd;
}

void Core::advance(const Ready& rd) {
  RAFTKV_CHECK_MSG(ready_outstanding_, "raft: advance() without an outstanding ready()");
  ready_outstanding_ = false;
  if (rd.snapshot) {
    log_.unstable().stable_snap_to(rd.snapshot->metadata.index);
    // The state machine now holds the snapshot.
    if (rd.snapshot->metadata.index > log_.applied()) log_.applied_to(rd.snapshot->metadata.index);
  }
  if (!rd.entries.empty()) {
    const Entry& last = rd.entries.back();
    log_.unstable().stable_to(last.index, last.term);
  }
  if (!rd.committed_entries.empty()) {
    Index last = rd.committed_entries.back().index;
    if (last > log_.applied()) log_.applied_to(last);
    const uint64_t applied_bytes = payload_bytes(rd.committed_entries);
    uncommitted_bytes_ =
        applied_bytes >= uncommitted_bytes_ ? 0 : uncommitted_bytes_ - applied_bytes;
  }
  if (campaign_after_apply_ && role_ == Role::kFollower && !has_unapplied_conf_changes()) {
    campaign_after_apply_ = false;
    hup(CampaignType::kTransfer);
  }
  if (role_ == Role::kLeader) {
    Progress* self = tracker_.get(id_);
    if (self != nullptr && self->maybe_update(log_.persisted_index())) {
      if (maybe_commit()) {
        on_commit_advanced();
        bcast_append();
      }
    }
    maybe_auto_leave_joint();
  }
}

// ---------------------------------------------------------------------------
// Status and invariants

NodeStatus Core::status() const {
  NodeStatus s;
  s.id = id_;
  s.hard_state = hard_state();
  s.soft_state = soft_state();
  s.applied = log_.applied();
  s.last_index = log_.last_index();
  s.lead_transferee = lead_transferee_;
  s.config = tracker_.conf_state();
  if (role_ == Role::kLeader) {
    for (const auto& [id, pr] : tracker_.progress) {
      s.progress[id] = ProgressView{pr.match,           pr.next,       pr.state,
                                    pr.recent_active,   pr.is_learner, pr.inflights.count(),
                                    pr.pending_snapshot};
    }
  }
  return s;
}

void Core::check_invariants() const {
  tracker_.check_invariants();
  RAFTKV_CHECK(log_.applied() <= log_.committed());
  RAFTKV_CHECK(log_.committed() <= log_.last_index());
  RAFTKV_CHECK(log_.first_index() - 1 <= log_.committed() || log_.unstable().snapshot);
  RAFTKV_CHECK((role_ == Role::kLeader) == (leader_ == id_));
  if (role_ == Role::kCandidate) RAFTKV_CHECK(vote_ == id_);
  if (role_ == Role::kLeader) {
    RAFTKV_CHECK(vote_ == id_ || tracker_.is_singleton());
    for (const auto& [id, pr] : tracker_.progress) {
      RAFTKV_CHECK_MSG(pr.match <= log_.last_index(), "raft: follower matched beyond our log");
    }
    // The leader appended an entry of its term on election and only ever
    // appends entries of its term.
    RAFTKV_CHECK_MSG(log_.last_term() == term_, "raft: leader's last entry is not of its term");
    RAFTKV_CHECK(log_.persisted_index() <= log_.last_index());
  } else {
    RAFTKV_CHECK(lead_transferee_ == kNoNode);
  }
  RAFTKV_CHECK(log_.last_term() <= term_);
}

}  // namespace raftkv::raft
