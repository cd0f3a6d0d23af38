// FuzzInput: consumes a fuzz input from the front; past its end every read
// is zero, so a target never has to check lengths before it decides.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace warden::storage::fuzzing {

class FuzzInput {
 public:
  FuzzInput(const uint8_t* data, size_t size) : in_(reinterpret_cast<const char*>(data), size) {}
  uint8_t Byte() {
    if (in_.empty()) return 0;
    const auto b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  uint32_t U16() { return Byte() | (static_cast<uint32_t>(Byte()) << 8); }
  std::string Take(size_t n) {
    n = std::min(n, in_.size());
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  std::string_view Rest() {
    std::string_view r = in_;
    in_ = {};
    return r;
  }

 private:
  std::string_view in_;
};

}  // namespace warden::storage::fuzzing
