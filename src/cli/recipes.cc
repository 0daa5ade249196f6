#include "cli/recipes.h"

#include <fmt/format.h>

#include <charconv>
#include <chrono>

namespace raftkv::client {
namespace {

constexpr size_t kMaxLockWaitRounds = 100000;  // each round waits for one deletion

pb::Compare compare_int(const std::string& key, pb::Compare::CompareTarget target, int64_t value) {
  pb::Compare cmp;
  cmp.set_key(key);
  cmp.set_result(pb::Compare::EQUAL);
  cmp.set_target(target);
  if (target == pb::Compare::CREATE) cmp.set_create_revision(value);
  if (target == pb::Compare::MOD) cmp.set_mod_revision(value);
  return cmp;
}

Result<std::optional<mvccpb::KeyValue>> get_one(Client& c, const std::string& key,
                                                int64_t revision = 0) {
  pb::RangeRequest req;
  req.set_key(key);
  req.set_revision(revision);
  auto r = c.range(req);
  if (!r.is_ok()) return r.status();
  if (r->kvs_size() == 0) return std::optional<mvccpb::KeyValue>();
  return std::optional<mvccpb::KeyValue>(r->kvs(0));
}

}  // namespace

std::string prefix_range_end(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return std::string(1, '\0');  // every key
}

void set_prefix_range(pb::RangeRequest* req, const std::string& prefix) {
  req->set_key(prefix.empty() ? std::string(1, '\0') : prefix);
  req->set_range_end(prefix_range_end(prefix));
}

std::optional<int64_t> parse_int64(std::string_view text) {
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || ptr != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

Result<int64_t> incr(Client& c, const std::string& key, int64_t delta, int max_attempts) {
  for (int attempt = 0; attempt < max_attempts; ++attempt) {
    auto current = get_one(c, key);
    if (!current.is_ok()) return current.status();
    int64_t base = 0;
    pb::TxnRequest txn;
    pb::PutRequest* put = txn.add_success()->mutable_request_put();
    put->set_key(key);
    if (current->has_value()) {
      const mvccpb::KeyValue& kv = **current;
      auto parsed = parse_int64(kv.value());
      if (!parsed) {
        return Status::invalid_argument(
            fmt::format("the value of \"{}\" is not an integer, so it cannot be incremented", key));
      }
      base = *parsed;
      *txn.add_compare() = compare_int(key, pb::Compare::MOD, kv.mod_revision());
      put->set_lease(kv.lease());
    } else {
      *txn.add_compare() = compare_int(key, pb::Compare::CREATE, 0);
    }
    int64_t next = 0;
    if (__builtin_add_overflow(base, delta, &next)) {
      return Status::invalid_argument(fmt::format("incrementing \"{}\" would overflow", key));
    }
    put->set_value(std::to_string(next));
    auto r = c.txn(txn);
    if (!r.is_ok()) return r.status();
    if (r->succeeded()) return next;
  }
  return Status::aborted(fmt::format(
      "INCR of \"{}\" gave up after {} conflicting concurrent updates: retry", key, max_attempts));
}

Result<CasOutcome> compare_and_swap(Client& c, const std::string& key, const std::string& expected,
                                    const std::string& desired) {
  pb::TxnRequest txn;
  pb::Compare* cmp = txn.add_compare();
  cmp->set_key(key);
  cmp->set_result(pb::Compare::EQUAL);
  cmp->set_target(pb::Compare::VALUE);
  cmp->set_value(expected);
  pb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(key);
  put->set_value(desired);
  put->set_ignore_lease(true);  // the compare proved the key exists
  txn.add_failure()->mutable_request_range()->set_key(key);
  auto r = c.txn(txn);
  if (!r.is_ok()) return r.status();
  CasOutcome out;
  out.swapped = r->succeeded();
  if (!out.swapped && r->responses_size() == 1 && r->responses(0).response_range().kvs_size() > 0) {
    out.current = r->responses(0).response_range().kvs(0);
  }
  return out;
}

Result<History> history(Client& c, const std::string& key, size_t max_versions) {
  History h;
  auto now = get_one(c, key);
  if (!now.is_ok()) return now.status();
  if (!now->has_value()) return h;
  h.exists = true;
  mvccpb::KeyValue kv = **now;
  h.versions.push_back(kv);
  while (h.versions.size() < max_versions) {
    if (kv.version() <= 1) {
      h.reached_creation = true;
      break;
    }
    auto older = get_one(c, key, kv.mod_revision() - 1);
    if (!older.is_ok()) {
      if (older.status().code() == Code::kOutOfRange) {
        h.compacted_below = kv.mod_revision();
        break;
      }
      return older.status();
    }
    if (!older->has_value()) break;  // not reachable while version > 1; stay bounded anyway
    kv = **older;
    h.versions.push_back(kv);
  }
  return h;
}

LeaseKeeper::LeaseKeeper(std::unique_ptr<KeepAliveStream> stream, int64_t ttl_s)
    : stream_(std::move(stream)), interval_ms_(std::max<int64_t>(ttl_s * 1000 / 3, 500)) {
  thread_ = std::thread([this] { run(); });
}

LeaseKeeper::~LeaseKeeper() {
  stop();
}

void LeaseKeeper::stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  stream_->cancel();
  if (thread_.joinable()) thread_.join();
}

void LeaseKeeper::run() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stopping_) {
    lock.unlock();
    auto r = stream_->refresh();
    lock.lock();
    if (stopping_) return;
    if (!r.is_ok() || r->ttl() <= 0) {
      lost_.store(true);
      return;
    }
    cv_.wait_for(lock, std::chrono::milliseconds(interval_ms_), [this] { return stopping_; });
  }
}

