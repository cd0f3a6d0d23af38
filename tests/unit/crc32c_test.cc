// CRC32C: known vectors, and agreement with an independent bit-at-a-time
// reference on random buffers, lengths and alignments. When the CPU has
// SSE4.2, Extend runs the hardware path, so the reference comparison is the
// hardware-versus-software check; either way it pins the polynomial.
#include "src/base/crc32c.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "src/base/random.h"

namespace warden::crc32c {
namespace {

// Bit-at-a-time CRC32C, written from the definition (reflected polynomial
// 0x82F63B78, initial value and final xor 0xFFFFFFFF). Slow and obviously right.
uint32_t Reference(uint32_t crc, const char* data, size_t n) {
  uint32_t c = ~crc;
  for (size_t i = 0; i < n; ++i) {
    c ^= static_cast<unsigned char>(data[i]);
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}

std::string RandomBytes(Rng& rng, size_t n) {
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng.Next());
  return s;
}

TEST(Crc32cTest, CheckValueOf123456789) { EXPECT_EQ(Value("123456789"), 0xE3069283u); }

TEST(Crc32cTest, ThirtyTwoZeroBytes) {
  const std::string zeros(32, '\0');
  EXPECT_EQ(Value(zeros), 0x8A9136AAu);
}

// The remaining vectors are from RFC 3720 (iSCSI), appendix B.4.
TEST(Crc32cTest, ThirtyTwoOnesBytes) {
  const std::string ones(32, '\xff');
  EXPECT_EQ(Value(ones), 0x62A8AB43u);
}

TEST(Crc32cTest, IncreasingAndDecreasingBytes) {
  std::string up(32, '\0'), down(32, '\0');
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<char>(i);
    down[i] = static_cast<char>(31 - i);
  }
  EXPECT_EQ(Value(up), 0x46DD794Eu);
  EXPECT_EQ(Value(down), 0x113FDB5Cu);
}

TEST(Crc32cTest, EmptyIsZeroAndExtendOfNothingIsIdentity) {
  EXPECT_EQ(Value("", 0), 0u);
  EXPECT_EQ(Extend(0xE3069283u, "", 0), 0xE3069283u);
}

TEST(Crc32cTest, ReportsWhichPathIsInUse) {
  // Informational: tells the reader of the log which path the next test checked.
  std::printf("crc32c hardware path: %s\n", HardwareAccelerated() ? "SSE4.2" : "table");
  SUCCEED();
}

TEST(Crc32cTest, AgreesWithReferenceOnRandomBuffers) {
  Rng rng(0xC2C32C);
  const std::string pool = RandomBytes(rng, 4096 + 16);
  for (int iter = 0; iter < 2000; ++iter) {
    // Every small length, then random ones; random start (alignment) and seed.
    const size_t n = iter < 64 ? static_cast<size_t>(iter) : rng.Uniform(4096);
    const size_t start = rng.Uniform(16);
    const auto seed = static_cast<uint32_t>(rng.Next());
    const char* p = pool.data() + start;
    ASSERT_EQ(Extend(seed, p, n), Reference(seed, p, n)) << "n=" << n << " start=" << start;
  }
}

TEST(Crc32cTest, ExtendInPiecesEqualsWhole) {
  Rng rng(77);
  for (int iter = 0; iter < 500; ++iter) {
    const std::string s = RandomBytes(rng, rng.Uniform(2048));
    const uint32_t whole = Value(s);
    uint32_t crc = 0;
    size_t at = 0;
    while (at < s.size()) {
      const size_t piece = std::min<size_t>(s.size() - at, rng.Range(1, 37));
      crc = Extend(crc, s.data() + at, piece);
      at += piece;
    }
    ASSERT_EQ(crc, whole) << "size " << s.size();
  }
}

TEST(Crc32cTest, DetectsEverySingleBitFlip) {
  Rng rng(5);
  const std::string s = RandomBytes(rng, 300);
  const uint32_t good = Value(s);
  for (size_t i = 0; i < s.size(); ++i) {
    for (int b = 0; b < 8; ++b) {
      std::string t = s;
      t[i] = static_cast<char>(t[i] ^ (1 << b));
      ASSERT_NE(Value(t), good) << "byte " << i << " bit " << b;
    }
  }
}

}  // namespace
}  // namespace warden::crc32c
