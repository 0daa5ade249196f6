// Server configuration: etcd's flags (same names, meanings and defaults, see
// etcd's documentation), read from the command line and from RAFTKV_*
// environment variables, validated once at start with messages that say what
// to change, and the member and cluster ids derived exactly as etcd derives
// them (so a raftkv member bootstrapped with the same --initial-cluster and
// --initial-cluster-token gets the ids etcd would print).
//
// Where raftkv differs from etcd 3.4, on purpose:
//  - defaults use 127.0.0.1 where etcd says localhost; the data directory is
//    "<name>.raftkv"; environment variables are RAFTKV_* instead of ETCD_*;
//  - one peer URL per member: a name listed twice in --initial-cluster (etcd's
//    way of giving a member several URLs) is refused, and
//    --initial-advertise-peer-urls takes exactly one URL;
//  - http:// and https:// URLs (TLS: transport/tls.h, docs/security.md);
//    unix sockets are not supported; --tls-min-version accepts TLS1.2 only
//    (gRPC 1.51 cannot raise the minimum to TLS 1.3);
//  - --max-request-bytes must lie in [1 KiB, 64 MiB] (etcd only warns).
//
// Thread-safety: plain values and pure functions (parse_flags reads the
// process environment).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "transport/tls.h"

namespace raftkv::server {

enum class ClusterState { kNew, kExisting };
enum class LogLevel { kDebug, kInfo, kWarn, kError, kPanic, kFatal };

/// One member of --initial-cluster, with the id etcd would give it.
struct InitialMember {
  std::string name;
  std::string peer_url;  ///< Normalized (scheme lower-cased, surrounding blanks removed).
  uint64_t id = 0;
};

inline constexpr uint64_t kDefaultQuotaBackendBytes = 2ull << 30;  // etcd: 2 GiB
inline constexpr uint64_t kMinRequestBytes = 1024;
inline constexpr uint64_t kMaxRequestBytes = 64ull << 20;
inline constexpr uint32_t kMaxElectionTimeoutMs = 50000;  // etcd's maxElectionMs

struct Config {
  // --- etcd flags, with etcd's defaults (127.0.0.1 where etcd says localhost)
  std::string name = "default";
  std::string data_dir;  ///< "" until resolved: defaults to "<name>.raftkv".
  std::vector<std::string> listen_client_urls{"http://127.0.0.1:2379"};
  std::vector<std::string> advertise_client_urls{"http://127.0.0.1:2379"};
  std::vector<std::string> listen_peer_urls{"http://127.0.0.1:2380"};
  std::vector<std::string> initial_advertise_peer_urls{"http://127.0.0.1:2380"};
  std::string initial_cluster;  ///< "" until resolved: defaults to "<name>=<advertise peer url>".
  ClusterState initial_cluster_state = ClusterState::kNew;
  std::string initial_cluster_token = "etcd-cluster";
  uint32_t heartbeat_interval_ms = 100;
  uint32_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100000;  ///< Applied entries between snapshots.
  uint32_t max_snapshots = 5;        ///< Snapshot files kept; 0 = unlimited.
  uint32_t max_wals = 5;             ///< WAL files kept; 0 = unlimited.
  /// Backend size limit: 0 means the default (2 GiB), negative disables the
  /// quota (both as in etcd). Use quota_backend_bytes_effective().
  int64_t quota_backend_bytes = 0;
  uint64_t max_request_bytes = 1536 * 1024;  ///< 1.5 MiB.
  uint32_t max_txn_ops = 128;
  LogLevel log_level = LogLevel::kInfo;
  bool pre_vote = true;
  /// Extra URLs serving /metrics, /health, /livez, /readyz and /version over
  /// plain HTTP (the client URLs serve them too). Default none, as etcd.
  std::vector<std::string> listen_metrics_urls;
  /// "basic" or "extensive" (extensive adds grpc_server_handling_seconds).
  std::string metrics = "basic";
  /// --auth-token: "simple" or "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=..."
  /// (parsed by the API layer at start; docs/security.md).
  std::string auth_token = "simple";
  uint32_t auth_token_ttl_s = 300;  ///< --auth-token-ttl: simple tokens' lifetime.
  uint32_t bcrypt_cost = 10;        ///< --bcrypt-cost: in [4, 31].
  /// --experimental-watch-progress-notify-interval (a Go duration, etcd's
  /// default 10m): how often watchers created with progress_notify get an
  /// empty response carrying the revision when no event reached them.
  uint64_t watch_progress_notify_interval_ms = 10 * 60 * 1000;
  /// Refuse a membership change that would leave fewer started voters than a
  /// quorum (etcd's --strict-reconfig-check, default true).
  bool strict_reconfig_check = true;

