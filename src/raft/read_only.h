// ReadIndex bookkeeping on the leader (dissertation §6.4).
//
// A read request arriving at the leader records the current commit index and
// is tagged with a context (the request id). The leader then sends heartbeats
// carrying that context; once a quorum has acknowledged the context, the
// leader knows it was still the leader when the request arrived, so every
// request queued up to and including that context may be served at its
// recorded index. Many requests share one heartbeat round: acknowledging a
// later context also confirms every earlier one.
#pragma once

#include <deque>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "raft/types.h"

namespace raftkv::raft {

class ReadOnly {
 public:
  struct Request {
    Index index;  ///< Commit index when the request arrived.
    NodeId from;  ///< Who asked (the leader itself for local reads).
    std::string ctx;
  };

  /// REQUIRES: max_pending > 0.
  explicit ReadOnly(size_t max_pending) : max_pending_(max_pending) {}

  /// Queues a request. Returns false if `ctx` is already pending (a duplicate)
  /// or the queue is full; the caller decides how to answer.
  bool add(Index commit, NodeId from, const std::string& ctx);

  /// Records that `id` acknowledged a heartbeat carrying `ctx`. Returns the set
  /// of acknowledgers so far (empty if `ctx` is unknown).
  const std::set<NodeId>* ack(NodeId id, const std::string& ctx);

  /// Removes and returns every request up to and including `ctx`, oldest
  /// first. Empty if `ctx` is unknown.
  std::vector<Request> advance(const std::string& ctx);

  /// Context of the newest pending request ("" if none): heartbeats carry it.
  std::string last_pending_ctx() const;
  size_t pending() const { return queue_.size(); }
  bool full() const { return queue_.size() >= max_pending_; }
  void reset();

 private:
  struct Status {
    Request req;
    std::set<NodeId> acks;
  };
  size_t max_pending_;
  std::map<std::string, Status> by_ctx_;
  std::deque<std::string> queue_;
};

}  // namespace raftkv::raft
