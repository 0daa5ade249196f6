// raftkv: one member of a raftkv cluster (docs/operations.md).
//
// With no flags: a single-member cluster serving clients on
// http://127.0.0.1:2379, peers on http://127.0.0.1:2380, data in
// ./default.raftkv. Flags are etcd's (server/config.h). SIGTERM or SIGINT
// stops cleanly: the client server stops accepting and lets calls in flight
// finish, the node applies what was committed and closes its WAL and store,
// and the process exits 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include <absl/synchronization/mutex.h>
#if RAFTKV_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "api/client_server.h"
#include "server/backup.h"
#include "server/config.h"
#include "server/maintainer.h"
#include "server/node.h"

namespace {

spdlog::level::level_enum to_spdlog(raftkv::server::LogLevel l) {
  using raftkv::server::LogLevel;
  switch (l) {
    case LogLevel::kDebug: return spdlog::level::debug;
    case LogLevel::kInfo: return spdlog::level::info;
    case LogLevel::kWarn: return spdlog::level::warn;
    case LogLevel::kError: return spdlog::level::err;
    case LogLevel::kPanic:
    case LogLevel::kFatal: return spdlog::level::critical;
  }
  return spdlog::level::info;
}

// The allocator serving this process, read from the allocator itself, so
// the log says what the process really runs with.
std::string allocator_name() {
#if RAFTKV_JEMALLOC
  const char* version = nullptr;
  size_t len = sizeof(version);
  if (mallctl("version", static_cast<void*>(&version), &len, nullptr, 0) == 0 && version) {
    return std::string("jemalloc ") + version;
  }
  return "jemalloc (version unknown)";
#else
  return "glibc malloc";
#endif
}

}  // namespace

int main(int argc, char** argv) {
  using namespace raftkv;
  // `raftkv snapshot restore|status ...` works on files, not as a member.
  if (argc >= 2 && std::string_view(argv[1]) == "snapshot") {
    return server::snapshot_command_main(argc - 1, argv + 1);
  }
  Result<server::ParsedFlags> parsed = server::parse_flags(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "raftkv: %s\n", parsed.status().message().c_str());
    return 2;
  }
  if (parsed->exit_now) {
    std::fputs(parsed->output.c_str(), stdout);
    if (!parsed->output.empty() && parsed->output.back() != '\n') std::fputc('\n', stdout);
    return 0;
  }
  server::Config& cfg = parsed->config;

  // gRPC's mutexes are abseil's, and Debian's abseil keeps deadlock
  // detection on: every lock updates a lock-order graph. A profile of the
  // put path put that bookkeeping at about 5 % of the server's CPU
  // (docs/performance.md); lock order is what tests and sanitizers check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Logs go to stderr as one line per event: time, level, message with
  // key=value fields.
  auto logger = spdlog::stderr_logger_mt("raftkv");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%fZ %l %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(to_spdlog(cfg.log_level));
  spdlog::flush_on(spdlog::level::info);
  spdlog::info("memory allocator: {}", allocator_name());

  // Every thread started from here on inherits the blocked signals; main
  // alone receives them through sigwait.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGUSR2);  // raised by the node when it was removed from the cluster
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  if (Status st = server::prepare_tls(cfg); !st) {
    spdlog::critical("cannot start: {}", st.to_string());
    return 1;
  }
  Result<std::unique_ptr<server::Node>> node = server::Node::start(cfg);
  if (!node) {
    spdlog::critical("cannot start: {}", node.status().to_string());
    return 1;
  }
  Result<std::unique_ptr<api::ClientServer>> clients = api::ClientServer::start(node->get(), cfg);
  if (!clients) {
    spdlog::critical("cannot start: {}", clients.status().to_string());
    (*node)->stop();
    return 1;
  }
  spdlog::info("serving clients: urls={} advertise={} peers={}", cfg.listen_client_urls[0],
               cfg.advertise_client_urls[0], cfg.listen_peer_urls[0]);
  auto maintainer = std::make_unique<server::Maintainer>(node->get());

  (*node)->set_removed_listener([] { kill(getpid(), SIGUSR2); });

  int sig = 0;
  sigwait(&stop_signals, &sig);
  if (sig == SIGUSR2) {
    spdlog::info("this member was removed from the cluster, shutting down");
  } else {
    spdlog::info("received {}, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  }
  maintainer.reset();
  (*node)->clear_leader_listeners();
  (*clients)->shutdown(static_cast<int>(std::min<int64_t>(3000, (*node)->request_timeout().count())));
  clients->reset();
  (*node)->stop();
  spdlog::info("shutdown complete");
  return 0;
}
