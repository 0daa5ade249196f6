// The load driver: runs one workload against etcd v3 gRPC endpoints.
//
// Threads. gRPC's callback API does the I/O on its own small thread pool; a
// completed request runs a callback there that records the outcome and (in
// closed loop) immediately issues that client's next request. One pacer
// thread (the caller's) hands idle clients their next ticket: in open loop it
// sleeps until each ticket's due time, so load is issued on schedule however
// slowly the server answers (latency counted from the due time, see
// schedule.h). No thread per client: one process drives tens of thousands of
// requests per second with a handful of threads.
//
// Connections. --conns channels are created round-robin over the endpoints,
// each with distinct channel arguments and a local subchannel pool, so each
// is its own TCP connection; client i uses channel i % conns.
#pragma once

#include "base/status.h"
#include "bench/options.h"
#include "bench/report.h"

namespace raftkv::bench {

/// Runs o.workload (any but fsync) to completion and returns what it measured.
/// Fails (without running) when an endpoint cannot be reached or the
/// workload's setup (granting leases, creating watches) fails.
/// REQUIRES: validate(o) is OK and o.workload != Workload::kFsync.
[[nodiscard]] Result<Report> run_workload(const BenchOptions& o);

/// Measures the raw sync rate of the disk under o.dir: writes o.val_size_bytes
/// then fdatasync, in a loop, into a file of zeros written and synced
/// beforehand (as a write-ahead log overwrites a preallocated segment). The
/// file is removed afterwards.
/// REQUIRES: validate(o) is OK and o.workload == Workload::kFsync.
[[nodiscard]] Result<Report> run_fsync(const BenchOptions& o);

}  // namespace raftkv::bench
