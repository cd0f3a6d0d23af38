// The pure parts of wardenctl: durations, exit codes, and the environment
// that makes a nested wardenctl act as the outer one's owner.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "src/client/status.h"

namespace warden::cli {

// Exit codes (docs/client.md). A command run under `wardenctl lock` exits
// with its own status instead.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,       // anything not listed below
  kExitUsage = 2,       // bad flags or arguments
  kExitWouldBlock = 3,  // try-lock (--wait 0) found the lock held
  kExitTimeout = 4,     // --wait ran out
  kExitDeadlock = 5,    // the wait would close a cycle
  kExitConditionFailed = 6,
  kExitUnavailable = 7,  // no cluster member reachable
  kExitSessionLost = 8,  // the session ended or was lost
};

int ExitCodeFor(client::Code code);

// "500ms", "5s", "1.5s", "1m", "2h", "250us" (rounded up to ms); a bare
// number is seconds. Negative values are refused.
client::Result<int64_t> ParseDurationMs(const std::string& text);

// "a,b, c" -> {"a","b","c"} (empty items dropped).
std::vector<std::string> SplitList(const std::string& s);

// The identity a wardenctl acts under.
struct Identity {
  int64_t session = 0;  // > 0: the session of an outer wardenctl (nested)
  std::string owner;    // the owner id
  bool nested() const { return session > 0; }
};

// From WARDEN_SESSION and WARDEN_OWNER (read through `getenv`): with
// WARDEN_SESSION set this wardenctl is nested and reuses the outer session
// and owner, without keeping the session alive itself. Otherwise the owner is
// WARDEN_OWNER if set, else `default_owner`. A WARDEN_SESSION that is not a
// positive integer is an error.
client::Result<Identity> IdentityFromEnv(const std::function<const char*(const char*)>& getenv,
                                         const std::string& default_owner);

// The environment of a command run under a lock: `parent` ("K=V" entries)
// with WARDEN_FENCING_TOKEN, WARDEN_SESSION, WARDEN_OWNER, WARDEN_ENDPOINTS
// set (replacing any inherited value), and WARDEN_LOCK set to the lock name.
std::vector<std::string> ChildEnv(const std::vector<std::string>& parent, uint64_t token,
                                  int64_t session, const std::string& owner,
                                  const std::string& endpoints, const std::string& lock);

// The exit status of a command from its wait status: its exit code, or 128
// plus the signal that killed it.
int CommandExitCode(int wait_status);

}  // namespace warden::cli
