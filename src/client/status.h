// The client library's error type. A lock request that was not granted comes
// back as a Status whose code is the server's outcome (WOULD_BLOCK, DEADLOCK,
// TIMEOUT...), with a message a person can read ("lock /x is held"). Transport
// failures are kUnavailable once every endpoint was tried until the deadline.
//
// The client depends on the generated protos only (DESIGN.md, "Layers"), so it
// has its own small Status rather than src/base's.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace grpc {
class Status;
}

namespace warden::client {

enum class Code : int {
  kOk = 0,
  kWouldBlock,       // a try-lock found the lock taken
  kDeadlock,         // waiting would close a cycle; the message names it
  kTimeout,          // the wait deadline passed before a grant
  kConditionFailed,  // the lock's conditions did not hold when it could be granted
  kSessionEnded,     // the session (lease) is gone, or was lost by the client
  kCancelled,        // the caller cancelled a wait
  kNotHeld,          // release/renew of a hold the owner does not have
  kBadToken,         // release/renew with another token than the hold's
  kInvalid,          // a request the server refuses as malformed
  kUnavailable,      // no endpoint could serve the request before the deadline
  kNotFound,         // e.g. no election leader, an unknown lease
  kFailedPrecondition,
  kError,  // anything else the server said
};

// "WOULD_BLOCK", "DEADLOCK"...: the names the server and wardenctl use.
const char* CodeName(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status Ok() { return {}; }

  bool ok() const { return code_ == Code::kOk; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  // "message (CODE)".
  std::string ToString() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Maps a gRPC error to a Status (UNAVAILABLE and DEADLINE_EXCEEDED to
// kUnavailable / kTimeout, NOT_FOUND, INVALID_ARGUMENT...).
Status FromGrpc(const grpc::Status& s);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT
    if (std::get<Status>(v_).ok()) v_ = Status(Code::kError, "Result built from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  // REQUIRES: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace warden::client
