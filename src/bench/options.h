// Command line of raftkv-bench: parsing and validation.
//
//   raftkv-bench <workload> [options]
//   workloads: put, range, txn-cas, mixed, watch, lease-keepalive, fsync
//
// Every problem is reported once, before anything runs, with a message that
// says what to change.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"
#include "bench/schedule.h"

namespace raftkv::bench {

enum class Workload { kPut, kRange, kTxnCas, kMixed, kWatch, kLeaseKeepAlive, kFsync };

/// "put", "range", "txn-cas", "mixed", "watch", "lease-keepalive", "fsync".
const char* workload_name(Workload w);

struct BenchOptions {
  Workload workload = Workload::kPut;
  std::vector<std::string> endpoints{"127.0.0.1:2379"};  ///< host:port, "http://" stripped.
  uint32_t conns = 1;            ///< gRPC channels, each its own TCP connection.
  uint32_t clients = 1;          ///< Concurrent outstanding requests.
  uint64_t total = 0;            ///< Measured requests; 0: run for duration_s.
  double duration_s = 0;         ///< Measured seconds; 0: run for total.
  uint32_t key_size_bytes = 16;  ///< Keys are key_prefix + zero-padded index, this long.
  uint32_t val_size_bytes = 8;
  uint64_t key_space = 10000;    ///< Keys are drawn from indexes [0, key_space).
  bool sequential_keys = false;  ///< Key index = ticket % key_space instead of uniform random.
  /// put: keys written per request. Above 1, each request is one Txn of this
  /// many puts (keys ticket*N .. ticket*N+N-1 with --sequential-keys): a fast
  /// way to load a large key space (scripts/bench-compare's RSS load).
  uint32_t puts_per_request = 1;
  std::string key_prefix = "bench/";
  uint64_t warmup_requests = 0;  ///< With total: leading requests not measured.
  double warmup_s = 0;           ///< With duration: leading seconds not measured.
  double rate_per_s = 0;         ///< > 0: open loop at this many requests per second.
  bool serializable = false;     ///< range/mixed: serializable (local) reads.
  double read_ratio = 0.5;       ///< mixed: fraction of requests that are ranges.
  uint32_t watchers = 10;        ///< watch: watch streams on key_prefix.
  double timeout_s = 10;         ///< Deadline of each request.
  std::string dir = ".";         ///< fsync: directory to write the probe file in.
  bool busy_cpu = false;         ///< fsync: keep a CPU from idling meanwhile (see fsync.cc).
  bool tls = false;              ///< Connect over TLS (an https:// endpoint or a TLS file given).
  std::string tls_cacert;        ///< --cacert: CA bundle verifying servers ("" = system roots).
  std::string tls_cert;          ///< --cert: client certificate (PEM), with key.
  std::string tls_key;           ///< --key: the client certificate's private key (PEM).
  bool json = false;             ///< Print the result as JSON instead of text.

  /// The schedule parameters these options describe.
  ScheduleParams schedule_params() const;
  /// Renders key number `index` (REQUIRES: index < key_space).
  std::string key(uint64_t index) const;
};

/// What parse_args decided.
struct ParsedArgs {
  bool help = false;     ///< --help was given: print `text` and exit 0.
  std::string text;      ///< The help text.
  BenchOptions options;  ///< Valid when !help.
};

/// Parses argv (argv[0] is the program name) and validates the result.
[[nodiscard]] Result<ParsedArgs> parse_args(int argc, const char* const* argv);

/// Checks option combinations and bounds; parse_args calls it.
[[nodiscard]] Status validate(const BenchOptions& o);

/// Parses a warmup: "2s" / "0.5s" (seconds) or "1000" (requests).
[[nodiscard]] Status parse_warmup(const std::string& text, BenchOptions& o);

}  // namespace raftkv::bench
