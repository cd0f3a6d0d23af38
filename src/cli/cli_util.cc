#include "src/cli/cli_util.h"

#include <sys/wait.h>

#include <cctype>
#include <climits>
#include <cmath>
#include <cstdint>
#include <sstream>

namespace warden::cli {

using client::Code;

int ExitCodeFor(Code code) {
  switch (code) {
    case Code::kOk: return kExitOk;
    case Code::kWouldBlock: return kExitWouldBlock;
    case Code::kTimeout: return kExitTimeout;
    case Code::kDeadlock: return kExitDeadlock;
    case Code::kConditionFailed: return kExitConditionFailed;
    case Code::kUnavailable: return kExitUnavailable;
    case Code::kSessionEnded: return kExitSessionLost;
    case Code::kInvalid: return kExitUsage;
    default: return kExitError;
  }
}

client::Result<int64_t> ParseDurationMs(const std::string& text) {
  const client::Status bad(Code::kInvalid,
                           "invalid duration \"" + text + "\": want e.g. 500ms, 5s, 1.5s, 1m, 2h");
  if (text.empty()) return bad;
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) {
    ++i;
  }
  const std::string number = text.substr(0, i);
  const std::string unit = text.substr(i);
  if (number.empty() || number == "." || number.find('.') != number.rfind('.')) return bad;
  double value = 0;
  try {
    size_t used = 0;
    value = std::stod(number, &used);
    if (used != number.size()) return bad;
  } catch (...) {
    return bad;
  }
  double ms_per_unit = 0;
  if (unit.empty() || unit == "s") {
    ms_per_unit = 1000;
  } else if (unit == "ms") {
    ms_per_unit = 1;
  } else if (unit == "us" || unit == "µs") {
    ms_per_unit = 0.001;
  } else if (unit == "m") {
    ms_per_unit = 60 * 1000;
  } else if (unit == "h") {
    ms_per_unit = 3600 * 1000;
  } else {
    return bad;
  }
  const double ms = std::ceil(value * ms_per_unit);
  if (!std::isfinite(ms) || ms > 1e15) return bad;
  return static_cast<int64_t>(ms);
}

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    const size_t b = item.find_first_not_of(" \t");
    const size_t e = item.find_last_not_of(" \t");
    if (b == std::string::npos) continue;
    out.push_back(item.substr(b, e - b + 1));
  }
  return out;
}

client::Result<Identity> IdentityFromEnv(const std::function<const char*(const char*)>& getenv,
                                         const std::string& default_owner) {
  Identity id;
  const char* owner = getenv("WARDEN_OWNER");
  id.owner = owner != nullptr ? owner : default_owner;
  const char* session = getenv("WARDEN_SESSION");
  if (session == nullptr || session[0] == '\0') {
    if (owner != nullptr && owner[0] == '\0') id.owner = default_owner;
    return id;
  }
  const std::string s = session;
  const client::Status bad(Code::kInvalid,
                           "WARDEN_SESSION=\"" + s + "\" is not a session (lease) id");
  if (s.size() > 19) return bad;
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return bad;
    v = v * 10 + static_cast<uint64_t>(c - '0');  // 19 digits fit in u64
  }
  if (v == 0 || v > static_cast<uint64_t>(INT64_MAX)) return bad;
  id.session = static_cast<int64_t>(v);
  id.owner = owner != nullptr ? owner : "";
  return id;
}

std::vector<std::string> ChildEnv(const std::vector<std::string>& parent, uint64_t token,
                                  int64_t session, const std::string& owner,
                                  const std::string& endpoints, const std::string& lock) {
  const std::pair<std::string, std::string> ours[] = {
      {"WARDEN_FENCING_TOKEN", std::to_string(token)},
      {"WARDEN_SESSION", std::to_string(session)},
      {"WARDEN_OWNER", owner},
      {"WARDEN_ENDPOINTS", endpoints},
      {"WARDEN_LOCK", lock},
  };
  std::vector<std::string> env;
  for (const std::string& kv : parent) {
    bool replaced = false;
    for (const auto& [k, v] : ours) {
      if (kv.size() > k.size() && kv.compare(0, k.size(), k) == 0 && kv[k.size()] == '=') {
        replaced = true;
      }
      if (kv == k) replaced = true;
    }
    if (!replaced) env.push_back(kv);
  }
  for (const auto& [k, v] : ours) env.push_back(k + "=" + v);
  return env;
}

int CommandExitCode(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return kExitError;
}

}  // namespace warden::cli
