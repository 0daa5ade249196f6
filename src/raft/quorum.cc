#include "raft/quorum.h"

#include <algorithm>
#include <limits>

#include "base/check.h"

namespace raftkv::raft::quorum {

MajorityConfig::MajorityConfig(std::vector<NodeId> ids) : ids_(std::move(ids)) {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
}

bool MajorityConfig::contains(NodeId id) const {
  return std::binary_search(ids_.begin(), ids_.end(), id);
}

void MajorityConfig::insert(NodeId id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it == ids_.end() || *it != id) ids_.insert(it, id);
}

void MajorityConfig::erase(NodeId id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it != ids_.end() && *it == id) ids_.erase(it);
}

Index MajorityConfig::committed_index(const AckedIndexer& acked) const {
  if (ids_.empty()) return Index{std::numeric_limits<uint64_t>::max()};
  // Small clusters: a stack buffer avoids an allocation per commit check.
  constexpr size_t kStack = 16;
  uint64_t stack[kStack];
  std::vector<uint64_t> heap;
  uint64_t* v = stack;
  if (ids_.size() > kStack) {
    heap.resize(ids_.size());
    v = heap.data();
  }
  const size_t n = ids_.size();
  for (size_t i = 0; i < n; ++i) {
    std::optional<Index> a = acked.acked_index(ids_[i]);
    v[i] = a ? a->value() : 0;
  }
  std::sort(v, v + n);
  // Ascending order: the value at position n - quorum is acknowledged by at
  // least quorum = n/2 + 1 voters (itself and all after it).
  const size_t quorum = n / 2 + 1;
  return Index{v[n - quorum]};
}

VoteResult MajorityConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  if (ids_.empty()) return VoteResult::kWon;
  size_t yes = 0, missing = 0;
  for (NodeId id : ids_) {
    auto it = votes.find(id);
    if (it == votes.end()) {
      ++missing;
    } else if (it->second) {
      ++yes;
    }
  }
  const size_t quorum = ids_.size() / 2 + 1;
  if (yes >= quorum) return VoteResult::kWon;
  if (yes + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

std::vector<NodeId> JointConfig::ids() const {
  std::vector<NodeId> out;
  std::set_union(incoming().ids().begin(), incoming().ids().end(), outgoing().ids().begin(),
                 outgoing().ids().end(), std::back_inserter(out));
  return out;
}

Index JointConfig::committed_index(const AckedIndexer& acked) const {
  return std::min(incoming().committed_index(acked), outgoing().committed_index(acked));
}

VoteResult JointConfig::vote_result(const std::map<NodeId, bool>& votes) const {
  VoteResult a = incoming().vote_result(votes);
  VoteResult b = outgoing().vote_result(votes);
  if (a == b) return a;
  if (a == VoteResult::kLost || b == VoteResult::kLost) return VoteResult::kLost;
  return VoteResult::kPending;  // one won, the other pending
}

}  // namespace raftkv::raft::quorum
