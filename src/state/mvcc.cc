#include "src/state/mvcc.h"

#include <algorithm>
#include <tuple>

#include "src/base/check.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace warden::state {

bool KeyRange::Contains(std::string_view k) const {
  if (range_end.empty()) return k == key;
  if (range_end == std::string_view("\0", 1)) return k >= key;
  return k >= key && k < range_end;
}

const MvccStore::Version* MvccStore::VisibleAt(const std::vector<Version>& versions,
                                               int64_t revision) {
  // The last version with main <= revision.
  auto it = std::upper_bound(versions.begin(), versions.end(), revision,
                             [](int64_t rev, const Version& v) { return rev < v.main; });
  if (it == versions.begin()) return nullptr;
  --it;
  return it->tombstone ? nullptr : &*it;
}

KeyValue MvccStore::ToKeyValue(const std::string& key, const Version& v) {
  KeyValue kv;
  kv.key = key;
  kv.mod_revision = v.main;
  if (!v.tombstone) {
    kv.create_revision = v.create;
    kv.version = v.version;
    kv.value = v.value;
    kv.lease = v.lease;
  }
  return kv;
}

Result<RangeResult> MvccStore::Range(const RangeOptions& o) const {
  const int64_t rev = o.revision > 0 ? o.revision : ReadRevision();
  if (rev > ReadRevision()) {
    return Status(ErrorCode::kFutureRevision, "mvcc: required revision is a future revision");
  }
  if (rev < compact_revision_) {
    return Status(ErrorCode::kCompacted, "mvcc: required revision has been compacted");
  }
  RangeResult result;
  auto begin = keys_.lower_bound(o.range.key);
  auto in_range = [&](const std::string& k) { return o.range.Contains(k); };
  // Without sorting by something other than key ascending, the limit can cut
  // the scan short (but count still counts everything).
  const bool key_order = o.sort_order == SortOrder::kNone ||
                         (o.sort_target == SortTarget::kKey && o.sort_order == SortOrder::kAscend);
  for (auto it = begin; it != keys_.end(); ++it) {
    if (!in_range(it->first)) {
      if (o.range.IsSingleKey() || it->first >= o.range.range_end) break;
      continue;
    }
    const Version* v = VisibleAt(it->second, rev);
    if (v == nullptr) continue;
    if (o.min_mod_revision > 0 && v->main < o.min_mod_revision) continue;
    if (o.max_mod_revision > 0 && v->main > o.max_mod_revision) continue;
    if (o.min_create_revision > 0 && v->create < o.min_create_revision) continue;
    if (o.max_create_revision > 0 && v->create > o.max_create_revision) continue;
    ++result.count;
    if (o.count_only) continue;
    if (key_order && o.limit > 0 && static_cast<int64_t>(result.kvs.size()) >= o.limit) continue;
    KeyValue kv = ToKeyValue(it->first, *v);
    if (o.keys_only) kv.value.clear();
    result.kvs.push_back(std::move(kv));
  }
  if (!key_order) {
    auto key_of = [&](const KeyValue& kv) {
      switch (o.sort_target) {
        case SortTarget::kKey: return std::tuple<int64_t, std::string_view>(0, kv.key);
        case SortTarget::kVersion: return std::tuple<int64_t, std::string_view>(kv.version, {});
        case SortTarget::kCreate:
          return std::tuple<int64_t, std::string_view>(kv.create_revision, {});
        case SortTarget::kMod: return std::tuple<int64_t, std::string_view>(kv.mod_revision, {});
        case SortTarget::kValue: return std::tuple<int64_t, std::string_view>(0, kv.value);
      }
      return std::tuple<int64_t, std::string_view>(0, {});
    };
    // Stable, so equal sort keys stay in key order (as etcd's sort does).
    std::stable_sort(result.kvs.begin(), result.kvs.end(),
                     [&](const KeyValue& a, const KeyValue& b) {
                       return o.sort_order == SortOrder::kDescend ? key_of(b) < key_of(a)
                                                                  : key_of(a) < key_of(b);
                     });
    if (o.limit > 0 && static_cast<int64_t>(result.kvs.size()) > o.limit) {
      result.kvs.resize(static_cast<size_t>(o.limit));
    }
  }
  result.more = o.limit > 0 && result.count > static_cast<int64_t>(result.kvs.size());
  if (o.count_only) result.more = false;
  return result;
}

