// Recorder and Report: outcomes from many threads merge into one measurement;
// throughput uses the measured window; JSON is well-formed and complete.
#include "bench/report.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "bench/recorder.h"

namespace raftkv::bench {
namespace {

TEST(Recorder, OutcomesFromManyThreadsAllArrive) {
  Recorder rec;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&rec, t] {
      for (int i = 0; i < 1000; ++i) {
        const Nanos sent = 1'000'000'000LL + t * 1000 + i;
        rec.record_ok(sent, sent + 5000 + t);
      }
      rec.record_error(14, "unavailable", 1'000'000'000LL, 1'000'100'000LL);
      rec.record_unmeasured();
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(rec.completed(), 8u * 1002);
  EXPECT_EQ(rec.failed(), 8u);
  const Measurement m = rec.collect();
  EXPECT_EQ(m.ops, 8000u);
  EXPECT_EQ(m.latency_ns.count(), 8000u);
  EXPECT_EQ(m.latency_ns.min(), 5000u);
  EXPECT_EQ(m.latency_ns.max(), 5007u);
  EXPECT_EQ(m.errors.at("UNAVAILABLE"), 8u);
  EXPECT_EQ(m.error_count(), 8u);
  EXPECT_EQ(m.first_error, "UNAVAILABLE: unavailable");
  EXPECT_EQ(m.first_send_ns, 1'000'000'000LL);
}

TEST(Recorder, ThroughputIsOpsOverTheMeasuredWindow) {
  Recorder rec;
  rec.record_ok(0, 500'000'000);
  rec.record_ok(1'000'000'000, 2'000'000'000);
  const Measurement m = rec.collect();
  EXPECT_DOUBLE_EQ(m.window_s(), 2.0);
  EXPECT_DOUBLE_EQ(m.throughput_per_s(), 1.0);
  EXPECT_DOUBLE_EQ(Measurement{}.throughput_per_s(), 0.0);
}

TEST(Recorder, GrpcCodeNames) {
  EXPECT_EQ(grpc_code_name(0), "OK");
  EXPECT_EQ(grpc_code_name(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(grpc_code_name(16), "UNAUTHENTICATED");
  EXPECT_EQ(grpc_code_name(99), "CODE_99");
}

TEST(Report, JsonCarriesEveryFieldScriptsRead) {
  Report r;
  r.options.workload = Workload::kTxnCas;
  r.options.clients = 50;
  r.options.conns = 5;
  Recorder rec;
  rec.record_ok(0, 200);
  rec.record_ok(0, 2'000'000'000);
  rec.record_error(4, "deadline \"x\"\n", 0, 10);
  r.main = rec.collect();
  r.counters["cas_conflicts"] = 3;
  r.client_cpu_s = 0.5;
  const std::string j = to_json(r);
  for (const char* field :
       {"\"workload\": \"txn-cas\"", "\"clients\": 50", "\"conns\": 5", "\"mode\": \"closed-loop\"",
        "\"ops\": 2", "\"duration_s\": 2.000", "\"throughput_per_s\": 1.000", "\"p50\": 0.200",
        "\"p99_9\":", "\"max\": 2000000.000", "\"DEADLINE_EXCEEDED\": 1", "\"total\": 1",
        "\"cas_conflicts\": 3", "\"ops_per_client_cpu_s\": 4.000",
        "\"first\": \"DEADLINE_EXCEEDED: deadline \\\"x\\\"\\n\""}) {
    EXPECT_NE(j.find(field), std::string::npos) << field << " missing in " << j;
  }
  EXPECT_EQ(j.find("writes"), std::string::npos) << "only watch reports writes";
  const std::string t = to_text(r);
  EXPECT_NE(t.find("txn-cas (closed loop, 50 clients over 5 conns)"), std::string::npos) << t;
}

TEST(Report, JsonQuoteEscapesControlCharacters) {
  EXPECT_EQ(json_quote("a\"b\\c\x01"), "\"a\\\"b\\\\c\\u0001\"");
}

}  // namespace
}  // namespace raftkv::bench
