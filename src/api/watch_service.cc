// etcdserverpb.Watch: the bidirectional Watch stream over the node's watch hub
// (kv/watch_hub.h), with etcd's semantics (docs/coordination.md, "Watches").
//
// One WatchStream reactor per call multiplexes any number of watchers. It
// pulls from the hub only when it can write (the callback API allows one
// outstanding write), so a slow client slows only its own stream: its
// watchers fall back to the hub's unsynced group and memory stays bounded.
// Order of what a stream writes: responses already built (the rest of a
// split batch), then control responses (created / canceled / progress
// request), then events of ready watchers round-robin, then due progress
// notifications. A `created` response therefore always precedes the
// watcher's events.
//
// Locks: registry mutex -> mailbox mutex -> stream mutex -> hub mutex. The
// hub calls a watcher's notify without its own mutex held.
#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include "api/service_util.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "kv/watch_hub.h"

namespace raftkv::api {
namespace {

using etcdserverpb::WatchRequest;
using etcdserverpb::WatchResponse;

// Control responses queued before the stream stops reading requests (a client
// that creates watchers without reading its responses waits for us).
constexpr size_t kMaxControlQueue = 256;
// Events taken from the hub per watcher per turn.
constexpr size_t kMaxEventsPerTake = 4096;

// etcd's messages (mvcc/watcher.go).
constexpr const char* kDuplicateWatchId = "mvcc: duplicate watch ID provided on the WatchStream";
constexpr const char* kNoLeader = "etcdserver: no leader";
// etcd puts its gRPC error's whole text into cancel_reason.
constexpr const char* kWatchPermissionDenied =
    "rpc error: code = PermissionDenied desc = etcdserver: permission denied";

class WatchStream;

/// The live streams of this member, for leader loss and progress ticks.
class StreamRegistry {
 public:
  void add(WatchStream* s) {
    std::lock_guard lk(mu_);
    streams_.insert(s);
  }
  void remove(WatchStream* s) {
    std::lock_guard lk(mu_);
    streams_.erase(s);
  }
  void on_leader_lost();
  void tick_progress();

 private:
  std::mutex mu_;
  std::set<WatchStream*> streams_;
};

/// What a hub notify reaches: the stream while it lives, nothing after.
struct Mailbox {
  std::mutex mu;
  WatchStream* stream = nullptr;
};

class WatchStream final : public grpc::ServerBidiReactor<WatchRequest, WatchResponse> {
 public:
  WatchStream(grpc::CallbackServerContext* ctx, server::Node* node, AuthChecker* auth,
              std::shared_ptr<StreamRegistry> registry, size_t max_response_bytes)
      : ctx_(ctx),
        auth_(auth),
        node_(node),
        hub_(node->watch_hub()),
        registry_(std::move(registry)),
        max_response_bytes_(max_response_bytes),
        mailbox_(std::make_shared<Mailbox>()) {
    mailbox_->stream = this;
    // etcdctl and clientv3's WithRequireLeader send "hasleader: true": such a
    // stream ends with "no leader" as soon as this member has none.
    for (const auto& [k, v] : ctx->client_metadata()) {
      if (std::string_view(k.data(), k.size()) == "hasleader" &&
          std::string_view(v.data(), v.size()) == "true") {
        require_leader_ = true;
      }
    }
    registry_->add(this);
    std::lock_guard lk(mu_);
    if (require_leader_ && node_->leader() == 0) {
      finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, kNoLeader));
      return;
    }
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    // Checked before taking the stream mutex: the check reads the store,
    // whose apply loop notifies streams.
    const bool permitted = !ok || !request_.has_create_request() || create_permitted();
    std::lock_guard lk(mu_);
    if (!ok || finishing_) {
      // Half-close: like etcd, keep sending until the client cancels.
      reading_ = false;
      return;
    }
    handle_request_locked(request_, permitted);
    if (control_.size() < kMaxControlQueue) {
      StartRead(&request_);
    } else {
      reading_ = false;
      read_paused_ = true;
    }
    pump_locked();
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard lk(mu_);
    write_in_flight_ = false;
    if (!ok && !finishing_) finish_locked(grpc::Status(grpc::StatusCode::CANCELLED, "stream broken"));
    if (pending_finish_) {
      Finish(*pending_finish_);
      pending_finish_.reset();
      return;
    }
    pump_locked();
  }

  void OnCancel() override {
    std::lock_guard lk(mu_);
    finish_locked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    registry_->remove(this);
    {
      std::lock_guard lk(mailbox_->mu);
      mailbox_->stream = nullptr;
    }
    for (const auto& [id, w] : watchers_) hub_.remove(w.hub_id);
    delete this;
  }

