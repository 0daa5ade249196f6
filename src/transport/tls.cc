#include "transport/tls.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_certificate_verifier.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <spdlog/spdlog.h>

namespace raftkv::transport {
namespace {

namespace gx = grpc::experimental;

// --- OpenSSL ownership helpers
struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct CrlFree {
  void operator()(X509_CRL* c) const { X509_CRL_free(c); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
struct NamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using CrlPtr = std::unique_ptr<X509_CRL, CrlFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using StorePtr = std::unique_ptr<X509_STORE, StoreFree>;
using StoreCtxPtr = std::unique_ptr<X509_STORE_CTX, StoreCtxFree>;
using StackPtr = std::unique_ptr<STACK_OF(X509), StackFree>;
using NamesPtr = std::unique_ptr<GENERAL_NAMES, NamesFree>;

std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM data of the expected kind";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// Opens `path` for reading, or explains why not, naming `flag`.
Result<BioPtr> open_file(const std::string& flag, const std::string& path) {
  BioPtr b(BIO_new_file(path.c_str(), "r"));
  if (!b) {
    const int err = errno;
    ERR_clear_error();
    return Status::invalid_argument("cannot read " + flag + " \"" + path +
                                    "\": " + std::strerror(err));
  }
  return b;
}

// Every certificate in a PEM file (at least one).
Result<std::vector<X509Ptr>> read_certs(const std::string& flag, const std::string& path) {
  Result<BioPtr> b = open_file(flag, path);
  if (!b) return b.status();
  std::vector<X509Ptr> out;
  while (X509* x = PEM_read_bio_X509(b->get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  if (out.empty()) {
    return Status::invalid_argument(flag + " \"" + path +
                                    "\" holds no PEM certificate: " + openssl_error());
  }
  ERR_clear_error();  // the end-of-file "no start line"
  return out;
}

Result<PkeyPtr> read_key(const std::string& flag, const std::string& path) {
  Result<BioPtr> b = open_file(flag, path);
  if (!b) return b.status();
  PkeyPtr k(PEM_read_bio_PrivateKey(b->get(), nullptr, nullptr, nullptr));
  if (!k) {
    return Status::invalid_argument(flag + " \"" + path +
                                    "\" holds no PEM private key: " + openssl_error());
  }
  return k;
}

Result<CrlPtr> read_crl(const std::string& flag, const std::string& path) {
  Result<BioPtr> b = open_file(flag, path);
  if (!b) return b.status();
  CrlPtr c(PEM_read_bio_X509_CRL(b->get(), nullptr, nullptr, nullptr));
  if (!c) {
    // etcd also accepts a DER CRL.
    BioPtr again(BIO_new_file(path.c_str(), "r"));
    if (again) c.reset(d2i_X509_CRL_bio(again.get(), nullptr));
  }
  if (!c) {
    return Status::invalid_argument(flag + " \"" + path +
                                    "\" holds no certificate revocation list (PEM or DER): " +
                                    openssl_error());
  }
  ERR_clear_error();
  return c;
}

std::string crl_flag(const TlsOptions& o) {
  return o.side == "client" ? "--client-crl-file" : "--peer-crl-file";
}

std::string ca_flag(const TlsOptions& o) { return o.flag_prefix + "trusted-ca-file"; }

// --- describing a certificate for log lines

std::string name_text(X509_NAME* n) {
  BioPtr b(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(b.get(), n, 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long len = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string san_text(X509* x) {
  NamesPtr names(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  std::string out;
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* g = sk_GENERAL_NAME_value(names.get(), i);
    std::string item;
    if (g->type == GEN_DNS) {
      item = "DNS:" + std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                                  static_cast<size_t>(ASN1_STRING_length(g->d.dNSName)));
    } else if (g->type == GEN_IPADD) {
      const int len = ASN1_STRING_length(g->d.iPAddress);
      const unsigned char* p = ASN1_STRING_get0_data(g->d.iPAddress);
      char buf[INET6_ADDRSTRLEN] = {};
      if (len == 4) inet_ntop(AF_INET, p, buf, sizeof buf);
      if (len == 16) inet_ntop(AF_INET6, p, buf, sizeof buf);
      item = std::string("IP:") + buf;
    } else {
      continue;
    }
    if (!out.empty()) out += ",";
    out += item;
  }
  return out;
}

std::string serial_text(X509* x) {
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(
      ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr), &BN_free);
  if (!bn) return "?";
  char* hex = BN_bn2hex(bn.get());
  std::string out = hex != nullptr ? hex : "?";
  OPENSSL_free(hex);
  return out;
}

std::string describe(X509* x) {
  return "subject=\"" + name_text(X509_get_subject_name(x)) + "\" sans=[" + san_text(x) +
         "] serial=" + serial_text(x) + " issuer=\"" + name_text(X509_get_issuer_name(x)) + "\"";
}

// --- the trust store, re-read when its files change

struct FileStamp {
  int64_t mtime_ns = -1;
  int64_t size = -1;
  bool operator==(const FileStamp&) const = default;
};

FileStamp stamp_of(const std::string& path) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return {};
  return FileStamp{static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                   static_cast<int64_t>(st.st_size)};
}

// The CA certificates and CRL of one side, as an X509_STORE that is rebuilt
// when either file changes. If a changed file cannot be parsed (e.g. caught
// half-written) the previous store stays in use and the problem is logged.
class TrustStore {
 public:
  explicit TrustStore(const TlsOptions& o) : o_(o) {}

  /// A reference to the current store (caller frees), or null if there has
  /// never been a valid one.
  X509_STORE* current() {
    std::lock_guard lk(mu_);
    const FileStamp ca = stamp_of(o_.trusted_ca_file);
    const FileStamp crl = stamp_of(o_.crl_file);
    if (!store_ || !(ca == ca_stamp_) || !(crl == crl_stamp_)) {
      Result<StorePtr> fresh = build();
      if (fresh) {
        if (store_) spdlog::info("{} TLS trust files reloaded ca={} crl={}", o_.side,
                                 o_.trusted_ca_file, o_.crl_file);
        store_ = std::move(*fresh);
      } else {
        spdlog::error("{} TLS trust files unusable, keeping the previous ones: {}", o_.side,
                      fresh.status().message());
      }
      ca_stamp_ = ca;  // do not retry (and log) on every handshake until the files change again
      crl_stamp_ = crl;
    }
    if (!store_) return nullptr;
    X509_STORE_up_ref(store_.get());
    return store_.get();
  }

 private:
  Result<StorePtr> build() const {
    StorePtr s(X509_STORE_new());
    Result<std::vector<X509Ptr>> cas = read_certs(ca_flag(o_), o_.trusted_ca_file);
    if (!cas) return cas.status();
    for (const X509Ptr& c : *cas) X509_STORE_add_cert(s.get(), c.get());
    if (!o_.crl_file.empty()) {
      Result<CrlPtr> crl = read_crl(crl_flag(o_), o_.crl_file);
      if (!crl) return crl.status();
      X509_STORE_add_crl(s.get(), crl->get());
      // The leaf's issuer must have a CRL in the file; intermediate CAs are
      // not checked against CRLs (etcd checks only the leaf as well).
      X509_STORE_set_flags(s.get(), X509_V_FLAG_CRL_CHECK);
    }
    return s;
  }

  const TlsOptions o_;
  std::mutex mu_;
  StorePtr store_;
  FileStamp ca_stamp_, crl_stamp_;
};

// Splits "host:port" / "[v6]:port" / "host" into the host.
std::string host_of(std::string target) {
  if (!target.empty() && target[0] == '[') {
    const size_t close = target.find(']');
    return close == std::string::npos ? target : target.substr(1, close - 1);
  }
  const size_t colon = target.rfind(':');
  if (colon != std::string::npos && target.find(':') == colon) target.resize(colon);
  return target;
}

bool is_ip(const std::string& host) {
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// Verifies the certificate the remote side presented (see the file comment in
// tls.h). `dialing`: this side opened the connection, so the remote is a
// server whose certificate must also name the host dialed.
class TlsPeerVerifier final : public gx::ExternalCertificateVerifier {
 public:
  TlsPeerVerifier(const TlsOptions& o, bool dialing)
      : side_(o.side), require_cert_(dialing || o.client_cert_auth), dialing_(dialing),
        trust_(std::make_unique<TrustStore>(o)) {}

  bool Verify(gx::TlsCustomVerificationCheckRequest* request, std::function<void(grpc::Status)>,
              grpc::Status* sync_status) override {
    *sync_status = check(request);
    return true;  // synchronous
  }
  void Cancel(gx::TlsCustomVerificationCheckRequest*) override {}

 private:
  grpc::Status refuse(const std::string& who, const std::string& why) const {
    spdlog::warn("refused {} TLS connection{}: {}", side_, who.empty() ? "" : " from " + who, why);
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, side_ + " certificate refused: " + why);
  }

  grpc::Status check(gx::TlsCustomVerificationCheckRequest* request) {
    const grpc::string_ref leaf_ref = request->peer_cert();
    const std::string target = dialing_ ? std::string(request->target_name().data(),
                                                      request->target_name().size())
                                        : std::string();
    const std::string where = target.empty() ? "" : " at " + target;
    if (leaf_ref.empty()) {
      if (!require_cert_) return grpc::Status::OK;
      return refuse(dialing_ ? "server" + where : "", "no certificate presented");
    }
    BioPtr leaf_bio(BIO_new_mem_buf(leaf_ref.data(), static_cast<int>(leaf_ref.size())));
    X509Ptr leaf(PEM_read_bio_X509(leaf_bio.get(), nullptr, nullptr, nullptr));
    if (!leaf) return refuse("", "unparsable certificate: " + openssl_error());
    const std::string who = describe(leaf.get()) + where;

    StackPtr chain(sk_X509_new_null());
    const grpc::string_ref chain_ref = request->peer_cert_full_chain();
    BioPtr chain_bio(BIO_new_mem_buf(chain_ref.data(), static_cast<int>(chain_ref.size())));
    while (X509* x = PEM_read_bio_X509(chain_bio.get(), nullptr, nullptr, nullptr)) {
      sk_X509_push(chain.get(), x);
    }
    ERR_clear_error();

    StorePtr store(trust_->current());
    if (!store) return refuse(who, "no usable trusted CA file");
    StoreCtxPtr ctx(X509_STORE_CTX_new());
    if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), leaf.get(), chain.get()) != 1) {
      return refuse(who, "cannot set up verification: " + openssl_error());
    }
    // A client certificate must allow client authentication, a server's
    // server authentication (as Go's crypto/tls checks the extended key usage).
    X509_STORE_CTX_set_purpose(ctx.get(),
                               dialing_ ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
    if (X509_verify_cert(ctx.get()) != 1) {
      const int err = X509_STORE_CTX_get_error(ctx.get());
      ERR_clear_error();
      return refuse(who, X509_verify_cert_error_string(err));
    }
    if (dialing_) {
      const std::string host = host_of(target);
      const bool match =
          is_ip(host) ? X509_check_ip_asc(leaf.get(), host.c_str(), 0) == 1
                      : X509_check_host(leaf.get(), host.data(), host.size(), 0, nullptr) == 1;
      if (!match) return refuse(who, "certificate is not valid for host " + host);
    }
    return grpc::Status::OK;
  }

  const std::string side_;
  const bool require_cert_;
  const bool dialing_;
  std::unique_ptr<TrustStore> trust_;
};

// etcd's (Go's) TLS 1.2 suite names -> OpenSSL's, for the suites HTTP/2 allows.
const std::map<std::string, std::string>& cipher_names() {
  static const std::map<std::string, std::string> m = {
      {"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256"},
      {"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"},
      {"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305"},
  };
  return m;
}

}  // namespace

Status check_tls_files(const TlsOptions& o) {
  const std::string cert_flag = o.flag_prefix + "cert-file";
  const std::string key_flag = o.flag_prefix + "key-file";
  if (!o.key_file.empty() && o.cert_file.empty()) {
    return Status::invalid_argument(key_flag + " \"" + o.key_file + "\" is set but " + cert_flag +
                                    " is not: give both");
  }
  if (!o.cert_file.empty() && o.key_file.empty()) {
    return Status::invalid_argument(cert_flag + " \"" + o.cert_file + "\" is set but " + key_flag +
                                    " is not: give both");
  }
  if (!o.cert_file.empty()) {
    Result<std::vector<X509Ptr>> certs = read_certs(cert_flag, o.cert_file);
    if (!certs) return certs.status();
    Result<PkeyPtr> key = read_key(key_flag, o.key_file);
    if (!key) return key.status();
    if (X509_check_private_key(certs->front().get(), key->get()) != 1) {
      ERR_clear_error();
      return Status::invalid_argument(key_flag + " \"" + o.key_file + "\" does not match " +
                                      cert_flag + " \"" + o.cert_file + "\"");
    }
  }
  if (!o.trusted_ca_file.empty()) {
    Result<std::vector<X509Ptr>> cas = read_certs(ca_flag(o), o.trusted_ca_file);
    if (!cas) return cas.status();
  }
  if (!o.crl_file.empty()) {
    if (o.trusted_ca_file.empty()) {
      return Status::invalid_argument(crl_flag(o) + " \"" + o.crl_file + "\" needs " + ca_flag(o) +
                                      " (revocation is checked while verifying certificates)");
    }
    Result<CrlPtr> crl = read_crl(crl_flag(o), o.crl_file);
    if (!crl) return crl.status();
  }
  if (o.client_cert_auth && o.trusted_ca_file.empty()) {
    return Status::invalid_argument(o.flag_prefix + "client-cert-auth needs " + ca_flag(o) +
                                    " to verify the certificates presented");
  }
  return Status::ok();
}

std::shared_ptr<grpc::ServerCredentials> make_server_credentials(const TlsOptions& o) {
  auto provider = std::make_shared<gx::FileWatcherCertificateProvider>(o.key_file, o.cert_file,
                                                                       kCertRefreshSeconds);
  gx::TlsServerCredentialsOptions opts(provider);
  opts.watch_identity_key_cert_pairs();
  if (o.trusted_ca_file.empty()) {
    opts.set_cert_request_type(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  } else {
    // gRPC only collects the certificate; TlsPeerVerifier decides.
    opts.set_cert_request_type(o.client_cert_auth
                                   ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_BUT_DONT_VERIFY
                                   : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_BUT_DONT_VERIFY);
    opts.set_certificate_verifier(
        gx::ExternalCertificateVerifier::Create<TlsPeerVerifier>(o, /*dialing=*/false));
  }
  return gx::TlsServerCredentials(opts);
}

std::shared_ptr<grpc::ChannelCredentials> make_channel_credentials(const TlsOptions& o) {
  gx::TlsChannelCredentialsOptions opts;
  if (o.has_certificate()) {
    opts.set_certificate_provider(std::make_shared<gx::FileWatcherCertificateProvider>(
        o.key_file, o.cert_file, kCertRefreshSeconds));
    opts.watch_identity_key_cert_pairs();
  }
  opts.set_verify_server_certs(false);  // TlsPeerVerifier checks chain and host
  opts.set_check_call_host(false);
  if (o.trusted_ca_file.empty()) {
    opts.set_certificate_verifier(std::make_shared<gx::NoOpCertificateVerifier>());
  } else {
    opts.set_certificate_verifier(
        gx::ExternalCertificateVerifier::Create<TlsPeerVerifier>(o, /*dialing=*/true));
  }
  return gx::TlsCredentials(opts);
}

std::string peer_common_name(const grpc::AuthContext& auth) {
  const std::vector<grpc::string_ref> v = auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME);
  if (v.empty()) return "";
  return std::string(v.front().data(), v.front().size());
}

Status write_self_signed_cert(const std::string& dir, const std::vector<std::string>& hosts,
                              uint32_t validity_years) {
  auto fail = [&](const std::string& what) {
    return Status::io_error("cannot generate a self-signed certificate in " + dir + ": " + what);
  };
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return fail(ec.message());
  if (hosts.empty()) return fail("no host to certify");

  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return fail(openssl_error());
  X509Ptr x(X509_new());
  X509_set_version(x.get(), 2);
  std::unique_ptr<BIGNUM, decltype(&BN_free)> serial(BN_new(), &BN_free);
  BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY);
  BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()));
  X509_gmtime_adj(X509_getm_notBefore(x.get()), -60);
  X509_time_adj_ex(X509_getm_notAfter(x.get()), static_cast<int>(365 * validity_years), 0,
                   nullptr);
  X509_set_pubkey(x.get(), key.get());
  X509_NAME* name = X509_get_subject_name(x.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("raftkv"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(hosts.front().c_str()), -1, -1,
                             0);
  X509_set_issuer_name(x.get(), name);

  std::string sans;
  for (const std::string& h : hosts) {
    if (!sans.empty()) sans += ",";
    sans += (is_ip(h) ? "IP:" : "DNS:") + h;
  }
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, x.get(), x.get(), nullptr, nullptr, 0);
  const std::pair<int, std::string> exts[] = {
      {NID_subject_alt_name, sans},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, "serverAuth,clientAuth"},
      {NID_basic_constraints, "critical,CA:FALSE"},
  };
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
    if (e == nullptr) return fail("bad extension \"" + value + "\": " + openssl_error());
    X509_add_ext(x.get(), e, -1);
    X509_EXTENSION_free(e);
  }
  if (X509_sign(x.get(), key.get(), EVP_sha256()) == 0) return fail(openssl_error());

  const std::string key_path = dir + "/key.pem";
  const std::string cert_path = dir + "/cert.pem";
  auto write = [&](const std::string& path, mode_t mode, auto&& emit) -> Status {
    const std::string tmp = path + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0) return fail(tmp + ": " + std::strerror(errno));
    BioPtr b(BIO_new_fd(fd, BIO_CLOSE));
    if (!b || emit(b.get()) != 1 || BIO_flush(b.get()) != 1) {
      return fail(path + ": " + openssl_error());
    }
    b.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) return fail(path + ": " + std::strerror(errno));
    return Status::ok();
  };
  RAFTKV_RETURN_IF_ERROR(write(key_path, 0600, [&](BIO* b) {
    return PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  }));
  return write(cert_path, 0644, [&](BIO* b) { return PEM_write_bio_X509(b, x.get()); });
}

