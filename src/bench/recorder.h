// Recorder: collects the outcome of measured requests from many threads.
//
// Completions arrive on gRPC's callback threads. Each thread records into one
// of kShards histograms picked by its thread id (a mutex per shard, almost
// never contended), and collect() merges the shards at the end. Progress
// counters are atomics, readable while the run goes on.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "bench/histogram.h"
#include "bench/schedule.h"

namespace raftkv::bench {

/// The name gRPC gives a status code ("UNAVAILABLE"); "CODE_<n>" if unknown.
std::string grpc_code_name(int code);

/// Merged outcome of the measured requests of one run (or one part of it).
struct Measurement {
  uint64_t ops = 0;                        ///< Successful measured requests.
  std::map<std::string, uint64_t> errors;  ///< Failed measured requests by gRPC code name.
  std::string first_error;                 ///< "CODE: message" of one failure, if any.
  LatencyHistogram latency_ns;             ///< Latency of the successful ones.
  Nanos first_send_ns = 0;                 ///< Earliest send (due) time measured.
  Nanos last_done_ns = 0;                  ///< Latest completion measured.

  uint64_t error_count() const;
  /// Seconds from first send to last completion; 0 when nothing was measured.
  double window_s() const;
  /// ops / window_s(); 0 when the window is empty.
  double throughput_per_s() const;
};

class Recorder {
 public:
  Recorder() = default;
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  /// A measured request succeeded. Thread-safe.
  void record_ok(Nanos sent_ns, Nanos done_ns);
  /// A measured request failed with gRPC status `code`. Thread-safe.
  void record_error(int code, const std::string& message, Nanos sent_ns, Nanos done_ns);
  /// An unmeasured (warmup) request completed; counts only toward progress.
  void record_unmeasured() { completed_.fetch_add(1, std::memory_order_relaxed); }

  /// Requests completed so far, measured or not (for the progress line).
  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }
  uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

  /// Merges all shards. REQUIRES: no record_* call runs concurrently.
  Measurement collect() const;

 private:
  static constexpr size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    Measurement m;
    bool any = false;
  };
  Shard& shard();
  void note_window(Shard& s, Nanos sent_ns, Nanos done_ns);

  std::array<Shard, kShards> shards_;
  std::atomic<uint64_t> completed_{0};
  std::atomic<uint64_t> failed_{0};
};

}  // namespace raftkv::bench