  /// A hub watcher of this stream has something to take (mailbox mutex held).
  void on_ready(int64_t watch_id) {
    std::lock_guard lk(mu_);
    auto it = watchers_.find(watch_id);
    if (it == watchers_.end()) return;
    it->second.ready = true;
    pump_locked();
  }

  /// The member lost its leader (registry mutex held).
  void on_leader_lost() {
    if (!require_leader_) return;
    std::lock_guard lk(mu_);
    finish_locked(grpc::Status(grpc::StatusCode::UNAVAILABLE, kNoLeader));
  }

  /// A progress-notify interval passed (registry mutex held). As etcd: a
  /// progress_notify watcher that got no events since the last tick is due.
  void on_progress_tick() {
    std::lock_guard lk(mu_);
    for (auto& [id, w] : watchers_) {
      if (!w.progress_notify) continue;
      if (!w.sent_since_tick) w.progress_due = true;
      w.sent_since_tick = false;
    }
    pump_locked();
  }

 private:
  struct Watcher {
    kv::WatcherId hub_id = 0;
    bool fragment = false;
    bool progress_notify = false;
    bool ready = false;            ///< The hub notified; take() until !more.
    bool progress_due = false;     ///< Send a progress notification when synced.
    bool sent_since_tick = false;  ///< Events went out since the last tick.
  };

  void fill(WatchResponse* r, int64_t watch_id, int64_t revision) {
    fill_header(node_, r->mutable_header());
    r->mutable_header()->set_revision(revision);
    r->set_watch_id(watch_id);
  }

  // Read permission on the whole range the create request watches, for the
  // token the stream was opened with (etcd's isWatchPermitted).
  bool create_permitted() const {
    const etcdserverpb::WatchCreateRequest& c = request_.create_request();
    const std::string key = c.key().empty() ? std::string(1, '\0') : c.key();
    return auth_->check_read(*ctx_, key, c.range_end()).is_ok();
  }

  void handle_request_locked(const WatchRequest& req, bool permitted) {
    switch (req.request_union_case()) {
      case WatchRequest::kCreateRequest: create_locked(req.create_request(), permitted); break;
      case WatchRequest::kCancelRequest: cancel_locked(req.cancel_request().watch_id()); break;
      case WatchRequest::kProgressRequest: progress_requested_ = true; break;
      case WatchRequest::REQUEST_UNION_NOT_SET: break;  // etcd ignores it too
    }
  }

  void create_locked(const etcdserverpb::WatchCreateRequest& c, bool permitted) {
    kv::WatchSpec spec;
    spec.key = c.key().empty() ? std::string(1, '\0') : c.key();  // "\0": the smallest key
    spec.range_end = c.range_end();
    spec.start_revision = c.start_revision();
    spec.prev_kv = c.prev_kv();
    for (int f : c.filters()) {
      if (f == etcdserverpb::WatchCreateRequest::NOPUT) spec.filter_put = true;
      if (f == etcdserverpb::WatchCreateRequest::NODELETE) spec.filter_delete = true;
    }
    WatchResponse resp;
    fill(&resp, -1, hub_.revision());
    resp.set_created(true);
    int64_t id = c.watch_id();
    Status st;
    // As etcd 3.4, any refusal (an expired or invalid token too) answers
    // created + canceled with watch id -1 and the permission-denied text; the
    // stream and its other watchers go on (permission is checked at
    // creation, not per event, as etcd).
    if (!permitted) {
      resp.set_canceled(true);
      resp.set_cancel_reason(kWatchPermissionDenied);
      control_.push_back(std::move(resp));
      return;
    }
    if (id != 0 && watchers_.count(id) != 0) {
      st = Status::invalid_argument(kDuplicateWatchId);
    }
    if (id == 0) {
      while (watchers_.count(next_watch_id_) != 0) ++next_watch_id_;
      id = next_watch_id_;
    }
    if (st.is_ok()) {
      std::weak_ptr<Mailbox> mailbox = mailbox_;
      Result<kv::WatcherId> hub_id = hub_.add(spec, [mailbox, id] {
        std::shared_ptr<Mailbox> m = mailbox.lock();
        if (!m) return;
        std::lock_guard lk(m->mu);
        if (m->stream != nullptr) m->stream->on_ready(id);
      });
      if (hub_id) {
        if (c.watch_id() == 0) ++next_watch_id_;
        Watcher& w = watchers_[id];
        w.hub_id = *hub_id;
        w.fragment = c.fragment();
        w.progress_notify = c.progress_notify();
        resp.set_watch_id(id);
      } else {
        st = hub_id.status();
      }
    }
    if (!st.is_ok()) {
      // etcd keeps the stream: the create is answered created + canceled.
      resp.set_canceled(true);
      resp.set_cancel_reason(st.message());
    }
    control_.push_back(std::move(resp));
  }