Status check_cipher_suites(std::string_view go_names, std::string* openssl_list) {
  openssl_list->clear();
  size_t start = 0;
  while (start <= go_names.size()) {
    size_t comma = go_names.find(',', start);
    if (comma == std::string_view::npos) comma = go_names.size();
    std::string name(go_names.substr(start, comma - start));
    while (!name.empty() && name.back() == ' ') name.pop_back();
    while (!name.empty() && name.front() == ' ') name.erase(name.begin());
    start = comma + 1;
    if (name.empty()) continue;
    auto it = cipher_names().find(name);
    if (it == cipher_names().end()) {
      std::string known;
      for (const auto& [go, ossl] : cipher_names()) known += (known.empty() ? "" : ", ") + go;
      return Status::invalid_argument("--cipher-suites: \"" + name +
                                      "\" is not supported (TLS 1.2 suites usable with HTTP/2: " +
                                      known + ")");
    }
    if (!openssl_list->empty()) *openssl_list += ":";
    *openssl_list += it->second;
  }
  if (openssl_list->empty()) {
    return Status::invalid_argument("--cipher-suites lists no cipher suite");
  }
  return Status::ok();
}

void set_cipher_suites(const std::string& openssl_list) {
  ::setenv("GRPC_SSL_CIPHER_SUITES", openssl_list.c_str(), 1);
}

}  // namespace raftkv::transport
