// The operational HTTP endpoints of a member, as etcd serves them (on the
// client URLs and on --listen-metrics-urls; see http_server.h):
//
//   GET /health   {"health":"true","reason":""} (200) when the member knows a
//                 leader and a linearizable read (ReadIndex round, then the
//                 local apply) completes within the request timeout;
//                 otherwise {"health":"false","reason":"..."} with 503.
//   GET /readyz   the same checks, as text: "ok" (200) or the failed check (503).
//   GET /livez    "ok" (200) while the process serves and its store is open.
//   GET /metrics  every metric, Prometheus text format 0.0.4.
//   GET /version  {"etcdserver":"3.4.0","etcdcluster":"3.4.0"}
//
// HEAD is accepted wherever GET is; other methods get 405, other paths 404.
#pragma once

#include "api/http_server.h"
#include "server/node.h"

namespace raftkv::api {

/// The handler for a member's endpoints. `node` outlives the server using it.
HttpHandler make_operational_endpoints(server::Node* node);

/// Registers process_* metrics (memory, CPU, file descriptors, start time)
/// in the global registry, read from /proc at scrape time. Idempotent.
void register_process_metrics();

}  // namespace raftkv::api
