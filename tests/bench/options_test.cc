// The command line: each workload parses, defaults are sane, and every invalid
// combination is refused before anything runs, with a message naming the flag.
#include "bench/options.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace raftkv::bench {
namespace {

Result<ParsedArgs> parse(std::vector<std::string> args) {
  args.insert(args.begin(), "raftkv-bench");
  std::vector<const char*> argv;
  for (const auto& a : args) argv.push_back(a.c_str());
  return parse_args(static_cast<int>(argv.size()), argv.data());
}

void expect_refused(std::vector<std::string> args, const std::string& needle) {
  Result<ParsedArgs> r = parse(args);
  ASSERT_FALSE(r.is_ok()) << "accepted: " << ::testing::PrintToString(args);
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_NE(r.status().message().find(needle), std::string::npos)
      << "message \"" << r.status().message() << "\" does not mention " << needle;
}

TEST(Options, EveryWorkloadParsesWithOptionsAfterTheSubcommand) {
  const std::vector<std::pair<std::string, Workload>> cases = {
      {"put", Workload::kPut},        {"range", Workload::kRange},
      {"txn-cas", Workload::kTxnCas}, {"mixed", Workload::kMixed},
      {"watch", Workload::kWatch},    {"lease-keepalive", Workload::kLeaseKeepAlive},
      {"fsync", Workload::kFsync}};
  for (const auto& [name, w] : cases) {
    Result<ParsedArgs> r = parse({name, "--duration", "1"});
    ASSERT_TRUE(r.is_ok()) << name << ": " << r.status().to_string();
    EXPECT_EQ(r->options.workload, w);
    EXPECT_STREQ(workload_name(w), name.c_str());
  }
}

TEST(Options, ParsesAllCommonFlags) {
  Result<ParsedArgs> r = parse({"--endpoints", "http://127.0.0.1:1,127.0.0.2:2",
                                "put",         "--conns",
                                "4",           "--clients",
                                "40",          "--total",
                                "500",         "--key-size",
                                "20",          "--val-size",
                                "256",         "--key-space",
                                "1000",        "--sequential-keys",
                                "--warmup",    "50",
                                "--rate",      "2500",
                                "--timeout",   "3",
                                "--json"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  const BenchOptions& o = r->options;
  EXPECT_EQ(o.endpoints, (std::vector<std::string>{"127.0.0.1:1", "127.0.0.2:2"}))
      << "http:// is stripped";
  EXPECT_EQ(o.conns, 4u);
  EXPECT_EQ(o.clients, 40u);
  EXPECT_EQ(o.total, 500u);
  EXPECT_EQ(o.key_size_bytes, 20u);
  EXPECT_EQ(o.val_size_bytes, 256u);
  EXPECT_EQ(o.key_space, 1000u);
  EXPECT_TRUE(o.sequential_keys);
  EXPECT_EQ(o.warmup_requests, 50u);
  EXPECT_DOUBLE_EQ(o.rate_per_s, 2500);
  EXPECT_DOUBLE_EQ(o.timeout_s, 3);
  EXPECT_TRUE(o.json);
  const ScheduleParams p = o.schedule_params();
  EXPECT_EQ(p.total_requests, 500u);
  EXPECT_EQ(p.warmup_requests, 50u);
  EXPECT_EQ(p.duration_ns, 0);
}

TEST(Options, MixedTakesReadRatioAndRangeTakesSerializable) {
  Result<ParsedArgs> r =
      parse({"mixed", "--read-ratio", "0.9", "--duration", "2", "--serializable"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->options.read_ratio, 0.9);
  EXPECT_TRUE(r->options.serializable);
  r = parse({"range", "--serializable", "--duration", "2"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->options.serializable);
}

TEST(Options, WarmupInSecondsOrRequests) {
  BenchOptions o;
  ASSERT_TRUE(parse_warmup("2s", o).is_ok());
  EXPECT_DOUBLE_EQ(o.warmup_s, 2);
  EXPECT_EQ(o.warmup_requests, 0u);
  ASSERT_TRUE(parse_warmup("0.25s", o).is_ok());
  EXPECT_DOUBLE_EQ(o.warmup_s, 0.25);
  ASSERT_TRUE(parse_warmup("1000", o).is_ok());
  EXPECT_EQ(o.warmup_requests, 1000u);
  EXPECT_DOUBLE_EQ(o.warmup_s, 0);
  for (const char* bad : {"", "s", "2ms", "-1s", "1.5", "abc", "10x"}) {
    EXPECT_FALSE(parse_warmup(bad, o).is_ok()) << bad;
  }
}

TEST(Options, KeysAreFixedLengthAndDistinct) {
  BenchOptions o;
  o.key_size_bytes = 16;
  o.key_space = 1000;
  EXPECT_EQ(o.key(0), "bench/0000000000");
  EXPECT_EQ(o.key(999), "bench/0000000999");
  EXPECT_EQ(o.key(7).size(), 16u);
}

TEST(Options, RefusesInvalidCombinations) {
  expect_refused({"put"}, "--total");
  expect_refused({"put", "--total", "10", "--duration", "1"}, "exactly one");
  expect_refused({"put", "--duration", "1", "--clients", "0"}, "--clients");
  expect_refused({"put", "--duration", "1", "--conns", "0"}, "--conns");
  expect_refused({"put", "--duration", "1", "--conns", "5", "--clients", "2"}, "--conns");
  expect_refused({"put", "--duration", "1", "--warmup", "100"}, "--warmup");
  expect_refused({"put", "--total", "100", "--warmup", "1s"}, "--warmup");
  expect_refused({"put", "--duration", "1", "--rate", "-5"}, "--rate");
  expect_refused({"put", "--duration", "1", "--key-space", "0"}, "--key-space");
  expect_refused({"put", "--duration", "1", "--key-size", "8", "--key-space", "1000"},
                 "--key-size");
  expect_refused({"put", "--duration", "1", "--serializable"}, "--serializable");
  expect_refused({"put", "--duration", "1", "--read-ratio", "0.5"}, "--read-ratio");
  expect_refused({"mixed", "--duration", "1", "--read-ratio", "1.5"}, "--read-ratio");
  expect_refused({"watch", "--duration", "1", "--val-size", "4"}, "--val-size");
  expect_refused({"watch", "--duration", "1", "--watchers", "0"}, "--watchers");
  expect_refused({"put", "--duration", "1", "--endpoints", "localhost"}, "host:port");
  expect_refused({"put", "--duration", "1", "--timeout", "0"}, "--timeout");
  expect_refused({"fsync", "--duration", "1", "--rate", "10"}, "--rate");
  expect_refused({"fsync", "--duration", "1", "--clients", "2"}, "--clients");
  expect_refused({"put", "--duration", "1", "--busy-cpu"}, "--busy-cpu");
  expect_refused({"put", "--duration", "1", "--puts-per-request", "0"}, "--puts-per-request");
  expect_refused({"put", "--duration", "1", "--puts-per-request", "129"}, "--puts-per-request");
  expect_refused({"range", "--duration", "1", "--puts-per-request", "2"}, "put only");
  expect_refused({"nosuch"}, "not a workload: \"nosuch\"");
  expect_refused({"--duration", "1"}, "name one workload");
  expect_refused({"put", "--duration", "1", "--bogus"}, "--bogus");
}

TEST(Options, PutsPerRequestDefaultsToOneAndTakesUpTo128) {
  Result<ParsedArgs> r = parse({"put", "--duration", "1"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->options.puts_per_request, 1u);
  r = parse({"put", "--total", "10", "--puts-per-request", "128"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->options.puts_per_request, 128u);
}

TEST(Options, HelpIsNotAnError) {
  Result<ParsedArgs> r = parse({"--help"});
  ASSERT_TRUE(r.is_ok());
  EXPECT_TRUE(r->help);
  EXPECT_NE(r->text.find("txn-cas"), std::string::npos);
}

TEST(Options, FsyncDefaultsToThreeSeconds) {
  Result<ParsedArgs> r = parse({"fsync", "--dir", "/tmp"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_DOUBLE_EQ(r->options.duration_s, 3);
  EXPECT_FALSE(r->options.busy_cpu);
  r = parse({"fsync", "--busy-cpu"});
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_TRUE(r->options.busy_cpu);
}

}  // namespace
}  // namespace raftkv::bench
