// Wal: the segmented write-ahead log under <data-dir>/wal/. Raft entries, hard
// state and snapshot markers share one log (format in wal_record.h).
//
// Segments are named <seq:016x>-<first-index:016x>.wal so that `ls` shows
// their order, and preallocated (default 64 MiB). A new segment opens with the
// current hard state, so every segment after the first is self-contained and
// whole old segments can be released below a snapshot.
//
// Recovery reads every segment in order and rebuilds the log: an entry whose
// index is already present replaces it and everything after it (a Raft
// conflict), an installed-snapshot marker restarts the log after it. A damaged
// record followed only by zeros in the last segment is a torn write: it is
// cut off (zeroed, payload first and header last, so that an interrupted cut
// is found torn again) and the log continues from there. Damage anywhere else
// stops the open with kCorruption naming the file and offset; so do a record
// whose checksum fits a shorter length than it claims (a damaged length field
// hiding the records after it) and zeros where a record should start with
// data after them (records lost from the middle).
//
// After any write or sync error the Wal fails every later call with that
// error: it never continues as if a write had succeeded.
//
// Thread safety: none; GroupCommitter adds a syncer thread on top.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "src/base/status.h"
#include "src/raft/types.h"
#include "src/storage/env.h"
#include "src/storage/wal_record.h"

namespace warden::storage {

struct WalOptions {
  uint64_t segment_bytes = 64ull << 20;
};

// What recovery found.
struct RecoveredWal {
  raft::HardState hard_state;
  // Contiguous entries base+1 .. base+entries.size().
  Index base;
  std::vector<raft::Entry> entries;
  // Every snapshot marker seen, oldest first.
  std::vector<SnapshotMarker> snapshots;
  // Set when a torn tail was cut off: which file, at what offset.
  std::string torn_tail;
};

class Wal {
 public:
  static Result<std::unique_ptr<Wal>> Open(Env* env, const std::string& dir,
                                           const WalOptions& options, RecoveredWal* out);
  ~Wal();

  // Buffered in the OS until Sync().
  Status AppendEntries(const std::vector<raft::Entry>& entries);
  Status AppendHardState(const raft::HardState& hs);
  Status AppendSnapshot(const SnapshotMarker& marker);
  // Makes everything appended so far durable (one fdatasync).
  Status Sync();
  // Removes the oldest whole segments whose entries all lie at or below
  // `index`; never the segment being written.
  Status ReleaseTo(Index index);

  const Status& failure() const { return failure_; }
  size_t segment_count() const { return segments_.size(); }
  const std::string& dir() const { return dir_; }

 private:
  struct Segment {
    uint64_t seq = 0;
    std::string name;
    Index max_index;  // the highest entry index written in it (0: none)
  };

  Wal(Env* env, std::string dir, const WalOptions& options);
  // Writes framed records, rolling to a new segment first if they do not fit.
  Status Write(const std::string& records, Index first_index, Index max_index);
  Status OpenNewSegment(Index first_index);
  // Writes the hard state and latest snapshot marker at the segment's start.
  Status AppendSegmentHeader();
  Status Fail(Status s);

  Env* env_;
  std::string dir_;
  WalOptions options_;
  std::vector<Segment> segments_;
  std::unique_ptr<WritableFile> file_;
  raft::HardState hard_state_;  // the latest written, replayed into new segments
  SnapshotMarker last_snapshot_;
  Index last_index_;
  Status failure_;
};

std::string SegmentName(uint64_t seq, Index first_index);
bool ParseSegmentName(const std::string& name, uint64_t* seq, Index* first_index);

}  // namespace warden::storage
