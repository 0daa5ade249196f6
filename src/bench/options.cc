#include "bench/options.h"

#include <CLI/CLI.hpp>
#include <array>
#include <charconv>
#include <cmath>
#include <sstream>
#include <utility>

#include "base/check.h"

namespace raftkv::bench {
namespace {

constexpr std::array<std::pair<Workload, const char*>, 7> kWorkloads{{
    {Workload::kPut, "put"},
    {Workload::kRange, "range"},
    {Workload::kTxnCas, "txn-cas"},
    {Workload::kMixed, "mixed"},
    {Workload::kWatch, "watch"},
    {Workload::kLeaseKeepAlive, "lease-keepalive"},
    {Workload::kFsync, "fsync"},
}};

constexpr const char* kWorkloadHelp[] = {
    "Put random (or --sequential-keys) keys of --key-size with values of --val-size",
    "Read single keys (linearizable; --serializable for local reads)",
    "Compare-and-swap: read a key's mod_revision, then Txn(mod == rev ? put); counts conflicts",
    "Ranges and puts; --read-ratio of the requests are ranges",
    "--watchers streams watch --key-prefix while the clients put; measures event delivery",
    "Each client keeps its own lease alive on its own LeaseKeepAlive stream",
    "Raw disk sync rate: write --val-size bytes then fdatasync, in --dir",
};

// Upper bounds that keep one process within reason (memory per client and
// channel, a sane schedule); far above what a benchmark needs.
constexpr uint32_t kMaxConns = 1024;
constexpr uint32_t kMaxClients = 100000;
constexpr uint32_t kMaxWatchers = 10000;
constexpr uint32_t kMaxPutsPerRequest = 128;
constexpr uint32_t kMaxKeySize = 1024 * 1024;
constexpr uint32_t kMaxValSize = 16 * 1024 * 1024;
// The watch workload stores the send time in the value's first 8 bytes.
constexpr uint32_t kWatchMinValSize = 8;

size_t digits(uint64_t v) {
  size_t n = 1;
  while (v >= 10) {
    v /= 10;
    ++n;
  }
  return n;
}

std::string strip_scheme(std::string e) {
  for (const char* scheme : {"http://", "https://"}) {
    const std::string s(scheme);
    if (e.rfind(s, 0) == 0) e = e.substr(s.size());
  }
  return e;
}

}  // namespace

const char* workload_name(Workload w) {
  for (const auto& [k, name] : kWorkloads) {
    if (k == w) return name;
  }
  return "unknown";
}

ScheduleParams BenchOptions::schedule_params() const {
  ScheduleParams p;
  p.rate_per_s = rate_per_s;
  p.total_requests = total;
  p.duration_ns = static_cast<Nanos>(std::llround(duration_s * 1e9));
  p.warmup_requests = warmup_requests;
  p.warmup_ns = static_cast<Nanos>(std::llround(warmup_s * 1e9));
  return p;
}

std::string BenchOptions::key(uint64_t index) const {
  RAFTKV_CHECK(index < key_space);
  const std::string number = std::to_string(index);
  std::string k = key_prefix;
  const size_t fixed = key_prefix.size() + number.size();
  if (key_size_bytes > fixed) k.append(key_size_bytes - fixed, '0');
  k += number;
  return k;
}

Status parse_warmup(const std::string& text, BenchOptions& o) {
  const std::string bad =
      "--warmup: expected seconds like 2s or 0.5s, or a request count like 1000; got \"" + text +
      "\"";
  if (text.empty()) return Status::invalid_argument(bad);
  if (text.back() == 's') {
    double s = 0;
    const char* begin = text.data();
    const char* end = text.data() + text.size() - 1;
    auto [ptr, ec] = std::from_chars(begin, end, s);
    if (ec != std::errc() || ptr != end || !(s >= 0) || !std::isfinite(s)) {
      return Status::invalid_argument(bad);
    }
    o.warmup_s = s;
    o.warmup_requests = 0;
    return Status::ok();
  }
  uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || ptr != text.data() + text.size()) return Status::invalid_argument(bad);
  o.warmup_requests = n;
  o.warmup_s = 0;
  return Status::ok();
}