  // --- raftkv flags (beyond etcd; docs/operations.md, "Learners")
  /// Learners the cluster may hold at once (etcd: always 1).
  uint32_t max_learners = 1;
  /// The leader promotes a learner to voter once it has caught up.
  bool auto_promote_learners = false;

  // --- TLS (transport/tls.h): --cert-file, --key-file, --trusted-ca-file,
  // --client-cert-auth, --auto-tls, --client-crl-file; and the --peer-* forms.
  transport::TlsOptions client_tls = client_tls_defaults();
  transport::TlsOptions peer_tls = peer_tls_defaults();
  uint32_t self_signed_cert_validity_years = 1;  ///< For --auto-tls / --peer-auto-tls.
  std::string cipher_suites;                     ///< etcd's (Go) names; "" = gRPC's defaults.
  std::string tls_min_version = "TLS1.2";
  std::string cipher_suites_openssl;  ///< Derived from cipher_suites by validate_config().
  /// --experimental-initial-corrupt-check: once this member has a leader, it
  /// compares its HashKV with every other member's (docs/operations.md).
  bool initial_corrupt_check = false;
  /// --experimental-corrupt-check-time (a Go duration, e.g. "5m"): how often
  /// the leader compares HashKV with every member; 0 = never (etcd's default).
  uint64_t corrupt_check_interval_ms = 0;
  /// --auto-clear-nospace-alarm (raftkv only): the leader deactivates NOSPACE
  /// once compaction brings the store back under the quota.
  bool auto_clear_nospace_alarm = true;

  // --- derived by validate_config()
  std::vector<InitialMember> initial_members;  ///< Sorted by name.
  uint64_t member_id = 0;   ///< This member's id (from its --initial-cluster entry).
  uint64_t cluster_id = 0;  ///< The bootstrap cluster id (meaningful for state "new").

  /// Bytes, or 0 when the quota is disabled.
  uint64_t quota_backend_bytes_effective() const;
  static transport::TlsOptions client_tls_defaults() { return {}; }
  static transport::TlsOptions peer_tls_defaults() {
    transport::TlsOptions t;
    t.flag_prefix = "--peer-";
    t.side = "peer";
    return t;
  }

  /// The election timeout in heartbeat ticks (etcd: election-timeout / heartbeat-interval).
  uint32_t election_ticks() const { return election_timeout_ms / heartbeat_interval_ms; }
};

/// What main should do after parsing.
struct ParsedFlags {
  bool exit_now = false;  ///< --help or --version: print `output`, exit 0.
  std::string output;
  Config config;  ///< Valid (validate_config passed) when !exit_now.
};

/// Parses `argv` (argv[0] is the program name) on top of RAFTKV_* environment
/// variables (a flag given on the command line wins over its variable, e.g.
/// --initial-cluster over RAFTKV_INITIAL_CLUSTER), fills the defaults that
/// depend on other settings, and validates with validate_config().
/// Errors: kInvalidArgument with a message naming the flag and what to change.
/// Parses a Go duration ("10m", "1h30m", "1.5s", "250ms") into milliseconds
/// (rounded down; sub-millisecond units allowed).
Result<uint64_t> parse_go_duration_ms(const std::string& text);

Result<ParsedFlags> parse_flags(int argc, const char* const* argv);

/// Resolves data_dir and initial_cluster defaults, checks every setting, and
/// fills initial_members, member_id and cluster_id.
/// `listen_client_explicit` / `advertise_client_explicit`: whether those flags
/// were given (etcd requires --advertise-client-urls with an explicit
/// --listen-client-urls).
Status validate_config(Config& c, bool listen_client_explicit = false,
                       bool advertise_client_explicit = false);

/// Start-time TLS work that touches files and the process: generates the
/// --auto-tls / --peer-auto-tls certificates into <data-dir>/fixtures/client
/// and <data-dir>/fixtures/peer (for the hosts of that side's listen and
/// advertise URLs, when no certificate file is given) and points the config
/// at them, and applies --cipher-suites. Call once, before any gRPC object
/// exists. Errors: kIOError.
Status prepare_tls(Config& c);

/// etcd's member id: the first 8 bytes (big-endian) of SHA-1 over the member's
/// peer URLs sorted and concatenated, followed by the cluster token.
uint64_t derive_member_id(std::vector<std::string> peer_urls, std::string_view cluster_token);

/// etcd's cluster id: the first 8 bytes (big-endian) of SHA-1 over the member
/// ids sorted ascending, each as 8 big-endian bytes.
uint64_t derive_cluster_id(std::vector<uint64_t> member_ids);

/// An id as etcd prints it (lower-case hex, no leading zeros, like Go's %x).
std::string format_id(uint64_t id);

/// The text --version prints.
std::string version_text();

}  // namespace raftkv::server
