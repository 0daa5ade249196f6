#include "cli/render.h"

#include <fmt/format.h>

#include "base/check.h"
#include "cli/format.h"

namespace raftkv::cli {
namespace {

void json_header(JsonWriter& w, const pb::ResponseHeader& h, std::string_view name = "header") {
  w.begin_object(name);
  w.field_uint("cluster_id", h.cluster_id());
  w.field_uint("member_id", h.member_id());
  w.field_int("revision", h.revision());
  w.field_uint("raft_term", h.raft_term());
  w.end_object();
}

/// The header's fields inlined into the enclosing object, as etcdctl prints lease responses.
void json_flat_header(JsonWriter& w, const pb::ResponseHeader& h) {
  w.field_uint("cluster_id", h.cluster_id());
  w.field_uint("member_id", h.member_id());
  w.field_int("revision", h.revision());
  w.field_uint("raft_term", h.raft_term());
}

void json_kv(JsonWriter& w, const mvccpb::KeyValue& kv, std::string_view name = {}) {
  w.begin_object(name);
  w.field_bytes("key", kv.key());
  w.field_int("create_revision", kv.create_revision());
  w.field_int("mod_revision", kv.mod_revision());
  w.field_int("version", kv.version());
  w.field_bytes("value", kv.value());
  w.field_int("lease", kv.lease());
  w.end_object();
}

template <typename Kvs>
void json_kvs(JsonWriter& w, std::string_view name, const Kvs& kvs) {
  if (kvs.empty()) return;
  w.begin_array(name);
  for (const auto& kv : kvs) json_kv(w, kv);
  w.end_array();
}

void json_range_body(JsonWriter& w, const pb::RangeResponse& r) {
  json_header(w, r.header());
  json_kvs(w, "kvs", r.kvs());
  w.field_bool("more", r.more());
  w.field_int("count", r.count());
}

void json_put_body(JsonWriter& w, const pb::PutResponse& r) {
  json_header(w, r.header());
  if (r.has_prev_kv()) json_kv(w, r.prev_kv(), "prev_kv");
}

void json_delete_body(JsonWriter& w, const pb::DeleteRangeResponse& r) {
  json_header(w, r.header());
  w.field_int("deleted", r.deleted());
  json_kvs(w, "prev_kvs", r.prev_kvs());
}

std::string kv_lines(const mvccpb::KeyValue& kv) {
  return kv.key() + "\n" + kv.value() + "\n";
}

std::string simple_get(const pb::RangeResponse& r, const GetOptions& o) {
  std::string out;
  for (const auto& kv : r.kvs()) {
    if (!o.print_value_only) out += kv.key() + "\n";
    if (!o.keys_only) out += kv.value() + "\n";
    if (o.keys_only && !o.print_value_only) out += "\n";
  }
  return out;
}

std::string simple_delete(const pb::DeleteRangeResponse& r) {
  std::string out = fmt::format("{}\n", r.deleted());
  for (const auto& kv : r.prev_kvs()) out += kv_lines(kv);
  return out;
}

std::string simple_put(const pb::PutResponse& r) {
  std::string out = "OK\n";
  if (r.has_prev_kv()) out += kv_lines(r.prev_kv());
  return out;
}

std::string member_status(const pb::Member& m) {
  return m.name().empty() ? "unstarted" : "started";
}

std::string join(const google::protobuf::RepeatedPtrField<std::string>& v, std::string_view sep) {
  std::string out;
  for (int i = 0; i < v.size(); ++i) {
    if (i > 0) out += sep;
    out += v[i];
  }
  return out;
}

std::string bool_text(bool b) {
  return b ? "true" : "false";
}

}  // namespace

Result<OutputFormat> parse_output_format(std::string_view name) {
  if (name == "simple") return OutputFormat::kSimple;
  if (name == "json") return OutputFormat::kJson;
  if (name == "table") return OutputFormat::kTable;
  return Status::invalid_argument(
      fmt::format("unknown output format \"{}\": use simple, json or table", name));
}

bool supports_table(std::string_view command) {
  return command == "get" || command == "member list" || command == "endpoint status" ||
         command == "endpoint health" || command == "lease list";
}

std::string render_put(const pb::PutResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) return simple_put(r);
  JsonWriter w;
  w.begin_object();
  json_put_body(w, r);
  w.end_object();
  return w.str() + "\n";
}

