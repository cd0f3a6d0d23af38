// libFuzzer target for the snapshot file decoder (DecodeSnapshotFile) and the
// streaming writer. The first input byte picks a mode:
//
//   raw     the bytes are a snapshot file: decoding never reads outside it,
//           and a file it accepts re-encodes to exactly the same bytes.
//   fixed   the bytes are the body of a file (version through data_len);
//           the fuzzer adds the magic and a correct checksum, to get past the
//           checksum into the structural checks. Same properties.
//   oracle  the bytes describe a snapshot; its encoding must decode to it,
//           every prefix chosen by the input and one bit flip must be refused,
//           and SnapshotFileWriter fed the file in input-sized chunks must
//           produce it (or, damaged, refuse it and leave no file behind).
//
// Any violated property aborts (WARDEN_CHECK), which libFuzzer reports.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_input.h"
#include "fuzz/mem_env.h"
#include "src/base/check.h"
#include "src/base/coding.h"
#include "src/base/crc32c.h"
#include "src/storage/snapshot_file.h"

namespace warden::storage::fuzzing {
namespace {

void DecodeAndCheckCanonical(std::string_view file) {
  Result<raft::Snapshot> s = DecodeSnapshotFile(file);
  if (!s.ok()) {
    WARDEN_CHECK(s.status().code() == ErrorCode::kCorruption);
    return;
  }
  WARDEN_CHECK_MSG(EncodeSnapshotFile(*s) == file, "an accepted file is not canonical");
}

void ModeRaw(FuzzInput& in) { DecodeAndCheckCanonical(in.Rest()); }

void ModeFixed(FuzzInput& in) {
  std::string file("WRDNSNAP");
  file.append(in.Rest());
  PutFixed32(&file, crc32c::Value(file.data() + 8, file.size() - 8));
  DecodeAndCheckCanonical(file);
}

std::vector<NodeId> Ids(FuzzInput& in) {
  std::vector<NodeId> ids(in.Byte() % 8);
  for (NodeId& id : ids) id = NodeId(in.U16());
  return ids;
}

void ModeOracle(FuzzInput& in) {
  raft::Snapshot s;
  s.metadata.index = Index(1 + in.U16());
  s.metadata.term = Term(in.U16());
  s.metadata.conf_state.voters = Ids(in);
  s.metadata.conf_state.voters_outgoing = Ids(in);
  s.metadata.conf_state.learners = Ids(in);
  s.data = in.Take(in.U16());
  const std::string file = EncodeSnapshotFile(s);

  Result<raft::Snapshot> back = DecodeSnapshotFile(file);
  WARDEN_CHECK(back.ok());
  WARDEN_CHECK(back->metadata == s.metadata && back->data == s.data);

  // A prefix is refused, unless the data itself carries a well-formed trailer
  // for exactly that prefix (possible only for data crafted to contain one,
  // since the length lives in the trailer): then it must decode to the same
  // metadata and a prefix of the data, never to anything else.
  const size_t cut = in.U16() % file.size();
  Result<raft::Snapshot> prefix = DecodeSnapshotFile(file.substr(0, cut));
  if (prefix.ok()) {
    WARDEN_CHECK(prefix->metadata == s.metadata);
    WARDEN_CHECK(s.data.compare(0, prefix->data.size(), prefix->data) == 0);
  }

  std::string flipped = file;
  const size_t at = in.U16() % file.size();
  flipped[at] = static_cast<char>(flipped[at] ^ (1 << (in.Byte() % 8)));
  WARDEN_CHECK_MSG(!DecodeSnapshotFile(flipped).ok(), "a file with a flipped bit decoded");

  // Streaming: the intact file in chunks, or the flipped one.
  const bool damaged = in.Byte() & 1;
  const std::string& stream = damaged ? flipped : file;
  MemEnv env;
  WARDEN_CHECK(env.CreateDirIfMissing("/snap").ok());
  {
    Result<std::unique_ptr<SnapshotFileWriter>> w = SnapshotFileWriter::Create(&env, "/snap");
    WARDEN_CHECK(w.ok());
    for (size_t pos = 0; pos < stream.size();) {
      const size_t n = std::min<size_t>(stream.size() - pos, 1 + in.U16() % 4096);
      WARDEN_CHECK((*w)->Append(std::string_view(stream).substr(pos, n)).ok());
      pos += n;
    }
    Result<raft::Snapshot> done = (*w)->Finish();
    WARDEN_CHECK(done.ok() != damaged);
  }
  const std::vector<std::string> names = *env.ListDir("/snap");
  if (damaged) {
    WARDEN_CHECK_MSG(names.empty(), "a refused stream left a file behind");
  } else {
    WARDEN_CHECK(names.size() == 1);
    WARDEN_CHECK(names[0] == SnapshotFileName(s.metadata.term, s.metadata.index));
    WARDEN_CHECK(*env.Contents("/snap/" + names[0]) == file);
  }
}

}  // namespace
}  // namespace warden::storage::fuzzing

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace warden::storage::fuzzing;
  FuzzInput in(data, size);
  switch (in.Byte() % 3) {
    case 0: ModeRaw(in); break;
    case 1: ModeFixed(in); break;
    default: ModeOracle(in); break;
  }
  return 0;
}
