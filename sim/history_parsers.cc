// Parsers of reference histories recorded by others (Jepsen etcd logs, the
// EDN key-value histories), into the checker's Operation form.
#include <charconv>
#include <istream>
#include <map>
#include <string>
#include <string_view>

#include "sim/linearizability.h"

namespace warden::sim {

// ---------------------------------------------------------------------------
// Parsers.

namespace {

// One line of a history, in either format, keywords without their ':'.
struct Record {
  uint64_t process = 0;
  std::string type;  // invoke, ok, fail or info
  std::string f;     // read, write, cas (jepsen) or get, put, append (kv)
  std::string key;
  std::optional<std::string> value;  // nullopt: nil
};

Result<OpInput> MakeInput(const Record& r) {
  if (r.f == "read") return OpInput::Read();
  if (r.f == "get") return OpInput::Get();
  if (!r.value) return Status::InvalidArgument(":" + r.f + " without a value");
  if (r.f == "write" || r.f == "put") return OpInput::Write(*r.value);
  if (r.f == "append") return OpInput::Append(*r.value);
  if (r.f == "cas") {  // "[A B]"
    const std::string& v = *r.value;
    std::istringstream in(v.size() >= 2 && v.front() == '[' && v.back() == ']'
                              ? v.substr(1, v.size() - 2)
                              : std::string());
    std::string expected, desired, extra;
    if (!(in >> expected >> desired) || (in >> extra) || desired == "nil") {
      return Status::InvalidArgument("bad cas argument '" + v + "'");
    }
    return OpInput::Cas(expected == "nil" ? std::nullopt : std::optional(expected), desired);
  }
  return Status::InvalidArgument("unknown operation :" + r.f);
}

// Pairs invokes with completions. A process has at most one open operation.
// `:fail` means the operation did not happen: it is dropped, except a CAS,
// because jepsen's etcd client reports :fail only when the compare did not hold
// (a fact about the value that the history must explain). `:info` and the end
// of input leave an operation pending, and a pending read, which constrains
// nothing, is dropped.
class HistoryBuilder {
 public:
  Status Add(const Record& r, int line) {
    const std::string where = "line " + std::to_string(line) + ": ";
    if (r.type == "invoke") {
      Result<OpInput> input = MakeInput(r);
      if (!input.ok()) return Status::InvalidArgument(where + input.status().message());
      if (!open_.emplace(r.process, ops_.size()).second) {
        return Status::InvalidArgument(where + "process invokes with an operation open");
      }
      ops_.push_back({r.process, line, kPending, r.key, std::move(*input), OpOutput::Ok()});
      keep_.push_back(true);
      return Status::Ok();
    }
    auto it = open_.find(r.process);
    if (it == open_.end()) return Status::InvalidArgument(where + "completion without invoke");
    const size_t i = it->second;
    open_.erase(it);
    Operation& op = ops_[i];
    if (r.type == "ok") {
      op.complete_time = line;
      if (IsRead(op)) op.output = OpOutput::Value(r.value);
    } else if (r.type == "fail" && op.input.kind == OpKind::kCas) {
      op.complete_time = line;
      op.output = OpOutput::CasFailed();
    } else if (r.type == "fail" || r.type == "info") {
      keep_[i] = r.type == "info" && !IsRead(op);
    } else {
      return Status::InvalidArgument(where + "unknown type :" + r.type);
    }
    return Status::Ok();
  }

  std::vector<Operation> Finish() && {
    std::vector<Operation> out;
    for (size_t i = 0; i < ops_.size(); ++i) {
      if (keep_[i] && !(ops_[i].pending() && IsRead(ops_[i]))) out.push_back(std::move(ops_[i]));
    }
    return out;
  }

 private:
  static bool IsRead(const Operation& op) {
    return op.input.kind == OpKind::kRead || op.input.kind == OpKind::kGet;
  }

