// transport/tls.h: start-time checks of certificate files, self-signed
// certificate generation for auto-TLS, and the cipher suite translation.
#include "transport/tls.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace raftkv::transport {
namespace {

class TlsFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "raftkv-tls-test-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string dir_;
};

TEST_F(TlsFiles, GeneratedCertificateMatchesItsKeyAndKeepsTheKeyPrivate) {
  ASSERT_TRUE(write_self_signed_cert(dir_ + "/a", {"127.0.0.1", "localhost"}, 1).is_ok());
  TlsOptions o;
  o.cert_file = dir_ + "/a/cert.pem";
  o.key_file = dir_ + "/a/key.pem";
  Status st = check_tls_files(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  struct stat sb {};
  ASSERT_EQ(::stat(o.key_file.c_str(), &sb), 0);
  EXPECT_EQ(sb.st_mode & 077, 0u);
  // Generating again (a restart) replaces the files.
  ASSERT_TRUE(write_self_signed_cert(dir_ + "/a", {"127.0.0.1"}, 2).is_ok());
  EXPECT_TRUE(check_tls_files(o).is_ok());
}

TEST_F(TlsFiles, CombinationsThatCannotWorkNameFlagAndFile) {
  ASSERT_TRUE(write_self_signed_cert(dir_ + "/a", {"127.0.0.1"}, 1).is_ok());
  ASSERT_TRUE(write_self_signed_cert(dir_ + "/b", {"127.0.0.1"}, 1).is_ok());
  TlsOptions peer;
  peer.flag_prefix = "--peer-";
  peer.side = "peer";
  peer.key_file = dir_ + "/a/key.pem";
  Status st = check_tls_files(peer);
  EXPECT_NE(st.message().find("--peer-key-file"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("--peer-cert-file is not"), std::string::npos) << st.message();

  peer.cert_file = dir_ + "/b/cert.pem";  // another key's certificate
  st = check_tls_files(peer);
  EXPECT_NE(st.message().find("does not match"), std::string::npos) << st.message();

  peer.cert_file = dir_ + "/missing.pem";
  st = check_tls_files(peer);
  EXPECT_NE(st.message().find("cannot read --peer-cert-file \"" + dir_ + "/missing.pem\""),
            std::string::npos)
      << st.message();

  std::ofstream(dir_ + "/junk.pem") << "junk\n";
  peer.cert_file = dir_ + "/a/cert.pem";
  peer.trusted_ca_file = dir_ + "/junk.pem";
  st = check_tls_files(peer);
  EXPECT_NE(st.message().find("--peer-trusted-ca-file"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("no PEM certificate"), std::string::npos) << st.message();

  TlsOptions client;
  client.cert_file = dir_ + "/a/cert.pem";
  client.key_file = dir_ + "/a/key.pem";
  client.crl_file = dir_ + "/junk.pem";
  st = check_tls_files(client);
  EXPECT_NE(st.message().find("--client-crl-file"), std::string::npos) << st.message();
  client.crl_file.clear();
  client.client_cert_auth = true;
  st = check_tls_files(client);
  EXPECT_NE(st.message().find("--client-cert-auth needs --trusted-ca-file"), std::string::npos)
      << st.message();
}

TEST(CipherSuites, EtcdNamesMapToOpenSsl) {
  std::string list;
  ASSERT_TRUE(check_cipher_suites("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,"
                                  " TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
                                  &list)
                  .is_ok());
  EXPECT_EQ(list, "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305");
  Status st = check_cipher_suites("TLS_RSA_WITH_3DES_EDE_CBC_SHA", &list);
  EXPECT_EQ(st.code(), Code::kInvalidArgument);
  EXPECT_NE(st.message().find("TLS_RSA_WITH_3DES_EDE_CBC_SHA"), std::string::npos);
  EXPECT_EQ(check_cipher_suites(" , ", &list).code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace raftkv::transport