std::optional<KeyValue> MvccStore::Get(const std::string& key) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return std::nullopt;
  const Version* v = VisibleAt(it->second, ReadRevision());
  if (v == nullptr) return std::nullopt;
  return ToKeyValue(key, *v);
}

void MvccStore::BeginWrite() {
  WARDEN_CHECK_MSG(!writing_, "nested write transaction");
  writing_ = true;
  txn_sub_ = 0;
  txn_events_.clear();
}

int64_t MvccStore::NextSub() {
  WARDEN_CHECK_MSG(writing_, "write outside a transaction");
  return txn_sub_++;
}

std::optional<KeyValue> MvccStore::Put(const std::string& key, const std::string& value,
                                       int64_t lease) {
  const int64_t main = current_revision_ + 1;
  const int64_t sub = NextSub();
  std::vector<Version>& versions = keys_[key];
  Version v;
  v.main = main;
  v.sub = sub;
  v.value = value;
  v.lease = lease;
  std::optional<KeyValue> prev;
  const Version* last = versions.empty() || versions.back().tombstone ? nullptr : &versions.back();
  if (last != nullptr) {
    prev = ToKeyValue(key, *last);
    v.create = last->create;
    v.version = last->version + 1;
  } else {
    v.create = main;
    v.version = 1;
  }
  retained_bytes_ += VersionBytes(key, v);
  versions.push_back(std::move(v));
  change_log_.push_back(Change{main, sub, key});
  Event e;
  e.type = EventType::kPut;
  e.kv = ToKeyValue(key, versions.back());
  e.prev_kv = prev;
  txn_events_.push_back(std::move(e));
  return prev;
}

std::vector<KeyValue> MvccStore::DeleteRange(const KeyRange& range) {
  std::vector<KeyValue> deleted;
  std::vector<std::string> keys;
  for (auto it = keys_.lower_bound(range.key); it != keys_.end(); ++it) {
    if (!range.Contains(it->first)) {
      if (range.IsSingleKey() || it->first >= range.range_end) break;
      continue;
    }
    if (!it->second.empty() && !it->second.back().tombstone) keys.push_back(it->first);
  }
  const int64_t main = current_revision_ + 1;
  for (const std::string& key : keys) {
    std::vector<Version>& versions = keys_[key];
    KeyValue prev = ToKeyValue(key, versions.back());
    Version t;
    t.main = main;
    t.sub = NextSub();
    t.tombstone = true;
    retained_bytes_ += VersionBytes(key, t);
    versions.push_back(t);
    change_log_.push_back(Change{main, t.sub, key});
    Event e;
    e.type = EventType::kDelete;
    e.kv = ToKeyValue(key, versions.back());
    e.prev_kv = prev;
    txn_events_.push_back(std::move(e));
    deleted.push_back(std::move(prev));
  }
  return deleted;
}

std::vector<Event> MvccStore::EndWrite() {
  WARDEN_CHECK_MSG(writing_, "EndWrite without BeginWrite");
  writing_ = false;
  if (txn_sub_ > 0) ++current_revision_;
  return std::move(txn_events_);
}

