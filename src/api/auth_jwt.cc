// JWT tokens for --auth-token jwt,... (auth_token.h): RS256 or ES256 JSON Web
// Tokens signed and verified with OpenSSL, with etcd's claims "username",
// "revision" and "exp" (Unix seconds).
#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cctype>
#include <chrono>
#include <fstream>
#include <map>
#include <sstream>

#include "api/auth_token.h"

namespace raftkv::api {
namespace {

// ---------------------------------------------------------------- encodings

constexpr std::string_view kB64 =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string b64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 0x3F]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 0x3F]);
  return out;
}

std::optional<std::string> unb64url(std::string_view in) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    const size_t v = kB64.find(c);
    if (v == std::string_view::npos) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", u);
      out += buf;
    } else {
      out.push_back(c);
    }
  }
  return out + "\"";
}

// Parses a flat JSON object of string and integer members (what the claims
// hold); other member kinds make the token invalid.
std::optional<std::map<std::string, std::string>> parse_claims(std::string_view s) {
  std::map<std::string, std::string> out;
  size_t i = 0;
  auto ws = [&] {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  };
  auto str = [&]() -> std::optional<std::string> {
    if (i >= s.size() || s[i] != '"') return std::nullopt;
    std::string v;
    for (++i; i < s.size() && s[i] != '"'; ++i) {
      if (s[i] != '\\') {
        v.push_back(s[i]);
        continue;
      }
      if (++i >= s.size()) return std::nullopt;
      switch (s[i]) {
        case '"': case '\\': case '/': v.push_back(s[i]); break;
        case 'b': v.push_back('\b'); break;
        case 'f': v.push_back('\f'); break;
        case 'n': v.push_back('\n'); break;
        case 'r': v.push_back('\r'); break;
        case 't': v.push_back('\t'); break;
        case 'u': {
          if (i + 4 >= s.size()) return std::nullopt;
          for (size_t h = i + 1; h <= i + 4; ++h) {
            if (!std::isxdigit(static_cast<unsigned char>(s[h]))) return std::nullopt;
          }
          const unsigned long cp = std::stoul(std::string(s.substr(i + 1, 4)), nullptr, 16);
          i += 4;
          if (cp < 0x80) {
            v.push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            v.push_back(static_cast<char>(0xC0 | (cp >> 6)));
            v.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            v.push_back(static_cast<char>(0xE0 | (cp >> 12)));
            v.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            v.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: return std::nullopt;
      }
    }
    if (i >= s.size()) return std::nullopt;
    ++i;
    return v;
  };
  ws();
  if (i >= s.size() || s[i++] != '{') return std::nullopt;
  for (ws(); i < s.size() && s[i] != '}';) {
    auto k = str();
    if (!k) return std::nullopt;
    ws();
    if (i >= s.size() || s[i++] != ':') return std::nullopt;
    ws();
    std::string v;
    if (i < s.size() && s[i] == '"') {
      auto sv = str();
      if (!sv) return std::nullopt;
      v = std::move(*sv);
    } else {
      const size_t b = i;
      while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '-')) ++i;
      if (i == b) return std::nullopt;
      v.assign(s.substr(b, i - b));
    }
    out[*k] = std::move(v);
    ws();
    if (i < s.size() && s[i] == ',') {
      ++i;
      ws();
    }
  }
  if (i >= s.size()) return std::nullopt;
  return out;
}

// Go-style duration: "300s", "5m", "1h30m", "1500ms".
std::optional<std::chrono::milliseconds> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t total_ms = 0;
  size_t i = 0;
  while (i < s.size()) {
    const size_t b = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
    if (i == b || i - b > 9) return std::nullopt;
    const int64_t n = std::stoll(std::string(s.substr(b, i - b)));
    const size_t u = i;
    while (i < s.size() && std::isalpha(static_cast<unsigned char>(s[i]))) ++i;
    const std::string_view unit = s.substr(u, i - u);
    if (unit == "ms") total_ms += n;
    else if (unit == "s") total_ms += n * 1000;
    else if (unit == "m") total_ms += n * 60 * 1000;
    else if (unit == "h") total_ms += n * 3600 * 1000;
    else return std::nullopt;
  }
  if (total_ms <= 0) return std::nullopt;
  return std::chrono::milliseconds(total_ms);
}

// ---------------------------------------------------------------- keys

struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;

Result<Pkey> read_key(const std::string& path, bool priv) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return Status::invalid_argument("--auth-token: cannot read key file " + path);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string pem = ss.str();
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* k = priv ? PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr)
                     : PEM_read_bio_PUBKEY(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (k == nullptr) {
    return Status::invalid_argument(std::string("--auth-token: ") + path + " holds no PEM " +
                                    (priv ? "private" : "public") + " key");
  }
  return Pkey(k);
}

class JwtTokenProvider final : public TokenProvider {
 public:
  JwtTokenProvider(bool es256, Pkey pub, Pkey priv, std::chrono::milliseconds ttl)
      : es256_(es256), pub_(std::move(pub)), priv_(std::move(priv)), ttl_(ttl) {
    header_ = b64url(es256_ ? R"({"alg":"ES256","typ":"JWT"})" : R"({"alg":"RS256","typ":"JWT"})");
  }

  Result<std::string> assign(const std::string& user, const std::string&,
                             uint64_t auth_revision) override {
    if (!priv_) return Status::failed_precondition("--auth-token: no priv-key to sign tokens with");
    const auto exp = std::chrono::duration_cast<std::chrono::seconds>(
                         (std::chrono::system_clock::now() + ttl_).time_since_epoch())
                         .count();
    const std::string claims = "{\"exp\":" + std::to_string(exp) +
                               ",\"revision\":" + std::to_string(auth_revision) +
                               ",\"username\":" + json_string(user) + "}";
    const std::string signing_input = header_ + "." + b64url(claims);
    std::optional<std::string> sig = sign(signing_input);
    if (!sig) return Status::internal("auth: signing a token failed");
    return signing_input + "." + b64url(*sig);
  }

