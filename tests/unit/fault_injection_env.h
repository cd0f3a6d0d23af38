// FaultInjectionEnv: an EnvWrapper over the real file system that can make a
// disk misbehave the two ways the storage layer must survive (leveldb's
// db/fault_injection_test.cc is the model):
//
//   1. Errors. Appends or syncs of chosen files fail with a chosen Status
//      (kNoSpace for ENOSPC, kIoError for EIO), after a countdown of calls
//      that succeed, optionally after writing half the bytes (a short write).
//   2. Crashes. It tracks, per file, which byte ranges were written since the
//      file's last successful Sync, and which files were created since their
//      directory was last synced. DropUnsyncedData() plays a power cut: new
//      files whose directory entry was never synced disappear; unsynced ranges
//      of preallocated files (WAL segments) are zero-filled, as the blocks
//      fallocate reserved read back; other files are cut back to the length
//      that was synced.
//
// Thread safety: every method may be called from any thread (the group
// committer syncs from its own thread while a test arms faults).
// DropUnsyncedData() REQUIRES that no file opened through this Env is still
// in use: close the Wal/LogStore first.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "src/base/status.h"
#include "src/storage/env.h"

namespace warden::storage::testing {

inline Status NoSpaceError() { return Status(ErrorCode::kNoSpace, "injected: No space left"); }
inline Status IoErrorStatus() { return Status::IoError("injected: Input/output error"); }

class FaultInjectionEnv final : public EnvWrapper {
 public:
  explicit FaultInjectionEnv(Env* target = Env::Default()) : EnvWrapper(target) {}

  // Appends to files whose path contains `path_part` fail with `error` once
  // `ok_before` more of them have succeeded, and keep failing until
  // ClearFaults(). With `partial`, a failing append first writes half of its
  // bytes.
  void FailAppends(Status error, int ok_before = 0, bool partial = false,
                   std::string path_part = "") {
    std::lock_guard<std::mutex> lock(mu_);
    append_fault_ = Fault{std::move(error), ok_before, std::move(path_part)};
    partial_append_ = partial;
  }
  // Syncs of files whose path contains `path_part` fail likewise.
  void FailSyncs(Status error, int ok_before = 0, std::string path_part = "") {
    std::lock_guard<std::mutex> lock(mu_);
    sync_fault_ = Fault{std::move(error), ok_before, std::move(path_part)};
  }
  void ClearFaults() {
    std::lock_guard<std::mutex> lock(mu_);
    append_fault_ = Fault{};
    sync_fault_ = Fault{};
  }
  // Runs at the start of every file Sync, on the syncing thread and without
  // any lock held, so a test may block there to hold a sync "in flight".
  void SetSyncHook(std::function<void()> hook) {
    std::lock_guard<std::mutex> lock(mu_);
    sync_hook_ = std::move(hook);
  }

