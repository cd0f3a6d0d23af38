#include "src/storage/snapshot_file.h"

#include <algorithm>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "src/base/coding.h"
#include "src/base/crc32c.h"

namespace warden::storage {

namespace {
constexpr char kMagic[] = "WRDNSNAP";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kVersion = 1;
constexpr size_t kTrailerSize = 12;  // data_len:u64 | crc:u32
constexpr uint32_t kMaxMembers = 1 << 16;

void PutIds(std::string* dst, const std::vector<NodeId>& ids) {
  PutFixed32(dst, static_cast<uint32_t>(ids.size()));
  for (NodeId id : ids) PutFixed64(dst, id.value());
}

bool GetIds(Decoder* d, std::vector<NodeId>* ids) {
  uint32_t n = 0;
  if (!d->GetFixed32(&n) || n > kMaxMembers || d->remaining() < static_cast<size_t>(n) * 8) {
    return false;
  }
  ids->clear();
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t v = 0;
    d->GetFixed64(&v);
    ids->push_back(NodeId(v));
  }
  return true;
}
}  // namespace

std::string EncodeSnapshotFile(const raft::Snapshot& s) {
  std::string meta;
  PutFixed64(&meta, s.metadata.index.value());
  PutFixed64(&meta, s.metadata.term.value());
  PutIds(&meta, s.metadata.conf_state.voters);
  PutIds(&meta, s.metadata.conf_state.voters_outgoing);
  PutIds(&meta, s.metadata.conf_state.learners);
  std::string out(kMagic, kMagicSize);
  PutFixed32(&out, kVersion);
  PutFixed32(&out, static_cast<uint32_t>(meta.size()));
  out += meta;
  out += s.data;
  PutFixed64(&out, s.data.size());
  PutFixed32(&out, crc32c::Value(out.data() + kMagicSize, out.size() - kMagicSize));
  return out;
}

Result<raft::Snapshot> DecodeSnapshotFile(std::string_view file) {
  if (file.size() < kMagicSize + 8 + kTrailerSize ||
      std::memcmp(file.data(), kMagic, kMagicSize) != 0) {
    return Status::Corruption("not a snapshot file (bad magic or too short)");
  }
  const uint32_t crc = DecodeFixed32(file.data() + file.size() - 4);
  if (crc32c::Value(file.data() + kMagicSize, file.size() - kMagicSize - 4) != crc) {
    return Status::Corruption("snapshot checksum mismatch");
  }
  Decoder d(file.substr(kMagicSize, file.size() - kMagicSize - kTrailerSize));
  uint32_t version = 0;
  std::string_view meta;
  if (!d.GetFixed32(&version) || version != kVersion) {
    return Status::Corruption("unsupported snapshot version " + std::to_string(version));
  }
  if (!d.GetBytes(&meta)) return Status::Corruption("snapshot metadata runs past the file");
  std::string_view data;
  d.GetRest(&data);
  const uint64_t data_len = DecodeFixed64(file.data() + file.size() - kTrailerSize);
  if (data_len != data.size()) return Status::Corruption("snapshot data length mismatch");

  raft::Snapshot s;
  Decoder md(meta);
  uint64_t index = 0, term = 0;
  if (!md.GetFixed64(&index) || !md.GetFixed64(&term) ||
      !GetIds(&md, &s.metadata.conf_state.voters) ||
      !GetIds(&md, &s.metadata.conf_state.voters_outgoing) ||
      !GetIds(&md, &s.metadata.conf_state.learners) || !md.empty()) {
    return Status::Corruption("malformed snapshot metadata");
  }
  s.metadata.index = Index(index);
  s.metadata.term = Term(term);
  s.data = std::string(data);
  return s;
}

std::string SnapshotFileName(Term term, Index index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%016" PRIx64 "-%016" PRIx64 ".snap", term.value(), index.value());
  return buf;
}

bool ParseSnapshotFileName(const std::string& name, Term* term, Index* index) {
  if (name.size() != 38 || name.substr(33) != ".snap" || name[16] != '-') return false;
  uint64_t a = 0, b = 0;
  if (std::sscanf(name.c_str(), "%16" SCNx64 "-%16" SCNx64, &a, &b) != 2) return false;
  *term = Term(a);
  *index = Index(b);
  return true;
}

// ---------------------------------------------------------------------------

