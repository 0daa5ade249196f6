#include "transport/transport.h"

#include "base/crc32c.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <random>
#include <set>
#include <thread>
#include <utility>

#include "base/check.h"
#include "raftkv/peer.grpc.pb.h"

namespace raftkv::transport {

using Clock = std::chrono::steady_clock;

namespace {

// Log the 1st, 2nd, 4th, 8th... occurrence of a repeated event, so a flood
// of drops is visible without flooding the log.
bool power_of_two(uint64_t n) {
  return n != 0 && (n & (n - 1)) == 0;
}

grpc::Status to_grpc(const Status& s) {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  switch (s.code()) {
    case Code::kOk:
      return grpc::Status::OK;
    case Code::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case Code::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case Code::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case Code::kOutOfRange:
      code = grpc::StatusCode::OUT_OF_RANGE;
      break;
    case Code::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case Code::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case Code::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case Code::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case Code::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case Code::kCorruption:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case Code::kIOError:
      code = grpc::StatusCode::INTERNAL;
      break;
    case Code::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case Code::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    case Code::kInternal:
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  return grpc::Status(code, s.message());
}

// Bytes a queued message is charged against the per-peer queue bound.
uint64_t approx_bytes(const raft::Message& m) {
  uint64_t n = 64 + m.context.size();
  for (const raft::Entry& e : m.entries) n += e.size_bytes();
  return n;
}

bool is_https(const std::string& url) { return url.rfind("https://", 0) == 0; }

// `url` passed grpc_target_from_url (add_peer/update_peer check it).
std::shared_ptr<grpc::Channel> make_channel(const std::string& url, const TransportOptions& o) {
  const std::string target = *grpc_target_from_url(url);
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(-1);
  args.SetMaxReceiveMessageSize(-1);
  // A private subchannel pool and our own backoff bounds: gRPC's defaults
  // (shared subchannels, reconnection backoff up to 120 s) would delay noticing
  // that a restarted peer is back far beyond backoff_max_ms.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(o.backoff_initial_ms));
  // gRPC uses the "min reconnect backoff" as the deadline of one connection
  // attempt (TCP + HTTP/2 handshake): it must be the connect timeout, not the
  // first backoff step, or a slow handshake could never succeed.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(o.connect_timeout_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(o.backoff_max_ms));
  return grpc::CreateCustomChannel(
      target, is_https(url) ? o.tls_credentials : grpc::InsecureChannelCredentials(), args);
}

}  // namespace

Result<std::string> grpc_target_from_url(const std::string& url) {
  const size_t scheme_len = url.rfind("http://", 0) == 0 ? 7 : is_https(url) ? 8 : 0;
  if (scheme_len == 0) {
    return Status::invalid_argument("peer URL " + url + " must start with http:// or https://");
  }
  std::string hostport = url.substr(scheme_len);
  if (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  const size_t colon = hostport.rfind(':');
  if (hostport.find('/') != std::string::npos || colon == std::string::npos || colon == 0 ||
      colon + 1 == hostport.size()) {
    return Status::invalid_argument("peer URL " + url +
                                    " must have the form http(s)://host:port");
  }
  for (size_t i = colon + 1; i < hostport.size(); ++i) {
    if (hostport[i] < '0' || hostport[i] > '9') {
      return Status::invalid_argument("peer URL " + url + " has a non-numeric port");
    }
  }
  return hostport;
}

// ---------------------------------------------------------------------------
// Reporter: runs the unreachable and snapshot-status callbacks on its own
// thread, so they never run on the caller of send() (the raft loop) and never
// while a sender thread is blocked in a write.

class Reporter {
 public:
  Reporter(UnreachableFn unreachable, SnapshotStatusFn snapshot_status)
      : unreachable_(std::move(unreachable)), snapshot_status_(std::move(snapshot_status)) {
    thread_ = std::thread([this] { run(); });
  }
  ~Reporter() { stop(); }

  /// Deduplicated while a report for `peer` is pending.
  void unreachable(raft::NodeId peer) {
    std::lock_guard lk(mu_);
    if (stopping_ || !unreachable_) return;
    if (pending_unreachable_.insert(peer).second) cv_.notify_one();
  }

  void snapshot_status(raft::NodeId peer, bool ok) {
    std::lock_guard lk(mu_);
    if (stopping_ || !snapshot_status_) return;
    // At most one transfer per peer is in flight, so this stays small; the
    // bound only guards against a bug.
    RAFTKV_CHECK(snapshot_events_.size() < kMaxSnapshotEvents);
    snapshot_events_.emplace_back(peer, ok);
    cv_.notify_one();
  }

  /// Discards pending reports and joins the thread. REQUIRES: not called from a callback.
  void stop() {
    {
      std::lock_guard lk(mu_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  static constexpr size_t kMaxSnapshotEvents = 1 << 16;

  void run() {
    std::unique_lock lk(mu_);
    while (true) {
      cv_.wait(lk, [&] {
        return stopping_ || !pending_unreachable_.empty() || !snapshot_events_.empty();
      });
      if (stopping_) return;
      std::set<raft::NodeId> unreachable = std::move(pending_unreachable_);
      pending_unreachable_.clear();
      std::deque<std::pair<raft::NodeId, bool>> snaps = std::move(snapshot_events_);
      snapshot_events_.clear();
      lk.unlock();
      for (raft::NodeId p : unreachable) unreachable_(p);
      for (const auto& [p, ok] : snaps) snapshot_status_(p, ok);
      lk.lock();
    }
  }

  const UnreachableFn unreachable_;
  const SnapshotStatusFn snapshot_status_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<raft::NodeId> pending_unreachable_;
  std::deque<std::pair<raft::NodeId, bool>> snapshot_events_;
  bool stopping_ = false;
  std::thread thread_;
};

// ---------------------------------------------------------------------------
// PeerSender: the queue, stream and threads for one remote member.

class PeerSender {
 public:
  PeerSender(Transport& t, raft::NodeId id, std::string target)
      : t_(t), id_(id), target_(std::move(target)), backoff_ms_(t.options_.backoff_initial_ms) {
    thread_ = std::thread([this] { run(); });
  }
  ~PeerSender() { stop(); }

  /// Queues non-snapshot messages; drops (and reports) when full or down.
  void enqueue(std::vector<raft::Message>& msgs) {
    uint64_t dropped_down = 0, dropped_full = 0;
    {
      std::lock_guard lk(mu_);
      for (raft::Message& m : msgs) {
        if (state_ == State::kDown || stopping_) {
          ++dropped_down;
          continue;
        }
        const uint64_t size = approx_bytes(m);
        if (queue_.size() >= t_.options_.max_queue_messages ||
            queue_bytes_ + size > t_.options_.max_queue_bytes) {
          ++dropped_full;
          continue;
        }
        queue_bytes_ += size;
        queue_.emplace_back(std::move(m), size);
      }
    }
    cv_.notify_one();
    if (dropped_down + dropped_full == 0) return;
    t_.counters_.dropped_peer_down += dropped_down;
    const uint64_t total_full = (t_.counters_.dropped_queue_full += dropped_full);
    if (dropped_full > 0 && power_of_two(total_full)) {
      spdlog::warn("transport: queue to member {} full; {} messages dropped so far",
                   hex_id(id_.value()), total_full);
    }
    t_.reporter_->unreachable(id_);
  }

  /// Starts a chunked transfer of the snapshot in `m` unless one is running.
  void start_snapshot(raft::Message&& m) {
    std::lock_guard lk(mu_);
    if (stopping_ || snapshot_busy_) {
      ++t_.counters_.snapshots_failed;
      spdlog::warn("transport: snapshot to member {} refused: {}", hex_id(id_.value()),
                   stopping_ ? "stopping" : "another transfer is in progress");
      t_.reporter_->snapshot_status(id_, false);
      return;
    }
    // The previous transfer has cleared snapshot_busy_ as its last action.
    if (snapshot_thread_.joinable()) snapshot_thread_.join();
    snapshot_busy_ = true;
    snapshot_thread_ = std::thread([this, msg = std::move(m)]() mutable { run_snapshot(msg); });
  }

  void update_target(std::string target) {
    {
      std::lock_guard lk(mu_);
      target_ = std::move(target);
      ++target_gen_;
      state_ = State::kConnecting;  // try the new address right away
    }
    cv_.notify_one();
  }

  void stop() {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
      if (stream_ctx_) stream_ctx_->TryCancel();
      if (snapshot_ctx_) snapshot_ctx_->TryCancel();
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    if (snapshot_thread_.joinable()) snapshot_thread_.join();
  }

 private:
  enum class State { kConnecting, kUp, kDown };

  struct Queued {
    Queued(raft::Message m, uint64_t b) : msg(std::move(m)), bytes(b) {}
    raft::Message msg;
    uint64_t bytes;
  };

  // Waits until `channel` is connected, refused, the deadline passes or we stop.
  Status connect(const std::shared_ptr<grpc::Channel>& channel, const std::string& target) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(t_.options_.connect_timeout_ms);
    grpc_connectivity_state st = channel->GetState(/*try_to_connect=*/true);
    // Bounded: each round waits at most 100 ms and the whole loop ends at the deadline.
    while (st != GRPC_CHANNEL_READY) {
      if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN) {
        return Status::unavailable("cannot connect to " + target);
      }
      {
        std::lock_guard lk(mu_);
        if (stopping_) return Status::unavailable("stopping");
      }
      const auto now = Clock::now();
      if (now >= deadline) return Status::unavailable("timed out connecting to " + target);
      // gRPC deadlines are system_clock based; a relative 100 ms slice is all we need.
      const auto slice = std::min<Clock::duration>(deadline - now, std::chrono::milliseconds(100));
      channel->WaitForStateChange(st, std::chrono::system_clock::now() + slice);
      st = channel->GetState(true);
    }
    return Status::ok();
  }

  Status open_stream(const std::string& target, uint64_t gen) {
    auto channel = make_channel(target, t_.options_);
    RAFTKV_RETURN_IF_ERROR(connect(channel, target));
    stub_ = raftkvpb::Peer::NewStub(channel);
    {
      std::lock_guard lk(mu_);
      if (stopping_) return Status::unavailable("stopping");
      stream_ctx_ = std::make_unique<grpc::ClientContext>();
    }
    writer_ = stub_->Messages(stream_ctx_.get(), &response_);
    stream_gen_ = gen;
    return Status::ok();
  }

  // Ends the current stream (if any) and returns how it ended.
  grpc::Status close_stream() {
    if (!writer_) return grpc::Status::OK;
    writer_->WritesDone();
    grpc::Status st = writer_->Finish();
    std::lock_guard lk(mu_);
    writer_.reset();
    stream_ctx_.reset();
    stub_.reset();
    return st;
  }

  // A write failed or no connection: drop the batch and everything queued,
  // report the peer unreachable and back off before the next attempt.
  void mark_down(uint64_t lost, const std::string& why, bool refused = false) {
    std::mt19937_64& rng = rng_;
    uint64_t dropped = lost;
    bool was_up;
    {
      std::lock_guard lk(mu_);
      was_up = !had_failure_;
      had_failure_ = true;
      dropped += queue_.size();
      queue_.clear();
      queue_bytes_ = 0;
      state_ = State::kDown;
      // Full jitter in the upper half: [backoff/2, backoff].
      std::uniform_int_distribution<uint32_t> jitter(backoff_ms_ / 2, backoff_ms_);
      retry_at_ = Clock::now() + std::chrono::milliseconds(jitter(rng));
      backoff_ms_ =
          std::min<uint64_t>(static_cast<uint64_t>(backoff_ms_) * 2, t_.options_.backoff_max_ms);
    }
    t_.counters_.dropped_peer_down += dropped;
    // Logged once per outage (the first failure); retries log at debug level.
    if (was_up && refused) {
      spdlog::error("transport: member {} refused our messages: {}", hex_id(id_.value()), why);
    } else if (was_up) {
      spdlog::warn("transport: member {} unreachable: {}", hex_id(id_.value()), why);
    } else {
      spdlog::debug("transport: member {} still unreachable: {}", hex_id(id_.value()), why);
    }
    t_.reporter_->unreachable(id_);
  }

  void run() {
    raftkvpb::MessageBatch batch;
    while (true) {
      std::vector<raft::Message> msgs;
      std::string target;
      uint64_t gen;
      bool reopen;
      {
        std::unique_lock lk(mu_);
        if (state_ == State::kDown) {
          cv_.wait_until(lk, retry_at_, [&] { return stopping_ || state_ != State::kDown; });
          if (stopping_) break;
          if (state_ == State::kDown && Clock::now() < retry_at_) continue;
          state_ = State::kConnecting;
        }
        cv_.wait(lk, [&] { return stopping_ || !queue_.empty() || target_gen_ != stream_gen_; });
        if (stopping_) break;
        reopen = target_gen_ != stream_gen_;
        // Everything queued, up to max_batch_bytes (at least one message).
        uint64_t bytes = 0;
        while (!queue_.empty() &&
               (msgs.empty() || bytes + queue_.front().bytes <= t_.options_.max_batch_bytes)) {
          bytes += queue_.front().bytes;
          queue_bytes_ -= queue_.front().bytes;
          msgs.push_back(std::move(queue_.front().msg));
          queue_.pop_front();
        }
        target = target_;
        gen = target_gen_;
      }
      if (reopen) {
        (void)close_stream();
        stream_gen_ = gen;
      }
      if (msgs.empty()) continue;
      if (!writer_) {
        Status s = open_stream(target, gen);
        if (!s.is_ok()) {
          mark_down(msgs.size(), s.message());
          continue;
        }
      }
      batch.Clear();
      encode_header(t_.options_.cluster_id, t_.options_.local_id, id_, batch.mutable_header());
      batch.mutable_messages()->Reserve(static_cast<int>(msgs.size()));
      for (const raft::Message& m : msgs) encode_message(m, batch.add_messages());
      if (!writer_->Write(batch)) {
        grpc::Status st = close_stream();
        // FAILED_PRECONDITION: the peer refused us (other cluster, other
        // protocol version); an operator must act, so it is an error.
        mark_down(msgs.size(), st.error_message(),
                  st.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
        continue;
      }
      t_.counters_.messages_sent += msgs.size();
      ++t_.counters_.batches_sent;
      std::lock_guard lk(mu_);
      if (state_ == State::kConnecting) state_ = State::kUp;
      backoff_ms_ = t_.options_.backoff_initial_ms;
      if (had_failure_) {
        had_failure_ = false;
        spdlog::info("transport: member {} reachable again", hex_id(id_.value()));
      }
    }
    (void)close_stream();
  }

  Status transfer_snapshot(const raft::Message& m) {
    std::string target;
    {
      std::lock_guard lk(mu_);
      target = target_;
    }
    auto channel = make_channel(target, t_.options_);
    RAFTKV_RETURN_IF_ERROR(connect(channel, target));
    auto stub = raftkvpb::Peer::NewStub(channel);
    grpc::ClientContext* ctx;
    {
      std::lock_guard lk(mu_);
      if (stopping_) return Status::unavailable("stopping");
      snapshot_ctx_ = std::make_unique<grpc::ClientContext>();
      ctx = snapshot_ctx_.get();
    }
    raftkvpb::SnapshotAck ack;
    auto writer = stub->SendSnapshot(ctx, &ack);
    const std::string_view data = m.snapshot->data;
    const uint64_t chunk_bytes = std::max<uint64_t>(1, t_.options_.snapshot_chunk_bytes);
    uint64_t offset = 0;
    uint32_t running = 0;
    raftkvpb::SnapshotChunk chunk;
    // Bounded: each round advances offset by at least one byte (or ends on
    // the single chunk of an empty image).
    do {
      chunk.Clear();
      if (offset == 0) {
        encode_header(t_.options_.cluster_id, t_.options_.local_id, id_, chunk.mutable_header());
        encode_message(m, chunk.mutable_message(), /*with_snapshot_data=*/false);
        chunk.set_total_bytes(data.size());
      }
      const std::string_view piece = data.substr(offset, chunk_bytes);
      chunk.set_offset(offset);
      chunk.set_data(piece.data(), piece.size());
      chunk.set_crc32c(crc32c(piece));
      running = crc32c_extend(running, piece.data(), piece.size());
      offset += piece.size();
      if (offset == data.size()) {
        chunk.set_last(true);
        chunk.set_total_crc32c(running);
      }
      if (!writer->Write(chunk)) break;
    } while (offset < data.size());
    writer->WritesDone();
    grpc::Status st = writer->Finish();
    if (!st.ok()) return Status::unavailable(st.error_message());
    return Status::ok();
  }

  void run_snapshot(const raft::Message& m) {
    Status s = transfer_snapshot(m);
    if (s.is_ok()) {
      ++t_.counters_.snapshots_sent;
      spdlog::info("transport: sent snapshot at index {} ({} bytes) to member {}",
                   m.snapshot->metadata.index.value(), m.snapshot->data.size(),
                   hex_id(id_.value()));
    } else {
      ++t_.counters_.snapshots_failed;
      spdlog::warn("transport: snapshot to member {} failed: {}", hex_id(id_.value()), s.message());
    }
    t_.reporter_->snapshot_status(id_, s.is_ok());
    std::lock_guard lk(mu_);
    snapshot_ctx_.reset();
    snapshot_busy_ = false;  // last action: start_snapshot may now join this thread
  }

  Transport& t_;
  const raft::NodeId id_;

  std::mutex mu_;  // guards everything below up to the sender-thread-only part
  std::condition_variable cv_;
  std::string target_;
  uint64_t target_gen_ = 0;
  std::deque<Queued> queue_;
  uint64_t queue_bytes_ = 0;
  State state_ = State::kConnecting;
  Clock::time_point retry_at_;
  uint32_t backoff_ms_;
  bool had_failure_ = false;
  bool stopping_ = false;
  bool snapshot_busy_ = false;
  std::unique_ptr<grpc::ClientContext> stream_ctx_;    // set/reset under mu_ for TryCancel
  std::unique_ptr<grpc::ClientContext> snapshot_ctx_;  // idem

  // Sender thread only.
  std::unique_ptr<raftkvpb::Peer::Stub> stub_;
  std::unique_ptr<grpc::ClientWriter<raftkvpb::MessageBatch>> writer_;
  raftkvpb::MessagesResponse response_;
  uint64_t stream_gen_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};

  std::thread thread_;
  std::thread snapshot_thread_;
};

// ---------------------------------------------------------------------------
// PeerService: the receiving side.

// Messages is served with gRPC's callback API: each batch is decoded and
// handed to the raft loop on the gRPC thread that read it, with no thread of
// its own per stream to wake (SendSnapshot, which writes files, keeps one).
class PeerService final
    : public raftkvpb::Peer::WithCallbackMethod_Messages<raftkvpb::Peer::Service> {
 public:
  explicit PeerService(Transport& t) : t_(t) {}

  grpc::ServerReadReactor<raftkvpb::MessageBatch>* Messages(
      grpc::CallbackServerContext* ctx, raftkvpb::MessagesResponse* resp) override {
    return new MessagesReader(*this, ctx, resp);
  }

  grpc::Status SendSnapshot(grpc::ServerContext* ctx,
                            grpc::ServerReader<raftkvpb::SnapshotChunk>* reader,
                            raftkvpb::SnapshotAck* ack) override {
    Active active(*this, ctx, /*snapshot=*/true);
    if (!active.admitted) {
      ++t_.counters_.snapshots_rejected;
      return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                          "transport stopped or too many snapshot transfers in progress");
    }
    Status s = receive_snapshot(reader, ack);
    if (!s.is_ok()) {
      ++t_.counters_.snapshots_rejected;
      spdlog::warn("transport: incoming snapshot refused: {}", s.to_string());
      return to_grpc(s);
    }
    ++t_.counters_.snapshots_received;
    return grpc::Status::OK;
  }

  /// Refuses new streams, cancels the running ones and waits until every
  /// handler has returned, so no deliver callback runs afterwards.
  void stop() {
    std::unique_lock lk(mu_);
    stopped_ = true;
    for (grpc::ServerContextBase* c : active_) c->TryCancel();
    cv_.wait(lk, [&] { return active_.empty(); });
  }

 private:
  // Registers a running handler for stop(); false once stopped (or when too
  // many snapshot transfers run).
  bool admit(grpc::ServerContextBase* ctx, bool snapshot) {
    std::lock_guard lk(mu_);
    if (stopped_) return false;
    if (snapshot) {
      if (snapshot_receives_ >= t_.options_.max_concurrent_snapshot_receives) return false;
      ++snapshot_receives_;
    }
    active_.insert(ctx);
    return true;
  }
  void release(grpc::ServerContextBase* ctx, bool snapshot) {
    std::lock_guard lk(mu_);
    active_.erase(ctx);
    if (snapshot) --snapshot_receives_;
    cv_.notify_all();
  }
  struct Active {
    Active(PeerService& s, grpc::ServerContextBase* c, bool snapshot)
        : svc(s), ctx(c), is_snapshot(snapshot), admitted(s.admit(c, snapshot)) {}
    ~Active() {
      if (admitted) svc.release(ctx, is_snapshot);
    }
    PeerService& svc;
    grpc::ServerContextBase* ctx;
    bool is_snapshot;
    bool admitted;
  };

  // One Messages stream: reads batches until the sender ends it, delivering
  // each message as its batch arrives. Deletes itself when gRPC is done.
  class MessagesReader final : public grpc::ServerReadReactor<raftkvpb::MessageBatch> {
   public:
    MessagesReader(PeerService& svc, grpc::CallbackServerContext* ctx,
                   raftkvpb::MessagesResponse* resp)
        : svc_(svc), ctx_(ctx), resp_(resp), admitted_(svc.admit(ctx, false)) {
      if (!admitted_) {
        Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "transport stopped"));
        return;
      }
      StartRead(&batch_);
    }

    void OnReadDone(bool ok) override {
      if (!ok) {  // the sender ended the stream (or it broke)
        resp_->set_batches_received(batches_);
        Finish(grpc::Status::OK);
        return;
      }
      Status s = svc_.deliver_batch(batch_);
      if (!s.is_ok()) {
        Finish(svc_.reject(s, ctx_));
        return;
      }
      ++batches_;
      StartRead(&batch_);
    }

    void OnDone() override {
      if (admitted_) svc_.release(ctx_, false);
      delete this;
    }

   private:
    PeerService& svc_;
    grpc::CallbackServerContext* ctx_;
    raftkvpb::MessagesResponse* resp_;
    const bool admitted_;
    raftkvpb::MessageBatch batch_;
    uint64_t batches_ = 0;
  };

