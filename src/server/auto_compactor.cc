#include "src/server/auto_compactor.h"

#include <algorithm>
#include <cctype>

namespace warden::server {

Result<int64_t> ParseDurationMs(const std::string& text) {
  if (text.empty()) return 0;
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  if (digits == 0 || digits > 12) {
    return Status::InvalidArgument(
        "invalid duration \"" + text +
        "\": want hours (\"1\") or a duration (\"30m\", \"90s\", \"2h\")");
  }
  const int64_t n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  if (unit.empty() || unit == "h") return n * 3600 * 1000;
  if (unit == "m") return n * 60 * 1000;
  if (unit == "s") return n * 1000;
  return Status::InvalidArgument("invalid unit in duration \"" + text + "\"");
}

void AutoCompactor::Start() {
  if (retention_ms_ <= 0) return;
  host_->Post([this](node::Node& n) { Run(n); });
}

void AutoCompactor::Run(node::Node& n) {
  const int64_t period_ms = std::max<int64_t>(retention_ms_ / 10, 1000);
  samples_.emplace_back(elapsed_ms_, n.state().kv().current_revision());
  // The newest sample at least `retention` old is what may go.
  int64_t target = 0;
  while (!samples_.empty() && elapsed_ms_ - samples_.front().first >= retention_ms_) {
    target = samples_.front().second;
    samples_.pop_front();
  }
  if (target > n.state().kv().compact_revision() && n.IsLeader()) {
    state::Command cmd;
    cmd.type = state::CommandType::kCompact;
    cmd.revision = target;
    // A failure (lost leadership, already compacted) is retried next period.
    n.Propose(std::move(cmd), [](const state::ApplyResult&) {});
  }
  elapsed_ms_ += period_ms;
  host_->PostAfter(period_ms, [this](node::Node& node) { Run(node); });
}

}  // namespace warden::server
