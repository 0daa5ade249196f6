#include "bench/schedule.h"

#include <cmath>

#include "base/check.h"

namespace raftkv::bench {

Schedule::Schedule(ScheduleParams params, Nanos start_ns) : params_(params), start_ns_(start_ns) {
  RAFTKV_CHECK(params_.rate_per_s >= 0);
  RAFTKV_CHECK((params_.total_requests > 0) != (params_.duration_ns > 0));
  RAFTKV_CHECK(params_.warmup_requests == 0 || params_.total_requests > 0);
  RAFTKV_CHECK(params_.warmup_ns >= 0);
  RAFTKV_CHECK(params_.warmup_ns == 0 || params_.duration_ns > 0);
  if (open_loop()) interval_ns_ = 1e9 / params_.rate_per_s;
}

Nanos Schedule::due_ns(uint64_t ticket) const {
  RAFTKV_CHECK(open_loop());
  // Computed from the ticket, not accumulated, so rounding never drifts.
  return start_ns_ + static_cast<Nanos>(std::llround(static_cast<double>(ticket) * interval_ns_));
}

TicketPlan Schedule::plan(uint64_t ticket, Nanos now_ns) const {
  TicketPlan p;
  p.send_at_ns = open_loop() ? due_ns(ticket) : now_ns;
  if (params_.total_requests > 0) {
    p.stop = ticket >= params_.warmup_requests + params_.total_requests;
    p.measured = ticket >= params_.warmup_requests;
  } else {
    p.stop = p.send_at_ns >= measure_start_ns() + params_.duration_ns;
    p.measured = p.send_at_ns >= measure_start_ns();
  }
  if (p.stop) p.measured = false;
  return p;
}

}  // namespace raftkv::bench
