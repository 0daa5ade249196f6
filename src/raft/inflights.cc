#include "raft/inflights.h"

#include "base/check.h"

namespace raftkv::raft {

Inflights::Inflights(size_t capacity, uint64_t max_bytes)
    : capacity_(capacity), max_bytes_(max_bytes) {
  RAFTKV_CHECK(capacity_ > 0);
}

void Inflights::add(Index last_index, uint64_t bytes) {
  RAFTKV_CHECK_MSG(!full(), "inflights: add while full");
  if (count_ > 0) {
    const Slot& last = ring_[(start_ + count_ - 1) % capacity_];
    RAFTKV_CHECK_MSG(last.index < last_index, "inflights: indexes must increase");
  }
  // The ring grows lazily; until it reaches capacity it has never wrapped, so
  // the next position is either inside it or exactly one past its end.
  size_t pos = (start_ + count_) % capacity_;
  RAFTKV_CHECK(pos <= ring_.size());
  if (pos == ring_.size()) {
    ring_.push_back(Slot{last_index, bytes});
  } else {
    ring_[pos] = Slot{last_index, bytes};
  }
  ++count_;
  bytes_ += bytes;
}

void Inflights::free_le(Index index) {
  while (count_ > 0) {
    Slot& s = ring_[start_];
    if (s.index > index) break;
    bytes_ -= s.bytes;
    --count_;
    start_ = (start_ + 1) % capacity_;
  }
  if (count_ == 0) start_ = 0;
}

void Inflights::free_first_one() {
  if (count_ == 0) return;
  free_le(ring_[start_].index);
}

bool Inflights::full() const {
  return count_ == capacity_ || (max_bytes_ != 0 && bytes_ >= max_bytes_);
}

void Inflights::reset() {
  start_ = 0;
  count_ = 0;
  bytes_ = 0;
}

}  // namespace raftkv::raft