Result<std::unique_ptr<SnapshotFileWriter>> SnapshotFileWriter::Create(Env* env,
                                                                       const std::string& dir) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = JoinPath(dir, "incoming-" + std::to_string(++counter) + ".snap.tmp");
  if (env->FileExists(tmp)) (void)env->RemoveFile(tmp);
  Result<std::unique_ptr<WritableFile>> f = env->OpenForAppend(tmp, 0, 0);
  if (!f.ok()) return f.status();
  return std::unique_ptr<SnapshotFileWriter>(
      new SnapshotFileWriter(env, dir, tmp, std::move(f).value()));
}

SnapshotFileWriter::SnapshotFileWriter(Env* env, std::string dir, std::string tmp_path,
                                       std::unique_ptr<WritableFile> file)
    : env_(env), dir_(std::move(dir)), tmp_path_(std::move(tmp_path)), file_(std::move(file)) {}

SnapshotFileWriter::~SnapshotFileWriter() {
  if (!done_) {
    file_.reset();
    (void)env_->RemoveFile(tmp_path_);
  }
}

Status SnapshotFileWriter::Append(std::string_view chunk) {
  if (!failure_.ok()) return failure_;
  received_.append(chunk);
  Status s = file_->Append(chunk);
  // The file may now lack bytes that received_ holds: never finish it.
  if (!s.ok()) failure_ = s;
  return s;
}

Result<raft::Snapshot> SnapshotFileWriter::Finish() {
  if (!failure_.ok()) return failure_;
  Result<raft::Snapshot> s = DecodeSnapshotFile(received_);
  if (!s.ok()) return s.status();
  if (Status st = file_->Sync(); !st.ok()) return st;
  file_.reset();
  const std::string final_path =
      JoinPath(dir_, SnapshotFileName(s->metadata.term, s->metadata.index));
  if (Status st = env_->RenameFile(tmp_path_, final_path); !st.ok()) return st;
  done_ = true;
  if (Status st = env_->SyncDir(dir_); !st.ok()) return st;
  return s;
}

Result<std::unique_ptr<SnapshotFileReader>> SnapshotFileReader::Open(Env* env,
                                                                     const std::string& path) {
  Result<std::unique_ptr<SequentialFile>> f = env->OpenForRead(path);
  if (!f.ok()) return f.status();
  return std::unique_ptr<SnapshotFileReader>(new SnapshotFileReader(std::move(f).value()));
}

// ---------------------------------------------------------------------------

Status SnapshotStore::Save(const raft::Snapshot& s) {
  Result<std::unique_ptr<SnapshotFileWriter>> w = SnapshotFileWriter::Create(env_, dir_);
  if (!w.ok()) return w.status();
  if (Status st = (*w)->Append(EncodeSnapshotFile(s)); !st.ok()) return st;
  Result<raft::Snapshot> done = (*w)->Finish();
  return done.ok() ? Status::Ok() : done.status();
}

Result<std::vector<std::string>> SnapshotStore::List() const {
  Result<std::vector<std::string>> names = env_->ListDir(dir_);
  if (!names.ok()) return names.status();
  std::vector<std::pair<Index, std::string>> found;
  for (const std::string& n : *names) {
    Term t;
    Index i;
    if (ParseSnapshotFileName(n, &t, &i)) found.emplace_back(i, n);
  }
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a > b; });
  std::vector<std::string> out;
  for (auto& [i, n] : found) out.push_back(std::move(n));
  return out;
}

Result<raft::Snapshot> SnapshotStore::Load(const std::string& name) const {
  const std::string path = JoinPath(dir_, name);
  Result<std::string> data = env_->ReadFile(path);
  if (!data.ok()) return data.status();
  Result<raft::Snapshot> s = DecodeSnapshotFile(*data);
  if (!s.ok()) return Status::Corruption("snapshot " + path + ": " + s.status().message());
  Term t;
  Index i;
  if (!ParseSnapshotFileName(name, &t, &i) || t != s->metadata.term || i != s->metadata.index) {
    return Status::Corruption("snapshot " + path + ": name does not match its contents");
  }
  return s;
}

Status SnapshotStore::Prune(size_t keep) {
  Result<std::vector<std::string>> names = List();
  if (!names.ok()) return names.status();
  bool removed = false;
  for (size_t i = keep; i < names->size(); ++i) {
    if (Status s = env_->RemoveFile(JoinPath(dir_, (*names)[i])); !s.ok()) return s;
    removed = true;
  }
  return removed ? env_->SyncDir(dir_) : Status::Ok();
}

}  // namespace warden::storage
