#include "server/config.h"

#include <openssl/sha.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

#ifndef RAFTKV_VERSION
#error "RAFTKV_VERSION must be defined by the build"
#endif

namespace raftkv::server {
namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

std::vector<std::string> split(std::string_view s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t pos = s.find(sep, start);
    out.push_back(trim(s.substr(start, pos == std::string_view::npos ? s.npos : pos - start)));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

std::string join(const std::vector<std::string>& v, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += sep;
    out += v[i];
  }
  return out;
}

bool all_digits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Checks one URL given to `flag` and returns it normalized the way Go's
// url.Parse + String() would print it for the URLs we accept (scheme in lower
// case, everything else as typed). Only http(s)://host:port is accepted.
// `listen`: port 0 (any free port) is allowed.
Result<std::string> check_url(std::string_view flag, const std::string& raw, bool listen) {
  const std::string url = trim(raw);
  auto bad = [&](const std::string& why) {
    return Status::invalid_argument(std::string(flag) + " " + (url.empty() ? "\"\"" : url) + ": " +
                                    why);
  };
  const size_t sep = url.find("://");
  if (sep == std::string::npos || sep == 0) {
    return bad("not a URL; use the form http://host:port");
  }
  std::string scheme = url.substr(0, sep);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (scheme != "http" && scheme != "https") return bad("URL scheme must be http or https");
  const std::string rest = url.substr(sep + 3);
  const size_t path = rest.find_first_of("/?#");
  if (path != std::string::npos) return bad("URL must not contain a path");
  std::string host, port;
  if (!rest.empty() && rest[0] == '[') {
    const size_t close = rest.find("]:");
    if (close == std::string::npos || close == 1) {
      return bad("URL address does not have the form \"host:port\"");
    }
    host = rest.substr(0, close + 1);
    port = rest.substr(close + 2);
  } else {
    const size_t colon = rest.find(':');
    if (colon == std::string::npos || rest.find(':', colon + 1) != std::string::npos) {
      return bad("URL address does not have the form \"host:port\"");
    }
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
  }
  if (host.empty() || !all_digits(port) || port.size() > 5) {
    return bad("URL address does not have the form \"host:port\"");
  }
  const unsigned long p = std::stoul(port);
  if (p > 65535 || (p == 0 && !listen)) return bad("port must be between 1 and 65535");
  return scheme + "://" + rest;
}

Status check_url_list(std::string_view flag, std::vector<std::string>& urls, bool listen) {
  if (urls.empty())
    return Status::invalid_argument(std::string(flag) + " must list at least one URL");
  for (std::string& u : urls) {
    Result<std::string> n = check_url(flag, u, listen);
    if (!n) return n.status();
    u = std::move(*n);
  }
  return Status::ok();
}

std::vector<std::string> split_urls(const std::string& s) {
  return split(s, ',');
}

bool is_https(const std::string& url) { return url.rfind("https://", 0) == 0; }

// The host of a checked URL ("https://[::1]:2379" -> "::1").
std::string url_host(const std::string& url) {
  std::string rest = url.substr(url.find("://") + 3);
  rest.resize(rest.rfind(':'));
  if (!rest.empty() && rest.front() == '[') rest = rest.substr(1, rest.size() - 2);
  return rest;
}

// An https URL on one side needs a certificate on that side.
Status check_https_has_cert(std::string_view flag, const std::vector<std::string>& urls,
                            const transport::TlsOptions& tls) {
  for (const std::string& u : urls) {
    if (is_https(u) && !tls.has_certificate() && !tls.auto_tls) {
      return Status::invalid_argument(std::string(flag) + " " + u + ": https needs " +
                                      tls.flag_prefix + "cert-file and " + tls.flag_prefix +
                                      "key-file, or " + tls.flag_prefix + "auto-tls");
    }
  }
  return Status::ok();
}

Status check_tls(Config& c) {
  RAFTKV_RETURN_IF_ERROR(transport::check_tls_files(c.client_tls));
  RAFTKV_RETURN_IF_ERROR(transport::check_tls_files(c.peer_tls));
  RAFTKV_RETURN_IF_ERROR(
      check_https_has_cert("--listen-client-urls", c.listen_client_urls, c.client_tls));
  RAFTKV_RETURN_IF_ERROR(check_https_has_cert("--listen-peer-urls", c.listen_peer_urls, c.peer_tls));
  if (c.tls_min_version == "TLS1.3") {
    return Status::invalid_argument(
        "--tls-min-version TLS1.3 is not supported: gRPC 1.51, which raftkv uses, negotiates TLS "
        "1.2 or 1.3 and cannot refuse TLS 1.2; use TLS1.2 (the default)");
  }
  if (c.tls_min_version != "TLS1.2") {
    return Status::invalid_argument("--tls-min-version \"" + c.tls_min_version +
                                    "\" is not supported: TLS 1.2 is the minimum; use TLS1.2");
  }
  c.cipher_suites_openssl.clear();
  if (!c.cipher_suites.empty()) {
    RAFTKV_RETURN_IF_ERROR(
        transport::check_cipher_suites(c.cipher_suites, &c.cipher_suites_openssl));
  }
  if (c.self_signed_cert_validity_years == 0) c.self_signed_cert_validity_years = 1;  // as etcd
  return Status::ok();
}

Result<LogLevel> parse_log_level(const std::string& s) {
  static const std::map<std::string, LogLevel> levels = {
      {"debug", LogLevel::kDebug}, {"info", LogLevel::kInfo},   {"warn", LogLevel::kWarn},
      {"error", LogLevel::kError}, {"panic", LogLevel::kPanic}, {"fatal", LogLevel::kFatal}};
  auto it = levels.find(s);
  if (it == levels.end()) {
    return Status::invalid_argument("--log-level \"" + s +
                                    "\" is not one of debug, info, warn, error, panic, fatal");
  }
  return it->second;
}

Result<ClusterState> parse_cluster_state(const std::string& s) {
  if (s == "new") return ClusterState::kNew;
  if (s == "existing") return ClusterState::kExisting;
  return Status::invalid_argument("unexpected clusterState \"" + s +
                                  "\": --initial-cluster-state must be \"new\" or \"existing\"");
}

}  // namespace

