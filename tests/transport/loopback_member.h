// A transport member on loopback for tests and benchmarks: a Transport, its
// own gRPC server on a kernel-chosen port, an inbox with an optional capacity,
// and a record of the unreachable and snapshot-status callbacks.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/check.h"
#include "transport/transport.h"

namespace raftkv::transport::loopback {

using namespace std::chrono_literals;

inline constexpr uint64_t kCluster = 0x1234;

/// Polls `cond` every 1 ms until it holds or `timeout` passes.
inline bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (cond()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return cond();
}

/// One member (see the top of this file). Aborts if its server cannot start.
struct Member {
  explicit Member(uint64_t id, TransportOptions opts = {}, int port = 0,
                  std::shared_ptr<SnapshotSink> sink = nullptr, size_t inbox_capacity = SIZE_MAX,
                  uint64_t cluster = kCluster) {
    opts.local_id = raft::NodeId(id);
    opts.cluster_id = cluster;
    if (opts.backoff_initial_ms == TransportOptions{}.backoff_initial_ms) {
      opts.backoff_initial_ms = 20;
      opts.backoff_max_ms = 200;
    }
    if (!sink) sink = std::make_shared<MemorySnapshotSink>(64ull << 20);
    capacity = inbox_capacity;
    TransportCallbacks cb;
    cb.deliver = [this](raft::Message&& m) {
      std::lock_guard lk(mu);
      if (inbox.size() >= capacity) return false;
      inbox.push_back(std::move(m));
      return true;
    };
    cb.unreachable = [this](raft::NodeId p) {
      std::lock_guard lk(mu);
      unreachable.push_back(p);
    };
    cb.snapshot_status = [this](raft::NodeId p, bool ok) {
      std::lock_guard lk(mu);
      snapshot_reports.emplace_back(p, ok);
    };
    transport = std::make_unique<Transport>(opts, std::move(cb), std::move(sink));
    grpc::ServerBuilder b;
    b.AddListeningPort("127.0.0.1:" + std::to_string(port), grpc::InsecureServerCredentials(),
                       &this->port);
    b.SetMaxReceiveMessageSize(64 << 20);
    transport->register_service(b);
    server = b.BuildAndStart();
    RAFTKV_CHECK(server != nullptr && this->port > 0);
  }
  ~Member() { shutdown(); }

  void shutdown() {
    if (!transport) return;
    transport->stop();
    server->Shutdown(std::chrono::system_clock::now() + 2s);
    server.reset();
    transport.reset();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  size_t received() {
    std::lock_guard lk(mu);
    return inbox.size();
  }
  std::vector<raft::Message> messages() {
    std::lock_guard lk(mu);
    return inbox;
  }
  size_t unreachable_reports() {
    std::lock_guard lk(mu);
    return unreachable.size();
  }
  std::vector<std::pair<raft::NodeId, bool>> snapshots() {
    std::lock_guard lk(mu);
    return snapshot_reports;
  }

  std::mutex mu;
  size_t capacity;
  std::vector<raft::Message> inbox;
  std::vector<raft::NodeId> unreachable;
  std::vector<std::pair<raft::NodeId, bool>> snapshot_reports;
  int port = 0;
  std::unique_ptr<Transport> transport;
  std::unique_ptr<grpc::Server> server;
};

}  // namespace raftkv::transport::loopback
