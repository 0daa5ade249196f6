// Maintainer: a member's housekeeping thread for alarms and corruption checks
// (docs/operations.md, "Alarms and space quota", "Corruption checks").
//
//  * NOSPACE auto-recovery (--auto-clear-nospace-alarm, on by default; etcd
//    has no such thing): while NOSPACE is active, the leader checks every
//    kPollInterval whether a compaction applied since the alarm has brought
//    the store's logical size back under --quota-backend-bytes and, if so,
//    proposes DEACTIVATE for every NOSPACE alarm. (Without a compaction the
//    store is merely just under the quota: the write that raised the alarm
//    was refused.) Writes are accepted again once that entry applies.
//  * Corruption checks: compare HashKV at one revision with every other
//    member, over their advertised client URLs (Maintenance.HashKV).
//      - initial (--experimental-initial-corrupt-check): once, when this
//        member first has a leader; a mismatch raises CORRUPT for this member;
//      - periodic (--experimental-corrupt-check-time > 0): on the leader only;
//        a mismatch raises CORRUPT for the member that differs.
//    A peer whose compaction revision differs, that has not reached the
//    revision yet, or that does not answer is skipped for that pass (logged).
//    Every mismatch is logged with both members, both hashes and the revision.
//
// Thread: one, owned here; it only reads the store, sends unary RPCs with a
// deadline and proposes through Node::propose (never blocks the node).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/node.h"

namespace raftkv::server {

/// One member's answer to HashKV(revision), for compare_hashes.
struct PeerHash {
  uint64_t member_id = 0;
  bool answered = false;  ///< False: unreachable or refused (e.g. future revision).
  uint32_t hash = 0;
  int64_t compact_revision = 0;
};

/// The members whose hash differs from `local` at the same compaction
/// revision (others cannot be compared and are left out). Pure.
std::vector<uint64_t> mismatched_members(uint32_t local_hash, int64_t local_compact_revision,
                                         const std::vector<PeerHash>& peers);

class Maintainer {
 public:
  static constexpr auto kPollInterval = std::chrono::milliseconds(500);

  /// Starts the thread. `node` must outlive the Maintainer.
  explicit Maintainer(Node* node);
  /// Stops and joins the thread.
  ~Maintainer();
  Maintainer(const Maintainer&) = delete;
  Maintainer& operator=(const Maintainer&) = delete;

 private:
  void loop();
  void maybe_clear_nospace();
  /// Compares this member's HashKV with every other member's; `initial`
  /// selects who is named by a mismatch (this member, or the differing peer).
  void check_corruption(bool initial);
  void raise_corrupt(uint64_t member_id);

  Node* node_;
  const Config& cfg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  /// A NOSPACE clear is in flight. Shared with the proposals' callbacks,
  /// which may run after the Maintainer is gone (when the node stops).
  std::shared_ptr<std::atomic<bool>> clear_in_flight_ =
      std::make_shared<std::atomic<bool>>(false);
  std::thread thread_;
};

}  // namespace raftkv::server
