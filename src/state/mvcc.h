// MvccStore: etcd's multi-version key space, as a pure in-memory structure.
//
// Every write transaction gets the next main revision; the writes inside it
// are numbered by a sub-revision. Each key keeps its versions (create and mod
// revision, version count, value, lease, or a tombstone for a delete), so a
// range can be read at any revision not yet compacted, and the change log
// gives the events of any revision range to watchers.
//
// Semantics follow etcd v3 (docs/state.md): a key's version is 1 when created
// and counts puts since; a delete ends the key's generation and a later put
// starts a new one with a new create revision; reads at revision 0 mean "now";
// a revision below the compaction point is kCompacted, above the current one
// kFutureRevision.
//
// Invariants:
//   1. Versions of a key are strictly ascending by (main, sub).
//   2. change_log_ is ascending by (main, sub) and names only versions that
//      exist.
//   3. compact_revision_ <= current_revision_.
//
// Thread safety: none. Owned by the state machine, mutated only by apply.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/ids.h"
#include "src/base/status.h"

namespace warden::state {

struct KeyValue {
  std::string key;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  std::string value;
  int64_t lease = 0;
  friend bool operator==(const KeyValue&, const KeyValue&) = default;
};

enum class EventType { kPut, kDelete };

struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;  // for a delete: key and mod_revision only
  std::optional<KeyValue> prev_kv;
};

enum class SortOrder { kNone, kAscend, kDescend };
enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };

// A key range as etcd encodes it: range_end empty means the single key;
// range_end "\0" means every key >= key; otherwise [key, range_end).
struct KeyRange {
  std::string key;
  std::string range_end;
  bool Contains(std::string_view k) const;
  bool IsSingleKey() const { return range_end.empty(); }
};

struct RangeOptions {
  KeyRange range;
  int64_t limit = 0;     // 0: no limit
  int64_t revision = 0;  // 0: current
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  bool more = false;
  int64_t count = 0;
};

class MvccStore {
 public:
  int64_t current_revision() const { return current_revision_; }
  int64_t compact_revision() const { return compact_revision_; }
  size_t key_count() const { return keys_.size(); }
  // Bytes held by retained versions (keys, values and per-version fields), kept
  // up to date as versions come and go: the "database size" of Status.
  uint64_t retained_bytes() const { return retained_bytes_; }

  // Inside a write transaction, a read at revision 0 sees the transaction's
  // own writes so far (etcd's txn read-your-writes).
  Result<RangeResult> Range(const RangeOptions& options) const;

  // Write transactions. Begin opens one; Put and DeleteRange inside it share
  // one main revision (allocated lazily: a transaction that writes nothing
  // does not advance the revision); End closes it and returns its events.
  void BeginWrite();
  // Returns the previous value, if any.
  std::optional<KeyValue> Put(const std::string& key, const std::string& value, int64_t lease);
  // Returns the deleted key-values (as they were).
  std::vector<KeyValue> DeleteRange(const KeyRange& range);
  std::vector<Event> EndWrite();

  // Discards history below `revision`. kCompacted if already compacted to
  // at least it; kFutureRevision if beyond the current revision.
  Status Compact(int64_t revision);

  // The events of revisions >= from_revision within `range`, at most
  // `max_events` (the cut falls on a revision boundary unless one revision
  // alone exceeds it). kCompacted if from_revision < compact_revision.
  Result<std::vector<Event>> EventsSince(int64_t from_revision, const KeyRange& range,
                                         size_t max_events) const;

  // The latest value of a key, or nullopt.
  std::optional<KeyValue> Get(const std::string& key) const;

  // A digest of the visible state at `revision` (0: current), for HashKV and
  // for replicas to compare: the same on every replica that applied the same
  // log.
  uint32_t HashAt(int64_t revision) const;

  // Snapshot image (all retained versions, the revisions) and restore.
  std::string Serialize() const;
  // Appends the same image to *out, having reserved its exact size first (a
  // snapshot of a million keys is built without reallocating).
  void SerializeTo(std::string* out) const;
  static Result<MvccStore> Deserialize(std::string_view data);

 private:
  struct Version {
    int64_t main = 0;
    int64_t sub = 0;
    int64_t create = 0;
    int64_t version = 0;
    int64_t lease = 0;
    bool tombstone = false;
    std::string value;
  };
  struct Change {
    int64_t main;
    int64_t sub;
    std::string key;
  };

  // The version of `versions` visible at `revision`, or nullptr.
  static const Version* VisibleAt(const std::vector<Version>& versions, int64_t revision);
  static KeyValue ToKeyValue(const std::string& key, const Version& v);
  // The revision a read at "now" sees: the pending one inside a write.
  int64_t ReadRevision() const {
    return writing_ && txn_sub_ > 0 ? current_revision_ + 1 : current_revision_;
  }
  int64_t NextSub();
  static uint64_t VersionBytes(std::string_view key, const Version& v) {
    return key.size() + v.value.size() + 6 * sizeof(int64_t);
  }

  std::map<std::string, std::vector<Version>, std::less<>> keys_;
  std::deque<Change> change_log_;
  int64_t current_revision_ = 1;  // etcd starts at 1
  int64_t compact_revision_ = 0;
  uint64_t retained_bytes_ = 0;
  // The open write transaction.
  bool writing_ = false;
  int64_t txn_sub_ = 0;
  std::vector<Event> txn_events_;
};

}  // namespace warden::state