  // Checks one received batch and hands its messages to the raft loop.
  Status deliver_batch(const raftkvpb::MessageBatch& batch) {
    RAFTKV_RETURN_IF_ERROR(
        check_header(batch.header(), t_.options_.cluster_id, t_.options_.local_id));
    const raft::NodeId from(batch.header().from());
    for (const raftkvpb::Message& pm : batch.messages()) {
      Result<raft::Message> m = decode_message(pm, from, t_.options_.local_id, t_.options_.limits);
      if (!m) return m.status();
      if (m->type == raft::MessageType::kSnapshot) {
        return Status::invalid_argument("snapshots must travel over SendSnapshot");
      }
      if (t_.callbacks_.deliver(std::move(*m))) {
        ++t_.counters_.messages_delivered;
      } else {
        const uint64_t n = ++t_.counters_.inbound_dropped;
        if (power_of_two(n)) {
          spdlog::warn("transport: inbox full; {} incoming messages dropped so far", n);
        }
      }
    }
    ++t_.counters_.batches_received;
    return Status::ok();
  }

  grpc::Status reject(const Status& s, grpc::ServerContextBase* ctx) {
    // A refused sender reconnects after its backoff; log the 1st, 2nd, 4th...
    // refusal so a misconfigured peer is visible without flooding the log.
    if (!power_of_two(++t_.counters_.inbound_rejected)) return to_grpc(s);
    if (s.code() == Code::kFailedPrecondition) {
      spdlog::error("transport: refusing peer stream from {}: {}", ctx->peer(), s.message());
    } else {
      spdlog::warn("transport: refusing peer stream from {}: {}", ctx->peer(), s.to_string());
    }
    return to_grpc(s);
  }

