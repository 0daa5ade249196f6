// Kill -9: a real process appends and fdatasyncs batches to a WAL on the real
// disk and prints each acknowledged index; we SIGKILL it at random moments,
// restart it, and check that every acknowledged entry is present and intact.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "storage/file_system.h"
#include "storage/wal.h"

namespace raftkv::storage {
namespace {

std::string payload(uint64_t index) {  // Same as the writer's.
  std::string s = "entry-" + std::to_string(index) + "-";
  while (s.size() < 100) s.push_back(static_cast<char>('a' + (index + s.size()) % 26));
  return s;
}

struct WriterRun {
  uint64_t max_ack = 0;
  bool started = false;
  int status = 0;
};

// Starts the writer, lets it run for `run_ms`, SIGKILLs it, and returns the
// acknowledgements it printed.
WriterRun run_and_kill(const std::string& dir, int run_ms) {
  int fds[2];
  EXPECT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execl(WAL_KILL_WRITER, WAL_KILL_WRITER, dir.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  WriterRun run;
  std::string pending;
  auto consume = [&](const char* buf, ssize_t n) {
    pending.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::string line = pending.substr(0, nl);
      pending.erase(0, nl + 1);
      if (line.rfind("ack ", 0) == 0) run.max_ack = std::stoull(line.substr(4));
      if (line.rfind("start ", 0) == 0) run.started = true;
    }
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(run_ms);
  char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd p{fds[0], POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(std::max<int64_t>(1, left.count()))) > 0) {
      ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;  // The writer exited on its own: reported below.
      consume(buf, n);
    }
  }
  kill(pid, SIGKILL);
  // Whatever it printed before dying was acknowledged: drain the pipe.
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) consume(buf, n);
  close(fds[0]);
  waitpid(pid, &run.status, 0);
  return run;
}

TEST(WalKill9, EveryAcknowledgedEntrySurvivesSigkillAtRandomMoments) {
  const char* tmp = std::getenv("TMPDIR");
  std::string templ = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/raftkv-kill9-XXXXXX";
  ASSERT_NE(mkdtemp(templ.data()), nullptr);
  const std::string dir = templ;
  struct RemoveOnExit {
    std::string path;
    ~RemoveOnExit() { std::filesystem::remove_all(path); }
  } cleanup{dir};  // Also when an assertion below fails.
  std::mt19937 rng(20261204);
  std::uniform_int_distribution<int> run_ms(5, 120);
  auto fs = make_posix_file_system();
  const auto budget_end = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  uint64_t max_ack = 0;
  int kills = 0;
  for (int round = 0; round < 100 && std::chrono::steady_clock::now() < budget_end; ++round) {
    WriterRun run = run_and_kill(dir, run_ms(rng));
    ASSERT_TRUE(WIFSIGNALED(run.status) && WTERMSIG(run.status) == SIGKILL)
        << "the writer exited by itself (status " << run.status << ") in round " << round;
    ++kills;
    max_ack = std::max(max_ack, run.max_ack);
    Result<std::unique_ptr<Wal>> w = Wal::open(fs.get(), dir, WalOptions{256 << 10});
    ASSERT_TRUE(w.is_ok()) << "round " << round << ": " << w.status().to_string();
    ASSERT_GE((*w)->last_index().value(), max_ack) << "round " << round;
    ASSERT_LE((*w)->first_index().value(), max_ack + 1) << "compaction passed the acked tail";
    for (uint64_t i = (*w)->first_index().value(); i <= max_ack; ++i) {
      Result<raft::Entry> e = (*w)->read_entry(raft::Index(i));
      ASSERT_TRUE(e.is_ok()) << "round " << round << " entry " << i << ": "
                             << e.status().to_string();
      ASSERT_EQ(e->data, payload(i)) << "round " << round << " entry " << i;
    }
    max_ack = (*w)->last_index().value();  // Recovered = durable from now on.
  }
  std::printf("kill -9 rounds: %d, entries durable at the end: %llu\n", kills,
              static_cast<unsigned long long>(max_ack));
  EXPECT_GE(kills, 10);
  EXPECT_GT(max_ack, 0u);
}

}  // namespace
}  // namespace raftkv::storage
