// The linearizability checker on handcrafted histories: anomalies it must
// reject, and legal concurrent or indeterminate histories it must accept.
#include <gtest/gtest.h>

#include "sim/checker.h"
#include "sim/history.h"

namespace raftkv::sim {
namespace {


uint64_t g_id = 1;

Op put(int client, const std::string& key, const std::string& value, uint64_t t0, uint64_t t1) {
  Op op;
  op.id = g_id++;
  op.client = client;
  op.kind = OpKind::kPut;
  op.key = key;
  op.value = value;
  op.invoke_us = t0;
  op.complete_us = t1;
  return op;
}
Op get(int client, const std::string& key, Value read, uint64_t t0, uint64_t t1) {
  Op op;
  op.id = g_id++;
  op.client = client;
  op.kind = OpKind::kGet;
  op.key = key;
  op.read = std::move(read);
  op.invoke_us = t0;
  op.complete_us = t1;
  return op;
}
Op cas(int client, const std::string& key, Value expected, const std::string& value, bool ok,
       uint64_t t0, uint64_t t1) {
  Op op = put(client, key, value, t0, t1);
  op.kind = OpKind::kCas;
  op.expected = std::move(expected);
  op.ok = ok;
  return op;
}
Op del(int client, const std::string& key, bool deleted, uint64_t t0, uint64_t t1) {
  Op op = put(client, key, "", t0, t1);
  op.kind = OpKind::kDelete;
  op.ok = deleted;
  return op;
}
Op indeterminate(Op op) {
  op.indeterminate = true;
  op.complete_us = 0;
  return op;
}

CheckResult::Verdict verdict(const std::vector<Op>& h) { return check_linearizable(h).verdict; }

TEST(CheckerReject, StaleReadAfterCompletedWrite) {
  // put(x,1) completes, then put(x,2) completes, then a read returns 1.
  std::vector<Op> h = {put(0, "x", "1", 0, 10), put(0, "x", "2", 20, 30),
                       get(1, "x", "1", 40, 50)};
  CheckResult r = check_linearizable(h);
  EXPECT_EQ(r.verdict, CheckResult::Verdict::kViolation);
  EXPECT_EQ(r.key, "x");
  EXPECT_NE(r.detail.find("get(x)"), std::string::npos);
}

TEST(CheckerReject, ReadOfAValueNeverWritten) {
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), get(1, "x", "9", 20, 30)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, LostAcknowledgedWrite) {
  // The write was acknowledged, and a later read sees the key absent.
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), get(1, "x", std::nullopt, 20, 30)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, ReadsGoBackInTime) {
  // Two sequential reads by one client: 2 then 1, after both writes finished.
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), put(0, "x", "2", 0, 10), get(1, "x", "2", 20, 30),
                     get(1, "x", "1", 40, 50)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, TwoCasFromTheSameValueBothSucceed) {
  // Both compare against "1" and both claim success: one must have seen the other's write.
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), cas(1, "x", "1", "a", true, 20, 40),
                     cas(2, "x", "1", "b", true, 20, 40)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, CasFailsAlthoughItsExpectationHeld) {
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), cas(1, "x", "1", "a", false, 20, 30)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, DeleteReportsNothingDeletedOnAPresentKey) {
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), del(1, "x", false, 20, 30)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, IndeterminateWriteCannotExplainAReadBeforeItsInvocation) {
  // The only writer of "5" was invoked after the read completed.
  EXPECT_EQ(verdict({get(1, "x", "5", 0, 10), indeterminate(put(0, "x", "5", 20, 0))}),
            CheckResult::Verdict::kViolation);
}

Op lease_put(int client, const std::string& key, const std::string& value, int64_t lease, bool ok,
             uint64_t t0, uint64_t t1) {
  Op op = put(client, key, value, t0, t1);
  op.lease = lease;
  op.ok = ok;
  return op;
}
// A key deleted by a lease revoke: a write between the revoke's proposal and
// its first application.
Op revoke_delete(const std::string& key, int64_t lease, uint64_t t0, uint64_t t1) {
  Op op = del(-2, key, true, t0, t1);
  op.lease = lease;
  return op;
}