std::string render_get(const pb::RangeResponse& r, OutputFormat f, const GetOptions& o) {
  if (f == OutputFormat::kSimple) return simple_get(r, o);
  if (f == OutputFormat::kTable) {
    Table t({"KEY", "VALUE", "CREATE REVISION", "MOD REVISION", "VERSION", "LEASE"});
    for (const auto& kv : r.kvs()) {
      t.add_row({escape_value(kv.key()), escape_value(kv.value()),
                 std::to_string(kv.create_revision()), std::to_string(kv.mod_revision()),
                 std::to_string(kv.version()), kv.lease() == 0 ? "" : hex_id(kv.lease())});
    }
    return t.render();
  }
  JsonWriter w;
  w.begin_object();
  json_range_body(w, r);
  w.end_object();
  return w.str() + "\n";
}

std::string render_delete(const pb::DeleteRangeResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) return simple_delete(r);
  JsonWriter w;
  w.begin_object();
  json_delete_body(w, r);
  w.end_object();
  return w.str() + "\n";
}

std::string render_txn(const pb::TxnResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) {
    std::string out = r.succeeded() ? "SUCCESS\n" : "FAILURE\n";
    for (const auto& op : r.responses()) {
      out += "\n";
      if (op.has_response_put()) out += simple_put(op.response_put());
      if (op.has_response_range()) out += simple_get(op.response_range(), GetOptions());
      if (op.has_response_delete_range()) out += simple_delete(op.response_delete_range());
      if (op.has_response_txn()) out += render_txn(op.response_txn(), f);
    }
    return out;
  }
  // Go's oneof wrappers: {"Response":{"ResponsePut":{...}}}.
  JsonWriter w;
  w.begin_object();
  json_header(w, r.header());
  w.field_bool("succeeded", r.succeeded());
  if (r.responses_size() > 0) {
    w.begin_array("responses");
    for (const auto& op : r.responses()) {
      w.begin_object();
      w.begin_object("Response");
      if (op.has_response_put()) {
        w.begin_object("ResponsePut");
        json_put_body(w, op.response_put());
        w.end_object();
      } else if (op.has_response_range()) {
        w.begin_object("ResponseRange");
        json_range_body(w, op.response_range());
        w.end_object();
      } else if (op.has_response_delete_range()) {
        w.begin_object("ResponseDeleteRange");
        json_delete_body(w, op.response_delete_range());
        w.end_object();
      } else if (op.has_response_txn()) {
        w.begin_object("ResponseTxn");
        json_header(w, op.response_txn().header());
        w.field_bool("succeeded", op.response_txn().succeeded());
        w.end_object();
      }
      w.end_object();
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  return w.str() + "\n";
}

std::string render_watch(const pb::WatchResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) {
    std::string out;
    for (const auto& ev : r.events()) {
      out += ev.type() == mvccpb::Event::DELETE ? "DELETE\n" : "PUT\n";
      if (ev.has_prev_kv()) out += kv_lines(ev.prev_kv());
      out += kv_lines(ev.kv());
    }
    return out;
  }
  JsonWriter w;
  w.begin_object();
  json_header(w, r.header(), "Header");
  w.begin_array("Events");
  for (const auto& ev : r.events()) {
    w.begin_object();
    w.field_int("type", ev.type());
    json_kv(w, ev.kv(), "kv");
    if (ev.has_prev_kv()) json_kv(w, ev.prev_kv(), "prev_kv");
    w.end_object();
  }
  w.end_array();
  w.field_int_always("CompactRevision", r.compact_revision());
  w.field_bool_always("Canceled", r.canceled());
  w.field_bool_always("Created", r.created());
  w.end_object();
  return w.str() + "\n";
}

std::string render_compaction(int64_t revision) {
  return fmt::format("compacted revision {}\n", revision);
}

