// raftkv-bench-fake-server: a KV service that answers at once, without
// storing anything. It measures raftkv-bench itself: with a server that does
// no work, the request rate one bench process reaches is the bench's own
// ceiling (docs/performance.md, "overhead check").
//
//   raftkv-bench-fake-server [--listen 127.0.0.1:0]
// Prints "port <n>" on stdout once serving; stops on SIGTERM or SIGINT.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace {

namespace pb = etcdserverpb;

class FakeKv final : public pb::KV::CallbackService {
 public:
  grpc::ServerUnaryReactor* Range(grpc::CallbackServerContext* ctx, const pb::RangeRequest*,
                                  pb::RangeResponse* resp) override {
    fill(resp->mutable_header(), revision_.load(std::memory_order_relaxed));
    return finish(ctx);
  }
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const pb::PutRequest*,
                                pb::PutResponse* resp) override {
    fill(resp->mutable_header(), revision_.fetch_add(1, std::memory_order_relaxed) + 1);
    return finish(ctx);
  }
  grpc::ServerUnaryReactor* Txn(grpc::CallbackServerContext* ctx, const pb::TxnRequest*,
                                pb::TxnResponse* resp) override {
    fill(resp->mutable_header(), revision_.fetch_add(1, std::memory_order_relaxed) + 1);
    resp->set_succeeded(true);
    return finish(ctx);
  }

 private:
  static void fill(pb::ResponseHeader* h, int64_t revision) {
    h->set_cluster_id(1);
    h->set_member_id(1);
    h->set_revision(revision);
    h->set_raft_term(1);
  }
  static grpc::ServerUnaryReactor* finish(grpc::CallbackServerContext* ctx) {
    grpc::ServerUnaryReactor* r = ctx->DefaultReactor();
    r->Finish(grpc::Status::OK);
    return r;
  }
  std::atomic<int64_t> revision_{1};
};

}  // namespace

int main(int argc, char** argv) {
  std::string listen = "127.0.0.1:0";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
      listen = argv[++i];
    } else {
      std::fprintf(stderr, "usage: raftkv-bench-fake-server [--listen host:port]\n");
      return 2;
    }
  }
  // Signals are taken by a dedicated thread with sigwait, so a handler never
  // has to call into gRPC.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  FakeKv service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "raftkv-bench-fake-server: cannot listen on %s\n", listen.c_str());
    return 1;
  }
  std::printf("port %d\n", port);
  std::fflush(stdout);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server->Shutdown();
  });
  server->Wait();
  waiter.join();
  return 0;
}