  void cancel_locked(int64_t watch_id) {
    auto it = watchers_.find(watch_id);
    if (it == watchers_.end()) return;  // etcd: unknown ids get no answer
    hub_.remove(it->second.hub_id);
    watchers_.erase(it);
    WatchResponse resp;
    fill(&resp, watch_id, hub_.revision());
    resp.set_canceled(true);
    control_.push_back(std::move(resp));
  }

  // Turns one delivery into responses: whole revisions per response, split
  // between revisions when a response would exceed the size limit, and
  // fragmented inside one when the watcher asked for `fragment`.
  void queue_delivery_locked(int64_t watch_id, const Watcher& w, kv::WatchDelivery& d) {
    const size_t first = out_.size();
    WatchResponse cur;
    size_t cur_bytes = 0;
    for (kv::RevisionEvents& rev : d.revisions) {
      size_t rev_bytes = 0;
      for (const mvccpb::Event& e : rev.events) rev_bytes += e.ByteSizeLong() + 8;
      if (cur.events_size() > 0 && cur_bytes + rev_bytes > max_response_bytes_) {
        out_.push_back(std::move(cur));
        cur = WatchResponse();
        cur_bytes = 0;
      }
      fill(&cur, watch_id, rev.revision);
      for (mvccpb::Event& e : rev.events) *cur.add_events() = std::move(e);
      cur_bytes += rev_bytes;
    }
    if (cur.events_size() > 0) out_.push_back(std::move(cur));
    if (out_.size() > first) out_.back().mutable_header()->set_revision(d.revision);
    if (w.fragment) fragment_locked(first);
  }

  // etcd's fragmenting: a response over the limit with two or more events
  // goes out as several, all but the last with fragment = true; the client
  // joins them.
  void fragment_locked(size_t first) {
    std::deque<WatchResponse> done;
    for (size_t i = first; i < out_.size(); ++i) {
      WatchResponse& r = out_[i];
      if (r.events_size() < 2 || r.ByteSizeLong() <= max_response_bytes_) {
        done.push_back(std::move(r));
        continue;
      }
      WatchResponse part;
      part.mutable_header()->CopyFrom(r.header());
      part.set_watch_id(r.watch_id());
      const size_t base_bytes = part.ByteSizeLong() + 8;
      size_t part_bytes = base_bytes;
      for (int e = 0; e < r.events_size(); ++e) {
        const size_t add = r.events(e).ByteSizeLong() + 8;
        if (part.events_size() > 0 && part_bytes + add > max_response_bytes_) {
          part.set_fragment(true);
          done.push_back(part);
          part.clear_events();
          part_bytes = base_bytes;
        }
        *part.add_events() = std::move(*r.mutable_events(e));
        part_bytes += add;
      }
      part.set_fragment(false);
      done.push_back(std::move(part));
    }
    out_.erase(out_.begin() + static_cast<std::ptrdiff_t>(first), out_.end());
    for (WatchResponse& r : done) out_.push_back(std::move(r));
  }

  // Builds the next response from ready watchers, round-robin. False when
  // none had anything.
  bool take_events_locked() {
    if (watchers_.empty()) return false;
    auto start = watchers_.upper_bound(rr_cursor_);
    for (size_t n = 0; n < watchers_.size(); ++n, ++start) {
      if (start == watchers_.end()) start = watchers_.begin();
      const int64_t id = start->first;
      Watcher& w = start->second;
      if (!w.ready) continue;
      rr_cursor_ = id;
      w.ready = false;  // cleared before take(): a notify after it sets it again
      kv::WatchDelivery d = hub_.take(w.hub_id, kMaxEventsPerTake);
      if (d.more) w.ready = true;
      if (!d.revisions.empty()) {
        w.sent_since_tick = true;
        queue_delivery_locked(id, w, d);
      }
      if (d.compact_revision != 0 && !d.more) {
        // etcd: compact_revision set and the watcher canceled.
        WatchResponse resp;
        fill(&resp, id, d.revision);
        resp.set_compact_revision(d.compact_revision);
        resp.set_canceled(true);
        out_.push_back(std::move(resp));
        hub_.remove(w.hub_id);
        watchers_.erase(start);
      }
      if (!out_.empty()) return true;
    }
    return false;
  }