  std::optional<TokenInfo> info(std::string_view token) override {
    const size_t d1 = token.find('.');
    const size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
    if (d2 == std::string_view::npos || token.substr(0, d1) != header_) return std::nullopt;
    std::optional<std::string> sig = unb64url(token.substr(d2 + 1));
    if (!sig || !verify(token.substr(0, d2), *sig)) return std::nullopt;
    std::optional<std::string> payload = unb64url(token.substr(d1 + 1, d2 - d1 - 1));
    if (!payload) return std::nullopt;
    auto claims = parse_claims(*payload);
    if (!claims || claims->count("username") == 0 || claims->count("exp") == 0) return std::nullopt;
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    int64_t exp = 0;
    try {
      exp = std::stoll((*claims)["exp"]);
    } catch (...) {
      return std::nullopt;
    }
    if (exp <= now) return std::nullopt;
    return TokenInfo{(*claims)["username"], ""};
  }

  void clear() override {}  // a JWT is valid until it expires (etcd's)

 private:
  std::optional<std::string> sign(std::string_view input) const {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    size_t len = 0;
    std::string der;
    bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, priv_.get()) == 1 &&
              EVP_DigestSign(ctx, nullptr, &len,
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    if (ok) {
      der.resize(len);
      ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(der.data()), &len,
                          reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
      der.resize(len);
    }
    EVP_MD_CTX_free(ctx);
    if (!ok) return std::nullopt;
    if (!es256_) return der;
    // JWS wants ES256 signatures as r || s, 32 bytes each, not DER.
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* es = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    if (es == nullptr) return std::nullopt;
    std::string raw(64, '\0');
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(es, &r, &s);
    ok = BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) == 32 &&
         BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) == 32;
    ECDSA_SIG_free(es);
    if (!ok) return std::nullopt;
    return raw;
  }

  bool verify(std::string_view input, std::string sig) const {
    if (es256_) {
      if (sig.size() != 64) return false;
      ECDSA_SIG* es = ECDSA_SIG_new();
      BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
      BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
      ECDSA_SIG_set0(es, r, s);
      unsigned char* der = nullptr;
      const int n = i2d_ECDSA_SIG(es, &der);
      ECDSA_SIG_free(es);
      if (n <= 0) return false;
      sig.assign(reinterpret_cast<char*>(der), static_cast<size_t>(n));
      OPENSSL_free(der);
    }
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    const bool ok =
        EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub_.get()) == 1 &&
        EVP_DigestVerify(ctx, reinterpret_cast<const unsigned char*>(sig.data()), sig.size(),
                         reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    EVP_MD_CTX_free(ctx);
    return ok;
  }

  const bool es256_;
  Pkey pub_;
  Pkey priv_;
  const std::chrono::milliseconds ttl_;
  std::string header_;
};

}  // namespace

Result<std::unique_ptr<TokenProvider>> make_jwt_token_provider(std::string_view options) {
  std::map<std::string, std::string> opt;
  size_t at = 0;
  while (at <= options.size()) {
    size_t comma = options.find(',', at);
    if (comma == std::string_view::npos) comma = options.size();
    const std::string_view item = options.substr(at, comma - at);
    at = comma + 1;
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      return Status::invalid_argument("--auth-token jwt: option '" + std::string(item) +
                                      "' is not key=value");
    }
    opt[std::string(item.substr(0, eq))] = std::string(item.substr(eq + 1));
  }
  for (const auto& [k, _] : opt) {
    if (k != "pub-key" && k != "priv-key" && k != "sign-method" && k != "ttl") {
      return Status::invalid_argument("--auth-token jwt: unknown option '" + k +
                                      "' (use pub-key, priv-key, sign-method, ttl)");
    }
  }
  const std::string method = opt.count("sign-method") ? opt["sign-method"] : "";
  if (method != "RS256" && method != "ES256") {
    return Status::invalid_argument("--auth-token jwt: sign-method must be RS256 or ES256");
  }
  if (opt["pub-key"].empty()) return Status::invalid_argument("--auth-token jwt: pub-key is required");
  std::chrono::milliseconds ttl = std::chrono::minutes(5);  // etcd's default
  if (opt.count("ttl")) {
    auto d = parse_duration(opt["ttl"]);
    if (!d) return Status::invalid_argument("--auth-token jwt: ttl '" + opt["ttl"] +
                                            "' is not a duration like 5m or 300s");
    ttl = *d;
  }
  Result<Pkey> pub = read_key(opt["pub-key"], false);
  if (!pub) return pub.status();
  Pkey priv;
  if (!opt["priv-key"].empty()) {
    Result<Pkey> k = read_key(opt["priv-key"], true);
    if (!k) return k.status();
    priv = std::move(*k);
  }
  const int want = method == "ES256" ? EVP_PKEY_EC : EVP_PKEY_RSA;
  if (EVP_PKEY_get_base_id(pub->get()) != want || (priv && EVP_PKEY_get_base_id(priv.get()) != want)) {
    return Status::invalid_argument("--auth-token jwt: the keys do not fit sign-method " + method);
  }
  return std::unique_ptr<TokenProvider>(
      new JwtTokenProvider(method == "ES256", std::move(*pub), std::move(priv), ttl));
}

}  // namespace raftkv::api
