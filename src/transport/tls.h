// TLS for the client and peer listeners and for peer channels, with etcd's
// flag semantics (docs/security.md has the operator's view).
//
// Certificates and keys are served through gRPC's FileWatcherCertificateProvider:
// the cert/key files are re-read every kCertRefreshSeconds, so replacing them
// (atomically: write new files, then rename over the old ones) rotates the
// certificate for every new connection without a restart.
//
// Verification of the remote certificate is done by raftkv itself, in a
// custom gRPC certificate verifier (TlsPeerVerifier in tls.cc), not by gRPC's
// built-in check. Reasons: gRPC 1.51 takes CRLs only as an OpenSSL hashed
// directory, not etcd's single --client-crl-file / --peer-crl-file; and its
// handshake failures are logged without saying whose certificate failed. The
// verifier builds an OpenSSL X509_STORE from --trusted-ca-file (and the CRL,
// with X509_V_FLAG_CRL_CHECK), re-reads both when their modification time or
// size changes, checks the chain with X509_verify_cert, checks the host name
// or IP against the certificate on the dialing side, and logs every refusal
// with the certificate's subject, SANs, serial and OpenSSL's reason. The TLS
// handshake itself (which proves the peer holds the key) is gRPC's.
//
// Protocol versions: gRPC 1.51 negotiates TLS 1.2 or TLS 1.3 and has no C++
// setting for the minimum, so TLS 1.2 is the minimum raftkv can promise;
// --tls-min-version TLS1.3 is refused at start (config.cc). Cipher suites:
// gRPC reads the process-wide GRPC_SSL_CIPHER_SUITES variable once, when the
// first TLS context is made; set_cipher_suites() sets it from etcd's Go suite
// names. It governs TLS 1.2 suites; TLS 1.3 suites are fixed by OpenSSL (as
// in Go).
//
// Thread-safety: the free functions are thread-safe except
// set_cipher_suites(), which must run before any gRPC object is created.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace grpc {
class AuthContext;
class ChannelCredentials;
class ServerCredentials;
}  // namespace grpc

namespace raftkv::transport {

/// How often certificate, key and CA files are checked for changes.
inline constexpr unsigned kCertRefreshSeconds = 1;

/// One side's TLS settings (client side: --cert-file ...; peer side:
/// --peer-cert-file ...). Paths are as given; "" = not set.
struct TlsOptions {
  std::string cert_file;
  std::string key_file;
  std::string trusted_ca_file;
  std::string crl_file;
  /// Require a certificate from the connecting side, signed by trusted_ca_file
  /// (--client-cert-auth / --peer-client-cert-auth).
  bool client_cert_auth = false;
  /// --auto-tls / --peer-auto-tls: a self-signed certificate is generated at
  /// start when cert_file/key_file are not given.
  bool auto_tls = false;
  /// Flag prefix for messages: "--" (client side) or "--peer-".
  std::string flag_prefix = "--";
  /// "client" or "peer", for log lines.
  std::string side = "client";

  /// A certificate to serve is configured (given or generated).
  bool has_certificate() const { return !cert_file.empty(); }
};

/// Checks the files of `o` at start: a key needs a certificate and a
/// certificate a key; every file given must be readable PEM of the right kind;
/// the key must match the certificate; client_cert_auth needs a CA file.
/// Errors: kInvalidArgument naming the flag and the file.
Status check_tls_files(const TlsOptions& o);

/// Server credentials for an https:// listener.
/// REQUIRES: o.has_certificate() and check_tls_files(o) passed.
std::shared_ptr<grpc::ServerCredentials> make_server_credentials(const TlsOptions& o);

/// Credentials for dialing https:// peers: presents o's certificate, and
/// verifies the remote one against o.trusted_ca_file (chain, CRL, host name).
/// Without a CA file (auto-tls) the remote certificate is not verified, as
/// etcd does for self-signed peer certificates.
/// REQUIRES: check_tls_files(o) passed.
std::shared_ptr<grpc::ChannelCredentials> make_channel_credentials(const TlsOptions& o);

/// The common name of the verified certificate the remote side presented on
/// this connection, or "" if it presented none (or the connection is not TLS).
/// On a listener with client_cert_auth the certificate has passed the
/// verifier, so the name can authenticate the caller. For a call:
///   peer_common_name(*server_context->auth_context())
std::string peer_common_name(const grpc::AuthContext& auth);

/// Generates a self-signed ECDSA P-256 certificate valid `validity_years`
/// years for `hosts` (IPs become IP SANs, names DNS SANs; the first is the
/// CN), written to `dir`/cert.pem and `dir`/key.pem (key mode 0600); `dir` is
/// created. Files from an earlier start are replaced. Errors: kIOError.
Status write_self_signed_cert(const std::string& dir, const std::vector<std::string>& hosts,
                              uint32_t validity_years);

/// Translates a comma-separated list of etcd's (Go) TLS 1.2 cipher suite
/// names, e.g. "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256". Only AEAD suites with
/// ECDHE key exchange are accepted (HTTP/2 forbids the others). On success
/// `openssl_list` holds OpenSSL's names joined by ':'.
/// Errors: kInvalidArgument naming the unsupported suite.
Status check_cipher_suites(std::string_view go_names, std::string* openssl_list);
/// Applies a list produced by check_cipher_suites to the process.
/// REQUIRES: no gRPC object has been created yet.
void set_cipher_suites(const std::string& openssl_list);

}  // namespace raftkv::transport