Status validate(const BenchOptions& o) {
  const bool fsync = o.workload == Workload::kFsync;
  if (!fsync && o.endpoints.empty()) {
    return Status::invalid_argument("--endpoints: give at least one host:port");
  }
  for (const auto& e : o.endpoints) {
    if (e.empty() || e.find(':') == std::string::npos) {
      return Status::invalid_argument("--endpoints: \"" + e + "\" is not host:port");
    }
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    return Status::invalid_argument("--cert and --key must be given together");
  }
  if (o.conns < 1 || o.conns > kMaxConns) {
    return Status::invalid_argument("--conns must be in [1, " + std::to_string(kMaxConns) + "]");
  }
  if (o.clients < 1 || o.clients > kMaxClients) {
    return Status::invalid_argument("--clients must be in [1, " + std::to_string(kMaxClients) +
                                    "]");
  }
  if (o.conns > o.clients) {
    return Status::invalid_argument("--conns (" + std::to_string(o.conns) +
                                    ") must not exceed --clients (" + std::to_string(o.clients) +
                                    "): a connection without a client would stay idle");
  }
  if (fsync && o.clients != 1) {
    return Status::invalid_argument("fsync runs one writer: leave --clients at 1");
  }
  if ((o.total > 0) == (o.duration_s > 0)) {
    return Status::invalid_argument(
        "give exactly one of --total (requests) and --duration (seconds)");
  }
  if (!std::isfinite(o.duration_s) || o.duration_s < 0) {
    return Status::invalid_argument("--duration must be a positive number of seconds");
  }
  if (o.warmup_requests > 0 && o.total == 0) {
    return Status::invalid_argument(
        "--warmup as a request count needs --total; with --duration give seconds, e.g. --warmup "
        "2s");
  }
  if (o.warmup_s > 0 && o.duration_s == 0) {
    return Status::invalid_argument(
        "--warmup in seconds needs --duration; with --total give a request count, e.g. --warmup "
        "1000");
  }
  if (!std::isfinite(o.rate_per_s) || o.rate_per_s < 0) {
    return Status::invalid_argument("--rate must be >= 0 requests/s (0: closed loop)");
  }
  if (fsync && o.rate_per_s > 0) {
    return Status::invalid_argument("fsync measures the disk's own pace: --rate does not apply");
  }
  if (o.key_space < 1) return Status::invalid_argument("--key-space must be >= 1");
  if (o.key_size_bytes > kMaxKeySize) {
    return Status::invalid_argument("--key-size must be <= " + std::to_string(kMaxKeySize));
  }
  const size_t need = o.key_prefix.size() + digits(o.key_space - 1);
  if (!fsync && o.key_size_bytes < need) {
    return Status::invalid_argument("--key-size " + std::to_string(o.key_size_bytes) +
                                    " is too small for prefix \"" + o.key_prefix + "\" and " +
                                    std::to_string(o.key_space) + " keys: use at least " +
                                    std::to_string(need));
  }
  if (o.val_size_bytes > kMaxValSize) {
    return Status::invalid_argument("--val-size must be <= " + std::to_string(kMaxValSize));
  }
  if (fsync && o.val_size_bytes < 1)
    return Status::invalid_argument("fsync: --val-size must be >= 1");
  if (o.workload == Workload::kWatch && o.val_size_bytes < kWatchMinValSize) {
    return Status::invalid_argument(
        "watch: --val-size must be >= 8 (the value carries the send time)");
  }
  if (o.puts_per_request < 1 || o.puts_per_request > kMaxPutsPerRequest) {
    return Status::invalid_argument("--puts-per-request must be in [1, " +
                                    std::to_string(kMaxPutsPerRequest) +
                                    "] (etcd's default --max-txn-ops is 128)");
  }
  if (o.puts_per_request > 1 && o.workload != Workload::kPut) {
    return Status::invalid_argument("--puts-per-request applies to put only");
  }
  if (o.serializable && o.workload != Workload::kRange && o.workload != Workload::kMixed) {
    return Status::invalid_argument("--serializable applies to range and mixed only");
  }
  if (!(o.read_ratio >= 0 && o.read_ratio <= 1)) {
    return Status::invalid_argument("--read-ratio must be in [0, 1]");
  }
  if (o.workload == Workload::kWatch && (o.watchers < 1 || o.watchers > kMaxWatchers)) {
    return Status::invalid_argument("--watchers must be in [1, " + std::to_string(kMaxWatchers) +
                                    "]");
  }
  if (!(o.timeout_s > 0) || !std::isfinite(o.timeout_s)) {
    return Status::invalid_argument("--timeout must be a positive number of seconds");
  }
  if (fsync && o.dir.empty()) return Status::invalid_argument("--dir must not be empty");
  if (!fsync && o.busy_cpu) return Status::invalid_argument("--busy-cpu applies to fsync only");
  return Status::ok();
}

