// raftkv-sim: the deterministic cluster simulator's command line
// (docs/simulator.md).
//
//   raftkv-sim --seed S [--nodes 3|5] [--faults ...]   replay one run; on failure print
//                                                    the seed, the property, the last events
//   raftkv-sim --seeds N [--first-seed S] ...         a swarm of seeds; runs/s and a summary
//
// Exit status: 0 if every run passed, 1 if any failed, 2 on bad usage.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "sim/rng.h"
#include "sim/simulation.h"

namespace {

using raftkv::sim::RunOptions;
using raftkv::sim::RunResult;

// Written before each run so an abort inside the code under test (a broken
// RAFTKV_CHECK) still names the seed to replay.
uint64_t g_kv_every = 4;
char g_abort_note[256] = "raftkv-sim: aborted before the first run\n";

extern "C" void on_abort(int) {
  ssize_t w = write(STDERR_FILENO, g_abort_note, std::strlen(g_abort_note));
  (void)w;
  std::signal(SIGABRT, SIG_DFL);
  std::raise(SIGABRT);
}

int nodes_for(uint64_t seed, int fixed) {
  if (fixed != 0) return fixed;
  uint64_t s = seed ^ 0xA5A5A5A5ull;
  return (raftkv::sim::splitmix64(s) & 1) ? 5 : 3;
}

RunResult run_one(RunOptions o) {
  std::snprintf(g_abort_note, sizeof(g_abort_note),
                "raftkv-sim: aborted in seed %llu; replay: raftkv-sim --seed %llu --nodes %d "
                "--faults %s --kv-every %llu\n",
                static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(o.seed),
                o.nodes, raftkv::sim::fault_classes_name(o.faults).c_str(),
                static_cast<unsigned long long>(g_kv_every));
  return raftkv::sim::run_simulation(o);
}

void print_failure(const RunOptions& o, const RunResult& r, const std::string& faults_flag) {
  std::printf("FAIL seed %llu (--nodes %d --faults %s; this run used %s, %s)\n",
              static_cast<unsigned long long>(o.seed), o.nodes, faults_flag.c_str(),
              raftkv::sim::fault_classes_name(r.stats.fault_mix).c_str(),
              o.kv_store ? "kv::Store" : "reference machine");
  std::printf("  violated: %s\n  %s\n", r.property.c_str(), r.detail.c_str());
  if (!r.last_events.empty()) {
    std::printf("  last %zu events:\n", r.last_events.size());
    for (const std::string& e : r.last_events) std::printf("    %s\n", e.c_str());
  }
  std::printf("  replay: raftkv-sim --seed %llu --nodes %d --faults %s --kv-every %llu\n",
              static_cast<unsigned long long>(o.seed), o.nodes, faults_flag.c_str(),
              static_cast<unsigned long long>(g_kv_every));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"raftkv-sim: a whole raftkv cluster in one thread, driven by one seed"};
  uint64_t seed = 0;
  uint64_t seeds = 0;
  uint64_t first_seed = 1;
  int nodes = 0;
  std::string faults = "all";
  size_t last = 80;
  bool keep_going = false;
  bool verify_replay = false;
  std::string work_dir;
  uint64_t kv_every = 4;
  auto* seed_opt = app.add_option("--seed", seed, "Replay one run with this seed");
  auto* seeds_opt = app.add_option("--seeds", seeds, "Run this many seeds (a swarm)");
  app.add_option("--first-seed", first_seed, "First seed of the swarm")->capture_default_str();
  app.add_option("--nodes", nodes, "Initial voters: 3 or 5 (default: chosen by the seed)")
      ->check(CLI::IsMember({3, 5}));
  app.add_option("--faults", faults,
                 "Fault classes: all|network|crash|partition|membership|figure8|none or a comma list")
      ->capture_default_str();
  app.add_option("--last", last, "Events to print when a run fails")->capture_default_str();
  app.add_flag("--keep-going", keep_going, "Do not stop the swarm at the first failure");
  app.add_flag("--verify-replay", verify_replay,
               "Run every seed twice and fail unless both runs are identical");
  app.add_option("--kv-every", kv_every,
                 "Seeds divisible by N run the real kv::Store (RocksDB); the others the "
                 "in-memory reference machine. 1 = always")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--work-dir", work_dir, "Parent directory of the per-node RocksDB directories");
  seed_opt->excludes(seeds_opt);
  CLI11_PARSE(app, argc, argv);
  if (seed_opt->count() == 0 && seeds_opt->count() == 0) {
    std::fprintf(stderr, "raftkv-sim: give --seed S or --seeds N (see --help)\n");
    return 2;
  }
  auto mask = raftkv::sim::parse_fault_classes(faults);
  if (!mask.is_ok()) {
    std::fprintf(stderr, "raftkv-sim: %s\n", mask.status().message().c_str());
    return 2;
  }
  std::signal(SIGABRT, on_abort);
  g_kv_every = kv_every;

