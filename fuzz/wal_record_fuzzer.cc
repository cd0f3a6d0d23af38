// libFuzzer target for the WAL: the record decoder (ScanRecord and the three
// payload decoders) and recovery (Wal::Open) over an in-memory Env. The first
// input byte picks a mode:
//
//   raw     the bytes are a segment file: scanning never reads outside it or
//           loops; a decoded payload re-encodes to the same bytes; if
//           recovery accepts the segment, the log it returns is contiguous,
//           and appending to it then recovering again gives back exactly that
//           log plus the new entry (no garbage is ever left behind the tail).
//   framed  the bytes are one payload wrapped in a valid frame, to get past
//           the checksum into the decoders.
//   oracle  the bytes describe a WAL (entries, hard states, segment size),
//           written with the real Wal, then damaged: a torn tail (zeros or a
//           truncated file from any offset of the last segment) must recover
//           exactly the records before the cut; a single bit flip anywhere
//           but the last record must be reported as corruption, and in the
//           last record may only cut that record.
//
// Any violated property aborts (WARDEN_CHECK), which libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz/fuzz_input.h"
#include "fuzz/mem_env.h"
#include "src/base/check.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/storage/wal.h"
#include "src/storage/wal_record.h"

namespace warden::storage::fuzzing {
namespace {

constexpr char kDir[] = "/wal";

std::string Frame(uint8_t type, std::string_view payload) {
  std::string typed(1, static_cast<char>(type));
  typed.append(payload);
  std::string out;
  PutFixed32(&out, crc32c::Value(typed));
  PutFixed32(&out, static_cast<uint32_t>(payload.size()));
  return out + typed;
}

// A payload the decoder accepts must be the canonical encoding of its value.
void CheckDecoders(RecordType type, std::string_view payload) {
  const std::string original = Frame(static_cast<uint8_t>(type), payload);
  std::string again;
  raft::Entry e;
  raft::HardState hs;
  SnapshotMarker m;
  switch (type) {
    case RecordType::kEntry:
      if (!DecodeEntry(payload, &e)) return;
      WARDEN_CHECK(e.index.value() != 0);
      AppendEntryRecord(&again, e);
      break;
    case RecordType::kHardState:
      if (!DecodeHardState(payload, &hs)) return;
      AppendHardStateRecord(&again, hs);
      break;
    case RecordType::kSnapshot:
      if (!DecodeSnapshotMarker(payload, &m)) return;
      AppendSnapshotRecord(&again, m);
      break;
  }
  WARDEN_CHECK_MSG(again == original, "decode then encode changed the record");
}

void ScanAll(std::string_view buf) {
  size_t offset = 0;
  for (size_t steps = 0; steps <= buf.size(); ++steps) {
    RecordView r;
    std::string why;
    const ScanOutcome o = ScanRecord(buf, offset, &r, &why);
    if (o == ScanOutcome::kBad) WARDEN_CHECK(!why.empty());
    if (o != ScanOutcome::kRecord) return;
    WARDEN_CHECK(r.size == kRecordHeaderSize + r.payload.size());
    WARDEN_CHECK(r.payload.data() == buf.data() + offset + kRecordHeaderSize);
    WARDEN_CHECK(offset + r.size <= buf.size());
    CheckDecoders(r.type, r.payload);
    offset += r.size;
  }
  WARDEN_CHECK_MSG(false, "ScanRecord made no progress");
}

std::string SegmentPath(uint64_t seq, Index first) {
  return JoinPath(kDir, SegmentName(seq, first));
}

Result<std::unique_ptr<Wal>> Recover(MemEnv* env, uint64_t segment_bytes, RecoveredWal* rw) {
  return Wal::Open(env, kDir, WalOptions{segment_bytes}, rw);
}

void CheckContiguous(const RecoveredWal& rw) {
  for (size_t i = 0; i < rw.entries.size(); ++i) {
    WARDEN_CHECK(rw.entries[i].index == rw.base + (i + 1));
  }
}

// Recovery over a segment made of `bytes`, then the append-and-recover check.
void RecoverAndExtend(std::string_view bytes) {
  constexpr uint64_t kSegmentBytes = 4096;
  MemEnv env;
  WARDEN_CHECK(env.CreateDirIfMissing(kDir).ok());
  {
    auto f = env.OpenForAppend(SegmentPath(0, Index(1)), 0, 0);
    WARDEN_CHECK((*f)->Append(bytes).ok());
  }
  RecoveredWal rw;
  Result<std::unique_ptr<Wal>> wal = Recover(&env, kSegmentBytes, &rw);
  if (!wal.ok()) {
    WARDEN_CHECK(wal.status().code() == ErrorCode::kCorruption);
    return;
  }
  CheckContiguous(rw);
  // A log that already ends at the largest index has no next entry.
  if (rw.base.value() + rw.entries.size() == UINT64_MAX) return;
  const raft::Entry next{Term(7), rw.base + (rw.entries.size() + 1), raft::EntryType::kNormal,
                         "appended after recovery"};
  std::unique_ptr<Wal> w = std::move(wal).value();
  WARDEN_CHECK(w->AppendEntries({next}).ok());
  WARDEN_CHECK(w->Sync().ok());
  w.reset();

  RecoveredWal again;
  Result<std::unique_ptr<Wal>> reopened = Recover(&env, kSegmentBytes, &again);
  if (!reopened.ok()) {
    std::fprintf(stderr, "first open: %zu entries, base %llu, torn '%s'; reopen: %s\n",
                 rw.entries.size(), static_cast<unsigned long long>(rw.base.value()),
                 rw.torn_tail.c_str(), reopened.status().ToString().c_str());
  }
  WARDEN_CHECK_MSG(reopened.ok(), "a recovered log did not reopen after one append");
  WARDEN_CHECK_MSG(again.torn_tail.empty(), "garbage after the appended record");
  WARDEN_CHECK(again.hard_state == rw.hard_state);
  std::vector<raft::Entry> want = rw.entries;
  want.push_back(next);
  WARDEN_CHECK_MSG(again.entries == want, "the log changed across a clean reopen");
  WARDEN_CHECK(again.base == rw.base);
}

void ModeRaw(FuzzInput& in) {
  const std::string_view bytes = in.Rest();
  ScanAll(bytes);
  raft::Entry e;
  raft::HardState hs;
  SnapshotMarker m;
  (void)DecodeEntry(bytes, &e);
  (void)DecodeHardState(bytes, &hs);
  (void)DecodeSnapshotMarker(bytes, &m);
  RecoverAndExtend(bytes);
}

void ModeFramed(FuzzInput& in) {
  const uint8_t type = in.Byte();
  const std::string_view payload = in.Rest();
  const std::string rec = Frame(type, payload);
  RecordView r;
  std::string why;
  const ScanOutcome o = ScanRecord(rec, 0, &r, &why);
  if (type >= 1 && type <= 3) {
    WARDEN_CHECK(o == ScanOutcome::kRecord);
    WARDEN_CHECK(r.payload == payload && r.size == rec.size());
    CheckDecoders(r.type, r.payload);
  } else {
    WARDEN_CHECK(o == ScanOutcome::kBad);
  }
  RecoverAndExtend(rec);
}

// ---------------------------------------------------------------------------
// Oracle mode.

struct Layout {
  std::vector<std::string> paths;           // segments, oldest first
  std::vector<std::vector<size_t>> starts;  // record starts per segment
  std::vector<size_t> ends;                 // end of the written data per segment
};

Layout LayoutOf(MemEnv* env) {
  Layout l;
  const std::vector<std::string> names = *env->ListDir(kDir);
  for (const std::string& name : names) {
    const std::string path = JoinPath(kDir, name);
    const std::string& buf = *env->Contents(path);
    std::vector<size_t> starts;
    size_t offset = 0;
    for (;;) {
      RecordView r;
      std::string why;
      const ScanOutcome o = ScanRecord(buf, offset, &r, &why);
      WARDEN_CHECK(o != ScanOutcome::kBad);  // the Wal wrote it: no damage yet
      if (o != ScanOutcome::kRecord) break;
      starts.push_back(offset);
      offset += r.size;
    }
    l.paths.push_back(path);
    l.starts.push_back(std::move(starts));
    l.ends.push_back(offset);
  }
  return l;
}

// What recovery must return if the last segment ended cleanly at `boundary`.
RecoveredWal Reference(const MemEnv& env, const Layout& l, size_t boundary, uint64_t seg_bytes) {
  std::unique_ptr<MemEnv> copy = env.Clone();
  std::string* last = copy->Contents(l.paths.back());
  std::fill(last->begin() + static_cast<ptrdiff_t>(boundary), last->end(), '\0');
  RecoveredWal rw;
  Result<std::unique_ptr<Wal>> wal = Recover(copy.get(), seg_bytes, &rw);
  WARDEN_CHECK_MSG(wal.ok(), "a log cut at a record boundary did not open");
  return rw;
}

bool SameLog(const RecoveredWal& a, const RecoveredWal& b) {
  return a.hard_state == b.hard_state && a.entries == b.entries &&
         (a.entries.empty() || a.base == b.base);
}

void ModeOracle(FuzzInput& in) {
  const uint64_t seg_bytes = 512 + in.U16() % 8192;
  MemEnv env;
  {
    RecoveredWal rw;
    Result<std::unique_ptr<Wal>> wal = Recover(&env, seg_bytes, &rw);
    WARDEN_CHECK(wal.ok());
    const int n = 1 + in.Byte() % 40;
    uint64_t term = 1;
    for (int i = 1; i <= n; ++i) {
      const uint8_t flags = in.Byte();
      if (flags & 1) ++term;
      if (flags & 2) {
        WARDEN_CHECK((*wal)->AppendHardState({Term(term), NodeId(flags >> 4), Index(i / 2)}).ok());
      }
      const raft::Entry e{Term(term), Index(static_cast<uint64_t>(i)), raft::EntryType::kNormal,
                          in.Take(in.Byte())};
      WARDEN_CHECK((*wal)->AppendEntries({e}).ok());
    }
    WARDEN_CHECK((*wal)->Sync().ok());
  }
  const Layout l = LayoutOf(&env);
  const size_t last_seg = l.paths.size() - 1;
  const size_t last_end = l.ends[last_seg];
  if (last_end == 0) return;
  const uint8_t action = in.Byte() % 3;

  if (action < 2) {
    // A torn tail: zeros, or a shorter file, from any offset of the last segment.
    const size_t cut = in.U16() % last_end;
    std::string* buf = env.Contents(l.paths.back());
    // Zeroing bytes that were zero already changes nothing: the first record
    // damaged is the one holding the first non-zero byte at or after the cut.
    // A shorter file damages the record holding the cut itself.
    size_t first_changed = cut;
    if (action == 0) {
      while (first_changed < last_end && (*buf)[first_changed] == 0) ++first_changed;
    }
    size_t boundary = first_changed < last_end ? 0 : last_end;
    for (size_t s : l.starts[last_seg]) {
      if (s <= first_changed && first_changed < last_end) boundary = s;
    }
    const RecoveredWal want = Reference(env, l, boundary, seg_bytes);
    if (action == 0) {
      std::fill(buf->begin() + static_cast<ptrdiff_t>(cut), buf->end(), '\0');
    } else {
      buf->resize(cut);
    }
    RecoveredWal got;
    Result<std::unique_ptr<Wal>> wal = Recover(&env, seg_bytes, &got);
    if (!wal.ok() || !SameLog(got, want)) {
      std::fprintf(stderr,
                   "torn tail: action %d, cut %zu, boundary %zu, %zu segments, last ends at %zu; "
                   "open: %s; got %zu entries (base %llu, torn '%s'), want %zu (base %llu)\n",
                   action, cut, boundary, l.paths.size(), last_end, wal.status().ToString().c_str(),
                   got.entries.size(), static_cast<unsigned long long>(got.base.value()),
                   got.torn_tail.c_str(), want.entries.size(),
                   static_cast<unsigned long long>(want.base.value()));
    }
    WARDEN_CHECK_MSG(wal.ok(), "a torn tail was not recovered");
    WARDEN_CHECK_MSG(SameLog(got, want), "a torn tail recovered the wrong log");
    return;
  }

  // One bit flip somewhere in the written data of some segment.
  const size_t seg = in.Byte() % l.paths.size();
  if (l.ends[seg] == 0) return;
  const size_t at = in.U16() % l.ends[seg];
  const int bit = in.Byte() % 8;
  const bool in_last_record = seg == last_seg && at >= l.starts[seg].back();
  RecoveredWal want;
  if (in_last_record) want = Reference(env, l, l.starts[seg].back(), seg_bytes);
  std::string* buf = env.Contents(l.paths[seg]);
  (*buf)[at] = static_cast<char>((*buf)[at] ^ (1 << bit));
  RecoveredWal got;
  Result<std::unique_ptr<Wal>> wal = Recover(&env, seg_bytes, &got);
  if (!in_last_record) {
    WARDEN_CHECK_MSG(!wal.ok() && wal.status().code() == ErrorCode::kCorruption,
                     "a bit flip before the tail was not reported");
    WARDEN_CHECK(wal.status().message().find(l.paths[seg]) != std::string::npos);
    return;
  }
  if (wal.ok()) {
    WARDEN_CHECK_MSG(SameLog(got, want), "a damaged last record was not cut cleanly");
  } else {
    WARDEN_CHECK(wal.status().code() == ErrorCode::kCorruption);
  }
}

}  // namespace
}  // namespace warden::storage::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::storage::fuzzing;
  FuzzInput in(data, size);
  switch (in.Byte() % 3) {
    case 0: ModeRaw(in); break;
    case 1: ModeFramed(in); break;
    default: ModeOracle(in); break;
  }
  return 0;
}
