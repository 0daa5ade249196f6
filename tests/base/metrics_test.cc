#include "base/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace raftkv::metrics {
namespace {

TEST(MetricsExposition, CounterAndGaugeWithHelpAndType) {
  Registry r;
  r.counter("a_total", "Things done.").inc(3);
  r.gauge("b", "A level.").set(2.5);
  EXPECT_EQ(r.expose(),
            "# HELP a_total Things done.\n# TYPE a_total counter\na_total 3\n"
            "# HELP b A level.\n# TYPE b gauge\nb 2.5\n");
}

TEST(MetricsExposition, LabelsKeepDeclaredOrderAndSeriesSortByValues) {
  Registry r;
  auto& f = r.counter_family("req_total", "Requests.", {"zeta", "alpha"});
  f.with({"2", "x"}).inc();
  f.with({"1", "y"}).inc(5);
  EXPECT_EQ(r.expose(),
            "# HELP req_total Requests.\n# TYPE req_total counter\n"
            "req_total{zeta=\"1\",alpha=\"y\"} 5\n"
            "req_total{zeta=\"2\",alpha=\"x\"} 1\n");
}

TEST(MetricsExposition, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(escape_label_value("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(escape_help("x\\y\nz\"q"), "x\\\\y\\nz\"q");
  Registry r;
  r.gauge_family("g", "line1\nline2", {"path"}).with({"C:\\dir \"q\"\n"}).set(1);
  EXPECT_EQ(r.expose(),
            "# HELP g line1\\nline2\n# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"q\\\"\\n\"} 1\n");
}

TEST(MetricsExposition, HistogramBucketsAreCumulativeWithInfSumAndCount) {
  Registry r;
  Histogram& h = r.histogram("d_seconds", "Durations.", {0.001, 0.002, 0.004});
  h.observe(0.001);   // le 0.001 (bounds are inclusive)
  h.observe(0.0015);  // le 0.002
  h.observe(0.5);     // +Inf only
  EXPECT_EQ(r.expose(),
            "# HELP d_seconds Durations.\n# TYPE d_seconds histogram\n"
            "d_seconds_bucket{le=\"0.001\"} 1\n"
            "d_seconds_bucket{le=\"0.002\"} 2\n"
            "d_seconds_bucket{le=\"0.004\"} 2\n"
            "d_seconds_bucket{le=\"+Inf\"} 3\n"
            "d_seconds_sum 0.5025\n"
            "d_seconds_count 3\n");
}

TEST(MetricsExposition, LabelledHistogramPutsLeLast) {
  Registry r;
  r.histogram_family("rtt_seconds", "RTT.", {"To"}, {0.5}).with({"abc"}).observe(0.1);
  const std::string text = r.expose();
  EXPECT_NE(text.find("rtt_seconds_bucket{To=\"abc\",le=\"0.5\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("rtt_seconds_bucket{To=\"abc\",le=\"+Inf\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("rtt_seconds_count{To=\"abc\"} 1\n"), std::string::npos);
}

TEST(MetricsBuckets, EtcdDiskBucketsMatchPrometheusExponentialBuckets) {
  // etcd: prometheus.ExponentialBuckets(0.001, 2, 14) — 1 ms to 8.192 s.
  const std::vector<double> b = exponential_buckets(0.001, 2, 14);
  ASSERT_EQ(b.size(), 14u);
  EXPECT_EQ(format_value(b.front()), "0.001");
  EXPECT_EQ(format_value(b.back()), "8.192");
}

TEST(MetricsFormat, SpecialValues) {
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(0.0 / 0.0), "NaN");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.1), "0.1");
}

TEST(MetricsRegistry, SameNameSameShapeReturnsTheSameSeries) {
  Registry r;
  r.counter("x_total", "X.").inc();
  r.counter("x_total", "X.").inc();
  EXPECT_EQ(r.counter("x_total", "X.").value(), 2u);
}

TEST(MetricsRegistryDeathTest, SameNameOtherTypeIsABug) {
  Registry r;
  r.counter("x_total", "X.");
  EXPECT_DEATH(r.gauge("x_total", "X."), "registered twice");
}

TEST(MetricsRegistry, CallbackIsEvaluatedAtExpositionAndCanBeRemoved) {
  Registry r;
  double v = 7;
  r.set_callback("size_bytes", "Size.", Type::kGauge, [&v] { return v; });
  EXPECT_EQ(r.expose(), "# HELP size_bytes Size.\n# TYPE size_bytes gauge\nsize_bytes 7\n");
  v = 8;
  EXPECT_NE(r.expose().find("size_bytes 8\n"), std::string::npos);
  r.set_callback("size_bytes", "Size.", Type::kGauge, nullptr);
  EXPECT_EQ(r.expose(), "");
}

TEST(MetricsConcurrency, CountsFromManyThreadsAddUp) {
  Registry r;
  Counter& c = r.counter("n_total", "N.");
  Histogram& h = r.histogram("h", "H.", {1});
  Gauge& g = r.gauge("g", "G.");
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(0.5);
        g.add(1);
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.cumulative_counts().back(), 40000u);
  EXPECT_DOUBLE_EQ(h.sum(), 20000);
  EXPECT_DOUBLE_EQ(g.value(), 40000);
}

}  // namespace
}  // namespace raftkv::metrics
