// CRC32C: both implementations against the RFC 3720 (iSCSI) test vectors.
#include "storage/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace raftkv::storage {
namespace {

struct Vector {
  std::string data;
  uint32_t crc;
};

std::vector<Vector> rfc3720_vectors() {
  std::vector<Vector> v;
  v.push_back({std::string(32, '\0'), 0x8A9136AAu});
  v.push_back({std::string(32, '\xff'), 0x62A8AB43u});
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  v.push_back({up, 0x46DD794Eu});
  v.push_back({down, 0x113FDB5Cu});
  v.push_back({"123456789", 0xE3069283u});
  v.push_back({"", 0u});
  return v;
}

TEST(Crc32c, PortableMatchesKnownVectors) {
  for (const Vector& t : rfc3720_vectors()) {
    EXPECT_EQ(crc32c_extend_portable(0, t.data.data(), t.data.size()), t.crc) << t.data.size();
  }
}

TEST(Crc32c, HardwareMatchesKnownVectors) {
  if (!crc32c_hardware_available()) GTEST_SKIP() << "this CPU has no SSE4.2 crc32 instruction";
  for (const Vector& t : rfc3720_vectors()) {
    EXPECT_EQ(crc32c_extend_hardware(0, t.data.data(), t.data.size()), t.crc) << t.data.size();
  }
}

TEST(Crc32c, ExtendIsConcatenationForEverySplitAndBothImplementationsAgree) {
  std::string s;
  for (int i = 0; i < 1000; ++i) s.push_back(static_cast<char>(i * 131 + 7));
  const uint32_t whole = crc32c(s);
  EXPECT_EQ(whole, crc32c_extend_portable(0, s.data(), s.size()));
  for (size_t split = 0; split <= s.size(); split += 37) {
    uint32_t c = crc32c(s.data(), split);
    EXPECT_EQ(crc32c_extend(c, s.data() + split, s.size() - split), whole) << split;
    uint32_t p = crc32c_extend_portable(0, s.data(), split);
    EXPECT_EQ(crc32c_extend_portable(p, s.data() + split, s.size() - split), whole) << split;
  }
}

}  // namespace
}  // namespace raftkv::storage
