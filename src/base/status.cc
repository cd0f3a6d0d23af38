#include "src/base/status.h"

namespace warden {

const char* ErrorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kOk: return "OK";
    case ErrorCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case ErrorCode::kNotFound: return "NOT_FOUND";
    case ErrorCode::kNotLeader: return "NOT_LEADER";
    case ErrorCode::kProposalDropped: return "PROPOSAL_DROPPED";
    case ErrorCode::kCompacted: return "COMPACTED";
    case ErrorCode::kUnavailable: return "UNAVAILABLE";
    case ErrorCode::kSnapshotTemporarilyUnavailable: return "SNAPSHOT_TEMPORARILY_UNAVAILABLE";
    case ErrorCode::kCorruption: return "CORRUPTION";
    case ErrorCode::kIoError: return "IO_ERROR";
    case ErrorCode::kNoSpace: return "NO_SPACE";
    case ErrorCode::kAborted: return "ABORTED";
    case ErrorCode::kTimeout: return "TIMEOUT";
    case ErrorCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case ErrorCode::kFutureRevision: return "FUTURE_REVISION";
  }
  return "UNKNOWN";
}

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "warden"; }
  std::string message(int c) const override { return ErrorCodeName(static_cast<ErrorCode>(c)); }
};
}  // namespace

const std::error_category& WardenCategory() {
  static const Category kCategory;
  return kCategory;
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string s = ErrorCodeName(code_);
  if (!message_.empty()) s += ": " + message_;
  return s;
}

}  // namespace warden
