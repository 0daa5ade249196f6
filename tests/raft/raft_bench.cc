// Benchmarks of the Raft core over the in-memory test cluster:
//  - proposals committed per second through a 3-node cluster (every Ready
//    persisted to MemoryLogStorage and applied; messages delivered in order);
//  - cost of one step() on a follower (an append carrying one entry) and on
//    a leader (an append acknowledgement), Ready handling included.
#include <benchmark/benchmark.h>

#include "harness.h"

namespace raftkv::raft::testing {
namespace {

void BM_ProposalsCommitted3Nodes(benchmark::State& state) {
  const size_t payload = static_cast<size_t>(state.range(0));
  const int batch = static_cast<int>(state.range(1));
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.max_uncommitted_entries_bytes = 0; });
  c.set_record_payloads(false);
  c.elect(1);
  const std::string data(payload, 'x');
  int64_t committed = 0;
  int64_t since_compact = 0;
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!c.core(1).propose(data).is_ok()) state.SkipWithError("proposal refused");
    }
    c.stabilize();
    committed += batch;
    since_compact += batch;
    if (since_compact >= 4096) {  // keep memory flat
      state.PauseTiming();
      for (uint64_t id : {1, 2, 3}) c.compact(id);
      since_compact = 0;
      state.ResumeTiming();
    }
  }
  state.counters["proposals/s"] =
      benchmark::Counter(double(committed), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ProposalsCommitted3Nodes)
    ->ArgNames({"payload_bytes", "batch"})
    ->Args({64, 1})
    ->Args({64, 64})
    ->Args({1024, 64});

void BM_FollowerStepAppend(benchmark::State& state) {
  Cluster c({1, 2, 3});
  c.set_record_payloads(false);
  Core& f = c.core(2);
  uint64_t index = 0;
  int64_t steps = 0;
  for (auto _ : state) {
    Message m;
    m.type = MessageType::kAppend;
    m.from = N(1);
    m.to = N(2);
    m.term = T(1);
    m.index = I(index);
    m.log_term = T(index == 0 ? 0 : 1);
    m.commit = I(index);
    m.entries = {Entry{T(1), I(index + 1), EntryType::kNormal, std::string(64, 'x')}};
    ++index;
    if (!f.step(m).is_ok()) state.SkipWithError("step failed");
    c.drain(2);  // persist, apply, advance
    ++steps;
    if (index % 4096 == 0) {
      state.PauseTiming();
      c.compact(2);
      state.ResumeTiming();
    }
  }
  state.counters["steps/s"] = benchmark::Counter(double(steps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_FollowerStepAppend);

void BM_LeaderStepAppendResponse(benchmark::State& state) {
  Cluster c({1, 2, 3}, [](Config& cfg) { cfg.max_uncommitted_entries_bytes = 0; });
  c.set_record_payloads(false);
  c.elect(1);
  Core& l = c.core(1);
  int64_t steps = 0;
  for (auto _ : state) {
    state.PauseTiming();
    if (!l.propose(std::string(64, 'x')).is_ok()) state.SkipWithError("proposal refused");
    c.drain(1);
    Message ack;
    ack.type = MessageType::kAppendResponse;
    ack.from = N(2);
    ack.to = N(1);
    ack.term = l.term();
    ack.index = l.log().last_index();
    state.ResumeTiming();
    if (!l.step(ack).is_ok()) state.SkipWithError("step failed");
    ++steps;
    state.PauseTiming();
    c.drain(1);
    if (steps % 4096 == 0) {
      c.compact(1);
    }
    state.ResumeTiming();
  }
  state.counters["steps/s"] = benchmark::Counter(double(steps), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LeaderStepAppendResponse);

}  // namespace
}  // namespace raftkv::raft::testing

BENCHMARK_MAIN();
