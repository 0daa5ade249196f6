// Passwords and tokens of the Auth service (api/auth_token.h): bcrypt round
// trips, simple tokens that expire unless used, and --auth-token parsing.
#include <gtest/gtest.h>

#include <thread>

#include "api/auth_token.h"

namespace raftkv::api {
namespace {

TEST(Password, BcryptRoundTrip) {
  Result<std::string> h = hash_password("s3cret", 4);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(h->rfind("$2b$04$", 0), 0u) << *h;
  EXPECT_TRUE(verify_password("s3cret", *h));
  EXPECT_FALSE(verify_password("s3cret ", *h));
  EXPECT_FALSE(verify_password("", *h));
  EXPECT_FALSE(verify_password("s3cret", ""));  // a no-password user
  Result<std::string> again = hash_password("s3cret", 4);
  ASSERT_TRUE(again.is_ok());
  EXPECT_NE(*again, *h);  // fresh salt
}

TEST(SimpleToken, ExpiresUnlessUsed) {
  auto p = make_token_provider("simple", std::chrono::seconds(1));
  ASSERT_TRUE(p.is_ok());
  Result<std::string> t = (*p)->assign("alice", "hash", 1);
  ASSERT_TRUE(t.is_ok());
  Result<std::string> t2 = (*p)->assign("alice", "hash", 1);
  ASSERT_TRUE(t2.is_ok());
  EXPECT_NE(*t, *t2);
  ASSERT_TRUE((*p)->info(*t).has_value());
  EXPECT_EQ((*p)->info(*t)->username, "alice");
  EXPECT_EQ((*p)->info(*t)->password_hash, "hash");
  for (int i = 0; i < 3; ++i) {  // each use renews it
    std::this_thread::sleep_for(std::chrono::milliseconds(600));
    ASSERT_TRUE((*p)->info(*t).has_value()) << i;
  }
  EXPECT_FALSE((*p)->info(*t2).has_value());  // unused for 1.8 s
  EXPECT_FALSE((*p)->info("made-up").has_value());
  (*p)->clear();
  EXPECT_FALSE((*p)->info(*t).has_value());
}

TEST(TokenSpec, BadSettingsSayWhatToChange) {
  auto unknown = make_token_provider("magic", std::chrono::seconds(1));
  ASSERT_FALSE(unknown.is_ok());
  EXPECT_NE(unknown.status().message().find("is not supported"), std::string::npos);
  auto method = make_token_provider("jwt,pub-key=x,sign-method=HS256", std::chrono::seconds(1));
  ASSERT_FALSE(method.is_ok());
  EXPECT_NE(method.status().message().find("RS256 or ES256"), std::string::npos);
  auto option = make_token_provider("jwt,colour=blue", std::chrono::seconds(1));
  ASSERT_FALSE(option.is_ok());
  EXPECT_NE(option.status().message().find("unknown option 'colour'"), std::string::npos);
  auto ttl = make_token_provider("jwt,pub-key=x,sign-method=RS256,ttl=soon",
                                 std::chrono::seconds(1));
  ASSERT_FALSE(ttl.is_ok());
  EXPECT_NE(ttl.status().message().find("not a duration"), std::string::npos);
  auto key = make_token_provider("jwt,pub-key=/nonexistent.pem,sign-method=ES256",
                                 std::chrono::seconds(1));
  ASSERT_FALSE(key.is_ok());
  EXPECT_NE(key.status().message().find("cannot read key file"), std::string::npos);
}

}  // namespace
}  // namespace raftkv::api
