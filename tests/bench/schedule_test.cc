// Schedule: the open-loop timing math (due times, no drift), warmup by count
// and by time, and the stop rules.
#include "bench/schedule.h"

#include <gtest/gtest.h>

namespace raftkv::bench {
namespace {

constexpr Nanos kStart = 1'000'000'000'000;  // an arbitrary steady-clock origin
constexpr Nanos kSecond = 1'000'000'000;

TEST(Schedule, OpenLoopDueTimesFollowTheRateFromTheStart) {
  ScheduleParams p;
  p.rate_per_s = 1000;
  p.duration_ns = kSecond;
  Schedule s(p, kStart);
  EXPECT_TRUE(s.open_loop());
  EXPECT_EQ(s.due_ns(0), kStart);
  EXPECT_EQ(s.due_ns(1), kStart + 1'000'000);
  EXPECT_EQ(s.due_ns(999), kStart + 999'000'000);
}

TEST(Schedule, OpenLoopDueTimeIgnoresWhenThePlanIsAsked) {
  // A late sender still gets the original due time: the delay counts as latency.
  ScheduleParams p;
  p.rate_per_s = 100;
  p.duration_ns = 10 * kSecond;
  Schedule s(p, kStart);
  const TicketPlan late = s.plan(5, kStart + 3 * kSecond);
  EXPECT_FALSE(late.stop);
  EXPECT_EQ(late.send_at_ns, kStart + 50'000'000);
}

TEST(Schedule, OpenLoopNonIntegralIntervalDoesNotDrift) {
  ScheduleParams p;
  p.rate_per_s = 3;  // 333'333'333.33 ns apart
  p.duration_ns = 1'000'000 * kSecond;
  Schedule s(p, kStart);
  EXPECT_EQ(s.due_ns(3), kStart + kSecond);
  EXPECT_EQ(s.due_ns(3'000'000), kStart + 1'000'000 * kSecond);
  EXPECT_EQ(s.due_ns(1), kStart + 333'333'333);
  EXPECT_EQ(s.due_ns(2), kStart + 666'666'667);
}

TEST(Schedule, OpenLoopDurationStopsAtTheFirstTicketDueAfterTheEnd) {
  ScheduleParams p;
  p.rate_per_s = 10;
  p.duration_ns = kSecond;
  Schedule s(p, kStart);
  EXPECT_FALSE(s.plan(9, kStart).stop);  // due at 0.9 s
  EXPECT_TRUE(s.plan(10, kStart).stop);  // due at 1.0 s: the window is [0, 1)
}

TEST(Schedule, OpenLoopWarmupTimeIsNotMeasuredAndExtendsTheRun) {
  ScheduleParams p;
  p.rate_per_s = 10;
  p.duration_ns = kSecond;
  p.warmup_ns = kSecond / 2;
  Schedule s(p, kStart);
  EXPECT_EQ(s.measure_start_ns(), kStart + kSecond / 2);
  EXPECT_FALSE(s.plan(4, kStart).measured);  // due at 0.4 s
  EXPECT_TRUE(s.plan(5, kStart).measured);   // due at 0.5 s
  EXPECT_FALSE(s.plan(14, kStart).stop);     // due at 1.4 s < 0.5 + 1
  EXPECT_TRUE(s.plan(15, kStart).stop);
}

TEST(Schedule, ClosedLoopSendsNowAndStopsAfterTheDuration) {
  ScheduleParams p;
  p.duration_ns = 2 * kSecond;
  p.warmup_ns = kSecond;
  Schedule s(p, kStart);
  EXPECT_FALSE(s.open_loop());
  const TicketPlan warm = s.plan(0, kStart + 10);
  EXPECT_EQ(warm.send_at_ns, kStart + 10);
  EXPECT_FALSE(warm.measured);
  EXPECT_FALSE(warm.stop);
  const TicketPlan measured = s.plan(12345, kStart + kSecond + 1);
  EXPECT_TRUE(measured.measured);
  EXPECT_FALSE(measured.stop);
  EXPECT_TRUE(s.plan(12346, kStart + 3 * kSecond).stop);
}

TEST(Schedule, TotalWithWarmupRequestsMeasuresExactlyTheTotal) {
  ScheduleParams p;
  p.total_requests = 100;
  p.warmup_requests = 10;
  Schedule s(p, kStart);
  uint64_t measured = 0, sent = 0;
  for (uint64_t t = 0; t < 1000; ++t) {
    const TicketPlan plan = s.plan(t, kStart + static_cast<Nanos>(t));
    if (plan.stop) break;
    ++sent;
    measured += plan.measured ? 1 : 0;
    EXPECT_EQ(plan.measured, t >= 10) << t;
  }
  EXPECT_EQ(sent, 110u);
  EXPECT_EQ(measured, 100u);
}

TEST(Schedule, OpenLoopWithTotalStopsAfterTheTotal) {
  ScheduleParams p;
  p.rate_per_s = 1e6;
  p.total_requests = 5;
  Schedule s(p, kStart);
  EXPECT_EQ(s.plan(4, kStart).send_at_ns, kStart + 4'000);
  EXPECT_TRUE(s.plan(5, kStart).stop);
  EXPECT_FALSE(s.plan(5, kStart).measured);
}

TEST(ScheduleDeath, RejectsBothTotalAndDuration) {
  ScheduleParams p;
  p.total_requests = 1;
  p.duration_ns = 1;
  EXPECT_DEATH(Schedule(p, kStart), "invariant violated");
}

}  // namespace
}  // namespace raftkv::bench
