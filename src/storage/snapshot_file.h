// Snapshot files under <data-dir>/snap/, named <term:016x>-<index:016x>.snap.
// On-disk format, version 1 — DO NOT CHANGE without a new version:
//
//   "WRDNSNAP" | version:u32 = 1 | meta_len:u32 | meta | data | data_len:u64 |
//   crc32c:u32 (of everything from version through data_len)
//   meta := index:u64 | term:u64 | n:u32 voters:u64[n] | n:u32 outgoing:u64[n] |
//           n:u32 learners:u64[n]
//
// The checksum is in the trailer so that a file can be written (and received
// from a leader) as a stream of chunks without knowing its length upfront.
// Saving writes a temporary file, fsyncs it, renames it into place and
// fsyncs the directory; a crash leaves either the old set or the new file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"
#include "src/raft/types.h"
#include "src/storage/env.h"

namespace warden::storage {

std::string EncodeSnapshotFile(const raft::Snapshot& s);
// Validates magic, version, lengths and checksum; never returns wrong data.
Result<raft::Snapshot> DecodeSnapshotFile(std::string_view file);

std::string SnapshotFileName(Term term, Index index);
bool ParseSnapshotFileName(const std::string& name, Term* term, Index* index);

// Writes a snapshot file from chunks of its encoded bytes (a local encode, or
// chunks received from a leader). Finish() validates the whole file before it
// is renamed into place; Abort (or destruction) removes the temporary file.
class SnapshotFileWriter {
 public:
  static Result<std::unique_ptr<SnapshotFileWriter>> Create(Env* env, const std::string& dir);
  ~SnapshotFileWriter();
  Status Append(std::string_view chunk);
  // Returns the decoded snapshot once it is durable under its final name.
  Result<raft::Snapshot> Finish();

 private:
  SnapshotFileWriter(Env* env, std::string dir, std::string tmp_path,
                     std::unique_ptr<WritableFile> file);
  Env* env_;
  std::string dir_;
  std::string tmp_path_;
  std::unique_ptr<WritableFile> file_;
  std::string received_;  // validated at Finish
  Status failure_;        // a failed Append: the file is incomplete
  bool done_ = false;
};

// Reads a snapshot file as chunks of raw bytes (to stream to a follower).
class SnapshotFileReader {
 public:
  static Result<std::unique_ptr<SnapshotFileReader>> Open(Env* env, const std::string& path);
  // An empty chunk means the end of the file.
  Status Next(size_t max_bytes, std::string* chunk) { return file_->Read(max_bytes, chunk); }

 private:
  explicit SnapshotFileReader(std::unique_ptr<SequentialFile> f) : file_(std::move(f)) {}
  std::unique_ptr<SequentialFile> file_;
};

// The snapshot directory: save, list, load the newest valid, prune.
class SnapshotStore {
 public:
  SnapshotStore(Env* env, std::string dir) : env_(env), dir_(std::move(dir)) {}
  Status Init() { return env_->CreateDirIfMissing(dir_); }
  Status Save(const raft::Snapshot& s);
  // Snapshot files, newest (highest index) first.
  Result<std::vector<std::string>> List() const;
  Result<raft::Snapshot> Load(const std::string& name) const;
  // Removes all but the newest `keep` snapshots.
  Status Prune(size_t keep);
  const std::string& dir() const { return dir_; }

 private:
  Env* env_;
  std::string dir_;
};

}  // namespace warden::storage
