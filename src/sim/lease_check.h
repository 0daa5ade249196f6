// The lease checker (docs/simulator.md, "Leases"): judges the leases of one
// run from the applied log and from what the lease clients were promised.
// Plain values, no dependency on the code under test: the lease rules are
// restated here (etcd's semantics), not borrowed from kv::Store or the Lessor.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/watch_check.h"

namespace raftkv::sim {

/// One applied log entry that grants, revokes or uses a lease, or changes a
/// key (which moves it off its lease), as first applied, in log order.
struct LeaseLogEntry {
  enum class Kind : uint8_t {
    kGrant,   ///< LeaseGrant(lease, ttl_seconds)
    kRevoke,  ///< LeaseRevoke(lease), by a client or by a lessor (expiry)
    kPut,     ///< put(key) attaching `lease` (0: none); a succeeded CAS is a put without lease
    kDelete,  ///< delete(key)
  };
  Kind kind = Kind::kPut;
  uint64_t index = 0;  ///< Raft log index (for the report).
  int64_t lease = 0;
  int64_t ttl_seconds = 0;  ///< kGrant.
  std::string key;          ///< kPut / kDelete.
  /// The store applied it: the grant or revoke succeeded, the put took effect.
  /// false: refused ("lease already exists", "requested lease not found").
  bool ok = false;
  // kRevoke only.
  bool expiry = false;       ///< Proposed by a lessor (expiry), not by a client.
  uint64_t proposed_us = 0;  ///< When its proposal was made.
  uint64_t applied_us = 0;   ///< When a member first applied it.
  /// The events of the one revision the revoke created (none when it
  /// created none). Every attached key must be deleted there, and nothing else.
  std::vector<WatchEvent> events;
};

/// A lease client's acknowledged grant or keep-alive: the lease was promised
/// to live at least `ttl_seconds` from `send_us` (when the request was sent;
/// the lessor's deadline starts no earlier than that).
struct LeaseAck {
  int64_t lease = 0;
  uint64_t send_us = 0;
  int64_t ttl_seconds = 0;
  bool keep_alive = false;  ///< false: the grant's acknowledgement.
};

/// Checks the applied lease log against etcd's lease rules and the promises
/// in `acks`. Returns "" when every rule holds, else what broke:
///   - a grant succeeds iff its id is not granted;
///   - a put with a lease takes effect iff the lease is granted, and then
///     attaches the key to it (moving it off any earlier lease); a put without
///     lease or a delete detaches the key;
///   - a revoke succeeds iff the lease is granted; then it deletes every
///     attached key, and nothing else, in one revision, and the lease and its
///     attachments are gone;
///   - no early expiry: a revoke proposed by a lessor takes effect no earlier
///     than send_us + ttl of any acknowledgement for its lease.
std::string check_leases(const std::vector<LeaseLogEntry>& log, const std::vector<LeaseAck>& acks);

}  // namespace raftkv::sim
