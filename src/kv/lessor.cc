#include "kv/lessor.h"

#include <algorithm>
#include <set>

#include "kv/errors.h"

namespace raftkv::kv {

namespace {

Status not_primary() { return Status::failed_precondition("raftkv: this member is not the lessor"); }

}  // namespace

Lessor::Lessor(Hooks hooks, Options options) : hooks_(std::move(hooks)), options_(options) {}

Lessor::~Lessor() { stop(); }

void Lessor::start() {
  std::lock_guard lk(thread_mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void Lessor::stop() {
  {
    std::lock_guard lk(thread_mu_);
    stop_ = true;
  }
  thread_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Lessor::loop() {
  std::unique_lock lk(thread_mu_);
  while (!stop_) {
    lk.unlock();
    tick();
    lk.lock();
    thread_cv_.wait_for(lk, options_.tick_interval, [this] { return stop_; });
  }
}

void Lessor::follow_leadership_locked(Clock::time_point now) {
  uint64_t term = hooks_.leader_term();
  if (term != 0 && hooks_.applied_term() != term) term = 0;  // see Hooks::applied_term
  if (term == primary_term_) return;
#if defined(RAFTKV_SIM_MUTATION) && RAFTKV_SIM_MUTATION == 6
  // MUTATION 6 (simulator only): deadlines survive a demotion, and a member
  // promoted again keeps the ones it had instead of giving every lease its
  // full TTL: keep-alives served by another leader meanwhile are lost.
  primary_term_ = term;
  if (term == 0) return;
  for (const auto& [id, ttl] : hooks_.leases()) {
    leases_.try_emplace(id, Entry{ttl, now + std::chrono::seconds(ttl), {}});
  }
#else
  leases_.clear();
  primary_term_ = term;
  if (term == 0) return;  // demoted: no deadlines, no revokes
  // Promoted: every lease gets its full TTL from now (etcd's Promote).
  for (const auto& [id, ttl] : hooks_.leases()) leases_[id] = Entry{ttl, now + std::chrono::seconds(ttl), {}};
#endif
  window_start_ = now;
  window_revokes_ = 0;
}

void Lessor::tick() {
  std::vector<int64_t> to_revoke;
  {
    std::lock_guard lk(mu_);
    const Clock::time_point now = hooks_.now();
    follow_leadership_locked(now);
    if (primary_term_ == 0) return;
    // Adopt leases granted since the last tick; forget revoked ones.
    const std::vector<std::pair<int64_t, int64_t>> granted = hooks_.leases();
    std::set<int64_t> live;
    for (const auto& [id, ttl] : granted) {
      live.insert(id);
      if (leases_.count(id) == 0) leases_[id] = Entry{ttl, now + std::chrono::seconds(ttl), {}};
    }
    std::erase_if(leases_, [&](const auto& kv) { return live.count(kv.first) == 0; });

    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      window_revokes_ = 0;
    }
    for (auto& [id, e] : leases_) {
      if (window_revokes_ >= options_.max_revokes_per_second) break;
      if (e.deadline > now) continue;
      if (e.revoke_sent && now - *e.revoke_sent < options_.revoke_retry) continue;
      e.revoke_sent = now;
      ++window_revokes_;
      to_revoke.push_back(id);
    }
  }
  for (int64_t id : to_revoke) hooks_.revoke(id);
}

Result<Lessor::Entry*> Lessor::find_locked(int64_t id, Clock::time_point now) {
  follow_leadership_locked(now);
  if (primary_term_ == 0) return not_primary();
  const std::optional<int64_t> ttl = hooks_.lease_ttl(id);
  if (!ttl) {
    leases_.erase(id);
    return errors::lease_not_found();
  }
  auto it = leases_.find(id);
  if (it == leases_.end()) {
    it = leases_.emplace(id, Entry{*ttl, now + std::chrono::seconds(*ttl), {}}).first;
  }
  if (it->second.deadline <= now) return errors::lease_not_found();  // expired; revoke under way
  return &it->second;
}

Result<int64_t> Lessor::renew(int64_t id) {
  std::lock_guard lk(mu_);
  const Clock::time_point now = hooks_.now();
  Result<Entry*> e = find_locked(id, now);
  if (!e) return e.status();
  (*e)->deadline = now + std::chrono::seconds((*e)->ttl_seconds);
  return (*e)->ttl_seconds;
}

Result<Lessor::LeaseView> Lessor::time_to_live(int64_t id) {
  std::lock_guard lk(mu_);
  const Clock::time_point now = hooks_.now();
  Result<Entry*> e = find_locked(id, now);
  if (!e) return e.status();
  LeaseView v;
  v.granted_ttl_seconds = (*e)->ttl_seconds;
  v.remaining_seconds =
      std::chrono::duration_cast<std::chrono::seconds>((*e)->deadline - now).count();
  return v;
}

bool Lessor::is_primary() {
  std::lock_guard lk(mu_);
  follow_leadership_locked(hooks_.now());
  return primary_term_ != 0;
}

int64_t lease_min_ttl_seconds(uint32_t election_timeout_ms) {
  // ⌈1.5 × election timeout⌉ in whole seconds.
  const uint64_t min_ms = (3ull * election_timeout_ms + 1) / 2;
  return static_cast<int64_t>((min_ms + 999) / 1000);
}

LeaseIdGenerator::LeaseIdGenerator(uint64_t member_id, uint64_t now_unix_ms)
    : prefix_((member_id & 0xffff) << 48), suffix_((now_unix_ms & ((1ull << 40) - 1)) << 8) {}

int64_t LeaseIdGenerator::next() {
  std::lock_guard lk(mu_);
  for (;;) {
    ++suffix_;
    const uint64_t id = (prefix_ | (suffix_ & ((1ull << 48) - 1))) & ((1ull << 63) - 1);
    if (id != 0) return static_cast<int64_t>(id);
  }
}

}  // namespace raftkv::kv
