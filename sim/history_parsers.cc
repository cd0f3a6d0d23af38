// Parsers of histories into the checker's Operation form: reference histories
// recorded by others (Jepsen etcd logs, the EDN key-value histories) and the
// JSON-lines histories that the chaos harness (tests/chaos/) records.
#include <cctype>
#include <charconv>
#include <istream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>

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
  // A CAS's (expected, new) when given as a pair (JSON), not as "[A B]" text.
  std::optional<std::pair<std::optional<std::string>, std::string>> cas;
};

Result<OpInput> MakeInput(const Record& r) {
  if (r.f == "read") return OpInput::Read();
  if (r.f == "get") return OpInput::Get();
  if (r.f == "cas" && r.cas) return OpInput::Cas(r.cas->first, r.cas->second);
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
  // `line` names the record in messages; `time` is its timestamp.
  Status Add(const Record& r, int line, int64_t time) {
    const std::string where = "line " + std::to_string(line) + ": ";
    if (r.type == "invoke") {
      Result<OpInput> input = MakeInput(r);
      if (!input.ok()) return Status::InvalidArgument(where + input.status().message());
      if (!open_.emplace(r.process, ops_.size()).second) {
        return Status::InvalidArgument(where + "process invokes with an operation open");
      }
      ops_.push_back({r.process, time, kPending, r.key, std::move(*input), OpOutput::Ok()});
      keep_.push_back(true);
      return Status::Ok();
    }
    auto it = open_.find(r.process);
    if (it == open_.end()) return Status::InvalidArgument(where + "completion without invoke");
    const size_t i = it->second;
    open_.erase(it);
    Operation& op = ops_[i];
    if (time < op.invoke_time) {
      return Status::InvalidArgument(where + "completion before its invoke");
    }
    if (r.type == "ok") {
      op.complete_time = time;
      if (IsRead(op)) op.output = OpOutput::Value(r.value);
    } else if (r.type == "fail" && op.input.kind == OpKind::kCas) {
      op.complete_time = time;
      op.output = OpOutput::CasFailed();
    } else if (r.type == "fail" || r.type == "info" || r.type == "refused") {
      // `refused` (the chaos harness's JSON only): the server said it did not
      // apply the operation, whatever its kind; dropped.
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

// A JSON value of the shapes a history line uses: string, integer, null,
// boolean, or an array of strings and nulls.
struct JsonValue {
  enum class Kind { kNull, kString, kNumber, kBool, kArray } kind = Kind::kNull;
  std::string text;                               // kString; kNumber as written
  std::vector<std::optional<std::string>> items;  // kArray: strings, nullopt for null
};

// Parses one flat JSON object: {"name": value, ...}.
class JsonLineParser {
 public:
  explicit JsonLineParser(std::string_view s) : s_(s) {}

  Result<std::map<std::string, JsonValue>> ParseObject() {
    std::map<std::string, JsonValue> out;
    if (!Eat('{')) return Error("expected '{'");
    if (Eat('}')) return Finish(std::move(out));
    for (;;) {
      Result<std::string> name = String();
      if (!name.ok()) return name.status();
      if (!Eat(':')) return Error("expected ':'");
      Result<JsonValue> value = Value();
      if (!value.ok()) return value.status();
      out[*name] = std::move(*value);
      if (Eat('}')) return Finish(std::move(out));
      if (!Eat(',')) return Error("expected ',' or '}'");
    }
  }

 private:
  Result<std::map<std::string, JsonValue>> Finish(std::map<std::string, JsonValue> out) {
    SkipSpace();
    if (i_ != s_.size()) return Error("trailing characters");
    return out;
  }
  Status Error(const std::string& what) const {
    return Status::InvalidArgument("JSON: " + what + " at column " + std::to_string(i_ + 1));
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool Eat(char c) {
    SkipSpace();
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool EatWord(std::string_view w) {
    SkipSpace();
    if (s_.substr(i_, w.size()) != w) return false;
    i_ += w.size();
    return true;
  }
  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xC0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xE0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *out += static_cast<char>(0xF0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool Hex4(uint32_t* cp) {
    if (i_ + 4 > s_.size()) return false;
    *cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      *cp <<= 4;
      if (c >= '0' && c <= '9') {
        *cp |= static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        *cp |= static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        *cp |= static_cast<uint32_t>(c - 'A' + 10);
      } else {
        return false;
      }
    }
    return true;
  }
  Result<std::string> String() {
    if (!Eat('"')) return Error("expected a string");
    std::string out;
    while (i_ < s_.size() && s_[i_] != '"') {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ == s_.size()) break;
      c = s_[i_++];
      switch (c) {
        case '"':
        case '\\':
        case '/': out += c; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = 0;
          if (!Hex4(&cp)) return Error("bad \\u escape");
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            i_ += 2;
            uint32_t low = 0;
            if (!Hex4(&low) || low < 0xDC00 || low > 0xDFFF) return Error("bad surrogate pair");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(cp, &out);
          break;
        }
        default: return Error("bad escape");
      }
    }
    if (i_ == s_.size()) return Error("unterminated string");
    ++i_;
    return out;
  }
  Result<JsonValue> Value() {
    JsonValue v;
    SkipSpace();
    if (i_ == s_.size()) return Error("expected a value");
    if (s_[i_] == '"') {
      Result<std::string> text = String();
      if (!text.ok()) return text.status();
      v.kind = JsonValue::Kind::kString;
      v.text = std::move(*text);
    } else if (EatWord("null")) {
      v.kind = JsonValue::Kind::kNull;
    } else if (EatWord("true") || EatWord("false")) {
      v.kind = JsonValue::Kind::kBool;
      v.text = s_[i_ - 1] == 'e' && s_[i_ - 2] == 'u' ? "true" : "false";
    } else if (Eat('[')) {
      v.kind = JsonValue::Kind::kArray;
      if (Eat(']')) return v;
      for (;;) {
        SkipSpace();
        if (EatWord("null")) {
          v.items.push_back(std::nullopt);
        } else {
          Result<std::string> item = String();
          if (!item.ok()) return Error("arrays hold only strings and nulls");
          v.items.push_back(std::move(*item));
        }
        if (Eat(']')) return v;
        if (!Eat(',')) return Error("expected ',' or ']'");
      }
    } else {
      const size_t b = i_;
      while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-' ||
                                s_[i_] == '+' || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E')) {
        ++i_;
      }
      if (b == i_) return Error("unexpected character");
      v.kind = JsonValue::Kind::kNumber;
      v.text = std::string(s_.substr(b, i_ - b));
    }
    return v;
  }

  std::string_view s_;
  size_t i_ = 0;
};

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
    if (Status s = builder.Add(r, line, line); !s.ok()) return s;
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
    if (Status s = builder.Add(r, line, line); !s.ok()) return s;
  }
  return std::move(builder).Finish();
}

}  // namespace warden::sim

