// KvStore: the simulator's replicated state machine, a tiny map of string
// registers with put and compare-and-set (reads go through ReadIndex and never
// enter the log).
//
// A command travels in a log entry's data, tagged with (client, seq) so that
// the node that proposed it can match the applied entry to the waiting client.
// Encoding (replicated format, version 1; DO NOT CHANGE without a new version
// byte): [version=1][op u8][client u64 LE][seq u64 LE][key][value]
// [has_expected u8][expected], where each string is [len u32 LE][bytes].
// Entries with empty data are a new leader's no-op and change nothing.
//
// Apply is deterministic: equal command sequences give equal states, which the
// digest makes cheap to compare across replicas.
//
// Thread safety: none.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace warden::sim {

struct KvCommand {
  enum Op : uint8_t { kPut = 1, kCas = 2 };
  Op op = kPut;
  uint64_t client = 0;
  uint64_t seq = 0;
  std::string key;
  std::string value;
  std::optional<std::string> expected;  // kCas: nullopt means "key absent"

  std::string Encode() const;
  static bool Decode(const std::string& data, KvCommand* out);
};

struct KvResult {
  bool ok = true;  // kCas: whether it swapped
};

class KvStore {
 public:
  KvResult Apply(const KvCommand& cmd);
  std::optional<std::string> Get(const std::string& key) const;

  std::string Serialize() const;
  // An empty image is the empty store (the bootstrap snapshot's).
  bool Restore(const std::string& image);

  // FNV-1a over the serialized map: equal states give equal digests.
  uint64_t Digest() const;

 private:
  std::map<std::string, std::string> data_;
};

uint64_t HashBytes(const std::string& s, uint64_t seed = 1469598103934665603ULL);

}  // namespace warden::sim
