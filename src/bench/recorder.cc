#include "bench/recorder.h"

#include <algorithm>
#include <functional>
#include <thread>

namespace raftkv::bench {

std::string grpc_code_name(int code) {
  static constexpr const char* kNames[] = {"OK",
                                           "CANCELLED",
                                           "UNKNOWN",
                                           "INVALID_ARGUMENT",
                                           "DEADLINE_EXCEEDED",
                                           "NOT_FOUND",
                                           "ALREADY_EXISTS",
                                           "PERMISSION_DENIED",
                                           "RESOURCE_EXHAUSTED",
                                           "FAILED_PRECONDITION",
                                           "ABORTED",
                                           "OUT_OF_RANGE",
                                           "UNIMPLEMENTED",
                                           "INTERNAL",
                                           "UNAVAILABLE",
                                           "DATA_LOSS",
                                           "UNAUTHENTICATED"};
  if (code >= 0 && code < static_cast<int>(std::size(kNames))) return kNames[code];
  return "CODE_" + std::to_string(code);
}

uint64_t Measurement::error_count() const {
  uint64_t n = 0;
  for (const auto& [code, count] : errors) n += count;
  return n;
}

double Measurement::window_s() const {
  if (ops + error_count() == 0 || last_done_ns <= first_send_ns) return 0;
  return static_cast<double>(last_done_ns - first_send_ns) / 1e9;
}

double Measurement::throughput_per_s() const {
  const double w = window_s();
  return w > 0 ? static_cast<double>(ops) / w : 0;
}

Recorder::Shard& Recorder::shard() {
  const size_t h = std::hash<std::thread::id>{}(std::this_thread::get_id());
  return shards_[h % kShards];
}

void Recorder::note_window(Shard& s, Nanos sent_ns, Nanos done_ns) {
  if (!s.any) {
    s.m.first_send_ns = sent_ns;
    s.m.last_done_ns = done_ns;
    s.any = true;
  } else {
    s.m.first_send_ns = std::min(s.m.first_send_ns, sent_ns);
    s.m.last_done_ns = std::max(s.m.last_done_ns, done_ns);
  }
}

void Recorder::record_ok(Nanos sent_ns, Nanos done_ns) {
  Shard& s = shard();
  {
    std::lock_guard lock(s.mu);
    s.m.ops += 1;
    s.m.latency_ns.record(static_cast<uint64_t>(std::max<Nanos>(0, done_ns - sent_ns)));
    note_window(s, sent_ns, done_ns);
  }
  completed_.fetch_add(1, std::memory_order_relaxed);
}

void Recorder::record_error(int code, const std::string& message, Nanos sent_ns, Nanos done_ns) {
  Shard& s = shard();
  {
    std::lock_guard lock(s.mu);
    const std::string name = grpc_code_name(code);
    s.m.errors[name] += 1;
    if (s.m.first_error.empty()) s.m.first_error = name + ": " + message;
    note_window(s, sent_ns, done_ns);
  }
  failed_.fetch_add(1, std::memory_order_relaxed);
  completed_.fetch_add(1, std::memory_order_relaxed);
}

Measurement Recorder::collect() const {
  Measurement out;
  bool any = false;
  for (const Shard& s : shards_) {
    if (!s.any) continue;
    out.ops += s.m.ops;
    for (const auto& [code, n] : s.m.errors) out.errors[code] += n;
    if (out.first_error.empty()) out.first_error = s.m.first_error;
    out.latency_ns.merge(s.m.latency_ns);
    out.first_send_ns = any ? std::min(out.first_send_ns, s.m.first_send_ns) : s.m.first_send_ns;
    out.last_done_ns = any ? std::max(out.last_done_ns, s.m.last_done_ns) : s.m.last_done_ns;
    any = true;
  }
  return out;
}

}  // namespace raftkv::bench
