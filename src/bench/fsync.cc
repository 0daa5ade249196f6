// raftkv-bench fsync: the raw disk sync rate, the floor under any durable
// write path (one fdatasync per acknowledged batch).
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "bench/driver.h"
#include "bench/recorder.h"
#include "bench/schedule.h"

namespace raftkv::bench {
namespace {

// The probe file: written full of zeros and synced first, then overwritten in
// place, wrapping around, so each fdatasync flushes data only (like a WAL in a
// preallocated segment), not a growing file's size.
constexpr size_t kProbeFileBytes = 16 * 1024 * 1024;

Nanos clock_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

double cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

Status errno_status(const std::string& what) {
  return Status::io_error(what + ": " + std::strerror(errno));
}

Status write_all(int fd, const char* data, size_t n, off_t offset) {
  while (n > 0) {
    const ssize_t w = pwrite(fd, data, n, offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return errno_status("pwrite");
    }
    data += w;
    n -= static_cast<size_t>(w);
    offset += w;
  }
  return Status::ok();
}

Status prepare(int fd) {
  const std::string zeros(1024 * 1024, '\0');
  for (size_t off = 0; off < kProbeFileBytes; off += zeros.size()) {
    RAFTKV_RETURN_IF_ERROR(write_all(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)));
  }
  if (fsync(fd) != 0) return errno_status("fsync");
  return Status::ok();
}

/// With --busy-cpu: a thread that stays runnable (yielding, so it gives way to
/// any other work) while the probe runs. On a virtual machine an idle vCPU is
/// halted, and waking it when the sync completes can cost more than the sync;
/// a loaded server's CPU is seldom idle, so this shows the device's own pace.
class BusyCpu {
 public:
  explicit BusyCpu(bool enabled) {
    if (enabled)
      thread_ = std::thread([this] {
        while (!stop_.load(std::memory_order_relaxed)) std::this_thread::yield();
      });
  }
  ~BusyCpu() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace

Result<Report> run_fsync(const BenchOptions& o) {
  const std::string path = o.dir + "/raftkv-bench-fsync." + std::to_string(getpid());
  const int fd = open(path.c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status("open " + path);
  Status st = prepare(fd);
  Recorder rec;
  const double cpu_before = cpu_s();
  if (st.is_ok()) {
    BusyCpu busy(o.busy_cpu);
    const std::string block(o.val_size_bytes, 'f');
    const size_t slots = std::max<size_t>(1, kProbeFileBytes / block.size());
    const Schedule schedule(o.schedule_params(), clock_ns());
    for (uint64_t ticket = 0;; ++ticket) {
      const TicketPlan plan = schedule.plan(ticket, clock_ns());
      if (plan.stop) break;
      const off_t offset = static_cast<off_t>((ticket % slots) * block.size());
      st = write_all(fd, block.data(), block.size(), offset);
      if (st.is_ok() && fdatasync(fd) != 0) st = errno_status("fdatasync");
      if (!st.is_ok()) break;
      if (plan.measured) {
        rec.record_ok(plan.send_at_ns, clock_ns());
      } else {
        rec.record_unmeasured();
      }
    }
  }
  close(fd);
  unlink(path.c_str());
  if (!st.is_ok()) return st;
  Report r;
  r.options = o;
  r.main = rec.collect();
  r.client_cpu_s = cpu_s() - cpu_before;
  return r;
}

}  // namespace raftkv::bench
