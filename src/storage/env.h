// Env: every file-system operation the storage layer performs, behind one
// narrow interface (leveldb's Env). PosixEnv is the real one; EnvWrapper
// forwards everything so that a test can override a single method to inject
// a fault (a failed fsync, a full disk, a lost unsynced write).
//
// Error mapping: ENOSPC becomes kNoSpace, every other failure kIoError, and
// messages name the path and the system error.
//
// Thread safety: an Env may be used from several threads; each file object
// is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/status.h"

namespace warden::storage {

// A file written sequentially from a starting offset.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  // Makes every appended byte durable (fdatasync).
  virtual Status Sync() = 0;
  // The offset the next Append writes at.
  virtual uint64_t offset() const = 0;
};

class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Reads up to n bytes into *out (replacing it); an empty result is EOF.
  virtual Status Read(size_t n, std::string* out) = 0;
};

class Env {
 public:
  virtual ~Env() = default;

  // Opens (creating if missing) `path` for writing at `offset`; if
  // `preallocate` > 0 the file is extended to at least that many bytes
  // (zero-filled) so that appends do not change its size.
  virtual Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path,
                                                              uint64_t offset,
                                                              uint64_t preallocate) = 0;
  virtual Result<std::unique_ptr<SequentialFile>> OpenForRead(const std::string& path) = 0;
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  virtual Status RenameFile(const std::string& from, const std::string& to) = 0;
  virtual Status RemoveFile(const std::string& path) = 0;
  // The names (not paths) of the entries of `dir`, sorted.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  virtual Status CreateDirIfMissing(const std::string& dir) = 0;
  // Makes the directory's entries (creations, renames, removals) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual bool FileExists(const std::string& path) = 0;

  // The process-wide POSIX environment.
  static Env* Default();
};

// Forwards every call to another Env.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path, uint64_t offset,
                                                      uint64_t preallocate) override {
    return target_->OpenForAppend(path, offset, preallocate);
  }
  Result<std::unique_ptr<SequentialFile>> OpenForRead(const std::string& path) override {
    return target_->OpenForRead(path);
  }
  Result<std::string> ReadFile(const std::string& path) override { return target_->ReadFile(path); }
  Status RenameFile(const std::string& from, const std::string& to) override {
    return target_->RenameFile(from, to);
  }
  Status RemoveFile(const std::string& path) override { return target_->RemoveFile(path); }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    return target_->ListDir(dir);
  }
  Status CreateDirIfMissing(const std::string& dir) override {
    return target_->CreateDirIfMissing(dir);
  }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  bool FileExists(const std::string& path) override { return target_->FileExists(path); }

 protected:
  Env* target() const { return target_; }

 private:
  Env* target_;
};

std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace warden::storage