Result<Ownership> acquire(Client& c, const std::string& name, const std::string& value,
                          int64_t lease_id, const std::atomic<bool>* cancel_flag,
                          const std::function<void(const std::string&)>& on_wait) {
  const std::string prefix = name + "/";
  Ownership own;
  own.key = fmt::format("{}{:x}", prefix, lease_id);
  own.lease_id = lease_id;

  // Create our key unless this lease already holds one; learn its create_revision.
  pb::TxnRequest txn;
  *txn.add_compare() = compare_int(own.key, pb::Compare::CREATE, 0);
  pb::PutRequest* put = txn.add_success()->mutable_request_put();
  put->set_key(own.key);
  put->set_value(value);
  put->set_lease(lease_id);
  txn.add_failure()->mutable_request_range()->set_key(own.key);
  auto created = c.txn(txn);
  if (!created.is_ok()) return created.status();
  if (created->succeeded()) {
    own.fencing_token = created->header().revision();
  } else {
    const auto& kvs = created->responses(0).response_range().kvs();
    if (kvs.empty()) return Status::aborted("lock key vanished while acquiring: retry");
    own.fencing_token = kvs[0].create_revision();
  }

  auto give_up = [&](Status why) -> Result<Ownership> {
    pb::DeleteRangeRequest del;
    del.set_key(own.key);
    (void)c.delete_range(del);  // best effort; the lease expiring removes it anyway
    return why;
  };

  for (size_t round = 0; round < kMaxLockWaitRounds; ++round) {
    if (cancel_flag != nullptr && cancel_flag->load())
      return give_up(Status::aborted("interrupted"));
    // The newest key created before ours: the holder we queue behind.
    pb::RangeRequest older;
    set_prefix_range(&older, prefix);
    older.set_max_create_revision(own.fencing_token - 1);
    older.set_sort_target(pb::RangeRequest::CREATE);
    older.set_sort_order(pb::RangeRequest::DESCEND);
    older.set_limit(1);
    auto r = c.range(older);
    if (!r.is_ok()) return give_up(r.status());
    if (r->kvs_size() == 0) return own;
    if (on_wait) on_wait(r->kvs(0).key());
    // Wait for that key's deletion (from the revision we read at, so none is missed).
    pb::WatchCreateRequest wreq;
    wreq.set_key(r->kvs(0).key());
    wreq.set_start_revision(r->header().revision() + 1);
    wreq.add_filters(pb::WatchCreateRequest::NOPUT);
    auto w = c.watch(wreq, cancel_flag);
    if (!w.is_ok()) return give_up(w.status());
    pb::WatchResponse resp;
    bool deleted = false;
    while (!deleted && (*w)->next(&resp)) {
      for (const auto& ev : resp.events()) deleted |= ev.type() == mvccpb::Event::DELETE;
      if (resp.canceled()) break;
    }
    (*w)->cancel();
    (void)(*w)->finish();
  }
  return give_up(Status::aborted("gave up waiting for the lock after too many holders"));
}

Status observe_leader(Client& c, const std::string& name,
                      const std::function<void(const mvccpb::KeyValue&)>& on_leader,
                      const std::atomic<bool>* cancel_flag) {
  const std::string prefix = name + "/";
  std::string last_key;
  int64_t last_mod = 0;
  while (cancel_flag == nullptr || !cancel_flag->load()) {
    pb::RangeRequest first;
    set_prefix_range(&first, prefix);
    first.set_sort_target(pb::RangeRequest::CREATE);
    first.set_sort_order(pb::RangeRequest::ASCEND);
    first.set_limit(1);
    auto r = c.range(first);
    if (!r.is_ok()) return r.status();
    if (r->kvs_size() > 0 &&
        (r->kvs(0).key() != last_key || r->kvs(0).mod_revision() != last_mod)) {
      last_key = r->kvs(0).key();
      last_mod = r->kvs(0).mod_revision();
      on_leader(r->kvs(0));
    }
    // Wake up on any change under the prefix, then look again.
    pb::WatchCreateRequest wreq;
    wreq.set_key(prefix);
    wreq.set_range_end(prefix_range_end(prefix));
    wreq.set_start_revision(r->header().revision() + 1);
    auto w = c.watch(wreq, cancel_flag);
    if (!w.is_ok()) {
      if (cancel_flag != nullptr && cancel_flag->load()) return Status::ok();
      return w.status();
    }
    pb::WatchResponse resp;
    while ((*w)->next(&resp)) {
      if (resp.events_size() > 0 || resp.canceled()) break;
    }
    (*w)->cancel();
    (void)(*w)->finish();
  }
  return Status::ok();
}

}  // namespace raftkv::client
