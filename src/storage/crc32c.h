// CRC32C (Castagnoli polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of every WAL record and snapshot chunk.
//
// crc32c() uses the SSE4.2 crc32 instruction when the CPU has it (detected
// once at run time with __builtin_cpu_supports) and a portable slicing-by-8
// table otherwise. Both are exposed so tests can check each against the
// RFC 3720 test vectors. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace raftkv::storage {

/// Continues a CRC32C: crc32c_extend(crc32c(a), b) == crc32c(a + b).
/// `crc` is a finished CRC value (0 for the empty string).
uint32_t crc32c_extend(uint32_t crc, const void* data, size_t n);

inline uint32_t crc32c(const void* data, size_t n) {
  return crc32c_extend(0, data, n);
}
inline uint32_t crc32c(std::string_view s) {
  return crc32c_extend(0, s.data(), s.size());
}

/// The table implementation (any CPU).
uint32_t crc32c_extend_portable(uint32_t crc, const void* data, size_t n);
/// The SSE4.2 implementation. REQUIRES: crc32c_hardware_available().
uint32_t crc32c_extend_hardware(uint32_t crc, const void* data, size_t n);
/// True if this CPU has the SSE4.2 crc32 instruction (and this is x86-64).
bool crc32c_hardware_available();

}  // namespace raftkv::storage