namespace warden::sim {

Result<std::vector<Operation>> ParseJsonLinesHistory(std::istream& in) {
  HistoryBuilder builder;
  std::string text;
  for (int line = 1; std::getline(in, text); ++line) {
    const std::string_view trimmed = Trim(text);
    if (trimmed.empty() || trimmed.front() == '#') continue;
    const std::string where = "line " + std::to_string(line) + ": ";
    Result<std::map<std::string, JsonValue>> object = JsonLineParser(trimmed).ParseObject();
    if (!object.ok()) return Status::InvalidArgument(where + object.status().message());
    auto field = [&object](const char* name) -> const JsonValue* {
      auto it = object->find(name);
      return it == object->end() ? nullptr : &it->second;
    };
    const JsonValue* process = field("process");
    const JsonValue* type = field("type");
    const JsonValue* f = field("f") != nullptr ? field("f") : field("op");
    const JsonValue* key = field("key");
    const JsonValue* time = field("time");
    Record r;
    int64_t t = 0;
    if (process == nullptr || process->kind != JsonValue::Kind::kNumber ||
        !ParseUint(process->text, &r.process)) {
      return Status::InvalidArgument(where + "\"process\" must be a non-negative integer");
    }
    if (type == nullptr || type->kind != JsonValue::Kind::kString || f == nullptr ||
        f->kind != JsonValue::Kind::kString || key == nullptr ||
        key->kind != JsonValue::Kind::kString) {
      return Status::InvalidArgument(where + "missing \"type\", \"f\" (or \"op\") or \"key\"");
    }
    const auto [end, error] =
        time == nullptr
            ? std::from_chars_result{nullptr, std::errc::invalid_argument}
            : std::from_chars(time->text.data(), time->text.data() + time->text.size(), t);
    if (time == nullptr || time->kind != JsonValue::Kind::kNumber || error != std::errc() ||
        end != time->text.data() + time->text.size() || t < 0) {
      return Status::InvalidArgument(where + "\"time\" must be a non-negative integer");
    }
    r.type = type->text;
    r.f = f->text;
    r.key = key->text;
    if (const JsonValue* value = field("value"); value != nullptr) {
      switch (value->kind) {
        case JsonValue::Kind::kString:
        case JsonValue::Kind::kNumber: r.value = value->text; break;
        case JsonValue::Kind::kNull: break;
        case JsonValue::Kind::kArray:
          if (value->items.size() != 2 || !value->items[1]) {
            return Status::InvalidArgument(where + "a cas value is [expected or null, new]");
          }
          r.cas.emplace(value->items[0], *value->items[1]);
          r.value = "[cas]";
          break;
        case JsonValue::Kind::kBool:
          return Status::InvalidArgument(where + "\"value\" may not be a boolean");
      }
    }
    if (r.f == "cas" && r.type == "invoke" && !r.cas) {
      return Status::InvalidArgument(where + "a cas invoke needs \"value\": [expected, new]");
    }
    if (Status s = builder.Add(r, line, t); !s.ok()) return s;
  }
  return std::move(builder).Finish();
}

}  // namespace warden::sim
