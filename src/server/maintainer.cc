#include "server/maintainer.h"

#include <atomic>
#include <memory>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "transport/transport.h"

namespace raftkv::server {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kHashKvDeadline = std::chrono::seconds(5);

PeerHash ask_hash_kv(uint64_t member_id, const std::vector<std::string>& client_urls,
                     int64_t revision) {
  PeerHash p;
  p.member_id = member_id;
  for (const std::string& url : client_urls) {  // bounded by the member's URL list
    Result<std::string> target = transport::grpc_target_from_url(url);
    if (!target) continue;
    auto stub = etcdserverpb::Maintenance::NewStub(
        grpc::CreateChannel(*target, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + kHashKvDeadline);
    etcdserverpb::HashKVRequest req;
    req.set_revision(revision);
    etcdserverpb::HashKVResponse resp;
    grpc::Status st = stub->HashKV(&ctx, req, &resp);
    if (!st.ok()) {
      spdlog::info("corruption check: member {} at {} did not answer HashKV({}): {}",
                   format_id(member_id), url, revision, st.error_message());
      continue;
    }
    p.answered = true;
    p.hash = resp.hash();
    p.compact_revision = resp.compact_revision();
    return p;
  }
  return p;
}

}  // namespace

std::vector<uint64_t> mismatched_members(uint32_t local_hash, int64_t local_compact_revision,
                                         const std::vector<PeerHash>& peers) {
  std::vector<uint64_t> out;
  for (const PeerHash& p : peers) {
    if (p.answered && p.compact_revision == local_compact_revision && p.hash != local_hash) {
      out.push_back(p.member_id);
    }
  }
  return out;
}

Maintainer::Maintainer(Node* node) : node_(node), cfg_(node->config()) {
  thread_ = std::thread([this] { loop(); });
}

Maintainer::~Maintainer() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Maintainer::loop() {
  bool initial_done = !cfg_.initial_corrupt_check;
  int initial_waits = 0;  // polls spent waiting for every member's client URLs
  const auto period = std::chrono::milliseconds(cfg_.corrupt_check_interval_ms);
  auto next_check = Clock::now() + period;
  std::unique_lock lk(mu_);
  while (!stop_) {
    cv_.wait_for(lk, kPollInterval, [this] { return stop_; });
    if (stop_) break;
    lk.unlock();
    maybe_clear_nospace();
    if (!initial_done && node_->leader() != 0) {
      // Members publish their client URLs through the log once they have a
      // leader: wait for them a while, then check whoever can be reached.
      bool all_known = true;
      for (const auto& [id, m] : node_->members()) all_known &= !m.client_urls.empty();
      if (all_known || ++initial_waits >= 30) {
        initial_done = true;
        check_corruption(/*initial=*/true);
      }
    }
    if (period.count() > 0 && Clock::now() >= next_check) {
      next_check = Clock::now() + period;
      if (node_->is_leader()) check_corruption(/*initial=*/false);
    }
    lk.lock();
  }
}

void Maintainer::maybe_clear_nospace() {
  if (!cfg_.auto_clear_nospace_alarm || !node_->is_leader()) return;
  std::shared_ptr<kv::Store> store = node_->store();
  if (!store->alarm_active(etcdserverpb::AlarmType::NOSPACE)) return;
  // Only a compaction frees space: without one since the alarm, the store is
  // just below the quota because the write that raised it was refused.
  if (store->compact_revision() <= store->compact_revision_at_nospace()) return;
  const uint64_t quota = cfg_.quota_backend_bytes_effective();
  const uint64_t size = store->logical_size_bytes();
  if (quota != 0 && size >= quota) return;
  if (clear_in_flight_->exchange(true)) return;
  spdlog::info("store back under the quota (logical size {} < {} bytes): clearing NOSPACE",
               size, quota);
  std::vector<etcdserverpb::AlarmMember> alarms = store->alarms();
  auto left = std::make_shared<std::atomic<size_t>>(0);
  for (const auto& a : alarms) {
    if (a.alarm() == etcdserverpb::AlarmType::NOSPACE) left->fetch_add(1);
  }
  if (left->load() == 0) {  // cleared meanwhile
    clear_in_flight_->store(false);
    return;
  }
  for (const auto& a : alarms) {
    if (a.alarm() != etcdserverpb::AlarmType::NOSPACE) continue;
    raftkvpb::InternalRequest req;
    req.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::DEACTIVATE);
    req.mutable_alarm()->set_memberid(a.memberid());
    req.mutable_alarm()->set_alarm(etcdserverpb::AlarmType::NOSPACE);
    node_->store()->auth().stamp_as_root(&req);
    node_->propose(std::move(req), [flag = clear_in_flight_, left](Status st,
                                                                    raftkvpb::InternalResponse) {
      if (!st.is_ok()) spdlog::warn("clearing NOSPACE failed: {}", st.to_string());
      if (left->fetch_sub(1) == 1) flag->store(false);
    });
  }
}

void Maintainer::check_corruption(bool initial) {
  std::shared_ptr<kv::Store> store = node_->store();
  Result<etcdserverpb::HashKVResponse> local = store->hash_kv(0);
  store.reset();
  if (!local) {
    spdlog::warn("corruption check: local HashKV failed: {}", local.status().to_string());
    return;
  }
  const int64_t rev = local->header().revision();
  std::vector<PeerHash> peers;
  for (const auto& [id, m] : node_->members()) {
    if (id == node_->member_id() || m.client_urls.empty()) continue;
    peers.push_back(ask_hash_kv(id, m.client_urls, rev));
    {
      std::lock_guard lk(mu_);
      if (stop_) return;
    }
  }
  const std::vector<uint64_t> bad = mismatched_members(local->hash(), local->compact_revision(), peers);
  size_t compared = 0;
  for (const PeerHash& p : peers) {
    if (p.answered && p.compact_revision == local->compact_revision()) ++compared;
  }
  if (bad.empty()) {
    spdlog::info("corruption check ({}): revision {} hash {} matches {} of {} other members",
                 initial ? "initial" : "periodic", rev, local->hash(), compared, peers.size());
    return;
  }
  for (uint64_t id : bad) {
    uint32_t peer_hash = 0;
    for (const PeerHash& p : peers) {
      if (p.member_id == id) peer_hash = p.hash;
    }
    spdlog::error("corruption check ({}): member {} hash {} at revision {} differs from member {} "
                  "hash {} (compact revision {}): raising CORRUPT",
                  initial ? "initial" : "periodic", format_id(id), peer_hash, rev,
                  format_id(node_->member_id()), local->hash(), local->compact_revision());
  }
  if (initial) {
    raise_corrupt(node_->member_id());
  } else {
    for (uint64_t id : bad) raise_corrupt(id);
  }
}

void Maintainer::raise_corrupt(uint64_t member_id) {
  raftkvpb::InternalRequest req;
  req.mutable_alarm()->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  req.mutable_alarm()->set_memberid(member_id);
  req.mutable_alarm()->set_alarm(etcdserverpb::AlarmType::CORRUPT);
  node_->store()->auth().stamp_as_root(&req);
  node_->propose(std::move(req), [member_id](Status st, raftkvpb::InternalResponse) {
    if (!st.is_ok()) {
      spdlog::error("raising CORRUPT for member {} failed: {}", format_id(member_id),
                    st.to_string());
    }
  });
}

}  // namespace raftkv::server
