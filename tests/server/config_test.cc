// Server configuration: etcd's flags and defaults, RAFTKV_* environment
// variables, every validation error, and member/cluster ids checked against
// the values a real etcd computes for the same cluster.
#include "server/config.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <regex>
#include <sstream>
#include <thread>

extern char** environ;

namespace raftkv::server {
namespace {

Result<ParsedFlags> parse(std::initializer_list<const char*> args) {
  std::vector<const char*> argv{"raftkv"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parse_flags(static_cast<int>(argv.size()), argv.data());
}

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }

 private:
  const char* name_;
};

// Expects parsing to fail with a message containing every one of `needles`.
void expect_error(std::initializer_list<const char*> args,
                  std::initializer_list<std::string> needles) {
  Result<ParsedFlags> r = parse(args);
  ASSERT_FALSE(r.is_ok()) << "accepted flags that should be refused";
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  for (const std::string& n : needles) {
    EXPECT_NE(r.status().message().find(n), std::string::npos)
        << "message \"" << r.status().message() << "\" lacks \"" << n << "\"";
  }
}

TEST(ConfigDefaults, NoFlagsGiveEtcdDefaultsOnLoopback) {
  Result<ParsedFlags> r = parse({});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  ASSERT_FALSE(r->exit_now);
  const Config& c = r->config;
  EXPECT_EQ(c.name, "default");
  EXPECT_EQ(c.data_dir, "default.raftkv");
  EXPECT_EQ(c.listen_client_urls, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(c.advertise_client_urls, std::vector<std::string>{"http://127.0.0.1:2379"});
  EXPECT_EQ(c.listen_peer_urls, std::vector<std::string>{"http://127.0.0.1:2380"});
  EXPECT_EQ(c.initial_advertise_peer_urls, std::vector<std::string>{"http://127.0.0.1:2380"});
  EXPECT_EQ(c.initial_cluster, "default=http://127.0.0.1:2380");
  EXPECT_EQ(c.initial_cluster_state, ClusterState::kNew);
  EXPECT_EQ(c.initial_cluster_token, "etcd-cluster");
  EXPECT_EQ(c.heartbeat_interval_ms, 100u);
  EXPECT_EQ(c.election_timeout_ms, 1000u);
  EXPECT_EQ(c.election_ticks(), 10u);
  EXPECT_EQ(c.snapshot_count, 100000u);
  EXPECT_EQ(c.max_snapshots, 5u);
  EXPECT_EQ(c.max_wals, 5u);
  EXPECT_EQ(c.quota_backend_bytes_effective(), 2ull << 30);
  EXPECT_EQ(c.max_request_bytes, 1572864u);
  EXPECT_EQ(c.max_txn_ops, 128u);
  EXPECT_EQ(c.log_level, LogLevel::kInfo);
  EXPECT_TRUE(c.pre_vote);
  ASSERT_EQ(c.initial_members.size(), 1u);
  EXPECT_EQ(c.member_id, c.initial_members[0].id);
  EXPECT_EQ(c.member_id, derive_member_id({"http://127.0.0.1:2380"}, "etcd-cluster"));
  EXPECT_EQ(c.cluster_id, derive_cluster_id({c.member_id}));
}

TEST(ConfigDefaults, NameDrivesDataDirAndInitialCluster) {
  Result<ParsedFlags> r =
      parse({"--name", "n1", "--initial-advertise-peer-urls", "http://10.0.0.1:2380"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.data_dir, "n1.raftkv");
  EXPECT_EQ(r->config.initial_cluster, "n1=http://10.0.0.1:2380");
}

TEST(ConfigFlags, EveryFlagIsParsed) {
  Result<ParsedFlags> r =
      parse({"--name=n2",
             "--data-dir=/var/lib/x",
             "--listen-client-urls",
             "http://127.0.0.1:3379,http://10.0.0.2:3379",
             "--advertise-client-urls",
             "http://10.0.0.2:3379",
             "--listen-peer-urls",
             "http://0.0.0.0:3380",
             "--initial-advertise-peer-urls",
             "HTTP://10.0.0.2:3380",
             "--initial-cluster",
             "n1=http://10.0.0.1:3380, n2=http://10.0.0.2:3380,n3=http://10.0.0.3:3380",
             "--initial-cluster-state=existing",
             "--initial-cluster-token=tok",
             "--heartbeat-interval=50",
             "--election-timeout=600",
             "--snapshot-count=5000",
             "--max-snapshots=0",
             "--max-wals=9",
             "--quota-backend-bytes=-1",
             "--max-request-bytes=2097152",
             "--max-txn-ops=64",
             "--log-level=debug",
             "--pre-vote=false"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const Config& c = r->config;
  EXPECT_EQ(c.name, "n2");
  EXPECT_EQ(c.data_dir, "/var/lib/x");
  EXPECT_EQ(c.listen_client_urls,
            (std::vector<std::string>{"http://127.0.0.1:3379", "http://10.0.0.2:3379"}));
  EXPECT_EQ(c.listen_peer_urls, std::vector<std::string>{"http://0.0.0.0:3380"});
  EXPECT_EQ(c.initial_advertise_peer_urls, std::vector<std::string>{"http://10.0.0.2:3380"});
  EXPECT_EQ(c.initial_cluster_state, ClusterState::kExisting);
  EXPECT_EQ(c.initial_cluster_token, "tok");
  EXPECT_EQ(c.heartbeat_interval_ms, 50u);
  EXPECT_EQ(c.election_timeout_ms, 600u);
  EXPECT_EQ(c.election_ticks(), 12u);
  EXPECT_EQ(c.snapshot_count, 5000u);
  EXPECT_EQ(c.max_snapshots, 0u);
  EXPECT_EQ(c.max_wals, 9u);
  EXPECT_EQ(c.quota_backend_bytes_effective(), 0u);  // negative disables, as in etcd
  EXPECT_EQ(c.max_request_bytes, 2097152u);
  EXPECT_EQ(c.max_txn_ops, 64u);
  EXPECT_EQ(c.log_level, LogLevel::kDebug);
  EXPECT_FALSE(c.pre_vote);
  ASSERT_EQ(c.initial_members.size(), 3u);
  EXPECT_EQ(c.initial_members[1].name, "n2");
  EXPECT_EQ(c.member_id, derive_member_id({"http://10.0.0.2:3380"}, "tok"));
}

TEST(ConfigFlags, PreVoteAcceptsBareAndExplicitForms) {
  auto bare = parse({"--pre-vote"});
  ASSERT_TRUE(bare.is_ok()) << bare.status().to_string();
  EXPECT_TRUE(bare->config.pre_vote);
  auto off = parse({"--pre-vote=false"});
  ASSERT_TRUE(off.is_ok()) << off.status().to_string();
  EXPECT_FALSE(off->config.pre_vote);
}

TEST(ConfigFlags, WatchProgressIntervalTakesGoDurations) {
  auto def = parse({});
  ASSERT_TRUE(def.is_ok()) << def.status().to_string();
  EXPECT_EQ(def->config.watch_progress_notify_interval_ms, 600000u);  // etcd: 10m
  auto set = parse({"--experimental-watch-progress-notify-interval", "1m30s"});
  ASSERT_TRUE(set.is_ok()) << set.status().to_string();
  EXPECT_EQ(set->config.watch_progress_notify_interval_ms, 90000u);
  EXPECT_EQ(*parse_go_duration_ms("500ms"), 500u);
  EXPECT_EQ(*parse_go_duration_ms("1.5s"), 1500u);
  EXPECT_EQ(*parse_go_duration_ms("2h"), 7200000u);
  EXPECT_EQ(*parse_go_duration_ms("0"), 0u);
  for (const char* bad : {"", "10", "ms", "1.2.3s", "5x", "-1s"}) {
    EXPECT_FALSE(parse_go_duration_ms(bad).is_ok()) << bad;
  }
  expect_error({"--experimental-watch-progress-notify-interval", "soon"},
               {"--experimental-watch-progress-notify-interval", "invalid duration"});
  expect_error({"--experimental-watch-progress-notify-interval", "0"}, {"at least 1ms"});
}

TEST(ConfigFlags, MembershipFlagsHaveEtcdDefaultsAndBareForms) {
  auto def = parse({});
  ASSERT_TRUE(def.is_ok()) << def.status().to_string();
  EXPECT_TRUE(def->config.strict_reconfig_check);
  EXPECT_FALSE(def->config.auto_promote_learners);
  EXPECT_EQ(def->config.max_learners, 1u);
  auto on = parse({"--auto-promote-learners", "--strict-reconfig-check=false", "--max-learners",
                   "3"});
  ASSERT_TRUE(on.is_ok()) << on.status().to_string();
  EXPECT_TRUE(on->config.auto_promote_learners);
  EXPECT_FALSE(on->config.strict_reconfig_check);
  EXPECT_EQ(on->config.max_learners, 3u);
  auto off = parse({"--auto-promote-learners=false"});
  ASSERT_TRUE(off.is_ok()) << off.status().to_string();
  EXPECT_FALSE(off->config.auto_promote_learners);
}

TEST(ConfigFlags, UnnamedInitialClusterEntriesOnlyWhenJoining) {
  // etcdctl member add prints "=URL" for a member added but not yet started.
  const char* cluster = "n1=http://127.0.0.1:2380,=http://127.0.0.1:4380,"
                        "n3=http://127.0.0.1:3380";
  auto joining = parse({"--name", "n3", "--initial-advertise-peer-urls", "http://127.0.0.1:3380",
                        "--initial-cluster", cluster, "--initial-cluster-state", "existing"});
  ASSERT_TRUE(joining.is_ok()) << joining.status().to_string();
  EXPECT_EQ(joining->config.initial_members.size(), 3u);
  auto fresh = parse({"--name", "n3", "--initial-advertise-peer-urls", "http://127.0.0.1:3380",
                      "--initial-cluster", cluster});
  EXPECT_EQ(fresh.status().code(), Code::kInvalidArgument);
}

TEST(ConfigFlags, HelpAndVersionAskToExit) {
  auto help = parse({"--help"});
  ASSERT_TRUE(help.is_ok());
  EXPECT_TRUE(help->exit_now);
  EXPECT_NE(help->output.find("--initial-cluster-token"), std::string::npos);
  EXPECT_NE(help->output.find("--heartbeat-interval"), std::string::npos);
  auto version = parse({"--version"});
  ASSERT_TRUE(version.is_ok());
  EXPECT_TRUE(version->exit_now);
  EXPECT_EQ(version->output, version_text());
  EXPECT_EQ(version->output.rfind("raftkv Version: ", 0), 0u);
}

TEST(ConfigFlags, UnknownFlagAndBadNumberAreRefused) {
  expect_error({"--no-such-flag=1"}, {"--no-such-flag", "--help"});
  expect_error({"--heartbeat-interval=fast"}, {"heartbeat-interval"});
}

TEST(ConfigFlags, MetricsFlagsAreParsedAndChecked) {
  Result<ParsedFlags> d = parse({});
  ASSERT_TRUE(d.is_ok());
  EXPECT_TRUE(d->config.listen_metrics_urls.empty());  // etcd: none by default
  EXPECT_EQ(d->config.metrics, "basic");
  Result<ParsedFlags> r = parse({"--listen-metrics-urls", "http://127.0.0.1:9101,http://127.0.0.1:9102",
                                 "--metrics", "extensive"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.listen_metrics_urls,
            (std::vector<std::string>{"http://127.0.0.1:9101", "http://127.0.0.1:9102"}));
  EXPECT_EQ(r->config.metrics, "extensive");
  expect_error({"--metrics", "verbose"}, {"--metrics", "basic, extensive"});
  expect_error({"--listen-metrics-urls", "127.0.0.1:9101"}, {"--listen-metrics-urls"});
}

TEST(ConfigEnv, EnvironmentVariablesSetEveryKindOfFlag) {
  ScopedEnv name("RAFTKV_NAME", "envnode");
  ScopedEnv cluster("RAFTKV_INITIAL_CLUSTER",
                    "envnode=http://127.0.0.1:2380,b=http://127.0.0.2:2380");
  ScopedEnv token("RAFTKV_INITIAL_CLUSTER_TOKEN", "envtok");
  ScopedEnv hb("RAFTKV_HEARTBEAT_INTERVAL", "200");
  ScopedEnv et("RAFTKV_ELECTION_TIMEOUT", "2000");
  ScopedEnv pv("RAFTKV_PRE_VOTE", "false");
  ScopedEnv ll("RAFTKV_LOG_LEVEL", "warn");
  Result<ParsedFlags> r = parse({});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.name, "envnode");
  EXPECT_EQ(r->config.data_dir, "envnode.raftkv");
  EXPECT_EQ(r->config.initial_members.size(), 2u);
  EXPECT_EQ(r->config.initial_cluster_token, "envtok");
  EXPECT_EQ(r->config.heartbeat_interval_ms, 200u);
  EXPECT_EQ(r->config.election_timeout_ms, 2000u);
  EXPECT_FALSE(r->config.pre_vote);
  EXPECT_EQ(r->config.log_level, LogLevel::kWarn);
}

TEST(ConfigEnv, FlagOverridesEnvironment) {
  ScopedEnv name("RAFTKV_NAME", "fromenv");
  ScopedEnv snap("RAFTKV_SNAPSHOT_COUNT", "7");
  Result<ParsedFlags> r = parse({"--name", "fromflag"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->config.name, "fromflag");
  EXPECT_EQ(r->config.snapshot_count, 7u);  // not given as a flag: the variable applies
}

TEST(ConfigEnv, ExplicitListenClientFromEnvNeedsAdvertise) {
  ScopedEnv lc("RAFTKV_LISTEN_CLIENT_URLS", "http://127.0.0.1:4379");
  expect_error({}, {"--advertise-client-urls is required when --listen-client-urls is set "
                    "explicitly"});
  ScopedEnv ac("RAFTKV_ADVERTISE_CLIENT_URLS", "http://127.0.0.1:4379");
  EXPECT_TRUE(parse({}).is_ok());
}

// --- every validation error, with the fix it suggests

TEST(ConfigValidation, NameMissingFromInitialCluster) {
  expect_error({"--name=n9", "--initial-cluster=n1=http://127.0.0.1:2380"},
               {"couldn't find local name \"n9\" in the initial cluster configuration",
                "add n9=http://127.0.0.1:2380 to --initial-cluster"});
}

TEST(ConfigValidation, AdvertisedPeerUrlMustMatchClusterEntry) {
  expect_error({"--name=n1", "--initial-advertise-peer-urls=http://127.0.0.1:2390",
                "--initial-cluster=n1=http://127.0.0.1:2380"},
               {"--initial-cluster has n1=http://127.0.0.1:2380 but missing from "
                "--initial-advertise-peer-urls=http://127.0.0.1:2390"});
}

TEST(ConfigValidation, ElectionTimeoutAtLeastFiveHeartbeats) {
  expect_error({"--heartbeat-interval=300", "--election-timeout=1000"},
               {"--election-timeout[1000ms] should be at least as 5 times as "
                "--heartbeat-interval[300ms]"});
  EXPECT_TRUE(parse({"--heartbeat-interval=200", "--election-timeout=1000"}).is_ok());
  expect_error({"--heartbeat-interval=0"}, {"--heartbeat-interval must be >0"});
  expect_error({"--election-timeout=0"}, {"--election-timeout must be >0"});
  expect_error({"--election-timeout=60000"}, {"is too long, and should be set less than 50000ms"});
}

TEST(ConfigValidation, BadUrlsAreRefusedWithTheFlagName) {
  expect_error({"--listen-peer-urls=127.0.0.1:2380"}, {"--listen-peer-urls", "http://host:port"});
  expect_error({"--listen-client-urls=ftp://127.0.0.1:2379", "--advertise-client-urls=http://a:1"},
               {"--listen-client-urls", "scheme must be http"});
  expect_error({"--initial-advertise-peer-urls=http://127.0.0.1"},
               {"--initial-advertise-peer-urls", "does not have the form \"host:port\""});
  expect_error({"--initial-advertise-peer-urls=http://127.0.0.1:2380/path"},
               {"must not contain a path"});
  expect_error({"--initial-advertise-peer-urls=http://127.0.0.1:99999"},
               {"port must be between 1 and 65535"});
  expect_error({"--advertise-client-urls=http://127.0.0.1:0"}, {"port must be between 1"});
  expect_error({"--initial-cluster=default=http//x"}, {"--initial-cluster", "not a URL"});
  // IPv6 literals and port 0 on listen URLs are fine.
  EXPECT_TRUE(parse({"--listen-peer-urls=http://[::1]:0"}).is_ok());
}

TEST(ConfigValidation, HttpsNeedsACertificateOrAutoTls) {
  expect_error({"--listen-client-urls=https://127.0.0.1:2379",
                "--advertise-client-urls=https://127.0.0.1:2379"},
               {"--listen-client-urls https://127.0.0.1:2379",
                "https needs --cert-file and --key-file, or --auto-tls"});
  expect_error({"--listen-peer-urls=https://127.0.0.1:2380"},
               {"--listen-peer-urls https://127.0.0.1:2380", "--peer-cert-file", "--peer-auto-tls"});
  expect_error({"--initial-cluster=default=http://127.0.0.1:2380,b=https://127.0.0.1:3380"},
               {"--initial-cluster b=https://127.0.0.1:3380", "--peer-cert-file"});
  Result<ParsedFlags> ok = parse({"--listen-client-urls=https://127.0.0.1:2379",
                                  "--advertise-client-urls=https://127.0.0.1:2379", "--auto-tls",
                                  "--listen-peer-urls=https://127.0.0.1:2380",
                                  "--initial-advertise-peer-urls=https://127.0.0.1:2380",
                                  "--peer-auto-tls"});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_TRUE(ok->config.client_tls.auto_tls);
  EXPECT_TRUE(ok->config.peer_tls.auto_tls);
  EXPECT_FALSE(ok->config.peer_tls.client_cert_auth);
}

TEST(ConfigValidation, TlsFlagCombinationsThatCannotWork) {
  expect_error({"--key-file=/nonexistent/k.pem"}, {"--key-file", "--cert-file is not"});
  expect_error({"--peer-cert-file=/nonexistent/c.pem"}, {"--peer-cert-file", "--peer-key-file"});
  expect_error({"--cert-file=/nonexistent/c.pem", "--key-file=/nonexistent/k.pem"},
               {"cannot read --cert-file \"/nonexistent/c.pem\""});
  expect_error({"--trusted-ca-file=/nonexistent/ca.pem"}, {"cannot read --trusted-ca-file"});
  expect_error({"--peer-client-cert-auth"}, {"--peer-client-cert-auth needs --peer-trusted-ca-file"});
  expect_error({"--tls-min-version=TLS1.3"}, {"--tls-min-version TLS1.3 is not supported"});
  expect_error({"--tls-min-version=TLS1.1"}, {"--tls-min-version \"TLS1.1\""});
  expect_error({"--cipher-suites=TLS_RSA_WITH_AES_128_CBC_SHA"},
               {"--cipher-suites", "TLS_RSA_WITH_AES_128_CBC_SHA", "not supported"});
  Result<ParsedFlags> ok = parse({"--cipher-suites=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, "
                                  "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305"});
  ASSERT_TRUE(ok.is_ok()) << ok.status().to_string();
  EXPECT_EQ(ok->config.cipher_suites_openssl,
            "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  // Go-style booleans, as etcd: "--flag" or "--flag=false".
  Result<ParsedFlags> off = parse({"--auto-tls=false"});
  ASSERT_TRUE(off.is_ok());
  EXPECT_FALSE(off->config.client_tls.auto_tls);
}

TEST(ConfigValidation, DuplicateNamesAndUrlsInInitialCluster) {
  expect_error({"--initial-cluster=default=http://127.0.0.1:2380,default=http://127.0.0.2:2380"},
               {"lists member \"default\" more than once"});
  expect_error({"--initial-cluster=default=http://127.0.0.1:2380,b=http://127.0.0.1:2380"},
               {"has duplicate url http://127.0.0.1:2380"});
  expect_error({"--initial-cluster=default=http://127.0.0.1:2380,=http://127.0.0.2:2380"},
               {"must have the form name=http://host:port"});
}

TEST(ConfigValidation, ClusterStateLogLevelAndLimits) {
  expect_error({"--initial-cluster-state=old"},
               {"unexpected clusterState \"old\"", "\"new\" or \"existing\""});
  expect_error({"--log-level=verbose"}, {"--log-level \"verbose\"", "debug, info, warn"});
  expect_error({"--max-request-bytes=10"},
               {"--max-request-bytes 10 is out of range", "between 1024 and 67108864"});
  expect_error({"--max-request-bytes=100000000"}, {"is out of range"});
  expect_error({"--max-txn-ops=0"}, {"--max-txn-ops must be at least 1"});
  expect_error({"--initial-advertise-peer-urls=http://127.0.0.1:2380,http://127.0.0.2:2380"},
               {"exactly one peer URL per member"});
  Config empty_name;
  empty_name.name = "";
  EXPECT_EQ(validate_config(empty_name).message(), "--name must not be empty");
}

// --- ids

// etcd's well-known ids for a member started with no flags at all
// (default=http://localhost:2380, token etcd-cluster), as etcd prints them.
TEST(ConfigIds, EtcdDefaultMemberAndClusterIds) {
  const uint64_t member = derive_member_id({"http://localhost:2380"}, "etcd-cluster");
  EXPECT_EQ(format_id(member), "8e9e05c52164694d");
  EXPECT_EQ(format_id(derive_cluster_id({member})), "cdf818194e3a8c32");
  // Peer URLs are sorted before hashing; ids are sorted before hashing.
  EXPECT_EQ(derive_member_id({"http://b:1", "http://a:1"}, "t"),
            derive_member_id({"http://a:1", "http://b:1"}, "t"));
  EXPECT_EQ(derive_cluster_id({3, 1, 2}), derive_cluster_id({1, 2, 3}));
  EXPECT_EQ(format_id(0x0abc), "abc");
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return -1;
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// What a real etcd logged at bootstrap.
struct EtcdIds {
  std::string cluster_id;
  std::string local_id;
  std::map<std::string, std::string> member_ids;  // peer url -> id
};

// Starts etcd as member "m1" of `cluster` (peer URL `url1`, client URL
// `client`), waits (bounded: 20 s) until it has logged every member, then
// kills it. Returns nothing if etcd exited early (e.g. a port was taken).
std::optional<EtcdIds> run_etcd(const std::string& url1, const std::string& client,
                                const std::string& cluster, const std::string& token,
                                size_t members) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("raftkv-etcd-ids-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string log_path = (dir / "etcd.log").string();
  std::vector<std::string> args = {"/usr/bin/etcd",
                                   "--name=m1",
                                   "--data-dir=" + (dir / "data").string(),
                                   "--listen-peer-urls=" + url1,
                                   "--initial-advertise-peer-urls=" + url1,
                                   "--listen-client-urls=" + client,
                                   "--advertise-client-urls=" + client,
                                   "--initial-cluster=" + cluster,
                                   "--initial-cluster-token=" + token,
                                   "--logger=zap",
                                   "--log-outputs=" + log_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return {};

  const std::regex added(
      R"re("msg":"added member","cluster-id":"([0-9a-f]+)","local-member-id":"([0-9a-f]+)","added-peer-id":"([0-9a-f]+)","added-peer-peer-urls":\["([^"]+)"\])re");
  EtcdIds ids;
  bool exited = false;
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ids.member_ids.size() < members && !exited &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    exited = ::waitpid(pid, &status, WNOHANG) == pid;
    std::ifstream in(log_path);
    std::string line;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, added)) {
        ids.cluster_id = m[1];
        ids.local_id = m[2];
        ids.member_ids[m[4]] = m[3];
      }
    }
  }
  if (!exited) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
  }
  std::filesystem::remove_all(dir);
  if (ids.member_ids.size() < members) return {};
  return ids;
}

// Starts a real etcd as member "m1" of a three-member cluster on free
// loopback ports (the other two never start: etcd logs every member and the
// cluster id at bootstrap, before it needs a quorum), reads the ids from its
// log and compares them with ours for the same flags. A port taken between
// choosing it and etcd binding it makes etcd exit: then try other ports.
TEST(ConfigIds, MatchARealEtcdBootstrappingTheSameCluster) {
  if (::access("/usr/bin/etcd", X_OK) != 0) GTEST_SKIP() << "etcd-server not installed";
  const std::string token = "raftkv-id-test";
  for (int attempt = 0; attempt < 3; ++attempt) {
    const std::string url1 = "http://127.0.0.1:" + std::to_string(free_port());
    const std::string url2 = "http://127.0.0.1:" + std::to_string(free_port());
    const std::string url3 = "http://127.0.0.1:" + std::to_string(free_port());
    const std::string client = "http://127.0.0.1:" + std::to_string(free_port());
    const std::string cluster = "m1=" + url1 + ",m2=" + url2 + ",m3=" + url3;
    std::optional<EtcdIds> etcd = run_etcd(url1, client, cluster, token, 3);
    if (!etcd) continue;

    const std::string cluster_flag = "--initial-cluster=" + cluster;
    const std::string token_flag = "--initial-cluster-token=" + token;
    const std::string adv_flag = "--initial-advertise-peer-urls=" + url1;
    Result<ParsedFlags> r =
        parse({"--name=m1", cluster_flag.c_str(), token_flag.c_str(), adv_flag.c_str()});
    ASSERT_TRUE(r.is_ok()) << r.status().to_string();
    ASSERT_EQ(r->config.initial_members.size(), 3u);
    for (const InitialMember& m : r->config.initial_members) {
      EXPECT_EQ(format_id(m.id), etcd->member_ids[m.peer_url]) << m.name << " " << m.peer_url;
    }
    EXPECT_EQ(format_id(r->config.member_id), etcd->local_id);
    EXPECT_EQ(format_id(r->config.cluster_id), etcd->cluster_id);
    return;
  }
  FAIL() << "etcd did not start and log its members in three attempts";
}

}  // namespace
}  // namespace raftkv::server
