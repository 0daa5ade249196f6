#include "api/auth_token.h"

#include <crypt.h>
#include <sys/random.h>

#include <atomic>
#include <map>
#include <mutex>

namespace raftkv::api {

Result<std::string> hash_password(std::string_view password, uint32_t cost) {
  char setting[CRYPT_GENSALT_OUTPUT_SIZE];
  // rbytes null: libxcrypt draws the salt from the OS's random source.
  if (crypt_gensalt_rn("$2b$", cost, nullptr, 0, setting, sizeof(setting)) == nullptr) {
    return Status::internal("bcrypt: cannot make a salt");
  }
  auto data = std::make_unique<crypt_data>();
  const std::string phrase(password);
  const char* h = crypt_r(phrase.c_str(), setting, data.get());
  if (h == nullptr || h[0] == '*') return Status::internal("bcrypt: hashing failed");
  return std::string(h);
}

bool verify_password(std::string_view password, std::string_view hash) {
  if (hash.empty() || hash[0] != '$') return false;
  auto data = std::make_unique<crypt_data>();
  const std::string phrase(password), setting(hash);
  const char* h = crypt_r(phrase.c_str(), setting.c_str(), data.get());
  if (h == nullptr || h[0] == '*') return false;
  const std::string_view got(h);
  if (got.size() != hash.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < got.size(); ++i) diff |= static_cast<unsigned char>(got[i] ^ hash[i]);
  return diff == 0;
}

namespace {

using Clock = std::chrono::steady_clock;

// etcd's simple tokens: random letters, a dot, a per-member counter.
class SimpleTokenProvider final : public TokenProvider {
 public:
  explicit SimpleTokenProvider(std::chrono::seconds ttl) : ttl_(ttl) {}

  Result<std::string> assign(const std::string& user, const std::string& password_hash,
                             uint64_t) override {
    constexpr size_t kLetters = 16;
    unsigned char rnd[kLetters];
    if (getrandom(rnd, sizeof(rnd), 0) != static_cast<ssize_t>(sizeof(rnd))) {
      return Status::internal("auth: no random bytes for a token");
    }
    static constexpr std::string_view kAlphabet =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    std::string token;
    for (unsigned char b : rnd) token.push_back(kAlphabet[b % kAlphabet.size()]);
    std::lock_guard l(mu_);
    token += "." + std::to_string(++counter_);
    const Clock::time_point now = Clock::now();
    if (tokens_.size() >= kSweepAt) sweep(now);
    if (tokens_.size() >= kMaxTokens) return Status::resource_exhausted("etcdserver: too many requests");
    tokens_[token] = Entry{TokenInfo{user, password_hash}, now + ttl_};
    any_.store(true);
    return token;
  }

  std::optional<TokenInfo> info(std::string_view token) override {
    std::lock_guard l(mu_);
    auto it = tokens_.find(token);
    if (it == tokens_.end()) return std::nullopt;
    const Clock::time_point now = Clock::now();
    if (it->second.expires <= now) {
      tokens_.erase(it);
      return std::nullopt;
    }
    it->second.expires = now + ttl_;  // etcd renews a simple token on use
    return it->second.info;
  }

  void clear() override {
    if (!any_.load()) return;  // the common case, on every request while auth is off
    std::lock_guard l(mu_);
    tokens_.clear();
    any_.store(false);
  }

 private:
  struct Entry {
    TokenInfo info;
    Clock::time_point expires;
  };
  static constexpr size_t kSweepAt = 4096;
  static constexpr size_t kMaxTokens = 1u << 20;

  void sweep(Clock::time_point now) {
    for (auto it = tokens_.begin(); it != tokens_.end();) {
      it = it->second.expires <= now ? tokens_.erase(it) : std::next(it);
    }
  }

  const std::chrono::seconds ttl_;
  std::mutex mu_;
  std::atomic<bool> any_{false};  ///< tokens_ may be non-empty
  uint64_t counter_ = 0;
  std::map<std::string, Entry, std::less<>> tokens_;
};

}  // namespace

Result<std::unique_ptr<TokenProvider>> make_token_provider(const std::string& spec,
                                                           std::chrono::seconds simple_ttl) {
  if (spec == "simple" || spec.empty()) {
    return std::unique_ptr<TokenProvider>(new SimpleTokenProvider(simple_ttl));
  }
  if (spec == "jwt" || spec.rfind("jwt,", 0) == 0) {
    return make_jwt_token_provider(std::string_view(spec).substr(3));
  }
  return Status::invalid_argument("--auth-token '" + spec +
                                  "' is not supported: use 'simple' (the default) or "
                                  "'jwt,pub-key=...,priv-key=...,sign-method=RS256|ES256'");
}

}  // namespace raftkv::api
