// Helpers shared by the storage tests: a self-removing temporary directory,
// deterministic entries, and raw file surgery (flip a bit, zero a range, cut a
// file) used to stage torn writes and corruption exactly where a test wants it.
//
// Thread safety: none; each test owns its objects.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "src/base/coding.h"
#include "src/raft/types.h"
#include "src/storage/wal.h"
#include "src/storage/wal_record.h"

namespace warden::storage::testing {

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents
// when the object goes out of scope.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TEST_TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/warden-storage-XXXXXX";
    WARDEN_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Deterministic, index-derived data: the same (index, salt) always gives the
// same bytes, and neighbours differ. Sizes vary with the index when `size` is 0.
inline std::string EntryData(uint64_t index, uint64_t salt = 0, size_t size = 0) {
  uint64_t x = index * 0x9e3779b97f4a7c15ULL ^ (salt + 0x632be59bd9b4e019ULL);
  if (size == 0) size = 1 + static_cast<size_t>((x >> 7) % 200);
  std::string out(size, '\0');
  for (size_t i = 0; i < size; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    out[i] = static_cast<char>(x);
  }
  return out;
}

inline raft::Entry MakeEntry(uint64_t term, uint64_t index, std::string data) {
  return raft::Entry{Term(term), Index(index), raft::EntryType::kNormal, std::move(data)};
}

// Entries lo..hi (inclusive) at `term`, data EntryData(index, salt).
inline std::vector<raft::Entry> MakeEntries(uint64_t term, uint64_t lo, uint64_t hi,
                                            uint64_t salt = 0) {
  std::vector<raft::Entry> out;
  for (uint64_t i = lo; i <= hi; ++i) out.push_back(MakeEntry(term, i, EntryData(i, salt)));
  return out;
}

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  WARDEN_CHECK(in.good());
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Overwrites bytes at `offset` without changing the file's size otherwise.
inline void WriteAt(const std::string& path, uint64_t offset, std::string_view bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  WARDEN_CHECK(fd >= 0);
  WARDEN_CHECK(::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset)) ==
               static_cast<ssize_t>(bytes.size()));
  ::close(fd);
}

inline void WriteFileOrDie(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  WARDEN_CHECK(out.good());
}

inline void FlipBit(const std::string& path, uint64_t offset, int bit) {
  std::string all = ReadFileOrDie(path);
  WARDEN_CHECK(offset < all.size());
  std::string b(1, static_cast<char>(all[offset] ^ (1 << bit)));
  WriteAt(path, offset, b);
}

inline void ZeroRange(const std::string& path, uint64_t offset, uint64_t n) {
  WriteAt(path, offset, std::string(n, '\0'));
}

// The WAL segment files of `dir`, as full paths, oldest first.
inline std::vector<std::string> SegmentPaths(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    uint64_t seq;
    Index first;
    if (ParseSegmentName(e.path().filename().string(), &seq, &first)) {
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Where each record of a segment starts, and where the written data ends.
struct RecordLayout {
  std::vector<size_t> starts;
  size_t end = 0;
};
inline RecordLayout LayoutOf(const std::string& segment_path) {
  const std::string buf = ReadFileOrDie(segment_path);
  RecordLayout layout;
  size_t offset = 0;
  for (;;) {
    RecordView r;
    std::string why;
    if (ScanRecord(buf, offset, &r, &why) != ScanOutcome::kRecord) break;
    layout.starts.push_back(offset);
    offset += r.size;
  }
  layout.end = offset;
  return layout;
}

// Copies every regular file of `from` into the (existing, empty) dir `to`.
inline void CopyDir(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(to);
  for (const auto& e : std::filesystem::directory_iterator(from)) {
    if (e.is_directory()) {
      CopyDir(e.path().string(), to + "/" + e.path().filename().string());
    } else {
      std::filesystem::copy_file(e.path(), to + "/" + e.path().filename().string(),
                                 std::filesystem::copy_options::overwrite_existing);
    }
  }
}

inline bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace warden::storage::testing
