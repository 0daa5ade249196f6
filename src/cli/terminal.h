// Terminal concerns of raftkvctl: Ctrl-C as a flag, tty checks, and a progress line.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace raftkv::cli {

/// Installs the SIGINT handler (without SA_RESTART, so a blocking read returns EINTR) that
/// sets interrupt_flag(). Main thread, once, before any other thread starts.
void install_interrupt_handler();

/// Set by Ctrl-C; long operations poll it (via client::CancelOnFlag) and stop.
std::atomic<bool>& interrupt_flag();
inline bool interrupted() {
  return interrupt_flag().load();
}
inline void clear_interrupt() {
  interrupt_flag().store(false);
}

bool stdin_is_tty();
bool stderr_is_tty();

/// A one-line progress indicator on stderr ("snapshot 12.3 MB / 40 MB (30%)"), redrawn at
/// most every 100 ms, and only when stderr is a terminal (scripts see nothing). One thread.
class Progress {
 public:
  /// `total` 0 = unknown. `unit_bytes`: show amounts as byte sizes, else as counts.
  Progress(std::string label, uint64_t total, bool unit_bytes);
  ~Progress();
  void update(uint64_t done, uint64_t total);
  /// Clears the line.
  void finish();

 private:
  std::string label_;
  uint64_t total_;
  bool unit_bytes_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace raftkv::cli
