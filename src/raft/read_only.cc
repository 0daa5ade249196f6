#include "raft/read_only.h"

#include "base/check.h"

namespace raftkv::raft {

bool ReadOnly::add(Index commit, NodeId from, const std::string& ctx) {
  if (full() || by_ctx_.count(ctx) != 0) return false;
  by_ctx_.emplace(ctx, Status{Request{commit, from, ctx}, {}});
  queue_.push_back(ctx);
  return true;
}

const std::set<NodeId>* ReadOnly::ack(NodeId id, const std::string& ctx) {
  auto it = by_ctx_.find(ctx);
  if (it == by_ctx_.end()) return nullptr;
  it->second.acks.insert(id);
  return &it->second.acks;
}

std::vector<ReadOnly::Request> ReadOnly::advance(const std::string& ctx) {
  std::vector<Request> out;
  if (by_ctx_.count(ctx) == 0) return out;
  // Bounded by the queue length (<= max_pending_).
  while (!queue_.empty()) {
    std::string c = std::move(queue_.front());
    queue_.pop_front();
    auto it = by_ctx_.find(c);
    RAFTKV_CHECK(it != by_ctx_.end());
    out.push_back(std::move(it->second.req));
    by_ctx_.erase(it);
    if (c == ctx) break;
  }
  RAFTKV_CHECK(by_ctx_.size() == queue_.size());
  return out;
}

std::string ReadOnly::last_pending_ctx() const {
  return queue_.empty() ? std::string() : queue_.back();
}

void ReadOnly::reset() {
  by_ctx_.clear();
  queue_.clear();
}

}  // namespace raftkv::raft
