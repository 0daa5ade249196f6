#include "bench/driver.h"

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/check.h"
#include "bench/recorder.h"
#include "bench/schedule.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::bench {
namespace {

namespace pb = etcdserverpb;

Nanos now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::steady_clock::time_point to_time_point(Nanos ns) {
  return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(ns));
}

/// A gRPC deadline `ns` from now (gRPC's C++ deadlines take only the system
/// clock or its own timespec; the monotonic timespec is immune to clock steps).
gpr_timespec deadline_after(Nanos ns) {
  return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_nanos(ns, GPR_TIMESPAN));
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto s = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return s(ru.ru_utime) + s(ru.ru_stime);
}

/// The smallest key greater than every key starting with `prefix` (etcd's
/// range_end for a prefix).
std::string prefix_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    if (static_cast<unsigned char>(end.back()) < 0xff) {
      end.back() = static_cast<char>(static_cast<unsigned char>(end.back()) + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

// ---------------------------------------------------------------- connections

struct Connections {
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<pb::KV::Stub>> kv;
  std::vector<std::unique_ptr<pb::Watch::Stub>> watch;
  std::vector<std::unique_ptr<pb::Lease::Stub>> lease;
};

constexpr Nanos kConnectTimeoutNs = 5'000'000'000;

Result<std::string> read_pem(const char* flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::invalid_argument(std::string("cannot read ") + flag + " \"" + path + "\"");
  std::ostringstream out;
  out << in.rdbuf();
  if (out.str().find("-----BEGIN") == std::string::npos) {
    return Status::invalid_argument(std::string(flag) + " \"" + path + "\" holds no PEM data");
  }
  return out.str();
}

Result<std::shared_ptr<grpc::ChannelCredentials>> credentials(const BenchOptions& o) {
  if (!o.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;  // empty root certs: gRPC's default roots
  if (!o.tls_cacert.empty()) {
    Result<std::string> pem = read_pem("--cacert", o.tls_cacert);
    if (!pem) return pem.status();
    ssl.pem_root_certs = std::move(*pem);
  }
  if (!o.tls_cert.empty()) {
    Result<std::string> cert = read_pem("--cert", o.tls_cert);
    if (!cert) return cert.status();
    Result<std::string> key = read_pem("--key", o.tls_key);
    if (!key) return key.status();
    ssl.pem_cert_chain = std::move(*cert);
    ssl.pem_private_key = std::move(*key);
  }
  return grpc::SslCredentials(ssl);
}

Result<Connections> connect(const BenchOptions& o) {
  Result<std::shared_ptr<grpc::ChannelCredentials>> creds = credentials(o);
  if (!creds) return creds.status();
  Connections c;
  for (uint32_t i = 0; i < o.conns; ++i) {
    const std::string& target = o.endpoints[i % o.endpoints.size()];
    grpc::ChannelArguments args;
    // Distinct arguments and no shared subchannel pool: a TCP connection per channel.
    args.SetInt("raftkv.bench.channel_index", static_cast<int>(i));
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
    auto ch = grpc::CreateCustomChannel(target, *creds, args);
    if (!ch->WaitForConnected(deadline_after(kConnectTimeoutNs))) {
      return Status::unavailable("cannot connect to " + target + " within 5 s");
    }
    c.kv.push_back(pb::KV::NewStub(ch));
    c.watch.push_back(pb::Watch::NewStub(ch));
    c.lease.push_back(pb::Lease::NewStub(ch));
    c.channels.push_back(std::move(ch));
  }
  return c;
}

void set_deadline(grpc::ClientContext& ctx, const BenchOptions& o) {
  ctx.set_deadline(deadline_after(static_cast<Nanos>(o.timeout_s * 1e9)));
}

// ---------------------------------------------------------------- operations

class KeepAliveStream;

/// One client: a sequence of requests, one outstanding at a time. Only the
/// operation in flight touches it, so it needs no lock.
struct Slot {
  uint32_t conn = 0;                     ///< Index of its channel.
  std::mt19937_64 rng;                   ///< Its own key / read-or-write choices.
  KeepAliveStream* keepalive = nullptr;  ///< lease-keepalive: its stream.
};

using Done = std::function<void(const grpc::Status&)>;

/// A workload's request.
class Operation {
 public:
  virtual ~Operation() = default;
  /// Before the run, on the main thread: per-client state (leases, streams).
  virtual Status setup(std::vector<std::unique_ptr<Slot>>&) { return Status::ok(); }
  /// Sends one operation for `slot` (ticket: its number in the run; send_at_ns:
  /// its due time). Runs on the pacer thread or a gRPC thread; calls `done`
  /// exactly once, from any thread. REQUIRES: no operation of `slot` in flight.
  virtual void start(Slot& slot, uint64_t ticket, Nanos send_at_ns, Done done) = 0;
  /// After the run, with nothing in flight, on the main thread.
  virtual void teardown() {}
  /// Workload-specific counts for the report. After teardown.
  virtual void add_counters(std::map<std::string, uint64_t>&) const {}
};

template <typename Req, typename Resp>
struct Call {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

class KvOperation : public Operation {
 public:
  KvOperation(const BenchOptions& o, Connections& c)
      : o_(o), c_(c), value_(o.val_size_bytes, 'v') {}

 protected:
  uint64_t key_index(Slot& s, uint64_t ticket) {
    if (o_.sequential_keys) return ticket % o_.key_space;
    return std::uniform_int_distribution<uint64_t>(0, o_.key_space - 1)(s.rng);
  }

  void put(Slot& s, std::string key, std::string value, Done done) {
    auto* call = new Call<pb::PutRequest, pb::PutResponse>;
    set_deadline(call->ctx, o_);
    call->req.set_key(std::move(key));
    call->req.set_value(std::move(value));
    c_.kv[s.conn]->async()->Put(&call->ctx, &call->req, &call->resp,
                                [call, done = std::move(done)](grpc::Status st) {
                                  delete call;  // first: done() may end the run
                                  done(st);
                                });
  }

  void range(Slot& s, std::string key, Done done) {
    auto* call = new Call<pb::RangeRequest, pb::RangeResponse>;
    set_deadline(call->ctx, o_);
    call->req.set_key(std::move(key));
    call->req.set_serializable(o_.serializable);
    c_.kv[s.conn]->async()->Range(&call->ctx, &call->req, &call->resp,
                                  [call, done = std::move(done)](grpc::Status st) {
                                    delete call;  // first: done() may end the run
                                    done(st);
                                  });
  }

  const BenchOptions& o_;
  Connections& c_;
  const std::string value_;
};

class PutOperation : public KvOperation {
 public:
  using KvOperation::KvOperation;
  void start(Slot& s, uint64_t ticket, Nanos, Done done) override {
    if (o_.puts_per_request == 1) return put(s, o_.key(key_index(s, ticket)), value_, std::move(done));
    // One Txn of puts_per_request puts (no compares: it always succeeds).
    auto* call = new Call<pb::TxnRequest, pb::TxnResponse>;
    set_deadline(call->ctx, o_);
    for (uint64_t j = 0; j < o_.puts_per_request; ++j) {
      pb::PutRequest* p = call->req.add_success()->mutable_request_put();
      p->set_key(o_.key(key_index(s, ticket * o_.puts_per_request + j)));
      p->set_value(value_);
    }
    c_.kv[s.conn]->async()->Txn(&call->ctx, &call->req, &call->resp,
                                [call, done = std::move(done)](grpc::Status st) {
                                  delete call;  // first: done() may end the run
                                  done(st);
                                });
  }
};

class RangeOperation : public KvOperation {
 public:
  using KvOperation::KvOperation;
  void start(Slot& s, uint64_t ticket, Nanos, Done done) override {
    range(s, o_.key(key_index(s, ticket)), std::move(done));
  }
};

class MixedOperation : public KvOperation {
 public:
  using KvOperation::KvOperation;
  void start(Slot& s, uint64_t ticket, Nanos, Done done) override {
    const bool read = std::bernoulli_distribution(o_.read_ratio)(s.rng);
    std::string key = o_.key(key_index(s, ticket));
    if (read) {
      range(s, std::move(key), std::move(done));
    } else {
      put(s, std::move(key), value_, std::move(done));
    }
  }
};

/// Compare-and-swap: read the key's mod_revision, then Txn(if mod == rev then
/// put). A false `succeeded` means another client changed the key in between:
/// a conflict, counted, not an error.
class TxnCasOperation : public KvOperation {
 public:
  using KvOperation::KvOperation;

  void start(Slot& s, uint64_t ticket, Nanos, Done done) override {
    auto* read = new Call<pb::RangeRequest, pb::RangeResponse>;
    set_deadline(read->ctx, o_);
    read->req.set_key(o_.key(key_index(s, ticket)));
    c_.kv[s.conn]->async()->Range(
        &read->ctx, &read->req, &read->resp,
        [this, &s, read, done = std::move(done)](grpc::Status st) mutable {
          const int64_t rev = read->resp.kvs_size() > 0 ? read->resp.kvs(0).mod_revision() : 0;
          std::string key = std::move(*read->req.mutable_key());
          delete read;  // first: done() may end the run
          if (!st.ok()) return done(st);
          swap(s, key, rev, std::move(done));
        });
  }

  void add_counters(std::map<std::string, uint64_t>& out) const override {
    out["cas_succeeded"] = succeeded_.load();
    out["cas_conflicts"] = conflicts_.load();
  }

 private:
  void swap(Slot& s, const std::string& key, int64_t rev, Done done) {
    auto* call = new Call<pb::TxnRequest, pb::TxnResponse>;
    set_deadline(call->ctx, o_);
    pb::Compare* cmp = call->req.add_compare();
    cmp->set_target(pb::Compare::MOD);
    cmp->set_result(pb::Compare::EQUAL);
    cmp->set_key(key);
    cmp->set_mod_revision(rev);
    pb::PutRequest* put = call->req.add_success()->mutable_request_put();
    put->set_key(key);
    put->set_value(value_);
    c_.kv[s.conn]->async()->Txn(&call->ctx, &call->req, &call->resp,
                                [this, call, done = std::move(done)](grpc::Status st) {
                                  if (st.ok()) {
                                    (call->resp.succeeded() ? succeeded_ : conflicts_)
                                        .fetch_add(1, std::memory_order_relaxed);
                                  }
                                  delete call;  // first: done() may end the run
                                  done(st);
                                });
  }

  std::atomic<uint64_t> succeeded_{0};
  std::atomic<uint64_t> conflicts_{0};
};

/// The watch workload's writer: puts whose value starts with the send time
/// (8 bytes, native order: the watchers run in this same process).
class StampedPutOperation : public KvOperation {
 public:
  using KvOperation::KvOperation;
  void start(Slot& s, uint64_t ticket, Nanos send_at_ns, Done done) override {
    std::string value = value_;
    std::memcpy(value.data(), &send_at_ns, sizeof send_at_ns);
    put(s, o_.key(key_index(s, ticket)), std::move(value),
        [this, done = std::move(done)](const grpc::Status& st) {
          if (st.ok()) puts_ok_.fetch_add(1, std::memory_order_relaxed);
          done(st);
        });
  }
  uint64_t puts_ok() const { return puts_ok_.load(); }

 private:
  std::atomic<uint64_t> puts_ok_{0};
};

/// Waits for a reactor's OnDone.
class DoneLatch {
 public:
  void set() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }
  bool wait_for(Nanos timeout_ns) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return done_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
};

/// One client's LeaseKeepAlive stream: each ping writes the lease id and waits
/// for the answer. Held open (AddHold) between pings until close().
class KeepAliveStream
    : public grpc::ClientBidiReactor<pb::LeaseKeepAliveRequest, pb::LeaseKeepAliveResponse> {
 public:
  KeepAliveStream(pb::Lease::Stub& stub, int64_t lease_id) {
    req_.set_id(lease_id);
    stub.async()->LeaseKeepAlive(&ctx_, this);
    AddHold();
    StartCall();
  }

  /// REQUIRES: no ping in flight.
  void ping(Done done) {
    if (broken_) {
      done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream closed"));
      return;
    }
    done_ = std::move(done);
    StartWrite(&req_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) return fail("keepalive stream closed on write");
    StartRead(&resp_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return fail("keepalive stream closed on read");
    Done d = std::move(done_);
    if (resp_.ttl() <= 0) {
      d(grpc::Status(grpc::StatusCode::NOT_FOUND, "lease expired"));
    } else {
      d(grpc::Status::OK);
    }
  }

  void OnDone(const grpc::Status&) override { latch_.set(); }

  /// Ends the stream and waits for it. REQUIRES: no ping in flight.
  void close() {
    ctx_.TryCancel();
    RemoveHold();
    latch_.wait_for(5'000'000'000);
  }

 private:
  void fail(const char* why) {
    broken_ = true;
    Done d = std::move(done_);
    d(grpc::Status(grpc::StatusCode::UNAVAILABLE, why));
  }

  grpc::ClientContext ctx_;
  pb::LeaseKeepAliveRequest req_;
  pb::LeaseKeepAliveResponse resp_;
  Done done_;
  bool broken_ = false;
  DoneLatch latch_;
};

class LeaseKeepAliveOperation : public Operation {
 public:
  static constexpr int64_t kLeaseTtlS = 60;

  LeaseKeepAliveOperation(const BenchOptions& o, Connections& c) : o_(o), c_(c) {}

  Status setup(std::vector<std::unique_ptr<Slot>>& slots) override {
    for (auto& s : slots) {
      grpc::ClientContext ctx;
      set_deadline(ctx, o_);
      pb::LeaseGrantRequest req;
      req.set_ttl(kLeaseTtlS);
      pb::LeaseGrantResponse resp;
      grpc::Status st = c_.lease[s->conn]->LeaseGrant(&ctx, req, &resp);
      if (!st.ok()) {
        return Status::unavailable("LeaseGrant failed: " + grpc_code_name(st.error_code()) + ": " +
                                   st.error_message());
      }
      streams_.push_back(std::make_unique<KeepAliveStream>(*c_.lease[s->conn], resp.id()));
      s->keepalive = streams_.back().get();
      granted_.emplace_back(s->conn, resp.id());
    }
    return Status::ok();
  }

  void start(Slot& s, uint64_t, Nanos, Done done) override { s.keepalive->ping(std::move(done)); }

  void teardown() override {
    for (auto& st : streams_) st->close();
    for (const auto& [conn, id] : granted_) {
      grpc::ClientContext ctx;
      set_deadline(ctx, o_);
      pb::LeaseRevokeRequest req;
      req.set_id(id);
      pb::LeaseRevokeResponse resp;
      (void)c_.lease[conn]->LeaseRevoke(&ctx, req, &resp);  // best effort: leases expire anyway
    }
  }

 private:
  const BenchOptions& o_;
  Connections& c_;
  std::vector<std::unique_ptr<KeepAliveStream>> streams_;
  std::vector<std::pair<uint32_t, int64_t>> granted_;
};

// ---------------------------------------------------------------- watchers

/// One watch stream on the key prefix. Each event's latency is measured from
/// the send time its value carries.
class Watcher : public grpc::ClientBidiReactor<pb::WatchRequest, pb::WatchResponse> {
 public:
  Watcher(pb::Watch::Stub& stub, const std::string& prefix, Recorder& events,
          std::atomic<uint64_t>& received, std::atomic<uint32_t>& created, Nanos measure_from_ns)
      : events_(events), received_(received), created_(created), measure_from_ns_(measure_from_ns) {
    auto* create = req_.mutable_create_request();
    create->set_key(prefix);
    create->set_range_end(prefix_end(prefix));
    stub.async()->Watch(&ctx_, this);
    StartWrite(&req_);
    StartRead(&resp_);
    StartCall();
  }

  void OnWriteDone(bool) override {}

  void OnReadDone(bool ok) override {
    if (!ok) return;
    const Nanos now = now_ns();
    if (resp_.created()) created_.fetch_add(1);
    for (const auto& ev : resp_.events()) {
      if (ev.type() != mvccpb::Event::PUT) continue;
      const std::string& v = ev.kv().value();
      received_.fetch_add(1, std::memory_order_relaxed);
      Nanos sent = 0;
      if (v.size() >= sizeof sent) std::memcpy(&sent, v.data(), sizeof sent);
      if (sent >= measure_from_ns_.load(std::memory_order_relaxed)) {
        events_.record_ok(sent, now);
      } else {
        events_.record_unmeasured();
      }
    }
    if (resp_.canceled()) {
      events_.record_error(static_cast<int>(grpc::StatusCode::CANCELLED),
                           "watch canceled: " + resp_.cancel_reason(), now, now);
      return;
    }
    StartRead(&resp_);
  }

  void OnDone(const grpc::Status&) override { latch_.set(); }

  /// The run's measured window starts here (known only once the run starts).
  void set_measure_from(Nanos ns) { measure_from_ns_.store(ns); }

  void close() {
    ctx_.TryCancel();
    latch_.wait_for(5'000'000'000);
  }

 private:
  grpc::ClientContext ctx_;
  pb::WatchRequest req_;
  pb::WatchResponse resp_;
  Recorder& events_;
  std::atomic<uint64_t>& received_;
  std::atomic<uint32_t>& created_;
  std::atomic<Nanos> measure_from_ns_;
  DoneLatch latch_;
};

// ---------------------------------------------------------------- the driver

/// Runs the clients of one workload until the schedule says stop.
class Driver {
 public:
  Driver(const BenchOptions& o, Operation& op, Recorder& rec,
         std::vector<std::unique_ptr<Slot>>& slots, Nanos start_ns)
      : op_(op), rec_(rec), slots_(slots), schedule_(o.schedule_params(), start_ns) {}

  const Schedule& schedule() const { return schedule_; }

  /// Blocks until every request has been issued and has completed.
  void run() {
    {
      std::lock_guard lock(mu_);
      for (auto& s : slots_) idle_.push_back(s.get());
    }
    if (schedule_.open_loop()) {
      pace_open_loop();
    } else {
      pace_closed_loop();
    }
  }

 private:
  // Completions deeper than this on one stack are handed to the pacer thread
  // instead of issuing inline, so a burst of immediate failures cannot recurse.
  static constexpr int kMaxInlineDepth = 16;
  // A closed-loop client whose request failed with UNAVAILABLE (its endpoint
  // is down or unreachable, so the next one would fail at once too) waits
  // this long before its next request, instead of spinning on failures.
  static constexpr Nanos kUnavailableBackoffNs = 20'000'000;

  void pace_open_loop() {
    for (uint64_t ticket = 0;; ++ticket) {
      const TicketPlan plan = schedule_.plan(ticket, now_ns());
      if (plan.stop) break;
      if (plan.send_at_ns > now_ns()) std::this_thread::sleep_until(to_time_point(plan.send_at_ns));
      Slot* s = nullptr;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !idle_.empty(); });
        s = idle_.back();
        idle_.pop_back();
      }
      issue(*s, ticket, plan);
    }
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return idle_.size() == slots_.size(); });
  }

  void pace_closed_loop() {
    for (;;) {
      Slot* s = nullptr;
      {
        std::unique_lock lock(mu_);
        for (;;) {
          // Clients backing off rejoin once their time has come.
          const Nanos now = now_ns();
          while (!backing_off_.empty() && backing_off_.begin()->first <= now) {
            idle_.push_back(backing_off_.begin()->second);
            backing_off_.erase(backing_off_.begin());
          }
          if (!idle_.empty() || retired_ == slots_.size()) break;
          if (backing_off_.empty()) {
            cv_.wait(lock);
          } else {
            cv_.wait_until(lock, to_time_point(backing_off_.begin()->first));
          }
        }
        if (idle_.empty()) return;
        s = idle_.back();
        idle_.pop_back();
      }
      next_closed_loop(*s);
    }
  }

  void next_closed_loop(Slot& s) {
    const uint64_t ticket = next_ticket_.fetch_add(1);
    const TicketPlan plan = schedule_.plan(ticket, now_ns());
    if (plan.stop) {
      std::lock_guard lock(mu_);
      ++retired_;
      cv_.notify_all();
      return;
    }
    issue(s, ticket, plan);
  }

  void issue(Slot& s, uint64_t ticket, TicketPlan plan) {
    op_.start(s, ticket, plan.send_at_ns,
              [this, &s, plan](const grpc::Status& st) { on_done(s, plan, st); });
  }

  void on_done(Slot& s, const TicketPlan& plan, const grpc::Status& st) {
    const Nanos done = now_ns();
    if (!plan.measured) {
      rec_.record_unmeasured();
    } else if (st.ok()) {
      rec_.record_ok(plan.send_at_ns, done);
    } else {
      rec_.record_error(static_cast<int>(st.error_code()), st.error_message(), plan.send_at_ns,
                        done);
    }
    if (!schedule_.open_loop() && st.error_code() == grpc::StatusCode::UNAVAILABLE) {
      std::lock_guard lock(mu_);
      backing_off_.emplace(done + kUnavailableBackoffNs, &s);
      cv_.notify_all();
      return;
    }
    thread_local int depth = 0;
    if (!schedule_.open_loop() && depth < kMaxInlineDepth) {
      ++depth;
      next_closed_loop(s);
      --depth;
      return;
    }
    std::lock_guard lock(mu_);
    idle_.push_back(&s);
    cv_.notify_all();
  }

  Operation& op_;
  Recorder& rec_;
  std::vector<std::unique_ptr<Slot>>& slots_;
  Schedule schedule_;
  std::atomic<uint64_t> next_ticket_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Slot*> idle_;  // at most slots_.size()
  std::multimap<Nanos, Slot*> backing_off_;  // closed loop: ready time -> client
  size_t retired_ = 0;
};

/// Prints a progress line to stderr once a second while alive, if stderr is a
/// terminal.
class Progress {
 public:
  Progress(const Recorder& rec, const char* what) : rec_(rec), what_(what) {
    if (isatty(STDERR_FILENO)) thread_ = std::thread([this] { loop(); });
  }
  ~Progress() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

 private:
  void loop() {
    uint64_t last = 0;
    std::unique_lock lock(mu_);
    for (int second = 1; !cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
         ++second) {
      const uint64_t done = rec_.completed();
      std::fprintf(stderr, "raftkv-bench: %3d s  %s %10llu  %9.0f/s  errors %llu\n", second, what_,
                   static_cast<unsigned long long>(done), static_cast<double>(done - last),
                   static_cast<unsigned long long>(rec_.failed()));
      last = done;
    }
  }

  const Recorder& rec_;
  const char* what_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

std::unique_ptr<Operation> make_operation(const BenchOptions& o, Connections& c) {
  switch (o.workload) {
    case Workload::kPut:
      return std::make_unique<PutOperation>(o, c);
    case Workload::kRange:
      return std::make_unique<RangeOperation>(o, c);
    case Workload::kMixed:
      return std::make_unique<MixedOperation>(o, c);
    case Workload::kTxnCas:
      return std::make_unique<TxnCasOperation>(o, c);
    case Workload::kWatch:
      return std::make_unique<StampedPutOperation>(o, c);
    case Workload::kLeaseKeepAlive:
      return std::make_unique<LeaseKeepAliveOperation>(o, c);
    case Workload::kFsync:
      break;
  }
  RAFTKV_CHECK_MSG(false, "no gRPC operation for this workload");
  return nullptr;
}

constexpr Nanos kWatchCreateTimeoutNs = 10'000'000'000;
constexpr Nanos kWatchDrainTimeoutNs = 5'000'000'000;

}  // namespace

Result<Report> run_workload(const BenchOptions& o) {
  RAFTKV_CHECK(o.workload != Workload::kFsync);
  Result<Connections> conns = connect(o);
  if (!conns) return conns.status();
  Connections& c = *conns;

  std::vector<std::unique_ptr<Slot>> slots;
  std::random_device seed;
  for (uint32_t i = 0; i < o.clients; ++i) {
    auto s = std::make_unique<Slot>();
    s->conn = i % o.conns;
    s->rng.seed((static_cast<uint64_t>(seed()) << 32) ^ seed() ^ i);
    slots.push_back(std::move(s));
  }
  std::unique_ptr<Operation> op = make_operation(o, c);
  if (Status st = op->setup(slots); !st.is_ok()) {
    op->teardown();  // closes what setup opened before failing
    return st;
  }

  // The watch workload: watchers first, all created before the writer starts.
  Recorder events;
  std::atomic<uint64_t> events_received{0};
  std::atomic<uint32_t> created{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  if (o.workload == Workload::kWatch) {
    for (uint32_t i = 0; i < o.watchers; ++i) {
      watchers.push_back(std::make_unique<Watcher>(*c.watch[i % o.conns], o.key_prefix, events,
                                                   events_received, created, INT64_MAX));
    }
    const Nanos deadline = now_ns() + kWatchCreateTimeoutNs;
    while (created.load() < o.watchers && now_ns() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (created.load() < o.watchers) {
      for (auto& w : watchers) w->close();
      op->teardown();
      return Status::unavailable("watch: only " + std::to_string(created.load()) + " of " +
                                 std::to_string(o.watchers) + " watches were created in 10 s");
    }
  }

  Recorder rec;
  Report report;
  report.options = o;
  const double cpu_before = cpu_seconds();
  const Nanos start = now_ns();
  Driver driver(o, *op, rec, slots, start);
  for (auto& w : watchers) w->set_measure_from(driver.schedule().measure_start_ns());
  {
    Progress progress(o.workload == Workload::kWatch ? events : rec,
                      o.workload == Workload::kWatch ? "events" : "done");
    driver.run();
    if (o.workload == Workload::kWatch) {
      // Every put should reach every watcher; wait (bounded) for the tail.
      const auto& writer = static_cast<const StampedPutOperation&>(*op);
      const uint64_t expected = writer.puts_ok() * o.watchers;
      const Nanos deadline = now_ns() + kWatchDrainTimeoutNs;
      while (events_received.load() < expected && now_ns() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      report.counters["events_expected"] = expected;
      report.counters["events_missing"] = expected - std::min(expected, events_received.load());
    }
  }
  for (auto& w : watchers) w->close();
  op->teardown();
  report.client_cpu_s = cpu_seconds() - cpu_before;
  op->add_counters(report.counters);
  if (o.workload == Workload::kWatch) {
    report.main = events.collect();
    report.writes = rec.collect();
  } else {
    report.main = rec.collect();
  }
  return report;
}

}  // namespace raftkv::bench