TEST(CheckerReject, ReadSeesAValueWhosePutWasRefusedForItsLease) {
  // The put's lease did not exist: it changed nothing, so "1" was never written.
  EXPECT_EQ(verdict({lease_put(0, "x", "1", 7, false, 0, 10), get(1, "x", "1", 20, 30)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerReject, KeyStillReadAfterItsLeaseRevokeApplied) {
  EXPECT_EQ(verdict({lease_put(0, "x", "1", 7, true, 0, 10), revoke_delete("x", 7, 20, 30),
                     get(1, "x", "1", 40, 50)}),
            CheckResult::Verdict::kViolation);
}

TEST(CheckerAccept, LeaseRevokeDeletesConcurrentlyWithARead) {
  // The read overlaps the revoke: it may see the key or not; a later read must not.
  EXPECT_EQ(verdict({lease_put(0, "x", "1", 7, true, 0, 10), revoke_delete("x", 7, 20, 60),
                     get(1, "x", "1", 30, 40), get(1, "x", std::nullopt, 70, 80),
                     lease_put(0, "x", "2", 7, false, 90, 100),
                     get(1, "x", std::nullopt, 110, 120)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, ConcurrentWritesAndReadsInEitherOrder) {
  // Two overlapping writes; overlapping reads see them in the order 2, 1 — legal
  // if put 2 is linearized first.
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 100), put(1, "x", "2", 10, 90), get(2, "x", "2", 20, 30),
                     get(2, "x", "1", 95, 120)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, ReadOverlappingAWriteMaySeeOldOrNew) {
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), put(0, "x", "2", 20, 60), get(1, "x", "1", 30, 40),
                     get(2, "x", "2", 35, 45)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, IndeterminateWriteThatTookEffect) {
  EXPECT_EQ(verdict({indeterminate(put(0, "x", "1", 0, 0)), get(1, "x", "1", 500, 510)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, IndeterminateWriteThatNeverTookEffect) {
  EXPECT_EQ(verdict({put(0, "x", "0", 0, 5), indeterminate(put(0, "x", "1", 10, 0)),
                     get(1, "x", "0", 500, 510)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, IndeterminateWriteTakesEffectLongAfterItsClientGaveUp) {
  EXPECT_EQ(verdict({indeterminate(put(0, "x", "1", 0, 0)), put(0, "x", "2", 100, 110),
                     get(1, "x", "2", 120, 130), get(1, "x", "1", 140, 150)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, CasChainAndDeletes) {
  EXPECT_EQ(verdict({cas(0, "x", std::nullopt, "a", true, 0, 10), cas(1, "x", "a", "b", true, 20, 30),
                     cas(2, "x", "a", "c", false, 25, 35), del(0, "x", true, 40, 50),
                     del(1, "x", false, 60, 70), get(2, "x", std::nullopt, 80, 90)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, KeysAreIndependent) {
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), put(0, "y", "2", 0, 10), get(1, "x", "1", 20, 30),
                     get(1, "y", "2", 20, 30)}),
            CheckResult::Verdict::kLinearizable);
}

TEST(CheckerAccept, IndeterminateReadsAreIgnored) {
  Op r = indeterminate(get(1, "x", "zzz", 0, 0));
  EXPECT_EQ(verdict({put(0, "x", "1", 0, 10), r}), CheckResult::Verdict::kLinearizable);
}

TEST(CheckerBudget, ManyConcurrentIndeterminateWritesStayWithinBudgetOrGiveUp) {
  // 40 indeterminate writes and reads that each pin one of them: the search
  // either finds the order or reports that it gave up, never a violation.
  std::vector<Op> h;
  for (int i = 0; i < 40; ++i) h.push_back(indeterminate(put(i, "x", std::to_string(i), 0, 0)));
  for (int i = 0; i < 40; ++i) h.push_back(get(99, "x", std::to_string(i), 100 + 10 * i, 105 + 10 * i));
  CheckOptions o;
  o.max_steps_per_key = 200'000;
  CheckResult r = check_linearizable(h, o);
  EXPECT_NE(r.verdict, CheckResult::Verdict::kViolation);
  EXPECT_GT(r.steps, 0u);
}

TEST(CheckerModel, RegisterTransitions) {
  Value s;
  EXPECT_TRUE(model_step(put(0, "x", "1", 0, 1), s));
  EXPECT_EQ(s, Value("1"));
  EXPECT_FALSE(model_step(get(0, "x", "2", 0, 1), s));
  EXPECT_TRUE(model_step(cas(0, "x", "1", "3", true, 0, 1), s));
  EXPECT_EQ(s, Value("3"));
  EXPECT_TRUE(model_step(del(0, "x", true, 0, 1), s));
  EXPECT_EQ(s, std::nullopt);
}

}  // namespace
}  // namespace raftkv::sim
