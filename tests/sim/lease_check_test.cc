// The lease checker on handcrafted lease logs: an early expiry, a revoke that
// leaves an attached key or deletes a foreign one, a revoke split over
// revisions, puts on a revoked or unknown lease that took effect, a double
// grant and a revoke of an unknown lease must be rejected; legal histories
// (keep-alives holding off expiry, a key moved between leases, client
// revokes, refused puts and revokes) pass.
#include "sim/lease_check.h"

#include <gtest/gtest.h>

namespace raftkv::sim {
namespace {

constexpr uint64_t kSec = 1'000'000;
using Kind = LeaseLogEntry::Kind;

LeaseLogEntry grant(int64_t lease, int64_t ttl, bool ok = true) {
  LeaseLogEntry e;
  e.kind = Kind::kGrant;
  e.lease = lease;
  e.ttl_seconds = ttl;
  e.ok = ok;
  return e;
}

LeaseLogEntry put(const std::string& key, int64_t lease, bool ok = true) {
  LeaseLogEntry e;
  e.kind = Kind::kPut;
  e.key = key;
  e.lease = lease;
  e.ok = ok;
  return e;
}

LeaseLogEntry del(const std::string& key) {
  LeaseLogEntry e;
  e.kind = Kind::kDelete;
  e.key = key;
  e.ok = true;
  return e;
}

LeaseLogEntry revoke(int64_t lease, bool ok, std::vector<std::string> deleted, bool expiry = false,
                     uint64_t applied_us = 0) {
  LeaseLogEntry e;
  e.kind = Kind::kRevoke;
  e.lease = lease;
  e.ok = ok;
  e.expiry = expiry;
  e.proposed_us = applied_us;
  e.applied_us = applied_us;
  for (const std::string& k : deleted) e.events.push_back(WatchEvent{k, true, ""});
  return e;
}

LeaseAck ack(int64_t lease, uint64_t send_us, int64_t ttl, bool keep_alive = true) {
  return LeaseAck{lease, send_us, ttl, keep_alive};
}

TEST(LeaseCheck, ExpiryAfterTheLastKeepAlivePasses) {
  const std::vector<LeaseLogEntry> log = {grant(7, 2), put("k0", 7), put("k1", 7),
                                          revoke(7, true, {"k0", "k1"}, true, 9 * kSec)};
  const std::vector<LeaseAck> acks = {ack(7, 1 * kSec, 2, false), ack(7, 3 * kSec, 2),
                                      ack(7, 7 * kSec, 2)};
  EXPECT_EQ(check_leases(log, acks), "");
}

TEST(LeaseCheck, EarlyExpiryIsRejected) {
  // The last keep-alive, sent at 7 s with TTL 2 s, promised life until 9 s.
  const std::vector<LeaseLogEntry> log = {grant(7, 2), put("k0", 7),
                                          revoke(7, true, {"k0"}, true, 8 * kSec)};
  const std::vector<LeaseAck> acks = {ack(7, 1 * kSec, 2, false), ack(7, 7 * kSec, 2),
                                      ack(7, 3 * kSec, 2)};
  const std::string err = check_leases(log, acks);
  EXPECT_NE(err.find("early expiry"), std::string::npos) << err;
  EXPECT_NE(err.find("sent at 7000000us"), std::string::npos) << err;
}

TEST(LeaseCheck, KeepAliveAcknowledgedAfterTheExpiryIsRejected) {
  // A stale leader renewed a lease that was already revoked.
  const std::vector<LeaseLogEntry> log = {grant(7, 2), revoke(7, true, {}, true, 5 * kSec)};
  const std::vector<LeaseAck> acks = {ack(7, 1 * kSec, 2, false), ack(7, 6 * kSec, 2)};
  EXPECT_NE(check_leases(log, acks).find("early expiry"), std::string::npos);
}

TEST(LeaseCheck, ClientRevokeBeforeTheTtlPasses) {
  // The client gives its own lease up: no promise is broken.
  const std::vector<LeaseLogEntry> log = {grant(7, 5), put("k0", 7),
                                          revoke(7, true, {"k0"}, false, 2 * kSec)};
  EXPECT_EQ(check_leases(log, {ack(7, 1 * kSec, 5, false)}), "");
}

TEST(LeaseCheck, RevokeLeavingAnAttachedKeyIsRejected) {
  const std::vector<LeaseLogEntry> log = {grant(7, 2), put("k0", 7), put("k1", 7),
                                          revoke(7, true, {"k0"})};
  const std::string err = check_leases(log, {});
  EXPECT_NE(err.find("deleted {k0} in its revision, but the keys attached to it were {k0 k1}"),
            std::string::npos)
      << err;
}

TEST(LeaseCheck, RevokeSplitOverTwoRevisionsIsRejected) {
  // The second key went in a later revision: the revoke's own revision lacks it.
  std::vector<LeaseLogEntry> log = {grant(7, 2), put("k0", 7), put("k1", 7),
                                    revoke(7, true, {"k0"}), del("k1")};
  EXPECT_NE(check_leases(log, {}), "");
}

TEST(LeaseCheck, RevokeDeletingAForeignKeyIsRejected) {
  const std::vector<LeaseLogEntry> log = {grant(7, 2), grant(8, 2), put("k0", 7), put("k1", 8),
                                          revoke(7, true, {"k0", "k1"})};
  EXPECT_NE(check_leases(log, {}), "");
}

TEST(LeaseCheck, RevokeWritingInsteadOfDeletingIsRejected) {
  std::vector<LeaseLogEntry> log = {grant(7, 2), put("k0", 7), revoke(7, true, {})};
  log.back().events.push_back(WatchEvent{"k0", false, "x"});
  EXPECT_NE(check_leases(log, {}).find("instead of deleting"), std::string::npos);
}

TEST(LeaseCheck, KeyMovedToAnotherLeaseOrOffItIsNotRevoked) {
  const std::vector<LeaseLogEntry> log = {
      grant(7, 2),  grant(8, 2),  put("k0", 7), put("k1", 7),        put("k2", 7),
      put("k0", 8), put("k1", 0), del("k2"),    revoke(7, true, {}), revoke(8, true, {"k0"})};
  EXPECT_EQ(check_leases(log, {}), "");
}

TEST(LeaseCheck, PutOnRevokedLeaseThatTookEffectIsRejected) {
  const std::vector<LeaseLogEntry> log = {grant(7, 2), revoke(7, true, {}), put("k0", 7, true)};
  EXPECT_NE(check_leases(log, {}).find("(not granted) took effect"), std::string::npos);
}

TEST(LeaseCheck, PutOnUnknownLeaseThatTookEffectIsRejected) {
  EXPECT_NE(check_leases({put("k0", 99, true)}, {}), "");
}

TEST(LeaseCheck, RefusedPutOnGrantedLeaseIsRejected) {
  EXPECT_NE(check_leases({grant(7, 2), put("k0", 7, false)}, {}), "");
}

TEST(LeaseCheck, RefusedPutChangesNothing) {
  // k0 stays on lease 7: the refused put on the revoked lease 8 did not move it.
  const std::vector<LeaseLogEntry> log = {grant(7, 2),         grant(8, 2),
                                          put("k0", 7),        revoke(8, true, {}),
                                          put("k0", 8, false), revoke(7, true, {"k0"})};
  EXPECT_EQ(check_leases(log, {}), "");
}

TEST(LeaseCheck, DoubleGrantIsRejected) {
  EXPECT_NE(check_leases({grant(7, 2), grant(7, 3, true)}, {}), "");
  EXPECT_EQ(check_leases({grant(7, 2), grant(7, 3, false)}, {}), "");
}

TEST(LeaseCheck, RevokeOfUnknownLeaseMustBeRefused) {
  EXPECT_NE(check_leases({revoke(7, true, {})}, {}), "");
  // A lessor's second revoke of a lease already gone is refused: fine.
  const std::vector<LeaseLogEntry> log = {grant(7, 2), revoke(7, true, {}, true, 5 * kSec),
                                          revoke(7, false, {}, true, 6 * kSec)};
  EXPECT_EQ(check_leases(log, {ack(7, 1 * kSec, 2, false)}), "");
}

}  // namespace
}  // namespace raftkv::sim
