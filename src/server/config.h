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
//  - only http:// URLs: https is refused with a clear message until TLS lands;
//    unix sockets are not supported;
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
Result<ParsedFlags> parse_flags(int argc, const char* const* argv);

/// Resolves data_dir and initial_cluster defaults, checks every setting, and
/// fills initial_members, member_id and cluster_id.
/// `listen_client_explicit` / `advertise_client_explicit`: whether those flags
/// were given (etcd requires --advertise-client-urls with an explicit
/// --listen-client-urls).
Status validate_config(Config& c, bool listen_client_explicit = false,
                       bool advertise_client_explicit = false);

/// Parses a Go duration ("0", "1.5s", "2m30s", "100ms"; units ns us ms s m h)
/// into milliseconds (sub-millisecond parts round down).
Result<uint64_t> parse_go_duration_ms(std::string_view text);

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
