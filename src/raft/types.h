// The vocabulary of the Raft core: strong ids, log entries, hard state,
// configurations, snapshots and messages.
//
// This header is the contract between src/raft/ (which produces and consumes
// these values) and the layers that persist them (src/storage/), carry them
// (src/transport/) and drive the core (src/server/, src/sim/). Plain value
// types, standard library only. Names follow the Raft dissertation (Ongaro 2014).
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace raftkv::raft {

/// A 64-bit identifier that cannot be mixed up with another kind of identifier.
/// `Tag` only distinguishes the types; arithmetic is provided where it means
/// something (Index and Term), never between different kinds.
template <typename Tag>
class StrongU64 {
 public:
  constexpr StrongU64() = default;
  constexpr explicit StrongU64(uint64_t v) : v_(v) {}
  constexpr uint64_t value() const { return v_; }
  constexpr auto operator<=>(const StrongU64&) const = default;

  // Offsets by a count (e.g. next = match + 1); a count is a plain number.
  constexpr StrongU64 operator+(uint64_t n) const { return StrongU64(v_ + n); }
  constexpr StrongU64 operator-(uint64_t n) const { return StrongU64(v_ - n); }
  constexpr StrongU64& operator+=(uint64_t n) { v_ += n; return *this; }
  constexpr StrongU64& operator-=(uint64_t n) { v_ -= n; return *this; }
  constexpr StrongU64& operator++() { ++v_; return *this; }
  constexpr StrongU64& operator--() { --v_; return *this; }

 private:
  uint64_t v_ = 0;
};

struct TermTag {};
struct IndexTag {};
struct NodeIdTag {};

/// A Raft term (§3.3). 0 means "no term yet".
using Term = StrongU64<TermTag>;
/// A log position, 1-based (§3.5). 0 means "before the first entry".
using Index = StrongU64<IndexTag>;
/// A member's id. 0 (kNoNode) means "nobody" (no vote, no leader).
using NodeId = StrongU64<NodeIdTag>;

inline constexpr NodeId kNoNode{0};

/// Number of entries between two indexes, `hi - lo`. REQUIRES: lo <= hi.
constexpr uint64_t distance(Index lo, Index hi) { return hi.value() - lo.value(); }

// ---------------------------------------------------------------------------
// Log entries

enum class EntryType : uint8_t {
  kNormal = 0,      ///< Client data for the state machine (may be empty: the leader's no-op).
  kConfChange = 1,  ///< An encoded ConfChange (membership change, §4.3 joint consensus).
};

struct Entry {
  Term term;
  Index index;
  EntryType type = EntryType::kNormal;
  std::string data;  ///< Opaque to the core (kNormal); an encoded ConfChange (kConfChange).

  bool operator==(const Entry&) const = default;
  /// Bytes counted against size limits (payload plus a fixed header estimate).
  uint64_t size_bytes() const { return data.size() + 24; }
};

/// State that must be on stable storage before a node answers any RPC
/// (dissertation Figure 3.1, "persistent state on all servers"), plus the
/// commit index so a restarted node need not relearn it.
struct HardState {
  Term term;            ///< currentTerm.
  NodeId vote;          ///< votedFor in `term`, or kNoNode.
  Index commit;         ///< Highest index known committed (persisting it is an optimization).
  bool operator==(const HardState&) const = default;
  bool empty() const { return term == Term{} && vote == kNoNode && commit == Index{}; }
};

// ---------------------------------------------------------------------------
// Membership

/// The cluster configuration. Outside a joint configuration `voters_outgoing`
/// is empty. During joint consensus (§4.3) a decision needs a majority of
/// `voters` AND a majority of `voters_outgoing`.
struct ConfState {
  std::vector<NodeId> voters;           ///< Incoming (or only) voter set, sorted.
  std::vector<NodeId> learners;         ///< Non-voting members receiving the log, sorted.
  std::vector<NodeId> voters_outgoing;  ///< Outgoing voter set while joint; else empty.
  /// Voters of the outgoing config that become learners when the joint config is left.
  std::vector<NodeId> learners_next;
  /// True if the leader should propose leaving the joint config automatically.
  bool auto_leave = false;
  bool operator==(const ConfState&) const = default;
};

enum class ConfChangeType : uint8_t {
  kAddNode = 0,     ///< Add a voter (or promote a learner to voter).
  kRemoveNode = 1,  ///< Remove a voter or a learner.
  kAddLearner = 2,  ///< Add a learner (or demote a voter to learner).
};

struct ConfChangeSingle {
  ConfChangeType type = ConfChangeType::kAddNode;
  NodeId node_id;
  bool operator==(const ConfChangeSingle&) const = default;
};

enum class ConfChangeTransition : uint8_t {
  /// One single change applies directly (a majority of old and new overlap);
  /// several changes enter a joint config left automatically once committed.
  kAuto = 0,
  kJointImplicit = 1,  ///< Always joint; the leader leaves it automatically.
  kJointExplicit = 2,  ///< Always joint; the application proposes the leave.
};

/// A membership change, carried as the data of a kConfChange entry.
/// An empty `changes` list means "leave the joint configuration".
struct ConfChange {
  ConfChangeTransition transition = ConfChangeTransition::kAuto;
  std::vector<ConfChangeSingle> changes;
  std::string context;  ///< Opaque to the core (the server puts member metadata here).
  bool operator==(const ConfChange&) const = default;
  bool leave_joint() const { return changes.empty(); }
};

// ---------------------------------------------------------------------------
// Snapshots

struct SnapshotMetadata {
  Index index;  ///< Last log index the snapshot covers.
  Term term;    ///< Term of that entry.
  ConfState conf_state;  ///< Configuration as of `index`.
  bool operator==(const SnapshotMetadata&) const = default;
};

/// A state-machine image at metadata.index. `data` is opaque to the core.
struct Snapshot {
  SnapshotMetadata metadata;
  std::string data;
  bool empty() const { return metadata.index == Index{}; }
  bool operator==(const Snapshot&) const = default;
};

// ---------------------------------------------------------------------------
// Messages

enum class MessageType : uint8_t {
  // Peer-to-peer RPCs (dissertation Figure 3.1 and chapters 3, 4, 6, 9).
  kAppend = 0,               ///< AppendEntries (§3.5).
  kAppendResponse = 1,
  kVote = 2,                 ///< RequestVote (§3.4).
  kVoteResponse = 3,
  kPreVote = 4,              ///< Pre-vote round (§9.6): does not bump anyone's term.
  kPreVoteResponse = 5,
  kHeartbeat = 6,            ///< Empty AppendEntries carrying the commit index.
  kHeartbeatResponse = 7,
  kSnapshot = 8,             ///< InstallSnapshot (§5.3).
  kTimeoutNow = 9,           ///< Leadership transfer: start an election now (§3.10).
  kReadIndex = 10,           ///< A follower forwards a read to the leader (§6.4).
  kReadIndexResponse = 11,
  kPropose = 12,             ///< A follower forwards client proposals to the leader.
  kTransferLeader = 13,      ///< A follower asks the leader to transfer leadership.
};

/// One Raft message. Fields not used by a type are left at their defaults.
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from;
  NodeId to;
  Term term;               ///< Sender's current term (0 for local-only messages).
  Term log_term;           ///< Append: prevLogTerm. Vote: lastLogTerm. Reject: hint term.
  Index index;             ///< Append: prevLogIndex. Vote: lastLogIndex. Response: match/hint.
                           ///< Heartbeat and its response: the leader's tick stamp (lease reads).
  std::vector<Entry> entries;
  Index commit;            ///< Leader's commit index (Append, Heartbeat).
  bool reject = false;
  Index reject_hint;       ///< On a rejected append: the follower's hint index (fast backtracking).
  std::optional<Snapshot> snapshot;  ///< kSnapshot only.
  std::string context;     ///< ReadIndex request id; campaign kind for transfer-triggered votes.

  bool operator==(const Message&) const = default;
};

/// A ReadIndex result: reads tagged `request_ctx` may be served once the
/// state machine has applied `index` (§6.4).
struct ReadState {
  Index index;
  std::string request_ctx;
  bool operator==(const ReadState&) const = default;
};

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };

/// Volatile state that is useful to the caller but never persisted.
struct SoftState {
  NodeId leader;
  Role role = Role::kFollower;
  bool operator==(const SoftState&) const = default;
};

}  // namespace raftkv::raft

template <typename Tag>
struct std::hash<raftkv::raft::StrongU64<Tag>> {
  size_t operator()(const raftkv::raft::StrongU64<Tag>& v) const noexcept {
    return std::hash<uint64_t>{}(v.value());
  }
};
