// storage_bench: WAL group-commit throughput and latency on the real disk,
// next to the raw fdatasync rate of the same disk, in the same run.
//
//   BM_RawFdatasync      write 256 bytes at the end of a file + fdatasync, in a loop
//   BM_WalAppend/N       Wal::save of N 256-byte entries (+ hard state): one write,
//                        one fdatasync per call; items/s = entries/s
//
// Files go to a temp dir under $RAFTKV_BENCH_DIR, else $TMPDIR, else /tmp, and
// are removed at the end of each benchmark.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <unistd.h>

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
    if (::pwrite(fd, block.data(), block.size(), off) != static_cast<ssize_t>(block.size())) std::abort();
    if (::fdatasync(fd) != 0) std::abort();
    off += static_cast<off_t>(block.size());
  }
  ::close(fd);
  state.SetItemsProcessed(state.iterations());
  state.counters["fdatasync/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                     benchmark::Counter::kIsRate);
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
  state.counters["batches/s"] = benchmark::Counter(static_cast<double>(state.iterations()),
                                                   benchmark::Counter::kIsRate);
  wal->reset();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_WalAppend)->Arg(1)->Arg(8)->Arg(64)->Arg(512)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace raftkv::storage

BENCHMARK_MAIN();
