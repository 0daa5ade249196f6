// storage_bench: WAL group-commit throughput and latency on the real disk,
// next to the raw fdatasync rate of the same disk, in the same run.
//
//   BM_RawFdatasync      write 256 bytes at the end of a file + fdatasync, in a loop
//   BM_WalAppend/N       Wal::save of N 256-byte entries (+ hard state): one write,
//                        one fdatasync per call; items/s = entries/s
//   BM_WalVsRawInterleaved  one raw write+fdatasync and one batch-1 save per
//                        iteration, each timed: the ratio under the same load
//
// Files go to a temp dir under $RAFTKV_BENCH_DIR, else $TMPDIR, else /tmp, and
// are removed at the end of each benchmark.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "storage/file_system.h"
#include "storage/wal.h"

namespace raftkv::storage {
namespace {

std::string make_temp_dir() {
  const char* base = std::getenv("RAFTKV_BENCH_DIR");
  if (base == nullptr || *base == 0) base = std::getenv("TMPDIR");
  if (base == nullptr || *base == 0) base = "/tmp";
  std::string templ = std::string(base) + "/raftkv-storage-bench-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) std::abort();
  return templ;
}

void BM_RawFdatasync(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  const std::string path = dir + "/raw";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) std::abort();
  const std::string block(256, 'r');
  off_t off = 0;
  for (auto _ : state) {
    if (::pwrite(fd, block.data(), block.size(), off) != static_cast<ssize_t>(block.size()))
      std::abort();
    if (::fdatasync(fd) != 0) std::abort();
    off += static_cast<off_t>(block.size());
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  state.counters["fdatasync/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_RawFdatasync)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_WalAppend(benchmark::State& state) {
  const auto batch = static_cast<uint64_t>(state.range(0));
  const std::string dir = make_temp_dir();
  auto fs = make_posix_file_system();
  Result<std::unique_ptr<Wal>> wal = Wal::open(fs.get(), dir + "/wal", WalOptions{});
  if (!wal) {
    state.SkipWithError(wal.status().to_string().c_str());
    return;
  }
  Wal& w = **wal;
  std::vector<raft::Entry> entries(batch);
  for (auto& e : entries) {
    e.term = raft::Term(1);
    e.data.assign(256, 'e');
  }
  raft::HardState hs{raft::Term(1), raft::NodeId(1), raft::Index(0)};
  for (auto _ : state) {
    for (uint64_t k = 0; k < batch; ++k) entries[k].index = w.last_index() + 1 + k;
    hs.commit = w.last_index();
    Status s = w.save(&hs, entries);
    if (!s) {
      state.SkipWithError(s.to_string().c_str());
      break;
    }
    // Keep the disk footprint bounded: release segments well behind the tail.
    if (w.last_index().value() > 400'000 + w.base().index.value()) {
      state.PauseTiming();
      SnapshotMarker m{w.last_index() - 1000, raft::Term(1)};
      if (!w.save(nullptr, {}, &m)) std::abort();
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch));
  state.counters["batches/s"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  wal->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalAppend)
    ->Arg(1)
    ->Arg(8)
    ->Arg(64)
    ->Arg(512)
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The disk's speed drifts when other work shares it, so the batch-1 goal
// (append rate >= 0.9x the raw fdatasync rate) is also measured interleaved:
// each iteration does one raw 256-byte write + fdatasync and one batch-1 save,
// timing each, on the same disk at the same moment.
void BM_WalVsRawInterleaved(benchmark::State& state) {
  const std::string dir = make_temp_dir();
  auto fs = make_posix_file_system();
  Result<std::unique_ptr<Wal>> wal = Wal::open(fs.get(), dir + "/wal", WalOptions{});
  const std::string raw_path = dir + "/raw";
  int fd = ::open(raw_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (!wal || fd < 0) std::abort();
  Wal& w = **wal;
  const std::string block(256, 'r');
  std::vector<raft::Entry> entry(1);
  entry[0].term = raft::Term(1);
  entry[0].data.assign(256, 'e');
  raft::HardState hs{raft::Term(1), raft::NodeId(1), raft::Index(0)};
  off_t off = 0;
  double raw_s = 0, wal_s = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    if (::pwrite(fd, block.data(), block.size(), off) != static_cast<ssize_t>(block.size()))
      std::abort();
    if (::fdatasync(fd) != 0) std::abort();
    off += static_cast<off_t>(block.size());
    auto t1 = std::chrono::steady_clock::now();
    entry[0].index = w.last_index() + 1;
    hs.commit = w.last_index();
    if (!w.save(&hs, entry)) std::abort();
    auto t2 = std::chrono::steady_clock::now();
    raw_s += std::chrono::duration<double>(t1 - t0).count();
    wal_s += std::chrono::duration<double>(t2 - t1).count();
  }
  ::close(fd);
  const auto n = static_cast<double>(state.iterations());
  state.counters["raw_fdatasync/s"] = n / raw_s;
  state.counters["wal_batch1/s"] = n / wal_s;
  state.counters["wal/raw"] = raw_s / wal_s;
  wal->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalVsRawInterleaved)->Unit(benchmark::kMicrosecond)->UseRealTime()->MinTime(3);

}  // namespace
}  // namespace raftkv::storage

BENCHMARK_MAIN();
