#include "sim/kv.h"

#include <cstring>

namespace warden::sim {
namespace {

void PutU64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void PutString(std::string* out, const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  out->append(s);
}

// Reads fixed-width fields and strings from a buffer; every read checks the
// length first, so a damaged buffer gives false, never a crash.
class Reader {
 public:
  explicit Reader(const std::string& s) : s_(s) {}
  bool U8(uint8_t* v) {
    if (pos_ + 1 > s_.size()) return false;
    *v = static_cast<uint8_t>(s_[pos_++]);
    return true;
  }
  bool U64(uint64_t* v) {
    if (pos_ + 8 > s_.size()) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t{static_cast<uint8_t>(s_[pos_ + i])} << (8 * i);
    pos_ += 8;
    return true;
  }
  bool String(std::string* v) {
    if (pos_ + 4 > s_.size()) return false;
    uint32_t n = 0;
    for (int i = 0; i < 4; ++i) n |= uint32_t{static_cast<uint8_t>(s_[pos_ + i])} << (8 * i);
    pos_ += 4;
    if (pos_ + n > s_.size()) return false;
    v->assign(s_, pos_, n);
    pos_ += n;
    return true;
  }
  bool Done() const { return pos_ == s_.size(); }

 private:
  const std::string& s_;
  size_t pos_ = 0;
};

}  // namespace

std::string KvCommand::Encode() const {
  std::string out;
  out.push_back(1);
  out.push_back(static_cast<char>(op));
  PutU64(&out, client);
  PutU64(&out, seq);
  PutString(&out, key);
  PutString(&out, value);
  out.push_back(expected ? 1 : 0);
  PutString(&out, expected.value_or(""));
  return out;
}

bool KvCommand::Decode(const std::string& data, KvCommand* out) {
  Reader r(data);
  uint8_t version = 0, op = 0, has_expected = 0;
  std::string expected;
  if (!r.U8(&version) || version != 1 || !r.U8(&op) || (op != kPut && op != kCas)) return false;
  out->op = static_cast<Op>(op);
  if (!r.U64(&out->client) || !r.U64(&out->seq) || !r.String(&out->key) || !r.String(&out->value) ||
      !r.U8(&has_expected) || !r.String(&expected) || !r.Done()) {
    return false;
  }
  out->expected.reset();
  if (has_expected) out->expected = std::move(expected);
  return true;
}

KvResult KvStore::Apply(const KvCommand& cmd) {
  if (cmd.op == KvCommand::kCas) {
    auto it = data_.find(cmd.key);
    const bool matches =
        cmd.expected ? (it != data_.end() && it->second == *cmd.expected) : it == data_.end();
    if (!matches) return KvResult{false};
  }
  data_[cmd.key] = cmd.value;
  return KvResult{true};
}

std::optional<std::string> KvStore::Get(const std::string& key) const {
  auto it = data_.find(key);
  if (it == data_.end()) return std::nullopt;
  return it->second;
}

std::string KvStore::Serialize() const {
  std::string out;
  out.push_back(1);
  PutU64(&out, data_.size());
  for (const auto& [k, v] : data_) {
    PutString(&out, k);
    PutString(&out, v);
  }
  return out;
}

bool KvStore::Restore(const std::string& image) {
  data_.clear();
  if (image.empty()) return true;
  Reader r(image);
  uint8_t version = 0;
  uint64_t n = 0;
  if (!r.U8(&version) || version != 1 || !r.U64(&n)) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string k, v;
    if (!r.String(&k) || !r.String(&v)) return false;
    data_[k] = v;
  }
  return r.Done();
}

uint64_t HashBytes(const std::string& s, uint64_t seed) {
  uint64_t h = seed;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

uint64_t KvStore::Digest() const { return HashBytes(Serialize()); }

}  // namespace warden::sim
