// Helpers for kv::Store tests: a temporary directory and a harness that
// applies single requests at increasing Raft indexes.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>

#include "kv/store.h"

namespace raftkv::kv::testing {

/// A fresh directory under the system temp dir, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("raftkv-kv-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string sub(const std::string& name) const { return (path_ / name).string(); }
  std::string path() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

inline raftkvpb::InternalRequest put_req(const std::string& k, const std::string& v,
                                         int64_t lease = 0) {
  raftkvpb::InternalRequest r;
  r.mutable_put()->set_key(k);
  r.mutable_put()->set_value(v);
  r.mutable_put()->set_lease(lease);
  return r;
}

inline raftkvpb::InternalRequest del_req(const std::string& k, const std::string& end = "",
                                         bool prev_kv = false) {
  raftkvpb::InternalRequest r;
  r.mutable_delete_range()->set_key(k);
  r.mutable_delete_range()->set_range_end(end);
  r.mutable_delete_range()->set_prev_kv(prev_kv);
  return r;
}

inline raftkvpb::InternalRequest compact_req(int64_t rev) {
  raftkvpb::InternalRequest r;
  r.mutable_compaction()->set_revision(rev);
  return r;
}

inline etcdserverpb::RangeRequest range_req(const std::string& k, const std::string& end = "",
                                            int64_t rev = 0) {
  etcdserverpb::RangeRequest r;
  r.set_key(k);
  r.set_range_end(end);
  r.set_revision(rev);
  return r;
}

/// Owns a store and applies one request per Raft index.
class Harness {
 public:
  explicit Harness(std::string dir, StoreOptions o = {}) : dir_(std::move(dir)), options_(o) {
    reopen();
  }

  void reopen() {
    store_.reset();
    auto s = Store::open(dir_, options_);
    ASSERT_TRUE(s.is_ok()) << s.status().to_string();
    store_ = std::move(s.value());
    next_index_ = store_->applied_index().value() + 1;
  }

  /// Applies `r` at the next index; returns its outcome.
  ApplyOutcome apply(const raftkvpb::InternalRequest& r, ApplyResult* all = nullptr) {
    ApplyEntry e{raft::Index(next_index_++), &r};
    auto res = store_->apply(std::span<const ApplyEntry>(&e, 1));
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    if (!res.is_ok()) return {};
    EXPECT_EQ(res->outcomes.size(), 1u);
    if (all != nullptr) *all = res.value();
    return res->outcomes.empty() ? ApplyOutcome{} : res->outcomes[0];
  }

  int64_t put(const std::string& k, const std::string& v, int64_t lease = 0) {
    auto o = apply(put_req(k, v, lease));
    EXPECT_TRUE(o.status.is_ok()) << o.status.to_string();
    return o.response.put().header().revision();
  }

  etcdserverpb::RangeResponse get(const etcdserverpb::RangeRequest& r) {
    auto res = store_->range(r);
    EXPECT_TRUE(res.is_ok()) << res.status().to_string();
    return res.is_ok() ? res.value() : etcdserverpb::RangeResponse();
  }

  uint32_t hash() {
    auto h = store_->hash_kv(0);
    EXPECT_TRUE(h.is_ok()) << h.status().to_string();
    return h.is_ok() ? h->hash() : 0;
  }

  Store& store() { return *store_; }
  std::unique_ptr<Store>& store_ptr() { return store_; }
  uint64_t next_index() const { return next_index_; }
  void set_next_index(uint64_t i) { next_index_ = i; }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  StoreOptions options_;
  std::unique_ptr<Store> store_;
  uint64_t next_index_ = 1;
};

}  // namespace raftkv::kv::testing