uint64_t Config::quota_backend_bytes_effective() const {
  if (quota_backend_bytes < 0) return 0;
  if (quota_backend_bytes == 0) return kDefaultQuotaBackendBytes;
  return static_cast<uint64_t>(quota_backend_bytes);
}

std::string format_id(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

namespace {
uint64_t sha1_prefix(const std::string& bytes) {
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return v;
}
}  // namespace

uint64_t derive_member_id(std::vector<std::string> peer_urls, std::string_view cluster_token) {
  std::sort(peer_urls.begin(), peer_urls.end());
  std::string b;
  for (const std::string& u : peer_urls) b += u;
  b += cluster_token;
  return sha1_prefix(b);
}

uint64_t derive_cluster_id(std::vector<uint64_t> member_ids) {
  std::sort(member_ids.begin(), member_ids.end());
  std::string b;
  for (uint64_t id : member_ids) {
    for (int shift = 56; shift >= 0; shift -= 8)
      b.push_back(static_cast<char>((id >> shift) & 0xFF));
  }
  return sha1_prefix(b);
}

std::string version_text() {
  return std::string("raftkv Version: ") + RAFTKV_VERSION + "\nAPI Version: 3.4\n";
}

Status validate_config(Config& c, bool listen_client_explicit, bool advertise_client_explicit) {
  if (c.name.empty()) return Status::invalid_argument("--name must not be empty");
  if (c.data_dir.empty()) c.data_dir = c.name + ".raftkv";

  RAFTKV_RETURN_IF_ERROR(check_url_list("--listen-peer-urls", c.listen_peer_urls, true));
  RAFTKV_RETURN_IF_ERROR(check_url_list("--listen-client-urls", c.listen_client_urls, true));
  RAFTKV_RETURN_IF_ERROR(
      check_url_list("--initial-advertise-peer-urls", c.initial_advertise_peer_urls, false));
  RAFTKV_RETURN_IF_ERROR(check_url_list("--advertise-client-urls", c.advertise_client_urls, false));
  if (!c.listen_metrics_urls.empty()) {
    RAFTKV_RETURN_IF_ERROR(check_url_list("--listen-metrics-urls", c.listen_metrics_urls, true));
  }
  if (c.metrics != "basic" && c.metrics != "extensive") {
    return Status::invalid_argument("--metrics \"" + c.metrics +
                                    "\" is not one of basic, extensive");
  }
  if (listen_client_explicit && !advertise_client_explicit) {
    return Status::invalid_argument(
        "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  }
  RAFTKV_RETURN_IF_ERROR(check_tls(c));
  if (c.initial_advertise_peer_urls.size() != 1) {
    return Status::invalid_argument("--initial-advertise-peer-urls lists " +
                                    std::to_string(c.initial_advertise_peer_urls.size()) +
                                    " URLs; raftkv supports exactly one peer URL per member");
  }

  if (c.heartbeat_interval_ms == 0) {
    return Status::invalid_argument("--heartbeat-interval must be >0 (set to 0ms)");
  }
  if (c.election_timeout_ms == 0) {
    return Status::invalid_argument("--election-timeout must be >0 (set to 0ms)");
  }
  if (5ull * c.heartbeat_interval_ms > c.election_timeout_ms) {
    return Status::invalid_argument("--election-timeout[" + std::to_string(c.election_timeout_ms) +
                                    "ms] should be at least as 5 times as --heartbeat-interval[" +
                                    std::to_string(c.heartbeat_interval_ms) + "ms]");
  }
  if (c.election_timeout_ms > kMaxElectionTimeoutMs) {
    return Status::invalid_argument("--election-timeout[" + std::to_string(c.election_timeout_ms) +
                                    "ms] is too long, and should be set less than " +
                                    std::to_string(kMaxElectionTimeoutMs) + "ms");
  }
  if (c.snapshot_count == 0) c.snapshot_count = 100000;  // etcd: 0 means the default
  if (c.max_request_bytes < kMinRequestBytes || c.max_request_bytes > kMaxRequestBytes) {
    return Status::invalid_argument("--max-request-bytes " + std::to_string(c.max_request_bytes) +
                                    " is out of range: use a value between " +
                                    std::to_string(kMinRequestBytes) + " and " +
                                    std::to_string(kMaxRequestBytes) + " (default 1572864)");
  }
  if (c.max_txn_ops == 0) {
    return Status::invalid_argument("--max-txn-ops must be at least 1 (default 128)");
  }
  if (c.bcrypt_cost < 4 || c.bcrypt_cost > 31) {
    return Status::invalid_argument("--bcrypt-cost " + std::to_string(c.bcrypt_cost) +
                                    " is out of range: use a value between 4 and 31 (default 10)");
  }
  if (c.auth_token_ttl_s == 0) {
    return Status::invalid_argument("--auth-token-ttl must be at least 1 second (default 300)");
  }
  if (c.initial_cluster_token.empty()) {
    return Status::invalid_argument(
        "--initial-cluster-token must not be empty (default etcd-cluster)");
  }

  // --initial-cluster: name=url pairs. A name listed twice would mean several
  // peer URLs for one member in etcd; raftkv supports one, so it is refused.
  if (c.initial_cluster.empty()) {
    c.initial_cluster = c.name + "=" + c.initial_advertise_peer_urls[0];
  }
  std::map<std::string, std::string> by_name;
  std::set<std::string> urls;
  for (const std::string& entry : split(c.initial_cluster, ',')) {
    const size_t eq = entry.find('=');
    // etcdctl member add prints "=URL" for members added but not started
    // yet (they have no name); with state existing only the URLs matter.
    const bool unnamed_ok = c.initial_cluster_state == ClusterState::kExisting;
    if (eq == std::string::npos || (eq == 0 && !unnamed_ok) || eq + 1 == entry.size()) {
      return Status::invalid_argument("--initial-cluster entry \"" + entry +
                                      "\" must have the form name=http://host:port");
    }
    std::string name = trim(entry.substr(0, eq));
    Result<std::string> url = check_url("--initial-cluster", entry.substr(eq + 1), false);
    if (!url) return url.status();
    if (name.empty()) name = "(unstarted) " + *url;
    if (by_name.count(name) != 0) {
      return Status::invalid_argument("--initial-cluster lists member \"" + name +
                                      "\" more than once; raftkv supports exactly one peer URL "
                                      "per member: keep one " +
                                      name + "=URL entry");
    }
    if (!urls.insert(*url).second) {
      return Status::invalid_argument("initial cluster " + c.initial_cluster +
                                      " has duplicate url " + *url +
                                      ": every member needs its own peer URL");
    }
    if (is_https(*url) && !c.peer_tls.has_certificate() && !c.peer_tls.auto_tls) {
      return Status::invalid_argument("--initial-cluster " + name + "=" + *url +
                                      ": reaching an https peer needs --peer-cert-file and "
                                      "--peer-key-file, or --peer-auto-tls");
    }
    by_name.emplace(name, *url);
  }
  auto self = by_name.find(c.name);
  if (self == by_name.end()) {
    return Status::invalid_argument(
        "couldn't find local name \"" + c.name + "\" in the initial cluster configuration: add " +
        c.name + "=" + c.initial_advertise_peer_urls[0] + " to --initial-cluster or fix --name");
  }
  if (self->second != c.initial_advertise_peer_urls[0]) {
    return Status::invalid_argument(
        "--initial-cluster has " + c.name + "=" + self->second +
        " but missing from --initial-advertise-peer-urls=" + c.initial_advertise_peer_urls[0] +
        ": make the two agree for this member");
  }

  c.initial_members.clear();
  std::set<uint64_t> ids;
  std::vector<uint64_t> id_list;
  for (const auto& [name, url] : by_name) {
    const uint64_t id = derive_member_id({url}, c.initial_cluster_token);
    if (id == 0) {
      return Status::invalid_argument("member " + name +
                                      " would get id 0; change its peer URL or "
                                      "--initial-cluster-token");
    }
    if (!ids.insert(id).second) {
      return Status::invalid_argument("member exists with identical ID " + format_id(id));
    }
    id_list.push_back(id);
    c.initial_members.push_back(InitialMember{name, url, id});
    if (name == c.name) c.member_id = id;
  }
  c.cluster_id = derive_cluster_id(id_list);
  return Status::ok();
}

Result<uint64_t> parse_go_duration_ms(const std::string& text) {
  auto bad = [&] {
    return Status::invalid_argument("invalid duration \"" + text +
                                    "\" (use a Go duration such as 10m, 1h30m, 500ms)");
  };
  if (text == "0") return uint64_t{0};
  if (text.empty()) return bad();
  // Unit -> nanoseconds.
  static const std::pair<const char*, double> kUnits[] = {
      {"ns", 1.0}, {"us", 1e3}, {"\xc2\xb5s", 1e3}, {"ms", 1e6},
      {"s", 1e9},  {"m", 60e9}, {"h", 3600e9}};
  double total_ns = 0;
  size_t i = 0;
  while (i < text.size()) {
    const size_t num_start = i;
    while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
      ++i;
    }
    if (i == num_start) return bad();
    const std::string num = text.substr(num_start, i - num_start);
    if (std::count(num.begin(), num.end(), '.') > 1 || num == ".") return bad();
    const size_t unit_start = i;
    while (i < text.size() && !std::isdigit(static_cast<unsigned char>(text[i])) && text[i] != '.') {
      ++i;
    }
    const std::string unit = text.substr(unit_start, i - unit_start);
    double scale = 0;
    for (const auto& [name, ns] : kUnits) {
      if (unit == name) scale = ns;
    }
    if (scale == 0) return bad();
    total_ns += std::stod(num) * scale;
  }
  if (total_ns > 1e18) return bad();
  return static_cast<uint64_t>(total_ns / 1e6);
}

Status prepare_tls(Config& c) {
  auto generate = [&](transport::TlsOptions& t, const std::vector<std::string>& listen,
                      const std::vector<std::string>& advertise) -> Status {
    if (!t.auto_tls || t.has_certificate()) return Status::ok();  // given files win, as in etcd
    std::vector<std::string> hosts;
    for (const auto* list : {&listen, &advertise}) {
      for (const std::string& u : *list) {
        const std::string h = url_host(u);
        if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
      }
    }
    const std::string dir = c.data_dir + "/fixtures/" + t.side;
    RAFTKV_RETURN_IF_ERROR(
        transport::write_self_signed_cert(dir, hosts, c.self_signed_cert_validity_years));
    t.cert_file = dir + "/cert.pem";
    t.key_file = dir + "/key.pem";
    return Status::ok();
  };
  RAFTKV_RETURN_IF_ERROR(generate(c.client_tls, c.listen_client_urls, c.advertise_client_urls));
  RAFTKV_RETURN_IF_ERROR(generate(c.peer_tls, c.listen_peer_urls, c.initial_advertise_peer_urls));
  if (!c.cipher_suites_openssl.empty()) transport::set_cipher_suites(c.cipher_suites_openssl);
  return Status::ok();
}

Result<ParsedFlags> parse_flags(int argc, const char* const* argv) {
  ParsedFlags out;
  Config& c = out.config;
  CLI::App app{"raftkv: a replicated key-value store speaking the etcd v3 API", "raftkv"};
  app.set_version_flag("--version", version_text());
  app.get_formatter()->column_width(40);

  std::string listen_client = join(c.listen_client_urls, ",");
  std::string advertise_client = join(c.advertise_client_urls, ",");
  std::string listen_peer = join(c.listen_peer_urls, ",");
  std::string advertise_peer = join(c.initial_advertise_peer_urls, ",");
  std::string listen_metrics;
  std::string cluster_state = "new";
  std::string log_level = "info";
  std::string watch_progress_interval = "10m0s";

  // Every flag also reads RAFTKV_<FLAG_IN_UPPER_SNAKE>; the flag wins.
  auto env = [](const std::string& flag) {
    std::string v = "RAFTKV_";
    for (char ch : flag) v.push_back(ch == '-' ? '_' : static_cast<char>(std::toupper(ch)));
    return v;
  };
  auto opt = [&](const std::string& flag, auto& target, const std::string& help) {
    return app.add_option("--" + flag, target, help)->envname(env(flag))->capture_default_str();
  };
  opt("name", c.name, "Human-readable name for this member.");
  opt("data-dir", c.data_dir, "Path to the data directory (default \"${name}.raftkv\").");
  CLI::Option* lc =
      opt("listen-client-urls", listen_client, "URLs to listen on for client traffic.");
  CLI::Option* ac = opt("advertise-client-urls", advertise_client,
                        "Client URLs of this member to advertise to the cluster.");
  opt("listen-peer-urls", listen_peer, "URLs to listen on for peer traffic.");
  opt("initial-advertise-peer-urls", advertise_peer,
      "This member's peer URL to advertise to the rest of the cluster.");
  opt("initial-cluster", c.initial_cluster,
      "Initial cluster configuration for bootstrapping, name=url,... "
      "(default \"${name}=${initial-advertise-peer-urls}\").");
  opt("initial-cluster-state", cluster_state, "Initial cluster state ('new' or 'existing').");
  opt("initial-cluster-token", c.initial_cluster_token,
      "Initial cluster token for the cluster during bootstrap.");
  opt("heartbeat-interval", c.heartbeat_interval_ms,
      "Time (in milliseconds) of a heartbeat interval.");
  opt("election-timeout", c.election_timeout_ms,
      "Time (in milliseconds) for an election to timeout.");
  opt("snapshot-count", c.snapshot_count,
      "Number of committed transactions to trigger a snapshot to disk.");
  opt("max-snapshots", c.max_snapshots,
      "Maximum number of snapshot files to retain (0 is unlimited).");
  opt("max-wals", c.max_wals, "Maximum number of wal files to retain (0 is unlimited).");
  opt("quota-backend-bytes", c.quota_backend_bytes,
      "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB; negative "
      "disables).");
  opt("max-request-bytes", c.max_request_bytes,
      "Maximum client request size in bytes the server will accept.");
  opt("max-txn-ops", c.max_txn_ops, "Maximum number of operations permitted in a transaction.");
  opt("listen-metrics-urls", listen_metrics,
      "List of URLs to listen on for the metrics and health endpoints.");
  opt("metrics", c.metrics,
      "Set level of detail for exported metrics, specify 'extensive' to include server side "
      "grpc histogram metrics.");
  opt("auth-token", c.auth_token,
      "Specify auth token specific options: 'simple' or "
      "'jwt,pub-key=<file>,priv-key=<file>,sign-method=RS256|ES256,ttl=<duration>'.");
  opt("auth-token-ttl", c.auth_token_ttl_s, "The lifetime in seconds of the auth token.");
  opt("bcrypt-cost", c.bcrypt_cost,
      "Specify bcrypt algorithm cost factor for auth password hashing (4..31).");
  opt("log-level", log_level,
      "Configures log level. Only supports debug, info, warn, error, panic, or fatal.");
  opt("experimental-watch-progress-notify-interval", watch_progress_interval,
      "Duration of periodic watch progress notifications.");
  app.add_option("--pre-vote", c.pre_vote, "Enable to run an additional Raft election phase.")
      ->envname(env("pre-vote"))
      ->capture_default_str()
      ->expected(0, 1)
      ->default_str("true");
  app.add_option("--strict-reconfig-check", c.strict_reconfig_check,
                 "Reject reconfiguration requests that would cause quorum loss.")
      ->envname(env("strict-reconfig-check"))
      ->capture_default_str()
      ->expected(0, 1)
      ->default_str("true");
  opt("max-learners", c.max_learners,
      "Maximum number of learner members in the cluster (etcd allows 1).");
  app.add_flag("--auto-promote-learners", c.auto_promote_learners,
               "The leader promotes a learner to voter once it has caught up with the log "
               "(--auto-promote-learners or --auto-promote-learners=true).")
      ->envname(env("auto-promote-learners"))
      ->capture_default_str();

  // TLS flags (etcd's names and meanings; transport/tls.h).
  // Go-style booleans: "--flag" or "--flag=false".
  auto bool_opt = [&](const std::string& flag, bool& target, const std::string& help) {
    app.add_flag("--" + flag, target, help)->envname(env(flag));
  };
  opt("cert-file", c.client_tls.cert_file, "Path to the client server TLS cert file.");
  opt("key-file", c.client_tls.key_file, "Path to the client server TLS key file.");
  opt("trusted-ca-file", c.client_tls.trusted_ca_file,
      "Path to the client server TLS trusted CA cert file.");
  bool_opt("client-cert-auth", c.client_tls.client_cert_auth,
           "Enable client cert authentication.");
  bool_opt("auto-tls", c.client_tls.auto_tls, "Client TLS using generated certificates.");
  opt("client-crl-file", c.client_tls.crl_file,
      "Path to the client certificate revocation list file.");
  opt("peer-cert-file", c.peer_tls.cert_file, "Path to the peer server TLS cert file.");
  opt("peer-key-file", c.peer_tls.key_file, "Path to the peer server TLS key file.");
  opt("peer-trusted-ca-file", c.peer_tls.trusted_ca_file,
      "Path to the peer server TLS trusted CA file.");
  bool_opt("peer-client-cert-auth", c.peer_tls.client_cert_auth,
           "Enable peer client cert authentication.");
  bool_opt("peer-auto-tls", c.peer_tls.auto_tls, "Peer TLS using generated certificates.");
  opt("peer-crl-file", c.peer_tls.crl_file, "Path to the peer certificate revocation list file.");
  opt("self-signed-cert-validity", c.self_signed_cert_validity_years,
      "The validity period of the client and peer certificates generated by --auto-tls and "
      "--peer-auto-tls, in years.");
  opt("cipher-suites", c.cipher_suites,
      "Comma-separated list of supported TLS 1.2 cipher suites between client/server and peers "
      "(empty: gRPC's defaults).");
  opt("tls-min-version", c.tls_min_version,
      "Minimum TLS version supported (TLS1.2; gRPC 1.51 cannot require TLS1.3).");

  app.add_option("--experimental-initial-corrupt-check", c.initial_corrupt_check,
                 "Enable to check data corruption against the other members once this member "
                 "has a leader (default false).")
      ->envname(env("experimental-initial-corrupt-check"))
      ->expected(0, 1)
      ->default_str("true");  // the value a bare flag stands for
  std::string corrupt_check_time = "0s";
  opt("experimental-corrupt-check-time", corrupt_check_time,
      "Duration of time between cluster corruption check passes (0s disables).");
  app.add_option("--auto-clear-nospace-alarm", c.auto_clear_nospace_alarm,
                 "Deactivate the NOSPACE alarm automatically once compaction brings the store "
                 "back under --quota-backend-bytes (raftkv only; etcd needs 'alarm disarm').")
      ->envname(env("auto-clear-nospace-alarm"))
      ->capture_default_str()
      ->expected(0, 1)
      ->default_str("true");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    out.exit_now = true;
    out.output = app.help();
    return out;
  } catch (const CLI::CallForVersion&) {
    out.exit_now = true;
    out.output = version_text();
    return out;
  } catch (const CLI::ParseError& e) {
    return Status::invalid_argument(std::string(e.what()) + " (see raftkv --help)");
  }

  c.listen_client_urls = split_urls(listen_client);
  c.advertise_client_urls = split_urls(advertise_client);
  c.listen_peer_urls = split_urls(listen_peer);
  c.initial_advertise_peer_urls = split_urls(advertise_peer);
  if (!listen_metrics.empty()) c.listen_metrics_urls = split_urls(listen_metrics);
  Result<ClusterState> state = parse_cluster_state(cluster_state);
  if (!state) return state.status();
  c.initial_cluster_state = *state;
  Result<LogLevel> level = parse_log_level(log_level);
  if (!level) return level.status();
  c.log_level = *level;
  Result<uint64_t> progress_ms = parse_go_duration_ms(watch_progress_interval);
  if (!progress_ms) {
    return Status::invalid_argument("--experimental-watch-progress-notify-interval: " +
                                    progress_ms.status().message());
  }
  if (*progress_ms == 0) {
    return Status::invalid_argument(
        "--experimental-watch-progress-notify-interval must be at least 1ms (default 10m0s)");
  }
  c.watch_progress_notify_interval_ms = *progress_ms;
  Result<uint64_t> check_ms = parse_go_duration_ms(corrupt_check_time);
  if (!check_ms) {
    return Status::invalid_argument("--experimental-corrupt-check-time: " +
                                    check_ms.status().message());
  }
  c.corrupt_check_interval_ms = *check_ms;

  RAFTKV_RETURN_IF_ERROR(validate_config(c, lc->count() > 0, ac->count() > 0));
  return out;
}

}  // namespace raftkv::server
