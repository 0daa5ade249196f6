// Schedule: when each request of a run is sent, whether it is measured, and
// when the run stops. Pure arithmetic on nanosecond time points, no clock
// reads, so the open-loop timing math is unit-tested exactly.
//
// Requests are numbered by a ticket 0, 1, 2, ... in issue order.
//  - Closed loop (rate 0): a client sends its next request as soon as the
//    previous one completes; a request's latency runs from its actual send.
//  - Open loop (rate R > 0): ticket i is due at start + i / R seconds, whether
//    or not earlier requests have completed. Latency runs from that due time,
//    so when the system under test (or the client pool) falls behind, the
//    queueing delay is counted instead of hidden ("coordinated omission").
//
// Warmup excludes the first requests from the results: with a request total,
// a request count (the first W tickets); with a duration, a time (requests
// sent before start + warmup). The measured duration follows the warmup.
#pragma once

#include <cstdint>

namespace raftkv::bench {

/// A point in time or a duration, in nanoseconds of the steady clock.
using Nanos = int64_t;

struct ScheduleParams {
  double rate_per_s = 0;         ///< 0: closed loop; > 0: open loop.
  uint64_t total_requests = 0;   ///< Measured requests to send; 0: run by duration.
  Nanos duration_ns = 0;         ///< Measured time to run; used when total_requests == 0.
  uint64_t warmup_requests = 0;  ///< Unmeasured leading requests (only with total_requests).
  Nanos warmup_ns = 0;           ///< Unmeasured leading time (only with duration_ns).
};

/// What to do with one ticket.
struct TicketPlan {
  bool stop = false;      ///< The run is over: send nothing for this ticket.
  Nanos send_at_ns = 0;   ///< When to send it (open loop: its due time; closed loop: now).
  bool measured = false;  ///< Whether its outcome counts in the results.
};

class Schedule {
 public:
  /// REQUIRES: params valid (rate >= 0; exactly one of total_requests and
  /// duration_ns positive; warmup_requests only with total_requests,
  /// warmup_ns only with duration_ns).
  Schedule(ScheduleParams params, Nanos start_ns);

  bool open_loop() const { return params_.rate_per_s > 0; }
  Nanos start_ns() const { return start_ns_; }
  /// Where the measured window begins (for a request warmup: the start).
  Nanos measure_start_ns() const { return start_ns_ + params_.warmup_ns; }
  /// Open loop: the due time of ticket i: start + round(i * 1e9 / rate).
  /// REQUIRES: open_loop().
  Nanos due_ns(uint64_t ticket) const;
  /// The plan for `ticket`, decided at time `now_ns`. Thread-safe (const).
  TicketPlan plan(uint64_t ticket, Nanos now_ns) const;

 private:
  ScheduleParams params_;
  Nanos start_ns_;
  double interval_ns_ = 0;
};

}  // namespace raftkv::bench