std::string render_lease_grant(const pb::LeaseGrantResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) {
    return fmt::format("lease {} granted with TTL({}s)\n", hex_id(r.id()), r.ttl());
  }
  JsonWriter w;
  w.begin_object();
  json_flat_header(w, r.header());
  w.field_int_always("ID", r.id());
  w.field_int_always("TTL", r.ttl());
  w.field_string_always("Error", r.error());
  w.end_object();
  return w.str() + "\n";
}

std::string render_lease_revoke(int64_t id, const pb::LeaseRevokeResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) return fmt::format("lease {} revoked\n", hex_id(id));
  JsonWriter w;
  w.begin_object();
  json_header(w, r.header());
  w.end_object();
  return w.str() + "\n";
}

std::string render_lease_ttl(const pb::LeaseTimeToLiveResponse& r, OutputFormat f, bool keys) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) {
    if (r.ttl() == -1) return fmt::format("lease {} already expired\n", hex_id(r.id()));
    std::string out = fmt::format("lease {} granted with TTL({}s), remaining({}s)", hex_id(r.id()),
                                  r.grantedttl(), r.ttl());
    if (keys) out += fmt::format(", attached keys([{}])", join(r.keys(), " "));
    return out + "\n";
  }
  JsonWriter w;
  w.begin_object();
  json_flat_header(w, r.header());
  w.field_int_always("id", r.id());
  w.field_int_always("ttl", r.ttl());
  w.field_int_always("granted-ttl", r.grantedttl());
  if (r.keys_size() > 0) {
    w.begin_array("keys");
    for (const auto& k : r.keys()) w.element_bytes(k);
    w.end_array();
  }
  w.end_object();
  return w.str() + "\n";
}

