// Passwords and tokens of the Auth service (docs/security.md).
//
// Passwords: bcrypt ("$2b$", libxcrypt's crypt_r / crypt_gensalt_rn), hashed
// by the member that proposes UserAdd / UserChangePassword, so applying the
// request stays cheap and deterministic.
//
// Tokens, chosen by --auth-token:
//   simple  random opaque strings, valid on the member that issued them only
//           (etcd's simple tokens), forgotten after --auth-token-ttl seconds
//           without use (each use renews them), and when the user's password
//           changes, the user is deleted, or auth is disabled.
//   jwt     "jwt,pub-key=<pem>,priv-key=<pem>,sign-method=RS256|ES256,ttl=<dur>":
//           signed JSON Web Tokens (OpenSSL) with claims username, revision
//           and exp; valid on every member that has the public key.
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace raftkv::api {

/// bcrypt hash of `password` with 2^cost rounds. REQUIRES: 4 <= cost <= 31.
Result<std::string> hash_password(std::string_view password, uint32_t cost);
/// True if `password` matches the bcrypt `hash` (constant-time compare).
bool verify_password(std::string_view password, std::string_view hash);

/// What a valid token says.
struct TokenInfo {
  std::string username;
  /// Simple tokens: the password hash the token was issued against (a token
  /// dies with its password). Empty for JWT.
  std::string password_hash;
};

class TokenProvider {
 public:
  virtual ~TokenProvider() = default;
  /// A new token for `user`, who just proved `password_hash`'s password.
  virtual Result<std::string> assign(const std::string& user, const std::string& password_hash,
                                     uint64_t auth_revision) = 0;
  /// The token's owner if it is valid now; renews a simple token.
  virtual std::optional<TokenInfo> info(std::string_view token) = 0;
  /// Forgets every issued token (auth was disabled).
  virtual void clear() = 0;
};

/// Builds the provider --auth-token names. Errors: InvalidArgument naming
/// what to change (unknown kind, missing or unreadable key, bad sign-method).
Result<std::unique_ptr<TokenProvider>> make_token_provider(const std::string& spec,
                                                           std::chrono::seconds simple_ttl);
/// The jwt provider from the options after "jwt" (",pub-key=...,...").
Result<std::unique_ptr<TokenProvider>> make_jwt_token_provider(std::string_view options);

}  // namespace raftkv::api
