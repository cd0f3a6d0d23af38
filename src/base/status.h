// Status and Result<T>: how operating errors travel in Warden. A Status is a
// code from one enum plus a human-readable message. Mapping to grpc::Status
// happens only at the service boundary.
#pragma once

#include <string>
#include <system_error>
#include <utility>
#include <variant>

#include "src/base/check.h"

namespace warden {

enum class ErrorCode : int {
  kOk = 0,
  kInvalidArgument = 1,
  kNotFound = 2,
  kNotLeader = 3,        // this node cannot serve the request; try the leader
  kProposalDropped = 4,  // e.g. a leadership transfer is in progress
  kCompacted = 5,        // the requested log index was compacted away
  kUnavailable = 6,      // the requested log index is not yet available
  kSnapshotTemporarilyUnavailable = 7,
  kCorruption = 8,  // a decoder found damaged data
  kIoError = 9,
  kNoSpace = 10,
  kAborted = 11,
  kTimeout = 12,
  kFailedPrecondition = 13,
  kFutureRevision = 14,  // a read or watch at a revision not yet written
};

const std::error_category& WardenCategory();
inline std::error_code make_error_code(ErrorCode c) {
  return {static_cast<int>(c), WardenCategory()};
}
const char* ErrorCodeName(ErrorCode c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  static Status InvalidArgument(std::string m) {
    return {ErrorCode::kInvalidArgument, std::move(m)};
  }
  static Status NotFound(std::string m) { return {ErrorCode::kNotFound, std::move(m)}; }
  static Status NotLeader(std::string m) { return {ErrorCode::kNotLeader, std::move(m)}; }
  static Status ProposalDropped(std::string m) {
    return {ErrorCode::kProposalDropped, std::move(m)};
  }
  static Status Compacted(std::string m) { return {ErrorCode::kCompacted, std::move(m)}; }
  static Status Unavailable(std::string m) { return {ErrorCode::kUnavailable, std::move(m)}; }
  static Status Corruption(std::string m) { return {ErrorCode::kCorruption, std::move(m)}; }
  static Status IoError(std::string m) { return {ErrorCode::kIoError, std::move(m)}; }
  static Status FailedPrecondition(std::string m) {
    return {ErrorCode::kFailedPrecondition, std::move(m)};
  }

  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string ToString() const;

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

// Either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    WARDEN_CHECK_MSG(!std::get<Status>(v_).ok(), "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & {
    WARDEN_CHECK(ok());
    return std::get<T>(v_);
  }
  const T& value() const& {
    WARDEN_CHECK(ok());
    return std::get<T>(v_);
  }
  T&& value() && {
    WARDEN_CHECK(ok());
    return std::get<T>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace warden

template <>
struct std::is_error_code_enum<warden::ErrorCode> : std::true_type {};
