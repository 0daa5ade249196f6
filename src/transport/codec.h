// Conversion between raft::Message and its wire form (proto/raftkv/peer.proto),
// with validation of everything that comes off the wire.
//
// Encoding never fails. Decoding checks every field before building a value
// (DESIGN invariant 6): enum ranges, id and size bounds, consecutive entry
// indexes in appends, sane snapshot metadata, and that the message is addressed
// to this node and claims the sender the batch header names. Malformed input
// yields Code::kCorruption (bytes that cannot be a valid message) or
// Code::kInvalidArgument (a well-formed message this node must refuse, e.g.
// addressed to another member); it never aborts.
//
// Thread-safety: pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "raft/types.h"
#include "raftkv/peer.pb.h"

namespace raftkv::transport {

/// The protocol version this build speaks (Header.protocol_version).
inline constexpr uint32_t kProtocolVersion = 1;

/// Bounds applied while decoding. Defaults are far above what a healthy
/// cluster sends and exist to refuse garbage, not to shape traffic.
struct DecodeLimits {
  uint64_t max_entries_per_message = 1 << 20;
  uint64_t max_context_bytes = 64 * 1024;
  uint64_t max_members = 1024;  ///< Per id list of a ConfState.
};

/// Fills `out` (cleared first) from `m`. When `with_snapshot_data` is false the
/// snapshot's metadata is carried but its data is left empty (the data then
/// travels in SendSnapshot chunks).
void encode_message(const raft::Message& m, raftkvpb::Message* out, bool with_snapshot_data = true);

/// Decodes and validates one message received from `expected_from` for the
/// local member `local_id`.
Result<raft::Message> decode_message(const raftkvpb::Message& pb, raft::NodeId expected_from,
                                     raft::NodeId local_id, const DecodeLimits& limits = {});

/// Fills a batch/snapshot header.
void encode_header(uint64_t cluster_id, raft::NodeId from, raft::NodeId to, raftkvpb::Header* out);

/// Checks a received header: the protocol version is ours, the cluster id is
/// ours (a member of another cluster is refused with kFailedPrecondition and a
/// message naming both clusters), the sender is a real member id other than
/// ours, and the receiver is us.
Status check_header(const raftkvpb::Header& h, uint64_t local_cluster_id, raft::NodeId local_id);

/// Validates snapshot metadata: index and term non-zero, at least one voter,
/// id lists sorted, without duplicates or zero ids, voters and learners
/// disjoint, and learners_next / auto_leave only in a joint configuration.
Status check_snapshot_metadata(const raft::SnapshotMetadata& md);

/// A member or cluster id as etcd prints it (lower-case hex, Go's %x), for logs.
std::string hex_id(uint64_t id);

/// CRC-32C (Castagnoli) of `data`, continuing from `crc` (0 to start).
uint32_t crc32c(uint32_t crc, std::string_view data);

}  // namespace raftkv::transport
