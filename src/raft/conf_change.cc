#include "raft/conf_change.h"

#include <algorithm>

#include "base/check.h"

namespace raftkv::raft {

namespace {

bool contains(const std::vector<NodeId>& v, NodeId id) {
  return std::find(v.begin(), v.end(), id) != v.end();
}
void sorted_insert(std::vector<NodeId>* v, NodeId id) {
  auto it = std::lower_bound(v->begin(), v->end(), id);
  if (it == v->end() || *it != id) v->insert(it, id);
}
void sorted_erase(std::vector<NodeId>* v, NodeId id) {
  auto it = std::lower_bound(v->begin(), v->end(), id);
  if (it != v->end() && *it == id) v->erase(it);
}

}  // namespace

bool conf_change_enters_joint(const ConfChange& cc) {
  if (cc.leave_joint()) return false;
  return cc.transition != ConfChangeTransition::kAuto || cc.changes.size() > 1;
}

void ConfChanger::init_progress(TrackerState* s, NodeId id, bool is_learner) const {
  Progress pr = tracker_.make_progress(last_index_ + 1, is_learner);
  // A new member counts as active so that adding it does not make a
  // check-quorum leader step down before it has had a chance to answer.
  pr.recent_active = true;
  s->progress.insert_or_assign(id, std::move(pr));
}

void ConfChanger::make_voter(TrackerState* s, NodeId id) const {
  auto it = s->progress.find(id);
  if (it == s->progress.end()) {
    init_progress(s, id, /*is_learner=*/false);
  } else {
    it->second.is_learner = false;
  }
  sorted_erase(&s->config.learners, id);
  sorted_erase(&s->config.learners_next, id);
  s->config.voters.incoming().insert(id);
}

void ConfChanger::make_learner(TrackerState* s, NodeId id) const {
  auto it = s->progress.find(id);
  if (it == s->progress.end()) {
    init_progress(s, id, /*is_learner=*/true);
  } else if (it->second.is_learner) {
    return;  // already a learner
  }
  remove(s, id);
  // remove() may have dropped the progress; make sure it exists again.
  if (s->progress.find(id) == s->progress.end()) init_progress(s, id, true);
  if (s->config.voters.outgoing().contains(id)) {
    // Still a voter of the outgoing half: becomes a learner on leaving joint.
    sorted_insert(&s->config.learners_next, id);
  } else {
    s->progress.at(id).is_learner = true;
    sorted_insert(&s->config.learners, id);
  }
}

void ConfChanger::remove(TrackerState* s, NodeId id) const {
  if (s->progress.find(id) == s->progress.end()) return;
  s->config.voters.incoming().erase(id);
  sorted_erase(&s->config.learners, id);
  sorted_erase(&s->config.learners_next, id);
  // Keep the progress while the outgoing half still needs this voter.
  if (!s->config.voters.outgoing().contains(id)) s->progress.erase(id);
}

Status ConfChanger::apply_changes(TrackerState* s,
                                  const std::vector<ConfChangeSingle>& changes) const {
  for (const ConfChangeSingle& c : changes) {
    if (c.node_id == kNoNode) {
      return Status::invalid_argument("conf change: node id 0 is reserved; use a non-zero id");
    }
    switch (c.type) {
      case ConfChangeType::kAddNode:
        make_voter(s, c.node_id);
        break;
      case ConfChangeType::kAddLearner:
        make_learner(s, c.node_id);
        break;
      case ConfChangeType::kRemoveNode:
        remove(s, c.node_id);
        break;
      default:
        return Status::invalid_argument("conf change: unknown change type");
    }
  }
  if (s->config.voters.incoming().empty()) {
    return Status::invalid_argument(
        "conf change: removing all voters is not allowed; keep at least one voter");
  }
  return Status::ok();
}

Status ConfChanger::check(const TrackerState& s) {
  for (NodeId id : s.config.voters.ids()) {
    auto it = s.progress.find(id);
    if (it == s.progress.end()) return Status::internal("conf change: voter has no progress");
    if (it->second.is_learner) return Status::internal("conf change: voter marked learner");
  }
  for (NodeId id : s.config.learners) {
    if (s.config.voters.contains(id)) return Status::internal("conf change: learner is a voter");
    auto it = s.progress.find(id);
    if (it == s.progress.end() || !it->second.is_learner) {
      return Status::internal("conf change: learner progress missing or not a learner");
    }
  }
  for (NodeId id : s.config.learners_next) {
    if (!s.config.voters.outgoing().contains(id)) {
      return Status::internal("conf change: learners_next not in outgoing voters");
    }
  }
  if (!s.config.voters.joint()) {
    if (!s.config.learners_next.empty()) {
      return Status::internal("conf change: learners_next outside joint config");
    }
    if (s.config.auto_leave) return Status::internal("conf change: auto_leave outside joint");
  }
  return Status::ok();
}

Result<TrackerState> ConfChanger::enter_joint(bool auto_leave,
                                              const std::vector<ConfChangeSingle>& changes) const {
  TrackerState s = copy();
  if (s.config.voters.joint()) {
    return Status::failed_precondition(
        "conf change: already in a joint configuration; leave it before entering another");
  }
  if (s.config.voters.incoming().empty()) {
    return Status::invalid_argument("conf change: cannot make a zero-voter config joint");
  }
  s.config.voters.outgoing() = s.config.voters.incoming();
  RAFTKV_RETURN_IF_ERROR(apply_changes(&s, changes));
  s.config.auto_leave = auto_leave;
  RAFTKV_RETURN_IF_ERROR(check(s));
  return s;
}

Result<TrackerState> ConfChanger::leave_joint() const {
  TrackerState s = copy();
  if (!s.config.voters.joint()) {
    return Status::failed_precondition(
        "conf change: not in a joint configuration; nothing to leave");
  }
  for (NodeId id : s.config.learners_next) {
    sorted_insert(&s.config.learners, id);
    s.progress.at(id).is_learner = true;
  }
  s.config.learners_next.clear();
  for (NodeId id : s.config.voters.outgoing().ids()) {
    bool still = s.config.voters.incoming().contains(id) || contains(s.config.learners, id);
    if (!still) s.progress.erase(id);
  }
  s.config.voters.outgoing() = quorum::MajorityConfig();
  s.config.auto_leave = false;
  RAFTKV_RETURN_IF_ERROR(check(s));
  return s;
}

Result<TrackerState> ConfChanger::simple(const std::vector<ConfChangeSingle>& changes) const {
  TrackerState s = copy();
  if (s.config.voters.joint()) {
    return Status::failed_precondition(
        "conf change: a simple change is not allowed in a joint configuration; leave it first");
  }
  RAFTKV_RETURN_IF_ERROR(apply_changes(&s, changes));
  // Symmetric difference of old and new voter sets must be at most one.
  const auto& before = tracker_.config.voters.incoming().ids();
  const auto& after = s.config.voters.incoming().ids();
  std::vector<NodeId> diff;
  std::set_symmetric_difference(before.begin(), before.end(), after.begin(), after.end(),
                                std::back_inserter(diff));
  if (diff.size() > 1) {
    return Status::invalid_argument(
        "conf change: more than one voter changed; use a joint configuration change");
  }
  RAFTKV_RETURN_IF_ERROR(check(s));
  return s;
}

Result<TrackerState> ConfChanger::apply(const ConfChange& cc) const {
  if (cc.leave_joint()) return leave_joint();
  if (conf_change_enters_joint(cc)) {
    bool auto_leave = cc.transition != ConfChangeTransition::kJointExplicit;
    return enter_joint(auto_leave, cc.changes);
  }
  return simple(cc.changes);
}

Status restore_conf_state(const ConfState& cs, Index last_index, ProgressTracker* tracker) {
  // Start empty and replay: outgoing voters (the "old" config) as simple adds,
  // then the incoming voters and learners as one joint step (or simple adds
  // when not joint). Every step goes through the same validation.
  tracker->config = ProgressTracker::Config{};
  tracker->progress.clear();
  auto step = [&](const Result<TrackerState>& r) -> Status {
    if (!r.is_ok()) return r.status();
    tracker->config = r->config;
    tracker->progress = r->progress;
    return Status::ok();
  };
  auto add_one = [&](ConfChangeType t, NodeId id) -> Status {
    ConfChanger ch(*tracker, last_index);
    // The very first voter: apply_changes requires a non-empty voter set,
    // which the first add provides.
    return step(ch.simple({ConfChangeSingle{t, id}}));
  };
  if (cs.voters.empty()) {
    if (!cs.voters_outgoing.empty() || !cs.learners.empty()) {
      return Status::invalid_argument("conf state: learners or outgoing voters without voters");
    }
    return Status::ok();  // an empty configuration (a node not yet bootstrapped)
  }
  if (!cs.voters_outgoing.empty()) {
    for (NodeId id : cs.voters_outgoing)
      RAFTKV_RETURN_IF_ERROR(add_one(ConfChangeType::kAddNode, id));
    std::vector<ConfChangeSingle> incoming;
    // Remove outgoing voters not in the incoming set, add the incoming set,
    // then learners and learners_next.
    for (NodeId id : cs.voters_outgoing) {
      if (!contains(cs.voters, id)) incoming.push_back({ConfChangeType::kRemoveNode, id});
    }
    for (NodeId id : cs.voters) incoming.push_back({ConfChangeType::kAddNode, id});
    for (NodeId id : cs.learners) incoming.push_back({ConfChangeType::kAddLearner, id});
    for (NodeId id : cs.learners_next) incoming.push_back({ConfChangeType::kAddLearner, id});
    ConfChanger ch(*tracker, last_index);
    RAFTKV_RETURN_IF_ERROR(step(ch.enter_joint(cs.auto_leave, incoming)));
  } else {
    if (!cs.learners_next.empty() || cs.auto_leave) {
      return Status::invalid_argument("conf state: learners_next or auto_leave without joint");
    }
    for (NodeId id : cs.voters) RAFTKV_RETURN_IF_ERROR(add_one(ConfChangeType::kAddNode, id));
    for (NodeId id : cs.learners) RAFTKV_RETURN_IF_ERROR(add_one(ConfChangeType::kAddLearner, id));
  }
  if (tracker->conf_state() != cs) {
    return Status::invalid_argument(
        "conf state: not reachable by valid changes (overlapping sets?)");
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Codec

namespace {
constexpr uint8_t kConfChangeVersion = 1;

void put_u32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool u8(uint8_t* v) {
    if (pos_ + 1 > s_.size()) return false;
    *v = static_cast<uint8_t>(s_[pos_++]);
    return true;
  }
  bool u32(uint32_t* v) {
    if (pos_ + 4 > s_.size()) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t(uint8_t(s_[pos_ + i])) << (8 * i);
    pos_ += 4;
    return true;
  }
  bool u64(uint64_t* v) {
    if (pos_ + 8 > s_.size()) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t(uint8_t(s_[pos_ + i])) << (8 * i);
    pos_ += 8;
    return true;
  }
  size_t remaining() const { return s_.size() - pos_; }
  bool bytes(size_t n, std::string* out) {
    if (n > remaining()) return false;
    out->assign(s_, pos_, n);
    pos_ += n;
    return true;
  }

 private:
  const std::string& s_;
  size_t pos_ = 0;
};
}  // namespace

std::string encode_conf_change(const ConfChange& cc) {
  std::string out;
  out.reserve(10 + cc.changes.size() * 9 + cc.context.size());
  out.push_back(static_cast<char>(kConfChangeVersion));
  out.push_back(static_cast<char>(cc.transition));
  RAFTKV_CHECK(cc.changes.size() <= UINT32_MAX && cc.context.size() <= UINT32_MAX);
  put_u32(&out, static_cast<uint32_t>(cc.changes.size()));
  for (const ConfChangeSingle& c : cc.changes) {
    out.push_back(static_cast<char>(c.type));
    put_u64(&out, c.node_id.value());
  }
  put_u32(&out, static_cast<uint32_t>(cc.context.size()));
  out += cc.context;
  return out;
}

Result<ConfChange> decode_conf_change(const std::string& data) {
  Reader r(data);
  uint8_t version = 0, transition = 0;
  uint32_t count = 0;
  if (!r.u8(&version) || version != kConfChangeVersion) {
    return Status::corruption("conf change: unknown encoding version");
  }
  if (!r.u8(&transition) || transition > uint8_t(ConfChangeTransition::kJointExplicit)) {
    return Status::corruption("conf change: bad transition");
  }
  if (!r.u32(&count) || uint64_t(count) * 9 > r.remaining()) {
    return Status::corruption("conf change: change count exceeds the data");
  }
  ConfChange cc;
  cc.transition = static_cast<ConfChangeTransition>(transition);
  cc.changes.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint8_t type = 0;
    uint64_t id = 0;
    if (!r.u8(&type) || type > uint8_t(ConfChangeType::kAddLearner) || !r.u64(&id)) {
      return Status::corruption("conf change: bad change record");
    }
    cc.changes.push_back({static_cast<ConfChangeType>(type), NodeId{id}});
  }
  uint32_t ctx_len = 0;
  if (!r.u32(&ctx_len) || !r.bytes(ctx_len, &cc.context) || r.remaining() != 0) {
    return Status::corruption("conf change: bad context length or trailing bytes");
  }
  return cc;
}

}  // namespace raftkv::raft
