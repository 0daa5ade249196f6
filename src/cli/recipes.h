// Client-side recipes over the KV, Lease and Watch APIs: atomic increment, compare-and-swap,
// a key's history, the lock / election recipe etcdctl uses, and a lease kept alive in the
// background. Each works against any etcd-v3-compatible server (raftkv or etcd).
//
// Threads: every function runs on the caller's thread, blocking; LeaseKeeper owns one
// background thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "cli/client.h"

namespace raftkv::client {

/// Parses a whole string as a signed 64-bit decimal integer ("-12", "+3", "0").
std::optional<int64_t> parse_int64(std::string_view text);

/// Adds `delta` to the integer stored at `key` (a missing key counts as 0) and returns the
/// new value. Atomic: a Txn that puts the new value only if the key's mod_revision is still
/// the one read (create_revision == 0 for a missing key); on a conflict it re-reads and
/// retries, at most `max_attempts` times, then fails with Aborted. The key's lease is kept.
/// Fails with InvalidArgument if the value is not an integer or the sum overflows.
Result<int64_t> incr(Client& c, const std::string& key, int64_t delta, int max_attempts = 16);

struct CasOutcome {
  bool swapped = false;
  std::optional<mvccpb::KeyValue> current;  ///< the value found when not swapped (none: missing)
};

/// Sets `key` to `desired` only if its value is `expected` (one Txn; a missing key never
/// matches). The key's lease is kept.
Result<CasOutcome> compare_and_swap(Client& c, const std::string& key, const std::string& expected,
                                    const std::string& desired);

struct History {
  std::vector<mvccpb::KeyValue> versions;  ///< newest first
  bool exists = false;            ///< false: the key does not exist now (versions is empty)
  bool reached_creation = false;  ///< walked back to the put that created this incarnation
  int64_t compacted_below = 0;    ///< >0: stopped because revision compacted_below-… is compacted
};

/// The past values of `key` in its current incarnation, newest first: reads the key, then
/// reads it again at (mod_revision - 1) for each older version, until version 1 (the
/// creation), a compacted revision, or `max_versions` entries.
Result<History> history(Client& c, const std::string& key, size_t max_versions);

/// Renews a lease every ttl/3 seconds on a background thread until stop() (or destruction).
/// lost() turns true if a renewal finds the lease gone or the stream broken.
class LeaseKeeper {
 public:
  LeaseKeeper(std::unique_ptr<KeepAliveStream> stream, int64_t ttl_s);
  ~LeaseKeeper();
  void stop();
  bool lost() const { return lost_.load(); }

 private:
  void run();
  std::unique_ptr<KeepAliveStream> stream_;
  int64_t interval_ms_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::atomic<bool> lost_{false};
  std::thread thread_;
};

/// A held lock or won election: the owner key and its create_revision, which is the fencing
/// token (larger for every later holder, so a storage service can refuse stale holders).
struct Ownership {
  std::string key;
  int64_t lease_id = 0;
  int64_t fencing_token = 0;
};

/// etcd's mutex / election recipe (what etcdctl lock and elect do): create
/// "<name>/<lease hex>" with the lease (Txn on create_revision == 0), then wait until no key
/// under "<name>/" has a smaller create_revision, watching the next-older key for its
/// deletion. `value` is stored in the key (the proposal of an election; empty for a lock).
/// Returns Aborted when `cancel_flag` turns true while waiting (the key is then deleted).
/// `on_wait` (may be empty) is called with the holder's key each time we start waiting.
Result<Ownership> acquire(Client& c, const std::string& name, const std::string& value,
                          int64_t lease_id, const std::atomic<bool>* cancel_flag,
                          const std::function<void(const std::string&)>& on_wait = {});

/// Follows the leader of election `name`: calls `on_leader` with the owner key each time it
/// changes, until `cancel_flag` turns true (returns OK) or an error.
Status observe_leader(Client& c, const std::string& name,
                      const std::function<void(const mvccpb::KeyValue&)>& on_leader,
                      const std::atomic<bool>* cancel_flag);

/// A range request for every key starting with `prefix` ("" = all keys).
void set_prefix_range(etcdserverpb::RangeRequest* req, const std::string& prefix);

/// The range_end that selects every key starting with `prefix` (etcd's GetPrefixRangeEnd).
std::string prefix_range_end(const std::string& prefix);

}  // namespace raftkv::client
