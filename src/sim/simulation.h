// One deterministic simulated run of a raftkv cluster, in one thread, driven
// by one 64-bit seed (docs/simulator.md).
//
// Code under test: the real raft::Core, the real storage::DiskLogStorage/Wal
// on a storage::FaultFileSystem per node (a simulated disk), and the real
// kv::Store (RocksDB in a temporary directory per node) with its watch hub and
// the leader's lessor (kv::Lessor). Simulated: the clock
// (a priority queue of events ordered by (time, sequence)), the network
// (latency, loss, duplication, reordering, partitions), crashes, pauses,
// clock drift, membership changes and the clients.
//
// A run has a fault phase (faults chosen by the seed from the enabled
// classes), then a liveness phase (every fault healed: a leader must be
// elected and a write must commit within a bound), then a quiet phase in
// which every member catches up, and the final checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/status.h"

namespace raftkv::sim {

/// Classes of faults a run may inject (bit mask).
enum FaultClass : uint32_t {
  kFaultNetwork = 1u << 0,     ///< Loss, duplication, latency spikes, clock drift.
  kFaultPartition = 1u << 1,   ///< Isolation, majority/minority split, one-way and flapping links.
  kFaultCrash = 1u << 2,       ///< Crashes (also inside a Ready), disk errors, pauses.
  kFaultMembership = 1u << 3,  ///< Add a learner, promote it, remove a voter (leader included).
  /// Raft's Figure 8: one entry per append, short isolations of the leader,
  /// and a fresh leader whose first entry conflicts with another node's
  /// uncommitted tail is cut off before it replicates it.
  kFaultFigure8 = 1u << 4,
  kFaultAll = kFaultNetwork | kFaultPartition | kFaultCrash | kFaultMembership | kFaultFigure8,
};

/// Parses "all|network|crash|partition|membership|figure8|none" (or a comma list).
Result<uint32_t> parse_fault_classes(const std::string& spec);
std::string fault_classes_name(uint32_t mask);

struct RunOptions {
  uint64_t seed = 0;
  int nodes = 3;                    ///< Initial voters: 3 or 5.
  uint32_t faults = kFaultAll;      ///< Classes the seed may choose from.
  bool randomize_faults = true;     ///< Let the seed pick a subset of `faults`.
  size_t trace_events = 0;          ///< Keep the last N events as text (0 = none).
  /// State machine: the real kv::Store (RocksDB), or the in-memory reference
  /// machine (same request semantics, far cheaper to open after a crash).
  bool kv_store = true;
  std::string work_dir;             ///< Parent of the per-node RocksDB directories.
};

struct RunStats {
  uint64_t sim_us = 0;          ///< Simulated time at the end of the run.
  uint64_t events = 0;          ///< Events processed.
  uint64_t ops_ok = 0;          ///< Client operations completed.
  uint64_t ops_indeterminate = 0;
  uint64_t ops_failed = 0;      ///< Refused (definitely not applied): dropped from the history.
  uint64_t committed = 0;       ///< Highest committed index.
  uint64_t max_term = 0;
  uint64_t crashes = 0;
  uint64_t membership_changes = 0;
  uint64_t snapshots_made = 0;       ///< Local snapshots saved (and the log compacted).
  uint64_t snapshots_installed = 0;  ///< Snapshots received from a leader and installed.
  uint64_t watches_started = 0;   ///< Watchers added (first watches and re-watches).
  uint64_t watch_revisions = 0;   ///< Revisions delivered to watch clients.
  uint64_t watches_cancelled = 0; ///< Watchers cancelled by a compaction (compact_revision).
  uint64_t leases_granted = 0;    ///< Lease grants applied.
  uint64_t lease_keepalives = 0;  ///< Keep-alives acknowledged to lease clients.
  uint64_t leases_revoked = 0;    ///< Client revokes applied (that found the lease).
  uint64_t leases_expired = 0;    ///< Lessor revokes (expiry) applied (that found the lease).
  uint64_t checker_steps = 0;
  bool checker_gave_up = false;  ///< The WGL search hit its budget on some key.
  uint32_t fault_mix = 0;        ///< Fault classes this run used.
  uint64_t trace_hash = 0;       ///< Digest of every event: equal for equal seeds.
};

struct RunResult {
  bool ok = true;
  std::string property;   ///< The violated property (empty when ok).
  std::string detail;     ///< What exactly went wrong.
  std::vector<std::string> last_events;  ///< The last trace_events events.
  RunStats stats;
};

/// Runs one simulation. Deterministic: equal options give equal results
/// (trace_hash included). A broken RAFTKV_CHECK inside the code under test
/// aborts the process (the caller prints the seed).
RunResult run_simulation(const RunOptions& options);

}  // namespace raftkv::sim
