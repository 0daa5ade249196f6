#include "base/status.h"

#include <gtest/gtest.h>

namespace raftkv {
namespace {

TEST(Status, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.is_ok());
  EXPECT_EQ(s.to_string(), "OK");
}

TEST(Status, ErrorCarriesCodeAndMessage) {
  Status s = Status::corruption("segment 3 offset 4096: crc mismatch");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), Code::kCorruption);
  EXPECT_EQ(s.to_string(), "Corruption: segment 3 offset 4096: crc mismatch");
}

TEST(Result, HoldsValueOrStatus) {
  Result<int> good = 42;
  ASSERT_TRUE(good.is_ok());
  EXPECT_EQ(*good, 42);
  EXPECT_TRUE(good.status().is_ok());

  Result<int> bad = Status::not_found("key");
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Code::kNotFound);
}

Status fails_then_continues(bool fail, int* reached) {
  RAFTKV_RETURN_IF_ERROR(fail ? Status::io_error("disk") : Status::ok());
  *reached = 1;
  return Status::ok();
}

TEST(Status, ReturnIfErrorPropagates) {
  int reached = 0;
  EXPECT_EQ(fails_then_continues(true, &reached).code(), Code::kIOError);
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(fails_then_continues(false, &reached).is_ok());
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace raftkv
