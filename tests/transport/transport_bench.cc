// Loopback throughput of the peer transport: append messages per second at a
// few payload sizes (sent the way the raft loop sends, 64 per send() call), and
// snapshot streaming in bytes per second.
#include <benchmark/benchmark.h>

#include "loopback_member.h"

namespace raftkv::transport {
namespace {

using loopback::Member;
using loopback::wait_for;

raft::Message append(uint64_t prev, size_t payload_bytes) {
  raft::Message m;
  m.type = raft::MessageType::kAppend;
  m.from = raft::NodeId(1);
  m.to = raft::NodeId(2);
  m.term = raft::Term(1);
  m.log_term = raft::Term(1);
  m.index = raft::Index(prev);
  m.entries.push_back(raft::Entry{raft::Term(1), raft::Index(prev + 1), raft::EntryType::kNormal,
                                  std::string(payload_bytes, 'p')});
  return m;
}

void BM_AppendThroughput(benchmark::State& state) {
  const size_t payload = static_cast<size_t>(state.range(0));
  constexpr size_t kPerIteration = 4096, kPerSend = 64;
  Member a(1), b(2);
  RAFTKV_CHECK(a.transport->add_peer(raft::NodeId(2), b.url()).is_ok());
  uint64_t index = 0;
  size_t expected = 0;
  for (auto _ : state) {
    for (size_t sent = 0; sent < kPerIteration; sent += kPerSend) {
      std::vector<raft::Message> msgs;
      for (size_t i = 0; i < kPerSend; ++i) msgs.push_back(append(index++, payload));
      a.transport->send(std::move(msgs));
      // Stay within the per-peer queue bound, as a raft loop with flow control does.
      expected += kPerSend;
      RAFTKV_CHECK(wait_for([&] { return b.received() + 2048 >= expected; }));
    }
    RAFTKV_CHECK(wait_for([&] { return b.received() == expected; }));
    state.PauseTiming();
    {
      std::lock_guard lk(b.mu);
      b.inbox.clear();
    }
    expected = 0;
    state.ResumeTiming();
  }
  RAFTKV_CHECK(a.transport->stats().dropped_queue_full == 0);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kPerIteration));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * kPerIteration * payload));
  state.counters["batches"] = static_cast<double>(a.transport->stats().batches_sent);
}
BENCHMARK(BM_AppendThroughput)
    ->Arg(16)
    ->Arg(256)
    ->Arg(4096)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_SnapshotStream(benchmark::State& state) {
  const size_t bytes = static_cast<size_t>(state.range(0)) << 20;
  Member a(1), b(2);
  RAFTKV_CHECK(a.transport->add_peer(raft::NodeId(2), b.url()).is_ok());
  raft::Message m;
  m.type = raft::MessageType::kSnapshot;
  m.from = raft::NodeId(1);
  m.to = raft::NodeId(2);
  m.term = raft::Term(1);
  raft::Snapshot s;
  s.metadata.index = raft::Index(10);
  s.metadata.term = raft::Term(1);
  s.metadata.conf_state.voters = {raft::NodeId(1), raft::NodeId(2)};
  s.data.assign(bytes, 's');
  m.snapshot = std::move(s);
  size_t done = 0;
  for (auto _ : state) {
    a.transport->send({m});
    ++done;
    RAFTKV_CHECK(wait_for([&] { return a.snapshots().size() == done; }, std::chrono::seconds(60)));
    state.PauseTiming();
    {
      std::lock_guard lk(b.mu);
      b.inbox.clear();  // keep one image in memory at a time
    }
    state.ResumeTiming();
  }
  RAFTKV_CHECK(a.transport->stats().snapshots_failed == 0);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}
BENCHMARK(BM_SnapshotStream)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace raftkv::transport

BENCHMARK_MAIN();
