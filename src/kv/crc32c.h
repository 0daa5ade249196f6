// CRC-32C (Castagnoli), used for HashKV and the snapshot stream's chunk checksums.
#pragma once

#include <cstdint>
#include <string_view>

namespace raftkv::kv {

/// Extends `crc` (0 to start) with `data`. crc32c_extend(0, "123456789") == 0xE3069283.
uint32_t crc32c_extend(uint32_t crc, std::string_view data);

inline uint32_t crc32c(std::string_view data) {
  return crc32c_extend(0, data);
}

}  // namespace raftkv::kv