Status MvccStore::Compact(int64_t revision) {
  if (revision <= compact_revision_) {
    return Status(ErrorCode::kCompacted, "mvcc: required revision has been compacted");
  }
  if (revision > current_revision_) {
    return Status(ErrorCode::kFutureRevision, "mvcc: required revision is a future revision");
  }
  for (auto it = keys_.begin(); it != keys_.end();) {
    std::vector<Version>& versions = it->second;
    // Keep the latest version at or below `revision` (what a read at
    // `revision` sees) unless it is a tombstone older than `revision`.
    auto first_after = std::upper_bound(versions.begin(), versions.end(), revision,
                                        [](int64_t rev, const Version& v) { return rev < v.main; });
    auto keep_from = first_after;
    if (first_after != versions.begin()) {
      auto latest = std::prev(first_after);
      if (!(latest->tombstone && latest->main < revision)) keep_from = latest;
    }
    for (auto v = versions.begin(); v != keep_from; ++v)
      retained_bytes_ -= VersionBytes(it->first, *v);
    versions.erase(versions.begin(), keep_from);
    it = versions.empty() ? keys_.erase(it) : std::next(it);
  }
  while (!change_log_.empty() && change_log_.front().main < revision) change_log_.pop_front();
  compact_revision_ = revision;
  return Status::Ok();
}

Result<std::vector<Event>> MvccStore::EventsSince(int64_t from_revision, const KeyRange& range,
                                                  size_t max_events) const {
  if (from_revision < compact_revision_) {
    return Status(ErrorCode::kCompacted, "mvcc: required revision has been compacted");
  }
  std::vector<Event> out;
  auto it = std::lower_bound(change_log_.begin(), change_log_.end(), from_revision,
                             [](const Change& c, int64_t rev) { return c.main < rev; });
  int64_t last_main = 0;
  for (; it != change_log_.end(); ++it) {
    if (out.size() >= max_events && it->main != last_main) break;
    if (!range.Contains(it->key)) continue;
    const std::vector<Version>& versions = keys_.at(it->key);
    auto v = std::lower_bound(versions.begin(), versions.end(), std::pair(it->main, it->sub),
                              [](const Version& x, std::pair<int64_t, int64_t> r) {
                                return std::pair(x.main, x.sub) < r;
                              });
    WARDEN_CHECK_MSG(v != versions.end() && v->main == it->main && v->sub == it->sub,
                     "change log names a missing version");
    Event e;
    e.type = v->tombstone ? EventType::kDelete : EventType::kPut;
    e.kv = ToKeyValue(it->key, *v);
    if (v != versions.begin() && !std::prev(v)->tombstone) {
      e.prev_kv = ToKeyValue(it->key, *std::prev(v));
    }
    out.push_back(std::move(e));
    last_main = it->main;
  }
  return out;
}

uint32_t MvccStore::HashAt(int64_t revision) const {
  const int64_t rev = revision > 0 ? revision : current_revision_;
  uint32_t crc = 0;
  std::string buf;
  for (const auto& [key, versions] : keys_) {
    const Version* v = VisibleAt(versions, rev);
    if (v == nullptr) continue;
    buf.clear();
    PutBytes(&buf, key);
    PutFixed64(&buf, static_cast<uint64_t>(v->create));
    PutFixed64(&buf, static_cast<uint64_t>(v->main));
    PutFixed64(&buf, static_cast<uint64_t>(v->version));
    PutFixed64(&buf, static_cast<uint64_t>(v->lease));
    PutBytes(&buf, v->value);
    crc = crc32c::Extend(crc, buf.data(), buf.size());
  }
  return crc;
}

// Snapshot image, version 1:
//   version:u8=1 | current:u64 | compact:u64 | nkeys:u32 |
//   per key: key:bytes | nversions:u32 | per version:
//     main:u64 | sub:u64 | create:u64 | version:u64 | lease:u64 | tombstone:u8 | value:bytes
// The change log is rebuilt from the versions (sorted by revision).
std::string MvccStore::Serialize() const {
  std::string out;
  SerializeTo(&out);
  return out;
}

