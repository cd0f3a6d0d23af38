// WriteBehindEnv: an Env whose files keep appended bytes in process memory
// until Sync() (or until the file is closed), for the planted bug
// `--inject-bug ack-before-fsync` only. Never used in production.
//
// Why: the planted bug acknowledges writes without fdatasync, but the WAL
// writes with pwrite, so the bytes sit in the OS page cache and survive a
// kill -9 of the process; only a power loss would drop them, and a chaos test
// on one machine cannot cut the power. Holding unsynced bytes in the process
// instead makes a kill -9 behave like a power loss for them, so a test that
// kills every member right after acknowledged writes sees those writes lost.
//
// Thread safety: as WritableFile (one thread at a time per file).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "src/storage/env.h"

namespace warden::storage {

class WriteBehindEnv final : public EnvWrapper {
 public:
  explicit WriteBehindEnv(Env* target) : EnvWrapper(target) {}

  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path, uint64_t offset,
                                                      uint64_t preallocate) override {
    Result<std::unique_ptr<WritableFile>> f = target()->OpenForAppend(path, offset, preallocate);
    if (!f.ok()) return f.status();
    return std::unique_ptr<WritableFile>(new File(std::move(f).value()));
  }

 private:
  class File final : public WritableFile {
   public:
    explicit File(std::unique_ptr<WritableFile> target) : target_(std::move(target)) {}
    // A clean close writes what is buffered (as the page cache would), unsynced.
    ~File() override { (void)Flush(); }
    Status Append(std::string_view data) override {
      buffer_.append(data);
      return Status::Ok();
    }
    Status Sync() override {
      if (Status s = Flush(); !s.ok()) return s;
      return target_->Sync();
    }
    uint64_t offset() const override { return target_->offset() + buffer_.size(); }

   private:
    Status Flush() {
      if (buffer_.empty()) return Status::Ok();
      Status s = target_->Append(buffer_);
      buffer_.clear();
      return s;
    }
    std::unique_ptr<WritableFile> target_;
    std::string buffer_;
  };
};

}  // namespace warden::storage