  std::vector<Operation> ops_;
  std::vector<bool> keep_;
  std::map<uint64_t, size_t> open_;
};

bool ParseUint(std::string_view s, uint64_t* out) {
  const auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return !s.empty() && error == std::errc() && end == s.data() + s.size();
}

std::string_view Trim(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  return b == std::string_view::npos ? std::string_view()
                                     : s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

std::string_view StripColon(std::string_view s) { return s.starts_with(':') ? s.substr(1) : s; }

// Splits one flat EDN map of scalars, {:k v, ...}, into key -> value: strings
// unescaped, keywords and numbers as written, nil as nullopt.
Result<std::map<std::string, std::optional<std::string>>> ParseEdnMap(std::string_view s) {
  s = Trim(s);
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') {
    return Status::InvalidArgument("not an EDN map");
  }
  s = s.substr(1, s.size() - 2);
  std::vector<std::optional<std::string>> tokens;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == ' ' || s[i] == ',' || s[i] == '\t') {
      ++i;
    } else if (s[i] == '"') {
      std::string text;
      for (++i; i < s.size() && s[i] != '"'; ++i) {
        if (s[i] == '\\' && i + 1 < s.size()) ++i;
        text += s[i];
      }
      if (i++ == s.size()) return Status::InvalidArgument("unterminated string");
      tokens.push_back(std::move(text));
    } else {
      const size_t end = std::min(s.find_first_of(" ,\t", i), s.size());
      const std::string_view token = s.substr(i, end - i);
      tokens.push_back(token == "nil" ? std::nullopt : std::optional<std::string>(token));
      i = end;
    }
  }
  std::map<std::string, std::optional<std::string>> out;
  if (tokens.size() % 2 != 0) return Status::InvalidArgument("odd number of map elements");
  for (size_t i = 0; i < tokens.size(); i += 2) {
    if (!tokens[i] || !tokens[i]->starts_with(':')) return Status::InvalidArgument("bad map key");
    out[tokens[i]->substr(1)] = std::move(tokens[i + 1]);
  }
  return out;
}

}  // namespace

Result<std::vector<Operation>> ParseJepsenEtcdLog(std::istream& in) {
  static constexpr std::string_view kMarker = "jepsen.util - ";
  HistoryBuilder builder;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const size_t at = text.find(kMarker);
    if (at == std::string::npos) continue;  // not an operation line
    std::istringstream fields(text.substr(at + kMarker.size()));
    std::string process, type, f, rest;
    Record r;
    // Lines of the nemesis and the like have no numeric process: skip them.
    if (!(fields >> process >> type >> f) || !ParseUint(process, &r.process)) continue;
    std::getline(fields, rest);
    r.type = StripColon(type);
    r.f = StripColon(f);
    const std::string_view value = Trim(rest);
    if (value != "nil") r.value = std::string(value);
    if (Status s = builder.Add(r, line); !s.ok()) return s;
  }
  return std::move(builder).Finish();
}

Result<std::vector<Operation>> ParseKvEdnHistory(std::istream& in) {
  HistoryBuilder builder;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    if (Trim(text).empty()) continue;
    const std::string where = "line " + std::to_string(line) + ": ";
    Result<std::map<std::string, std::optional<std::string>>> map = ParseEdnMap(text);
    if (!map.ok()) return Status::InvalidArgument(where + map.status().message());
    auto field = [&map](const char* name) {
      auto it = map->find(name);
      return it == map->end() ? std::optional<std::string>() : it->second;
    };
    Record r;
    const auto process = field("process"), type = field("type"), f = field("f");
    const auto key = field("key");
    if (!process || !ParseUint(*process, &r.process) || !type || !f || !key) {
      return Status::InvalidArgument(where + "missing :process, :type, :f or :key");
    }
    r.type = StripColon(*type);
    r.f = StripColon(*f);
    r.key = *key;
    r.value = field("value");
    if (Status s = builder.Add(r, line); !s.ok()) return s;
  }
  return std::move(builder).Finish();
}

}  // namespace warden::sim
