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
// case, everything else as typed). Only http://host:port is accepted; https is
// refused until TLS lands. `listen`: port 0 (any free port) is allowed.
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
  if (scheme == "https") {
    return bad("https needs TLS, which raftkv does not support yet; use an http:// URL");
  }
  if (scheme != "http") return bad("URL scheme must be http (https once TLS is supported)");
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
  if (listen_client_explicit && !advertise_client_explicit) {
    return Status::invalid_argument(
        "--advertise-client-urls is required when --listen-client-urls is set explicitly");
  }
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
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      return Status::invalid_argument("--initial-cluster entry \"" + entry +
                                      "\" must have the form name=http://host:port");
    }
    const std::string name = trim(entry.substr(0, eq));
    Result<std::string> url = check_url("--initial-cluster", entry.substr(eq + 1), false);
    if (!url) return url.status();
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

Result<uint64_t> parse_go_duration_ms(std::string_view text) {
  const std::string t = trim(text);
  auto bad = [&] {
    return Status::invalid_argument("invalid duration \"" + t +
                                    "\" (use a Go duration such as 30s, 5m or 1h)");
  };
  if (t == "0") return uint64_t{0};
  if (t.empty()) return bad();
  double total_ms = 0;
  size_t i = 0;
  while (i < t.size()) {
    size_t j = i;
    while (j < t.size() && (std::isdigit(static_cast<unsigned char>(t[j])) || t[j] == '.')) ++j;
    if (j == i || j - i > 20) return bad();
    const double v = std::strtod(t.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < t.size() && std::isalpha(static_cast<unsigned char>(t[k]))) ++k;
    const std::string unit = t.substr(j, k - j);
    double scale = 0;
    if (unit == "ns") scale = 1e-6;
    else if (unit == "us") scale = 1e-3;
    else if (unit == "ms") scale = 1;
    else if (unit == "s") scale = 1e3;
    else if (unit == "m") scale = 60e3;
    else if (unit == "h") scale = 3600e3;
    else return bad();
    total_ms += v * scale;
    i = k;
  }
  if (total_ms > 1e15) return bad();
  return static_cast<uint64_t>(total_ms);
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
  std::string cluster_state = "new";
  std::string log_level = "info";

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
  opt("log-level", log_level,
      "Configures log level. Only supports debug, info, warn, error, panic, or fatal.");
  app.add_option("--pre-vote", c.pre_vote, "Enable to run an additional Raft election phase.")
      ->envname(env("pre-vote"))
      ->capture_default_str()
      ->expected(0, 1)
      ->default_str("true");

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
  Result<ClusterState> state = parse_cluster_state(cluster_state);
  if (!state) return state.status();
  c.initial_cluster_state = *state;
  Result<LogLevel> level = parse_log_level(log_level);
  if (!level) return level.status();
  c.log_level = *level;
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