  int sync_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return sync_calls_;
  }
  int append_calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return append_calls_;
  }
  // Bytes written to `path` that a crash would lose.
  uint64_t UnsyncedBytes(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = files_.find(path);
    if (it == files_.end()) return 0;
    uint64_t n = 0;
    for (const auto& [lo, hi] : it->second.unsynced) n += hi - lo;
    return n;
  }

  // The power cut described in the header comment.
  Status DropUnsyncedData() {
    std::map<std::string, FileState> files;
    {
      std::lock_guard<std::mutex> lock(mu_);
      files.swap(files_);
    }
    for (auto& [path, st] : files) {
      if (st.new_entry) {
        if (target()->FileExists(path)) {
          if (Status s = target()->RemoveFile(path); !s.ok()) return s;
        }
        continue;
      }
      if (st.unsynced.empty()) continue;
      if (!st.preallocated) {
        uint64_t keep = UINT64_MAX;
        for (const auto& r : st.unsynced) keep = std::min(keep, r.first);
        if (::truncate(path.c_str(), static_cast<off_t>(keep)) != 0) {
          return Status::IoError("truncate " + path);
        }
        continue;
      }
      for (const auto& [lo, hi] : st.unsynced) {
        Result<std::unique_ptr<WritableFile>> f = target()->OpenForAppend(path, lo, 0);
        if (!f.ok()) return f.status();
        if (Status s = (*f)->Append(std::string(hi - lo, '\0')); !s.ok()) return s;
        if (Status s = (*f)->Sync(); !s.ok()) return s;
      }
    }
    return Status::Ok();
  }

  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path, uint64_t offset,
                                                      uint64_t preallocate) override {
    const bool existed = target()->FileExists(path);
    Result<std::unique_ptr<WritableFile>> f = target()->OpenForAppend(path, offset, preallocate);
    if (!f.ok()) return f.status();
    {
      std::lock_guard<std::mutex> lock(mu_);
      FileState& st = files_[path];
      st.preallocated = st.preallocated || preallocate > 0;
      if (!existed) st.new_entry = true;
    }
    return std::unique_ptr<WritableFile>(new File(this, path, std::move(f).value()));
  }

  Status SyncDir(const std::string& dir) override {
    Status s = target()->SyncDir(dir);
    if (!s.ok()) return s;
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [path, st] : files_) {
      if (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
          path.find('/', dir.size() + 1) == std::string::npos) {
        st.new_entry = false;
      }
    }
    return s;
  }

  Status RemoveFile(const std::string& path) override {
    Status s = target()->RemoveFile(path);
    std::lock_guard<std::mutex> lock(mu_);
    if (s.ok()) files_.erase(path);
    return s;
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    Status s = target()->RenameFile(from, to);
    std::lock_guard<std::mutex> lock(mu_);
    if (s.ok()) {
      auto it = files_.find(from);
      if (it != files_.end()) {
        files_[to] = it->second;
        files_.erase(it);
      }
    }
    return s;
  }

 private:
  struct Fault {
    Status error;  // OK: no fault armed
    int ok_before = 0;
    std::string path_part;
  };
  struct FileState {
    bool preallocated = false;
    bool new_entry = false;  // created since its directory was last synced
    std::vector<std::pair<uint64_t, uint64_t>> unsynced;  // [lo, hi) ranges
  };

  class File final : public WritableFile {
   public:
    File(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
        : env_(env), path_(std::move(path)), base_(std::move(base)) {}
    Status Append(std::string_view data) override {
      bool partial = false;
      Status fault = env_->Check(&env_->append_fault_, path_, &env_->append_calls_, &partial);
      if (!fault.ok()) {
        if (partial) {
          const uint64_t at = base_->offset();
          std::string_view half = data.substr(0, data.size() / 2);
          if (base_->Append(half).ok()) env_->Written(path_, at, half.size());
        }
        return fault;
      }
      const uint64_t at = base_->offset();
      Status s = base_->Append(data);
      env_->Written(path_, at, base_->offset() - at);
      return s;
    }
    Status Sync() override {
      std::function<void()> hook;
      {
        std::lock_guard<std::mutex> lock(env_->mu_);
        hook = env_->sync_hook_;
      }
      if (hook) hook();
      Status fault = env_->Check(&env_->sync_fault_, path_, &env_->sync_calls_, nullptr);
      if (!fault.ok()) return fault;
      Status s = base_->Sync();
      if (s.ok()) env_->Synced(path_);
      return s;
    }
    uint64_t offset() const override { return base_->offset(); }

   private:
    FaultInjectionEnv* env_;
    std::string path_;
    std::unique_ptr<WritableFile> base_;
  };

  // Counts the call; returns the armed error if this call must fail.
  Status Check(Fault* fault, const std::string& path, int* calls, bool* partial) {
    std::lock_guard<std::mutex> lock(mu_);
    ++*calls;
    if (fault->error.ok() || path.find(fault->path_part) == std::string::npos) return Status::Ok();
    if (fault->ok_before > 0) {
      --fault->ok_before;
      return Status::Ok();
    }
    if (partial != nullptr) *partial = partial_append_;
    return fault->error;
  }
  void Written(const std::string& path, uint64_t at, uint64_t n) {
    if (n == 0) return;
    std::lock_guard<std::mutex> lock(mu_);
    files_[path].unsynced.emplace_back(at, at + n);
  }
  void Synced(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    files_[path].unsynced.clear();
  }

  mutable std::mutex mu_;
  Fault append_fault_;  // guarded by mu_
  Fault sync_fault_;    // guarded by mu_
  bool partial_append_ = false;
  std::function<void()> sync_hook_;
  std::map<std::string, FileState> files_;
  int sync_calls_ = 0;
  int append_calls_ = 0;
};

}  // namespace warden::storage::testing
