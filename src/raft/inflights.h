// Inflights: the append messages sent to one follower and not yet acknowledged,
// for flow control in the replicate state (dissertation §10.2.2, pipelining).
//
// A ring of (last index of the message, payload bytes). The leader stops
// sending to a follower when the ring holds `capacity` messages or
// `max_bytes` bytes; acknowledgements free every message up to the
// acknowledged index. Memory is allocated on first use and never exceeds
// `capacity` slots.
#pragma once

#include <cstdint>
#include <vector>

#include "raft/types.h"

namespace raftkv::raft {

class Inflights {
 public:
  /// REQUIRES: capacity > 0. max_bytes == 0 means no byte bound.
  Inflights(size_t capacity, uint64_t max_bytes);

  /// Records a message whose last entry is `last_index` carrying `bytes`.
  /// REQUIRES: !full(); last_index greater than every index already recorded.
  void add(Index last_index, uint64_t bytes);

  /// Frees every message whose last index is <= `index`.
  void free_le(Index index);

  /// Frees the oldest message. A leader does this on a heartbeat response
  /// while the window is full: the follower is alive, so if its acks were
  /// lost the window must reopen or replication would stall forever.
  void free_first_one();

  /// True when no further message may be sent.
  bool full() const;
  size_t count() const { return count_; }
  uint64_t bytes() const { return bytes_; }
  size_t capacity() const { return capacity_; }
  void reset();

 private:
  struct Slot {
    Index index;
    uint64_t bytes = 0;
  };
  size_t capacity_;
  uint64_t max_bytes_;
  std::vector<Slot> ring_;  // grows up to capacity_, then wraps
  size_t start_ = 0;
  size_t count_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace raftkv::raft