void MvccStore::SerializeTo(std::string* out) const {
  WARDEN_CHECK_MSG(!writing_, "snapshot during a write transaction");
  constexpr size_t kVersionFixed = 5 * 8 + 1 + 4;  // five u64, the tombstone, the value length
  size_t size = 1 + 8 + 8 + 4;
  for (const auto& [key, versions] : keys_) {
    size += 4 + key.size() + 4;
    for (const Version& v : versions) size += kVersionFixed + v.value.size();
  }
  out->reserve(out->size() + size);
  PutFixed8(out, 1);
  PutFixed64(out, static_cast<uint64_t>(current_revision_));
  PutFixed64(out, static_cast<uint64_t>(compact_revision_));
  PutFixed32(out, static_cast<uint32_t>(keys_.size()));
  for (const auto& [key, versions] : keys_) {
    PutBytes(out, key);
    PutFixed32(out, static_cast<uint32_t>(versions.size()));
    for (const Version& v : versions) {
      PutFixed64(out, static_cast<uint64_t>(v.main));
      PutFixed64(out, static_cast<uint64_t>(v.sub));
      PutFixed64(out, static_cast<uint64_t>(v.create));
      PutFixed64(out, static_cast<uint64_t>(v.version));
      PutFixed64(out, static_cast<uint64_t>(v.lease));
      PutFixed8(out, v.tombstone ? 1 : 0);
      PutBytes(out, v.value);
    }
  }
}

Result<MvccStore> MvccStore::Deserialize(std::string_view data) {
  Decoder d(data);
  MvccStore s;
  uint8_t version = 0;
  uint64_t current = 0, compact = 0;
  uint32_t nkeys = 0;
  if (!d.GetFixed8(&version) || version != 1 || !d.GetFixed64(&current) ||
      !d.GetFixed64(&compact) || !d.GetFixed32(&nkeys)) {
    return Status::Corruption("malformed key space snapshot header");
  }
  s.current_revision_ = static_cast<int64_t>(current);
  s.compact_revision_ = static_cast<int64_t>(compact);
  for (uint32_t k = 0; k < nkeys; ++k) {
    std::string_view key;
    uint32_t n = 0;
    if (!d.GetBytes(&key) || !d.GetFixed32(&n) || n == 0) {
      return Status::Corruption("malformed key in key space snapshot");
    }
    std::vector<Version>& versions = s.keys_[std::string(key)];
    for (uint32_t i = 0; i < n; ++i) {
      Version v;
      uint64_t main, sub, create, ver, lease;
      uint8_t tomb;
      std::string_view value;
      if (!d.GetFixed64(&main) || !d.GetFixed64(&sub) || !d.GetFixed64(&create) ||
          !d.GetFixed64(&ver) || !d.GetFixed64(&lease) || !d.GetFixed8(&tomb) ||
          !d.GetBytes(&value) || tomb > 1) {
        return Status::Corruption("malformed version in key space snapshot");
      }
      v.main = static_cast<int64_t>(main);
      v.sub = static_cast<int64_t>(sub);
      v.create = static_cast<int64_t>(create);
      v.version = static_cast<int64_t>(ver);
      v.lease = static_cast<int64_t>(lease);
      v.tombstone = tomb == 1;
      v.value = std::string(value);
      if (!versions.empty() &&
          std::pair(versions.back().main, versions.back().sub) >= std::pair(v.main, v.sub)) {
        return Status::Corruption("key space snapshot versions out of order");
      }
      s.retained_bytes_ += VersionBytes(key, v);
      versions.push_back(std::move(v));
      s.change_log_.push_back(Change{versions.back().main, versions.back().sub, std::string(key)});
    }
  }
  if (!d.empty()) return Status::Corruption("trailing bytes in key space snapshot");
  std::sort(s.change_log_.begin(), s.change_log_.end(), [](const Change& a, const Change& b) {
    return std::pair(a.main, a.sub) < std::pair(b.main, b.sub);
  });
  // Versions older than the compaction point that only serve reads at the
  // compaction point are not events.
  while (!s.change_log_.empty() && s.change_log_.front().main < s.compact_revision_) {
    s.change_log_.pop_front();
  }
  return s;
}

}  // namespace warden::state