Result<ParsedArgs> parse_args(int argc, const char* const* argv) {
  CLI::App app{"raftkv-bench: a load generator for the etcd v3 gRPC API (raftkv and etcd alike)",
               "raftkv-bench"};
  app.require_subcommand(1, 1);
  app.fallthrough();
  BenchOptions o;
  std::string endpoints = "127.0.0.1:2379";
  std::string warmup;
  double read_ratio = -1;

  app.add_option("--endpoints", endpoints, "Comma-separated host:port list (http:// accepted)");
  app.add_option("--conns", o.conns, "gRPC channels, each a separate TCP connection");
  app.add_option("--clients", o.clients, "Concurrent outstanding requests");
  app.add_option("--total", o.total, "Measured requests to send");
  app.add_option("--duration", o.duration_s, "Measured seconds to run");
  app.add_option("--key-size", o.key_size_bytes, "Key length in bytes");
  app.add_option("--val-size", o.val_size_bytes, "Value length in bytes (fsync: write size)");
  app.add_option("--key-space", o.key_space, "Number of distinct keys");
  app.add_flag("--sequential-keys", o.sequential_keys, "Keys in order instead of uniform random");
  app.add_option("--puts-per-request", o.puts_per_request,
                 "put: keys per request; above 1, each request is a Txn of that many puts");
  app.add_option("--key-prefix", o.key_prefix, "Prefix of every key (watch: the watched prefix)");
  app.add_option("--warmup", warmup, "Unmeasured lead-in: seconds (2s) or requests (1000)");
  app.add_option("--rate", o.rate_per_s, "Open loop: requests per second on a fixed schedule");
  app.add_flag("--serializable", o.serializable, "range/mixed: serializable reads");
  app.add_option("--read-ratio", read_ratio, "mixed: fraction of ranges, in [0, 1]");
  app.add_option("--watchers", o.watchers, "watch: number of watch streams");
  app.add_option("--timeout", o.timeout_s, "Deadline of each request, seconds");
  app.add_option("--dir", o.dir, "fsync: directory for the probe file");
  app.add_option("--cacert", o.tls_cacert, "TLS: CA bundle to verify servers (turns TLS on)");
  app.add_option("--cert", o.tls_cert, "TLS: client certificate file (with --key)");
  app.add_option("--key", o.tls_key, "TLS: the client certificate's key file");
  app.add_flag("--busy-cpu", o.busy_cpu,
               "fsync: keep a CPU runnable meanwhile (no idle wakeup cost on a VM)");
  app.add_flag("--json", o.json, "Print the result as JSON");

  for (size_t i = 0; i < kWorkloads.size(); ++i) {
    const auto& [w, name] = kWorkloads[i];
    CLI::App* sub = app.add_subcommand(name, kWorkloadHelp[i]);
    sub->fallthrough();
    sub->callback([&o, w = w] { o.workload = w; });
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return ParsedArgs{true, app.help(), {}};
  } catch (const CLI::CallForAllHelp&) {
    return ParsedArgs{true, app.help("", CLI::AppFormatMode::All), {}};
  } catch (const CLI::ParseError& e) {
    if (app.get_subcommands().empty()) {
      std::string msg =
          "name one workload: put, range, txn-cas, mixed, watch, lease-keepalive, fsync";
      for (const std::string& extra : app.remaining())
        msg += " (not a workload: \"" + extra + "\")";
      return Status::invalid_argument(msg);
    }
    return Status::invalid_argument(e.what());
  }

  o.endpoints.clear();
  std::stringstream ss(endpoints);
  for (std::string e; std::getline(ss, e, ',');) {
    if (e.rfind("https://", 0) == 0) o.tls = true;
    o.endpoints.push_back(strip_scheme(e));
  }
  if (!o.tls_cacert.empty() || !o.tls_cert.empty() || !o.tls_key.empty()) o.tls = true;
  if (!warmup.empty()) RAFTKV_RETURN_IF_ERROR(parse_warmup(warmup, o));
  if (read_ratio != -1) {
    if (o.workload != Workload::kMixed) {
      return Status::invalid_argument("--read-ratio applies to mixed only");
    }
    o.read_ratio = read_ratio;
  }
  if (o.workload == Workload::kFsync && o.total == 0 && o.duration_s == 0) o.duration_s = 3;
  RAFTKV_RETURN_IF_ERROR(validate(o));
  return ParsedArgs{false, "", o};
}

}  // namespace raftkv::bench
