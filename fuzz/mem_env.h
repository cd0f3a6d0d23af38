// MemEnv: an in-memory storage::Env for the fuzz targets, so that WAL
// recovery can run thousands of times a second without touching a disk.
// Files are byte strings keyed by path; directories are a set of paths.
// Sync and SyncDir succeed and do nothing (there is no crash to survive).
//
// Thread safety: none; one fuzz iteration owns one MemEnv.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "src/storage/env.h"

namespace warden::storage::fuzzing {

class MemEnv final : public Env {
 public:
  Result<std::unique_ptr<WritableFile>> OpenForAppend(const std::string& path, uint64_t offset,
                                                      uint64_t preallocate) override {
    std::shared_ptr<std::string>& f = files_[path];
    if (!f) f = std::make_shared<std::string>();
    if (f->size() < preallocate) f->resize(preallocate, '\0');
    return std::unique_ptr<WritableFile>(new File(f, offset));
  }
  Result<std::unique_ptr<SequentialFile>> OpenForRead(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::IoError("open " + path + ": no such file");
    return std::unique_ptr<SequentialFile>(new Reader(it->second));
  }
  Result<std::string> ReadFile(const std::string& path) override {
    auto it = files_.find(path);
    if (it == files_.end()) return Status::IoError("read " + path + ": no such file");
    return *it->second;
  }
  Status RenameFile(const std::string& from, const std::string& to) override {
    auto it = files_.find(from);
    if (it == files_.end()) return Status::IoError("rename " + from + ": no such file");
    files_[to] = it->second;
    files_.erase(from);
    return Status::Ok();
  }
  Status RemoveFile(const std::string& path) override {
    if (files_.erase(path) == 0) return Status::IoError("remove " + path + ": no such file");
    return Status::Ok();
  }
  Result<std::vector<std::string>> ListDir(const std::string& dir) override {
    if (dirs_.count(dir) == 0) return Status::IoError("list " + dir + ": no such directory");
    std::vector<std::string> names;
    const std::string prefix = dir + "/";
    for (const auto& [path, f] : files_) {
      if (path.compare(0, prefix.size(), prefix) == 0 &&
          path.find('/', prefix.size()) == std::string::npos) {
        names.push_back(path.substr(prefix.size()));
      }
    }
    std::sort(names.begin(), names.end());
    return names;
  }
  Status CreateDirIfMissing(const std::string& dir) override {
    dirs_.insert(dir);
    return Status::Ok();
  }
  Status SyncDir(const std::string&) override { return Status::Ok(); }
  bool FileExists(const std::string& path) override { return files_.count(path) > 0; }

  // A deep copy: the clone's files do not share bytes with this one's.
  std::unique_ptr<MemEnv> Clone() const {
    auto c = std::make_unique<MemEnv>();
    c->dirs_ = dirs_;
    for (const auto& [path, f] : files_) c->files_[path] = std::make_shared<std::string>(*f);
    return c;
  }

  // Test access to the bytes of a file.
  std::string* Contents(const std::string& path) {
    auto it = files_.find(path);
    return it == files_.end() ? nullptr : it->second.get();
  }

 private:
  class File final : public WritableFile {
   public:
    File(std::shared_ptr<std::string> f, uint64_t offset) : f_(std::move(f)), offset_(offset) {}
    Status Append(std::string_view data) override {
      if (f_->size() < offset_ + data.size()) f_->resize(offset_ + data.size(), '\0');
      std::copy(data.begin(), data.end(), f_->begin() + static_cast<ptrdiff_t>(offset_));
      offset_ += data.size();
      return Status::Ok();
    }
    Status Sync() override { return Status::Ok(); }
    uint64_t offset() const override { return offset_; }

   private:
    std::shared_ptr<std::string> f_;
    uint64_t offset_;
  };
  class Reader final : public SequentialFile {
   public:
    explicit Reader(std::shared_ptr<std::string> f) : f_(std::move(f)) {}
    Status Read(size_t n, std::string* out) override {
      const size_t k = std::min(n, f_->size() - std::min(pos_, f_->size()));
      out->assign(*f_, std::min(pos_, f_->size()), k);
      pos_ += k;
      return Status::Ok();
    }

   private:
    std::shared_ptr<std::string> f_;
    size_t pos_ = 0;
  };

  std::map<std::string, std::shared_ptr<std::string>> files_;
  std::set<std::string> dirs_;
};

}  // namespace warden::storage::fuzzing
