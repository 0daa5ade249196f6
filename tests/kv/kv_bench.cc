// kv_bench: throughput of kv::Store on a 1 M-key store (256-byte values).
//   BM_ApplyPut/batch:N   applied puts/s, N puts per apply() (one RocksDB batch)
//   BM_PointRead          single-key range reads/s (keys_only:1 = index only)
//   BM_Range100           100-key range reads/s
//   BM_OpenRebuildIndex   open() of the 1 M-key store: index rebuild time and memory
// The store is built once per run (about 10 s) in a temporary directory.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kv/store.h"

namespace raftkv::kv {
namespace {

constexpr int kKeys = 1000000;
constexpr size_t kValueBytes = 256;

std::string key_of(int i) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "k%07d", i);
  return buf;
}

// Heap bytes in use (glibc).
double heap_mib() {
  return static_cast<double>(mallinfo2().uordblks) / (1024.0 * 1024.0);
}

struct Fixture {
  std::string dir;
  std::unique_ptr<Store> store;
  uint64_t next_index = 1;

  Fixture() {
    dir =
        (std::filesystem::temp_directory_path() / ("raftkv-kv-bench-" + std::to_string(::getpid())))
            .string();
    std::filesystem::remove_all(dir);
    auto s = Store::open(dir, StoreOptions());
    if (!s.is_ok()) std::abort();
    store = std::move(s.value());
    const std::string value(kValueBytes, 'v');
    std::vector<raftkvpb::InternalRequest> reqs(1000);
    std::vector<ApplyEntry> batch(1000);
    for (int base = 0; base < kKeys; base += 1000) {
      for (int i = 0; i < 1000; ++i) {
        reqs[static_cast<size_t>(i)].mutable_put()->set_key(key_of(base + i));
        reqs[static_cast<size_t>(i)].mutable_put()->set_value(value);
        batch[static_cast<size_t>(i)] = {raft::Index(next_index++), &reqs[static_cast<size_t>(i)]};
      }
      if (!store->apply(batch).is_ok()) std::abort();
    }
    if (!store->flush().is_ok()) std::abort();
  }
  ~Fixture() {
    store.reset();
    std::filesystem::remove_all(dir);
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_ApplyPut(benchmark::State& state) {
  Fixture& f = fixture();
  const size_t n = static_cast<size_t>(state.range(0));
  std::mt19937 rng(1);
  const std::string value(kValueBytes, 'w');
  std::vector<raftkvpb::InternalRequest> reqs(n);
  for (auto& r : reqs) r.mutable_put()->set_value(value);
  std::vector<ApplyEntry> batch(n);
  for (auto _ : state) {
    for (size_t i = 0; i < n; ++i) {
      reqs[i].mutable_put()->set_key(key_of(static_cast<int>(rng() % kKeys)));
      batch[i] = {raft::Index(f.next_index++), &reqs[i]};
    }
    auto r = f.store->apply(batch);
    if (!r.is_ok()) state.SkipWithError("apply failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * n));
}
BENCHMARK(BM_ApplyPut)->ArgName("batch")->Arg(1)->Arg(100)->MinTime(2.0)->UseRealTime();

// keys_only:1 reads the index alone: such a read never touches RocksDB.
void BM_PointRead(benchmark::State& state) {
  Fixture& f = fixture();
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 7);
  etcdserverpb::RangeRequest req;
  req.set_keys_only(state.range(0) != 0);
  for (auto _ : state) {
    req.set_key(key_of(static_cast<int>(rng() % kKeys)));
    auto r = f.store->range(req);
    if (!r.is_ok() || r->kvs_size() != 1) state.SkipWithError("read failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PointRead)
    ->ArgName("keys_only")
    ->Arg(0)
    ->MinTime(2.0)
    ->UseRealTime()
    ->Threads(1)
    ->Threads(2);
BENCHMARK(BM_PointRead)->ArgName("keys_only")->Arg(1)->MinTime(1.0)->UseRealTime();

void BM_Range100(benchmark::State& state) {
  Fixture& f = fixture();
  std::mt19937 rng(static_cast<unsigned>(state.thread_index()) + 11);
  etcdserverpb::RangeRequest req;
  for (auto _ : state) {
    const int start = static_cast<int>(rng() % (kKeys - 100));
    req.set_key(key_of(start));
    req.set_range_end(key_of(start + 100));
    auto r = f.store->range(req);
    if (!r.is_ok() || r->kvs_size() != 100) state.SkipWithError("range failed");
    benchmark::DoNotOptimize(r);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Range100)->MinTime(2.0)->UseRealTime()->Threads(1)->Threads(2);

// The cost of keeping the key index in memory: rebuild time at open and the
// resident memory it takes (docs/kv.md, "Why an in-memory index").
void BM_OpenRebuildIndex(benchmark::State& state) {
  Fixture& f = fixture();
  const uint64_t keys = f.store->index_key_count();
  for (auto _ : state) {
    if (!f.store->close().is_ok()) state.SkipWithError("close failed");
    f.store.reset();
    const double before = heap_mib();
    auto s = Store::open(f.dir, StoreOptions());
    if (!s.is_ok()) {
      state.SkipWithError("open failed");
      break;
    }
    f.store = std::move(s.value());
    state.counters["index_heap_MiB"] = heap_mib() - before;
  }
  state.counters["keys"] = static_cast<double>(keys);
}
BENCHMARK(BM_OpenRebuildIndex)->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace raftkv::kv

BENCHMARK_MAIN();