  // A due progress notification, if one can be sent now.
  std::optional<WatchResponse> progress_locked() {
    if (progress_requested_) {
      // Answered once every watcher of the stream is caught up, with the
      // revision they all reached (watch_id -1: for the whole stream).
      bool all = true;
      for (const auto& [id, w] : watchers_) all = all && hub_.progress(w.hub_id).has_value();
      if (all) {
        progress_requested_ = false;
        WatchResponse resp;
        fill(&resp, -1, hub_.revision());
        return resp;
      }
    }
    for (auto& [id, w] : watchers_) {
      if (!w.progress_due) continue;
      std::optional<int64_t> rev = hub_.progress(w.hub_id);
      if (!rev) continue;
      w.progress_due = false;
      WatchResponse resp;
      fill(&resp, id, *rev);
      return resp;
    }
    return std::nullopt;
  }

  void pump_locked() {
    if (finishing_ || write_in_flight_) return;
    if (out_.empty() && !control_.empty()) {
      out_.push_back(std::move(control_.front()));
      control_.pop_front();
    }
    if (out_.empty()) (void)take_events_locked();
    if (out_.empty()) {
      std::optional<WatchResponse> p = progress_locked();
      if (p) out_.push_back(std::move(*p));
    }
    if (read_paused_ && control_.size() < kMaxControlQueue / 2) {
      read_paused_ = false;
      reading_ = true;
      StartRead(&request_);
    }
    if (out_.empty()) return;
    current_ = std::move(out_.front());
    out_.pop_front();
    write_in_flight_ = true;
    StartWrite(&current_);
  }

  void finish_locked(const grpc::Status& st) {
    if (finishing_) return;
    finishing_ = true;
    if (write_in_flight_) {
      pending_finish_ = st;
    } else {
      Finish(st);
    }
  }

  grpc::CallbackServerContext* const ctx_;
  AuthChecker* const auth_;
  server::Node* const node_;
  kv::WatchHub& hub_;
  const std::shared_ptr<StreamRegistry> registry_;
  const size_t max_response_bytes_;
  const std::shared_ptr<Mailbox> mailbox_;
  bool require_leader_ = false;

  std::mutex mu_;
  WatchRequest request_;
  WatchResponse current_;  ///< The write in flight.
  std::map<int64_t, Watcher> watchers_;  ///< By client-visible watch id.
  int64_t next_watch_id_ = 0;            ///< etcd numbers server-chosen ids from 0.
  int64_t rr_cursor_ = -1;
  std::deque<WatchResponse> control_;  ///< Bounded by kMaxControlQueue (reads pause).
  std::deque<WatchResponse> out_;      ///< Built, not yet written (one delivery at most).
  bool progress_requested_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool write_in_flight_ = false;
  bool finishing_ = false;
  std::optional<grpc::Status> pending_finish_;
};

void StreamRegistry::on_leader_lost() {
  std::lock_guard lk(mu_);
  for (WatchStream* s : streams_) s->on_leader_lost();
}

void StreamRegistry::tick_progress() {
  std::lock_guard lk(mu_);
  for (WatchStream* s : streams_) s->on_progress_tick();
}

class WatchService final : public etcdserverpb::Watch::CallbackService {
 public:
  explicit WatchService(const ServiceContext& ctx)
      : node_(ctx.node),
        auth_(ctx.auth),
        max_response_bytes_(ctx.cfg->max_request_bytes),
        interval_(std::chrono::milliseconds(ctx.cfg->watch_progress_notify_interval_ms)),
        registry_(std::make_shared<StreamRegistry>()) {
    std::weak_ptr<StreamRegistry> weak = registry_;
    node_->add_leader_listener([weak](bool has_leader) {
      if (has_leader) return;
      if (std::shared_ptr<StreamRegistry> r = weak.lock()) r->on_leader_lost();
    });
    ticker_ = std::thread([this] { tick_loop(); });
  }

  ~WatchService() override {
    {
      std::lock_guard lk(tick_mu_);
      stop_ = true;
      tick_cv_.notify_all();
    }
    ticker_.join();
  }

  grpc::ServerBidiReactor<WatchRequest, WatchResponse>* Watch(
      grpc::CallbackServerContext* ctx) override {
    return new WatchStream(ctx, node_, auth_, registry_, max_response_bytes_);
  }

 private:
  void tick_loop() {
    std::unique_lock lk(tick_mu_);
    while (!stop_) {
      if (tick_cv_.wait_for(lk, interval_, [this] { return stop_; })) return;
      lk.unlock();
      registry_->tick_progress();
      lk.lock();
    }
  }

  server::Node* const node_;
  AuthChecker* const auth_;
  const size_t max_response_bytes_;
  const std::chrono::milliseconds interval_;
  const std::shared_ptr<StreamRegistry> registry_;
  std::mutex tick_mu_;
  std::condition_variable tick_cv_;
  bool stop_ = false;
  std::thread ticker_;
};

}  // namespace

std::unique_ptr<grpc::Service> make_watch_service(const ServiceContext& ctx) {
  return std::make_unique<WatchService>(ctx);
}

}  // namespace raftkv::api
