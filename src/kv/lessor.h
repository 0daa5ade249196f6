// Lessor: decides when leases expire (docs/coordination.md, "Leases").
//
// Which leases exist, and their granted TTLs, is replicated state held by
// kv::Store (LeaseGrant / LeaseRevoke entries). When a lease *expires* is not:
// only the leader keeps a deadline per lease, in memory, and an expiry is
// carried out by proposing a LeaseRevoke through Raft, so every member deletes
// the attached keys at the same log position (as etcd's lessor does).
//
//   * Promotion: when this member becomes leader (or is leader in a new
//     term), every lease gets its full granted TTL again from that moment, so
//     no lease expires because of an election or of the time the cluster had
//     no leader (etcd's Promote). A lease granted while this member is leader
//     gets its deadline when the lessor first sees it in the store.
//   * Demotion: a member that stops being leader forgets every deadline and
//     never proposes revokes.
//   * Keep-alive (renew) works on the primary only; the caller forwards
//     keep-alives that reach a follower to the leader.
//   * Expiry: revokes are proposed at most `max_revokes_per_second` per
//     second (etcd's leaseRevokeRate); a proposed revoke that did not take
//     effect (lost proposal, leader change) is proposed again after
//     `revoke_retry`.
//
// The lessor reads time only through Hooks::now and leadership, store state
// and proposals only through Hooks, so tests drive it with a fake clock and
// the simulator runs it on simulated nodes. It lives in kv, not in the server,
// for that reason: it must not depend on the server.
//
// Thread-safety: every public method may be called from any thread; one
// mutex guards the deadlines. tick() is called by the lessor's own thread
// (start(), the server) or directly by tests and by the simulator, which
// never starts the thread and ticks it on simulated time (Hooks::now).
// `revoke` is called with the mutex released; the other hooks with it held,
// so they must not call back into the lessor.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "base/status.h"

namespace raftkv::kv {

class Lessor {
 public:
  using Clock = std::chrono::steady_clock;

  struct Hooks {
    /// The current Raft term if this member is the leader, else 0.
    std::function<uint64_t()> leader_term;
    /// The term of the last entry this member applied. The lessor acts as
    /// primary only once it equals leader_term(): before that, an entry of an
    /// earlier term still to be applied may be a revoke a previous leader
    /// proposed, and a renewal acknowledged meanwhile would be undone by it.
    std::function<uint64_t()> applied_term;
    /// Every granted lease and its granted TTL in seconds (ascending id).
    std::function<std::vector<std::pair<int64_t, int64_t>>()> leases;
    /// The granted TTL of one lease, or nullopt if it is not granted.
    std::function<std::optional<int64_t>(int64_t id)> lease_ttl;
    /// Proposes a LeaseRevoke of `id` (asynchronously; the result does not matter:
    /// the lease disappears from `leases` once the revoke is applied).
    std::function<void(int64_t id)> revoke;
    std::function<Clock::time_point()> now;
  };

  struct Options {
    size_t max_revokes_per_second = 1000;
    std::chrono::milliseconds revoke_retry{3000};
    /// How often the lessor's thread calls tick().
    std::chrono::milliseconds tick_interval{100};
  };

  /// What the primary knows about one lease.
  struct LeaseView {
    int64_t granted_ttl_seconds = 0;
    int64_t remaining_seconds = 0;  ///< Whole seconds left, truncated (as etcd reports).
  };

  Lessor(Hooks hooks, Options options);
  ~Lessor();
  Lessor(const Lessor&) = delete;
  Lessor& operator=(const Lessor&) = delete;

  /// Starts the thread that calls tick() every options.tick_interval.
  void start();
  /// Stops that thread (idempotent). Not from a hook.
  void stop();

  /// Follows leadership (promote / demote), picks up granted and forgets
  /// revoked leases, and proposes revokes of expired leases (rate-limited).
  void tick();

  /// Keep-alive: the lease's deadline becomes now + its granted TTL.
  /// Returns the granted TTL. Errors: kFailedPrecondition when this member is
  /// not the primary (forward to the leader); kNotFound when the lease is not
  /// granted or already expired (its revoke is under way).
  Result<int64_t> renew(int64_t id);

  /// Remaining and granted TTL on the primary. Errors as renew().
  Result<LeaseView> time_to_live(int64_t id);

  /// True while this member acts as the lessor's primary (the leader).
  bool is_primary();

 private:
  struct Entry {
    int64_t ttl_seconds = 0;
    Clock::time_point deadline;
    std::optional<Clock::time_point> revoke_sent;  ///< Last revoke proposal.
  };

  // Brings primary state in line with leader_term(); mu_ held.
  void follow_leadership_locked(Clock::time_point now);
  // Finds (adopting it from the store if needed) a lease on the primary; mu_ held.
  Result<Entry*> find_locked(int64_t id, Clock::time_point now);
  void loop();

  const Hooks hooks_;
  const Options options_;

  std::mutex mu_;
  uint64_t primary_term_ = 0;  ///< 0 = not primary.
  std::map<int64_t, Entry> leases_;
  // Rate limit: revokes proposed in the current one-second window.
  Clock::time_point window_start_{};
  size_t window_revokes_ = 0;

  std::mutex thread_mu_;
  std::condition_variable thread_cv_;
  bool stop_ = false;
  std::thread thread_;
};

/// The TTL a grant is given: `requested` raised to the minimum etcd allows,
/// ⌈1.5 × election timeout⌉ seconds.
int64_t lease_min_ttl_seconds(uint32_t election_timeout_ms);

/// etcd-style lease ids: the low 16 bits of the member id in the top bits, a
/// millisecond clock and a counter below, never 0 and never negative.
class LeaseIdGenerator {
 public:
  LeaseIdGenerator(uint64_t member_id, uint64_t now_unix_ms);
  int64_t next();

 private:
  const uint64_t prefix_;
  std::mutex mu_;
  uint64_t suffix_;
};

}  // namespace raftkv::kv