std::string render_lease_list(const pb::LeaseLeasesResponse& r, OutputFormat f) {
  if (f == OutputFormat::kSimple) {
    std::string out = fmt::format("found {} leases\n", r.leases_size());
    for (const auto& l : r.leases()) out += hex_id(l.id()) + "\n";
    return out;
  }
  if (f == OutputFormat::kTable) {
    Table t({"ID"});
    for (const auto& l : r.leases()) t.add_row({hex_id(l.id())});
    return t.render();
  }
  JsonWriter w;
  w.begin_object();
  json_flat_header(w, r.header());
  w.begin_array("leases");
  for (const auto& l : r.leases()) {
    w.begin_object();
    w.field_int_always("id", l.id());
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

std::string render_lease_keepalive(const pb::LeaseKeepAliveResponse& r, OutputFormat f) {
  RAFTKV_CHECK(f != OutputFormat::kTable);
  if (f == OutputFormat::kSimple) {
    return fmt::format("lease {} keepalived with TTL({})\n", hex_id(r.id()), r.ttl());
  }
  JsonWriter w;
  w.begin_object();
  json_flat_header(w, r.header());
  w.field_int_always("ID", r.id());
  w.field_int_always("TTL", r.ttl());
  w.end_object();
  return w.str() + "\n";
}

std::string render_member_list(const pb::MemberListResponse& r, OutputFormat f) {
  if (f == OutputFormat::kSimple) {
    std::string out;
    for (const auto& m : r.members()) {
      out +=
          fmt::format("{:x}, {}, {}, {}, {}, {}\n", m.id(), member_status(m), m.name(),
                      join(m.peerurls(), ","), join(m.clienturls(), ","), bool_text(m.islearner()));
    }
    return out;
  }
  if (f == OutputFormat::kTable) {
    Table t({"ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"});
    for (const auto& m : r.members()) {
      t.add_row({fmt::format("{:x}", m.id()), member_status(m), m.name(), join(m.peerurls(), ","),
                 join(m.clienturls(), ","), bool_text(m.islearner())});
    }
    return t.render();
  }
  JsonWriter w;
  w.begin_object();
  json_header(w, r.header());
  w.begin_array("members");
  for (const auto& m : r.members()) {
    w.begin_object();
    w.field_uint("ID", m.id());
    w.field_string("name", m.name());
    if (m.peerurls_size() > 0) {
      w.begin_array("peerURLs");
      for (const auto& u : m.peerurls()) w.element_string(u);
      w.end_array();
    }
    if (m.clienturls_size() > 0) {
      w.begin_array("clientURLs");
      for (const auto& u : m.clienturls()) w.element_string(u);
      w.end_array();
    }
    w.field_bool("isLearner", m.islearner());
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

std::string render_endpoint_status(const std::vector<EndpointStatus>& all, OutputFormat f) {
  std::vector<const EndpointStatus*> ok;
  for (const auto& s : all) {
    if (s.status.has_value()) ok.push_back(&s);
  }
  auto cells = [](const EndpointStatus& e) {
    const pb::StatusResponse& s = *e.status;
    return std::vector<std::string>{e.endpoint,
                                    fmt::format("{:x}", s.header().member_id()),
                                    s.version(),
                                    humanize_bytes(static_cast<uint64_t>(s.dbsize())),
                                    bool_text(s.leader() == s.header().member_id()),
                                    bool_text(s.islearner()),
                                    std::to_string(s.raftterm()),
                                    std::to_string(s.raftindex()),
                                    std::to_string(s.raftappliedindex()),
                                    join(s.errors(), ", ")};
  };
  if (f == OutputFormat::kSimple) {
    std::string out;
    for (const auto* e : ok) {
      // Joined with ", "; the errors cell is last and usually empty, so the line ends
      // with ", " exactly as etcdctl's does.
      std::string line;
      for (const auto& c : cells(*e)) line += (line.empty() ? "" : ", ") + c;
      out += line + "\n";
    }
    return out;
  }
  if (f == OutputFormat::kTable) {
    Table t({"ENDPOINT", "ID", "VERSION", "DB SIZE", "IS LEADER", "IS LEARNER", "RAFT TERM",
             "RAFT INDEX", "RAFT APPLIED INDEX", "ERRORS"});
    for (const auto* e : ok) t.add_row(cells(*e));
    return t.render();
  }
  JsonWriter w;
  w.begin_array();
  for (const auto* e : ok) {
    const pb::StatusResponse& s = *e->status;
    w.begin_object();
    w.field_string_always("Endpoint", e->endpoint);
    w.begin_object("Status");
    json_header(w, s.header());
    w.field_string("version", s.version());
    w.field_int("dbSize", s.dbsize());
    w.field_uint("leader", s.leader());
    w.field_uint("raftIndex", s.raftindex());
    w.field_uint("raftTerm", s.raftterm());
    w.field_uint("raftAppliedIndex", s.raftappliedindex());
    if (s.errors_size() > 0) {
      w.begin_array("errors");
      for (const auto& err : s.errors()) w.element_string(err);
      w.end_array();
    }
    w.field_int("dbSizeInUse", s.dbsizeinuse());
    w.field_bool("isLearner", s.islearner());
    w.end_object();
    w.end_object();
  }
  w.end_array();
  return w.str() + "\n";
}

std::string render_endpoint_health(const std::vector<EndpointHealth>& all, OutputFormat f) {
  if (f == OutputFormat::kSimple) {
    std::string out;
    for (const auto& h : all) {
      if (h.healthy) {
        out += fmt::format("{} is healthy: successfully committed proposal: took = {}\n",
                           h.endpoint, format_duration_us(h.took_us));
      } else {
        out += fmt::format("{} is unhealthy: failed to commit proposal: {}\n", h.endpoint, h.error);
      }
    }
    return out;
  }
  if (f == OutputFormat::kTable) {
    Table t({"ENDPOINT", "HEALTH", "TOOK", "ERROR"});
    for (const auto& h : all) {
      t.add_row({h.endpoint, bool_text(h.healthy), format_duration_us(h.took_us), h.error});
    }
    return t.render();
  }
  JsonWriter w;
  w.begin_array();
  for (const auto& h : all) {
    w.begin_object();
    w.field_string_always("endpoint", h.endpoint);
    w.field_bool_always("health", h.healthy);
    w.field_string_always("took", format_duration_us(h.took_us));
    w.field_string("error", h.error);
    w.end_object();
  }
  w.end_array();
  return w.str() + "\n";
}

}  // namespace raftkv::cli