  Status receive_snapshot(grpc::ServerReader<raftkvpb::SnapshotChunk>* reader,
                          raftkvpb::SnapshotAck* ack) {
    raftkvpb::SnapshotChunk chunk;
    if (!reader->Read(&chunk)) return Status::corruption("snapshot stream ended before its header");
    RAFTKV_RETURN_IF_ERROR(
        check_header(chunk.header(), t_.options_.cluster_id, t_.options_.local_id));
    const raft::NodeId from(chunk.header().from());
    Result<raft::Message> m =
        decode_message(chunk.message(), from, t_.options_.local_id, t_.options_.limits);
    if (!m) return m.status();
    if (m->type != raft::MessageType::kSnapshot) {
      return Status::invalid_argument("SendSnapshot carries a non-snapshot message");
    }
    if (!m->snapshot->data.empty()) {
      return Status::corruption("snapshot data must travel in chunks, not in the message");
    }
    const uint64_t total = chunk.total_bytes();
    Result<std::unique_ptr<SnapshotWriter>> w = t_.sink_->open(from, m->snapshot->metadata, total);
    if (!w) return w.status();
    SnapshotWriter& writer = **w;
    uint64_t offset = 0;
    uint32_t running = 0;
    // Bounded: every chunk but the last must advance offset, and offset is
    // capped at total; the stream ends at `last` or when the sender stops.
    while (true) {
      if (chunk.offset() != offset) {
        return Status::corruption("snapshot chunk at offset " + std::to_string(chunk.offset()) +
                                  ", expected " + std::to_string(offset));
      }
      const std::string& data = chunk.data();
      if (data.size() > t_.options_.max_receive_chunk_bytes || data.size() > total - offset) {
        return Status::corruption("snapshot chunk at offset " + std::to_string(offset) +
                                  " has an invalid size " + std::to_string(data.size()));
      }
      if (data.empty() && !chunk.last()) {
        return Status::corruption("empty snapshot chunk that is not the last");
      }
      if (crc32c(data) != chunk.crc32c()) {
        return Status::corruption("snapshot chunk at offset " + std::to_string(offset) +
                                  " failed its checksum");
      }
      RAFTKV_RETURN_IF_ERROR(writer.append(data));
      running = crc32c_extend(running, data.data(), data.size());
      offset += data.size();
      if (chunk.last()) break;
      if (!reader->Read(&chunk)) {
        return Status::corruption("snapshot stream ended at offset " + std::to_string(offset) +
                                  " of " + std::to_string(total));
      }
      if (chunk.has_header() || chunk.has_message()) {
        return Status::corruption("snapshot header repeated in a later chunk");
      }
    }
    if (offset != total) {
      return Status::corruption("snapshot ended at " + std::to_string(offset) + " of " +
                                std::to_string(total) + " bytes");
    }
    if (running != chunk.total_crc32c()) {
      return Status::corruption("snapshot image failed its whole-image checksum");
    }
    Result<std::string> data = writer.finish();
    if (!data) return data.status();
    m->snapshot->data = std::move(*data);
    if (!t_.callbacks_.deliver(std::move(*m))) {
      ++t_.counters_.inbound_dropped;
      return Status::resource_exhausted("receiver inbox full; snapshot dropped");
    }
    ++t_.counters_.messages_delivered;
    ack->set_bytes_received(total);
    return Status::ok();
  }

