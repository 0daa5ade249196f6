// Helpers shared by the storage tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "raft/types.h"

namespace raftkv::storage::testing {

/// Entry `index` at `term` with a payload derived from both (never all zero).
inline raft::Entry make_entry(uint64_t index, uint64_t term, size_t data_bytes = 40) {
  raft::Entry e;
  e.index = raft::Index(index);
  e.term = raft::Term(term);
  e.data.resize(data_bytes);
  for (size_t k = 0; k < data_bytes; ++k) {
    e.data[k] = static_cast<char>('a' + (index * 7 + term * 3 + k) % 26);
  }
  return e;
}

/// Entries [lo, hi] at `term`.
inline std::vector<raft::Entry> make_entries(uint64_t lo, uint64_t hi, uint64_t term,
                                             size_t data_bytes = 40) {
  std::vector<raft::Entry> v;
  for (uint64_t i = lo; i <= hi; ++i) v.push_back(make_entry(i, term, data_bytes));
  return v;
}

}  // namespace raftkv::storage::testing

#define ASSERT_OK(expr)                                         \
  do {                                                          \
    ::raftkv::Status s_ = (expr);                               \
    ASSERT_TRUE(s_.is_ok()) << #expr << ": " << s_.to_string(); \
  } while (0)
#define EXPECT_OK(expr)                                         \
  do {                                                          \
    ::raftkv::Status s_ = (expr);                               \
    EXPECT_TRUE(s_.is_ok()) << #expr << ": " << s_.to_string(); \
  } while (0)
