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

}  // namespace raftkv::server
