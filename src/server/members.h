// The member table: what MemberList answers (name, peer and client URLs of
// every member) and where the transport finds each peer.
//
// Replicated through the Raft log, so every member holds the same table at the
// same applied index:
//   * a kConfChange entry adding a member carries its MemberRecord (name and
//     peer URLs) in ConfChange::context — the bootstrap entries written at
//     term 1 are such entries (docs/operations.md, "Bootstrap");
//   * a "publish" entry (server envelope, see node.h) sets a member's name
//     and client URLs once it has started, as etcd's member publish does.
// The table is part of every snapshot image (snapshot_image.h), so a member
// that restarts from a snapshot, or installs one, rebuilds it from the image
// plus the entries replayed after it.
//
// Encoding (little endian), used in the conf-change context, the publish
// entry and the snapshot image:
//
//   MemberRecord:  u64 id | str name | u32 n | n × str peer_url
//                         | u32 m | m × str client_url
//   str:           u32 length | bytes
//   MemberTable:   u32 count | count × MemberRecord (ascending id)
//
// Decoding validates every length against the bytes that remain.
//
// Thread-safety: plain values; the node guards its table with a mutex.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace raftkv::server {

struct MemberRecord {
  uint64_t id = 0;
  std::string name;
  std::vector<std::string> peer_urls;
  std::vector<std::string> client_urls;
  bool operator==(const MemberRecord&) const = default;
};

using MemberTable = std::map<uint64_t, MemberRecord>;

std::string encode_member(const MemberRecord& m);
Result<MemberRecord> decode_member(std::string_view bytes);

std::string encode_member_table(const MemberTable& t);
Result<MemberTable> decode_member_table(std::string_view bytes);

// ---------------------------------------------------------------------------
// Membership changes: the rules etcd applies before proposing one, as pure
// functions of the member table (docs/operations.md, "Adding and removing
// members").

enum class MemberChangeKind : uint8_t {
  kAddVoter,    ///< MemberAdd
  kAddLearner,  ///< MemberAdd with is_learner
  kRemove,      ///< MemberRemove
  kUpdate,      ///< MemberUpdate (peer URLs)
  kPromote,     ///< MemberPromote
};

struct MemberChange {
  MemberChangeKind kind = MemberChangeKind::kAddVoter;
  uint64_t id = 0;                     ///< The member changed (chosen by the caller for adds).
  std::vector<std::string> peer_urls;  ///< Adds and updates.
};

/// What the rules look at: the member table, which members are learners, and
/// the limits from the configuration.
struct MembershipView {
  MemberTable members;
  std::set<uint64_t> learners;
  bool strict_reconfig_check = true;
  uint32_t max_learners = 1;
};

/// A member has started once it published its name (etcd's IsStarted).
inline bool member_started(const MemberRecord& m) { return !m.name.empty(); }

/// Checks `c` against etcd's rules, with etcd's codes and messages:
///   InvalidArgument "etcdserver: given member URLs are invalid" (no URL, or one
///       that is not http://host:port);
///   FailedPrecondition "etcdserver: member ID already exist";
///   FailedPrecondition "etcdserver: Peer URLs already exists" (used by another member);
///   NotFound "etcdserver: member not found";
///   FailedPrecondition "etcdserver: can only promote a learner member";
///   FailedPrecondition "etcdserver: too many learner members in cluster";
///   FailedPrecondition "etcdserver: re-configuration failed due to not enough
///       started members" (strict check: after the change, fewer started voters
///       than a quorum of voters; adding a second voter to a one-voter cluster
///       is allowed, as in etcd, so that a restored member can be joined).
/// The learner-in-sync rule of MemberPromote needs the leader's progress and
/// is checked by the node.
Status check_member_change(const MembershipView& view, const MemberChange& c);

/// etcd's readiness rule for promotion: the learner's match index is at
/// least 90% of the leader's.
bool learner_in_sync(uint64_t learner_match, uint64_t leader_match);

/// The id of a member added at `unix_nanos`: derived like etcd's (SHA-1 over
/// the sorted peer URLs, the cluster token and the time), never 0.
uint64_t new_member_id(std::vector<std::string> peer_urls, std::string_view cluster_token,
                       uint64_t unix_nanos);

}  // namespace raftkv::server
