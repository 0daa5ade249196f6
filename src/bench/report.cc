#include "bench/report.h"

#include <cstdio>
#include <sstream>

namespace raftkv::bench {
namespace {

std::string num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

double us(uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}

void latency_json(std::ostringstream& out, const LatencyHistogram& h) {
  out << "{\"min\": " << num(us(h.min())) << ", \"p50\": " << num(us(h.value_at_quantile(0.5)))
      << ", \"p90\": " << num(us(h.value_at_quantile(0.9)))
      << ", \"p99\": " << num(us(h.value_at_quantile(0.99)))
      << ", \"p99_9\": " << num(us(h.value_at_quantile(0.999))) << ", \"max\": " << num(us(h.max()))
      << ", \"mean\": " << num(h.mean() / 1e3) << "}";
}

void measurement_json(std::ostringstream& out, const Measurement& m) {
  out << "\"ops\": " << m.ops << ", \"duration_s\": " << num(m.window_s())
      << ", \"throughput_per_s\": " << num(m.throughput_per_s()) << ", \"latency_us\": ";
  latency_json(out, m.latency_ns);
  out << ", \"errors\": {\"total\": " << m.error_count() << ", \"by_code\": {";
  bool first = true;
  for (const auto& [code, n] : m.errors) {
    out << (first ? "" : ", ") << json_quote(code) << ": " << n;
    first = false;
  }
  out << "}, \"first\": " << json_quote(m.first_error) << "}";
}

void measurement_text(std::ostringstream& out, const Measurement& m, const char* what) {
  const auto& h = m.latency_ns;
  out << what << ": " << m.ops << " in " << num(m.window_s())
      << " s = " << num(m.throughput_per_s()) << "/s\n";
  out << "  latency us: min " << num(us(h.min())) << "  p50 " << num(us(h.value_at_quantile(0.5)))
      << "  p90 " << num(us(h.value_at_quantile(0.9))) << "  p99 "
      << num(us(h.value_at_quantile(0.99))) << "  p99.9 " << num(us(h.value_at_quantile(0.999)))
      << "  max " << num(us(h.max())) << "\n";
  out << "  errors: " << m.error_count();
  for (const auto& [code, n] : m.errors) out << "  " << code << " " << n;
  if (!m.first_error.empty()) out << "  (first: " << m.first_error << ")";
  out << "\n";
}

}  // namespace

std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string to_json(const Report& r) {
  const BenchOptions& o = r.options;
  std::ostringstream out;
  out << "{\"workload\": " << json_quote(workload_name(o.workload)) << ", \"endpoints\": [";
  for (size_t i = 0; i < o.endpoints.size(); ++i) {
    out << (i ? ", " : "") << json_quote(o.endpoints[i]);
  }
  out << "], \"conns\": " << o.conns << ", \"clients\": " << o.clients
      << ", \"mode\": " << json_quote(o.rate_per_s > 0 ? "open-loop" : "closed-loop")
      << ", \"target_rate_per_s\": " << num(o.rate_per_s) << ", ";
  measurement_json(out, r.main);
  out << ", \"counters\": {";
  bool first = true;
  for (const auto& [name, n] : r.counters) {
    out << (first ? "" : ", ") << json_quote(name) << ": " << n;
    first = false;
  }
  const double per_cpu = r.client_cpu_s > 0 ? static_cast<double>(r.main.ops) / r.client_cpu_s : 0;
  out << "}, \"client_cpu_s\": " << num(r.client_cpu_s)
      << ", \"ops_per_client_cpu_s\": " << num(per_cpu);
  if (r.writes) {
    out << ", \"writes\": {";
    measurement_json(out, *r.writes);
    out << "}";
  }
  out << "}\n";
  return out.str();
}

std::string to_text(const Report& r) {
  const BenchOptions& o = r.options;
  std::ostringstream out;
  out << workload_name(o.workload) << " ("
      << (o.rate_per_s > 0 ? "open loop at " + num(o.rate_per_s) + "/s" : "closed loop") << ", "
      << o.clients << " clients over " << o.conns << " conns)\n";
  measurement_text(out, r.main, o.workload == Workload::kWatch ? "events delivered" : "requests");
  if (r.writes) measurement_text(out, *r.writes, "writes");
  for (const auto& [name, n] : r.counters) out << name << ": " << n << "\n";
  out << "client cpu: " << num(r.client_cpu_s) << " s\n";
  return out.str();
}

}  // namespace raftkv::bench
