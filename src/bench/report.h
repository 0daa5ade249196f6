// Report: the result of one raftkv-bench run, as text for people or JSON for
// scripts (scripts/bench-compare reads the JSON).
//
// JSON shape (latencies in microseconds):
//   {"workload": "put", "endpoints": [...], "conns": 1, "clients": 1,
//    "mode": "closed-loop" | "open-loop", "target_rate_per_s": 0,
//    "ops": 1234, "duration_s": 2.0, "throughput_per_s": 617.0,
//    "latency_us": {"min", "p50", "p90", "p99", "p99_9", "max", "mean"},
//    "errors": {"total": 0, "by_code": {"UNAVAILABLE": 0}, "first": "..."},
//    "counters": {"cas_conflicts": 3},
//    "client_cpu_s": 0.8, "ops_per_client_cpu_s": 1542.5,
//    "writes": {ops, duration_s, throughput_per_s, latency_us, errors}}   (watch only)
// For watch, "ops" are delivered events and "latency_us" the delivery latency.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "bench/options.h"
#include "bench/recorder.h"

namespace raftkv::bench {

struct Report {
  BenchOptions options;
  Measurement main;                   ///< The measured operations.
  std::optional<Measurement> writes;  ///< watch: the writer's puts.
  std::map<std::string, uint64_t> counters;
  double client_cpu_s = 0;  ///< User + system CPU of this process.
};

std::string to_json(const Report& r);
std::string to_text(const Report& r);

/// JSON string literal for `s` (quotes included, control characters escaped).
std::string json_quote(const std::string& s);

}  // namespace raftkv::bench
