// Quorum arithmetic (dissertation §3.4, §3.6 and §4.3): when does a set of
// acknowledgements or votes amount to a decision?
//
// Pure functions over id sets; they know nothing of terms or messages. A
// MajorityConfig is one voter set; a JointConfig is the pair (incoming,
// outgoing) used during joint consensus, where a decision needs a majority of
// BOTH halves. Outside joint consensus the outgoing half is empty, and an empty
// majority config agrees to everything, so the joint rules reduce to the
// simple ones.
#pragma once

#include <map>
#include <optional>
#include <vector>

#include "raft/types.h"

namespace raftkv::raft::quorum {

enum class VoteResult { kPending, kLost, kWon };

/// Looks up the highest log index acknowledged by a voter (nullopt: unknown,
/// counted as 0).
class AckedIndexer {
 public:
  virtual ~AckedIndexer() = default;
  virtual std::optional<Index> acked_index(NodeId id) const = 0;
};

/// A set of voters, kept sorted and unique.
class MajorityConfig {
 public:
  MajorityConfig() = default;
  explicit MajorityConfig(std::vector<NodeId> ids);

  const std::vector<NodeId>& ids() const { return ids_; }
  bool empty() const { return ids_.empty(); }
  size_t size() const { return ids_.size(); }
  bool contains(NodeId id) const;
  void insert(NodeId id);
  void erase(NodeId id);
  bool operator==(const MajorityConfig&) const = default;

  /// The largest index acknowledged by a majority. An empty config returns the
  /// maximal index so that it never holds back a joint decision.
  Index committed_index(const AckedIndexer& acked) const;

  /// Outcome of an election given the votes seen so far (absent = not yet
  /// answered). An empty config wins, for the same reason as above.
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;

 private:
  std::vector<NodeId> ids_;
};

/// incoming() is the current (or new) voter set; outgoing() is non-empty only
/// during joint consensus.
class JointConfig {
 public:
  MajorityConfig& incoming() { return halves_[0]; }
  const MajorityConfig& incoming() const { return halves_[0]; }
  MajorityConfig& outgoing() { return halves_[1]; }
  const MajorityConfig& outgoing() const { return halves_[1]; }
  bool joint() const { return !halves_[1].empty(); }
  bool operator==(const JointConfig&) const = default;

  /// Union of both halves, sorted.
  std::vector<NodeId> ids() const;
  bool contains(NodeId id) const { return incoming().contains(id) || outgoing().contains(id); }

  /// min(incoming committed, outgoing committed).
  Index committed_index(const AckedIndexer& acked) const;
  /// Lost if either half lost; won if both won; otherwise pending.
  VoteResult vote_result(const std::map<NodeId, bool>& votes) const;

 private:
  MajorityConfig halves_[2];
};

}  // namespace raftkv::raft::quorum
