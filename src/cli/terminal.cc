#include "cli/terminal.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>

#include "cli/format.h"

namespace raftkv::cli {
namespace {
std::atomic<bool> g_interrupted{false};
static_assert(std::atomic<bool>::is_always_lock_free, "set from a signal handler");

void on_sigint(int) {
  g_interrupted.store(true);
}
}  // namespace

void install_interrupt_handler() {
  struct sigaction sa = {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: the shell's line read returns on Ctrl-C
  sigaction(SIGINT, &sa, nullptr);
}

std::atomic<bool>& interrupt_flag() {
  return g_interrupted;
}

bool stdin_is_tty() {
  return isatty(STDIN_FILENO) == 1;
}
bool stderr_is_tty() {
  return isatty(STDERR_FILENO) == 1;
}

Progress::Progress(std::string label, uint64_t total, bool unit_bytes)
    : label_(std::move(label)), total_(total), unit_bytes_(unit_bytes), enabled_(stderr_is_tty()) {}

Progress::~Progress() {
  finish();
}

void Progress::update(uint64_t done, uint64_t total) {
  if (!enabled_) return;
  if (total != 0) total_ = total;
  auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  drawn_ = true;
  auto amount = [&](uint64_t v) { return unit_bytes_ ? humanize_bytes(v) : std::to_string(v); };
  std::string line = fmt::format("{} {}", label_, amount(done));
  if (total_ != 0) {
    line += fmt::format(" / {} ({}%)", amount(total_), done * 100 / total_);
  }
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
}

void Progress::finish() {
  if (!drawn_) return;
  drawn_ = false;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
}

}  // namespace raftkv::cli
