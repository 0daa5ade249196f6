// etcdctl-compatible output of raftkvctl's script commands in its three formats:
//   simple  the lines etcdctl prints (keys and values as raw bytes, as etcdctl does)
//   json    what `etcdctl -w json` prints: Go field names, zero fields left out, keys and
//           values base64-encoded
//   table   etcdctl's box tables (member list, endpoint status/health) plus, as an
//           extension, get and lease list
// Pure functions from responses to text, so they are unit-tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "etcd/etcdserverpb/rpc.pb.h"

namespace raftkv::cli {

namespace pb = etcdserverpb;

enum class OutputFormat { kSimple, kJson, kTable };

/// "simple" | "json" | "table"; InvalidArgument listing them otherwise.
Result<OutputFormat> parse_output_format(std::string_view name);

struct GetOptions {
  bool keys_only = false;
  bool print_value_only = false;
};

// Every render_* returns the full text including the final newline (or "" for nothing).
// REQUIRES for those without a table form: format != kTable (commands reject it earlier;
// supports_table() says which do).
bool supports_table(std::string_view command);

std::string render_put(const pb::PutResponse& r, OutputFormat f);
std::string render_get(const pb::RangeResponse& r, OutputFormat f, const GetOptions& o);
std::string render_delete(const pb::DeleteRangeResponse& r, OutputFormat f);
std::string render_txn(const pb::TxnResponse& r, OutputFormat f);
/// One watch response: "PUT\nkey\nvalue\n" per event (prev kv first when present).
std::string render_watch(const pb::WatchResponse& r, OutputFormat f);
std::string render_compaction(int64_t revision);

std::string render_lease_grant(const pb::LeaseGrantResponse& r, OutputFormat f);
std::string render_lease_revoke(int64_t id, const pb::LeaseRevokeResponse& r, OutputFormat f);
std::string render_lease_ttl(const pb::LeaseTimeToLiveResponse& r, OutputFormat f, bool keys);
std::string render_lease_list(const pb::LeaseLeasesResponse& r, OutputFormat f);
std::string render_lease_keepalive(const pb::LeaseKeepAliveResponse& r, OutputFormat f);

std::string render_member_list(const pb::MemberListResponse& r, OutputFormat f);

struct EndpointStatus {
  std::string endpoint;
  std::optional<pb::StatusResponse> status;  ///< none when the endpoint failed
  std::string error;
};
/// Endpoints that failed are left out of the output (etcdctl prints them on stderr).
std::string render_endpoint_status(const std::vector<EndpointStatus>& s, OutputFormat f);

struct EndpointHealth {
  std::string endpoint;
  bool healthy = false;
  int64_t took_us = 0;
  std::string error;
};
std::string render_endpoint_health(const std::vector<EndpointHealth>& h, OutputFormat f);

}  // namespace raftkv::cli