  const bool single = seed_opt->count() != 0;
  const uint64_t count = single ? 1 : seeds;
  const uint64_t start = single ? seed : first_seed;
  const bool tty = !single && isatty(STDERR_FILENO) != 0;
  const auto wall_start = std::chrono::steady_clock::now();
  uint64_t failures = 0, runs = 0, sim_us = 0, ops_ok = 0, ops_indet = 0, crashes = 0,
           membership = 0, gave_up = 0, committed = 0, snaps_made = 0, snaps_installed = 0,
           watches = 0, watch_revs = 0, watch_cancels = 0, lease_grants = 0, lease_keepalives = 0,
           lease_revokes = 0, lease_expiries = 0;
  for (uint64_t i = 0; i < count; ++i) {
    RunOptions o;
    o.seed = start + i;
    o.nodes = nodes_for(o.seed, nodes);
    o.faults = *mask;
    o.work_dir = work_dir;
    o.trace_events = single ? last : 0;
    o.kv_store = o.seed % kv_every == 0;
    RunResult r = run_one(o);
    ++runs;
    if (verify_replay) {
      RunResult again = run_one(o);
      if (again.stats.trace_hash != r.stats.trace_hash || again.ok != r.ok ||
          again.stats.events != r.stats.events) {
        r.ok = false;
        r.property = "determinism";
        r.detail = "two runs of the same seed differed (events " + std::to_string(r.stats.events) +
                   " vs " + std::to_string(again.stats.events) + ")";
      }
    }
    sim_us += r.stats.sim_us;
    ops_ok += r.stats.ops_ok;
    ops_indet += r.stats.ops_indeterminate;
    crashes += r.stats.crashes;
    membership += r.stats.membership_changes;
    snaps_made += r.stats.snapshots_made;
    snaps_installed += r.stats.snapshots_installed;
    committed += r.stats.committed;
    watches += r.stats.watches_started;
    watch_revs += r.stats.watch_revisions;
    watch_cancels += r.stats.watches_cancelled;
    lease_grants += r.stats.leases_granted;
    lease_keepalives += r.stats.lease_keepalives;
    lease_revokes += r.stats.leases_revoked;
    lease_expiries += r.stats.leases_expired;
    gave_up += r.stats.checker_gave_up ? 1 : 0;
    if (single) {
      std::printf("seed %llu: %s, nodes %d, %s, faults %s, %.1f simulated s, %llu events, committed %llu, "
                  "ops %llu ok / %llu indeterminate, crashes %llu, max term %llu, snapshots %llu made / %llu "
                  "installed, watches %llu (%llu revisions delivered), leases %llu granted / %llu "
                  "keep-alives / %llu revoked / %llu expired, trace %016llx\n",
                  static_cast<unsigned long long>(o.seed), r.ok ? "ok" : "FAILED", o.nodes,
                  o.kv_store ? "kv::Store" : "reference machine",
                  raftkv::sim::fault_classes_name(r.stats.fault_mix).c_str(),
                  static_cast<double>(r.stats.sim_us) / 1e6,
                  static_cast<unsigned long long>(r.stats.events),
                  static_cast<unsigned long long>(r.stats.committed),
                  static_cast<unsigned long long>(r.stats.ops_ok),
                  static_cast<unsigned long long>(r.stats.ops_indeterminate),
                  static_cast<unsigned long long>(r.stats.crashes),
                  static_cast<unsigned long long>(r.stats.max_term),
                  static_cast<unsigned long long>(r.stats.snapshots_made),
                  static_cast<unsigned long long>(r.stats.snapshots_installed),
                  static_cast<unsigned long long>(r.stats.watches_started),
                  static_cast<unsigned long long>(r.stats.watch_revisions),
                  static_cast<unsigned long long>(r.stats.leases_granted),
                  static_cast<unsigned long long>(r.stats.lease_keepalives),
                  static_cast<unsigned long long>(r.stats.leases_revoked),
                  static_cast<unsigned long long>(r.stats.leases_expired),
                  static_cast<unsigned long long>(r.stats.trace_hash));
    }
    if (!r.ok) {
      ++failures;
      if (tty) std::fprintf(stderr, "\r\033[K");
      if (!single && r.property != "determinism") {
        o.trace_events = last;  // deterministic: the rerun fails the same way, now traced
        r = run_one(o);
      }
      print_failure(o, r, faults);
      std::fflush(stdout);
      if (!keep_going) break;
    }
    if (tty) {
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
      std::fprintf(stderr, "\r\033[Kseed %llu  %llu/%llu runs  %llu failed  %.1f runs/s",
                   static_cast<unsigned long long>(o.seed), static_cast<unsigned long long>(runs),
                   static_cast<unsigned long long>(count), static_cast<unsigned long long>(failures),
                   wall > 0 ? static_cast<double>(runs) / wall : 0.0);
    }
  }
  if (tty) std::fprintf(stderr, "\r\033[K");
  const double wall =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  if (!single) {
    std::printf("raftkv-sim: %llu runs (seeds %llu..%llu), %llu failed; %.2f runs/s; %.1f simulated "
                "s per wall s; %.0f simulated s in %.1f wall s\n",
                static_cast<unsigned long long>(runs), static_cast<unsigned long long>(start),
                static_cast<unsigned long long>(start + runs - 1),
                static_cast<unsigned long long>(failures), static_cast<double>(runs) / wall,
                static_cast<double>(sim_us) / 1e6 / wall, static_cast<double>(sim_us) / 1e6, wall);
    std::printf("  client ops: %llu completed, %llu indeterminate; crashes %llu; membership "
                "changes %llu; snapshots %llu made / %llu installed; mean committed index %.0f; checker "
                "budget hit in %llu runs; watches %llu started (%llu cancelled by a compaction), %llu revisions delivered\n",
                static_cast<unsigned long long>(ops_ok), static_cast<unsigned long long>(ops_indet),
                static_cast<unsigned long long>(crashes),
                static_cast<unsigned long long>(membership),
                static_cast<unsigned long long>(snaps_made),
                static_cast<unsigned long long>(snaps_installed),
                runs ? static_cast<double>(committed) / static_cast<double>(runs) : 0.0,
                static_cast<unsigned long long>(gave_up), static_cast<unsigned long long>(watches),
                static_cast<unsigned long long>(watch_cancels), static_cast<unsigned long long>(watch_revs));
    std::printf("  leases: %llu granted, %llu keep-alives acknowledged, %llu revoked by clients, "
                "%llu expired by the leader's lessor\n",
                static_cast<unsigned long long>(lease_grants),
                static_cast<unsigned long long>(lease_keepalives),
                static_cast<unsigned long long>(lease_revokes),
                static_cast<unsigned long long>(lease_expiries));
    std::printf("%llu passed, %llu failed\n", static_cast<unsigned long long>(runs - failures),
                static_cast<unsigned long long>(failures));
  }
  return failures == 0 ? 0 : 1;
}
