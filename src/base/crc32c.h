// CRC32C (Castagnoli), the checksum of every WAL record and snapshot file.
// Uses the SSE4.2 crc32 instruction when the CPU has it, else a table.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace warden::crc32c {

// Extends `crc` (the CRC of earlier bytes, 0 to start) over data[0, n).
uint32_t Extend(uint32_t crc, const char* data, size_t n);
inline uint32_t Value(const char* data, size_t n) { return Extend(0, data, n); }
inline uint32_t Value(std::string_view s) { return Extend(0, s.data(), s.size()); }

// True if the hardware instruction is in use.
bool HardwareAccelerated();

}  // namespace warden::crc32c