  Transport& t_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<grpc::ServerContextBase*> active_;
  uint32_t snapshot_receives_ = 0;
  bool stopped_ = false;
};

// ---------------------------------------------------------------------------
// Transport

Transport::Transport(TransportOptions options, TransportCallbacks callbacks,
                     std::shared_ptr<SnapshotSink> sink)
    : options_(std::move(options)), callbacks_(std::move(callbacks)), sink_(std::move(sink)) {
  RAFTKV_CHECK(options_.local_id != raft::kNoNode);
  RAFTKV_CHECK(callbacks_.deliver != nullptr);
  RAFTKV_CHECK(sink_ != nullptr);
  RAFTKV_CHECK(options_.max_batch_bytes > 0 && options_.backoff_initial_ms > 0 &&
               options_.backoff_initial_ms <= options_.backoff_max_ms);
  reporter_ = std::make_unique<Reporter>(callbacks_.unreachable, callbacks_.snapshot_status);
  service_ = std::make_unique<PeerService>(*this);
}

Transport::~Transport() {
  stop();
}

void Transport::register_service(grpc::ServerBuilder& builder) {
  builder.RegisterService(service_.get());
}

Status Transport::add_peer(raft::NodeId id, const std::string& url) {
  if (id == raft::kNoNode || id == options_.local_id) {
    return Status::invalid_argument("cannot add member " + hex_id(id.value()) + " as a peer");
  }
  RAFTKV_RETURN_IF_ERROR(check_peer_url(url));
  std::lock_guard lk(mu_);
  if (stopped_) return Status::unavailable("transport stopped");
  if (peers_.count(id) != 0) {
    return Status::already_exists("member " + hex_id(id.value()) + " is already a peer");
  }
  peers_.emplace(id, std::make_unique<PeerSender>(*this, id, url));
  return Status::ok();
}

Status Transport::update_peer(raft::NodeId id, const std::string& url) {
  RAFTKV_RETURN_IF_ERROR(check_peer_url(url));
  std::lock_guard lk(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end())
    return Status::not_found("member " + hex_id(id.value()) + " is not a peer");
  it->second->update_target(url);
  return Status::ok();
}

Status Transport::check_peer_url(const std::string& url) const {
  Result<std::string> target = grpc_target_from_url(url);
  if (!target) return target.status();
  if (is_https(url) && options_.tls_credentials == nullptr) {
    return Status::invalid_argument("peer URL " + url +
                                    " needs TLS: set --peer-cert-file/--peer-key-file or "
                                    "--peer-auto-tls");
  }
  return Status::ok();
}

void Transport::remove_peer(raft::NodeId id) {
  std::unique_ptr<PeerSender> sender;
  {
    std::lock_guard lk(mu_);
    auto it = peers_.find(id);
    if (it == peers_.end()) return;
    sender = std::move(it->second);
    peers_.erase(it);
  }
  sender.reset();  // stops and joins outside mu_
}

void Transport::send(std::vector<raft::Message> msgs) {
  // Group by recipient, keeping each recipient's order.
  std::map<raft::NodeId, std::vector<raft::Message>> by_peer;
  for (raft::Message& m : msgs) by_peer[m.to].push_back(std::move(m));
  std::lock_guard lk(mu_);
  if (stopped_) return;
  for (auto& [to, list] : by_peer) {
    auto it = peers_.find(to);
    if (it == peers_.end()) {
      counters_.dropped_unknown_peer += list.size();
      continue;
    }
    std::vector<raft::Message> plain;
    plain.reserve(list.size());
    for (raft::Message& m : list) {
      if (m.type == raft::MessageType::kSnapshot) {
        RAFTKV_CHECK_MSG(m.snapshot.has_value(), "a kSnapshot message must carry a snapshot");
        it->second->start_snapshot(std::move(m));
      } else {
        plain.push_back(std::move(m));
      }
    }
    if (!plain.empty()) it->second->enqueue(plain);
  }
}

void Transport::stop() {
  std::map<raft::NodeId, std::unique_ptr<PeerSender>> peers;
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    peers.swap(peers_);
  }
  peers.clear();  // each sender stops and joins its threads
  service_->stop();
  reporter_->stop();
}

TransportStats Transport::stats() const {
  TransportStats s;
  s.messages_sent = counters_.messages_sent;
  s.batches_sent = counters_.batches_sent;
  s.dropped_queue_full = counters_.dropped_queue_full;
  s.dropped_peer_down = counters_.dropped_peer_down;
  s.dropped_unknown_peer = counters_.dropped_unknown_peer;
  s.snapshots_sent = counters_.snapshots_sent;
  s.snapshots_failed = counters_.snapshots_failed;
  s.batches_received = counters_.batches_received;
  s.messages_delivered = counters_.messages_delivered;
  s.inbound_dropped = counters_.inbound_dropped;
  s.inbound_rejected = counters_.inbound_rejected;
  s.snapshots_received = counters_.snapshots_received;
  s.snapshots_rejected = counters_.snapshots_rejected;
  return s;
}

}  // namespace raftkv::transport
