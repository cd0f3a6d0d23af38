#include "src/server/config.h"

#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <sstream>

#include "src/base/crc32c.h"

namespace warden::server {

namespace {

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string JoinList(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += (s.empty() ? "" : ",") + x;
  return s;
}

// Applies one key=value from the environment or the config file, unless the
// flag was given on the command line.
Status ApplyValue(ServerConfig* c, const std::string& key, const std::string& value) {
  auto to_int = [&](int64_t* out) -> Status {
    try {
      size_t pos = 0;
      const long long v = std::stoll(value, &pos);
      if (pos != value.size() || v < 0) throw std::invalid_argument(value);
      *out = v;
      return Status::Ok();
    } catch (...) {
      return Status::InvalidArgument("invalid value \"" + value + "\" for " + key +
                                     ": want a non-negative integer");
    }
  };
  int64_t n = 0;
  if (key == "name")
    c->name = value;
  else if (key == "data-dir")
    c->data_dir = value;
  else if (key == "listen-client-urls")
    c->listen_client_urls = SplitList(value);
  else if (key == "advertise-client-urls")
    c->advertise_client_urls = SplitList(value);
  else if (key == "listen-peer-urls")
    c->listen_peer_urls = SplitList(value);
  else if (key == "initial-advertise-peer-urls")
    c->initial_advertise_peer_urls = SplitList(value);
  else if (key == "initial-cluster")
    c->initial_cluster = value;
  else if (key == "initial-cluster-state")
    c->initial_cluster_state = value;
  else if (key == "initial-cluster-token")
    c->initial_cluster_token = value;
  else if (key == "auto-compaction-retention")
    c->auto_compaction_retention = value;
  else if (key == "listen-metrics-urls")
    c->listen_metrics_urls = SplitList(value);
  else if (key == "heartbeat-interval") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->heartbeat_interval_ms = n;
  } else if (key == "election-timeout") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->election_timeout_ms = n;
  } else if (key == "snapshot-count") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->snapshot_count = static_cast<uint64_t>(n);
  } else if (key == "experimental-snapshot-catchup-entries") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->snapshot_catchup_entries = static_cast<uint64_t>(n);
  } else if (key == "max-request-bytes") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->max_request_bytes = static_cast<uint64_t>(n);
  } else if (key == "max-txn-ops") {
    if (Status s = to_int(&n); !s.ok()) return s;
    c->max_txn_ops = static_cast<uint64_t>(n);
  } else if (key == "experimental-watch-progress-notify-interval") {
    c->watch_progress_notify_interval = value;
  } else if (key == "experimental-lease-reads") {
    c->lease_reads = value == "true" || value == "1";
  } else {
    return Status::InvalidArgument("unknown configuration key \"" + key + "\"");
  }
  return Status::Ok();
}

const char* const kKeys[] = {"name",
                             "data-dir",
                             "listen-client-urls",
                             "advertise-client-urls",
                             "listen-peer-urls",
                             "initial-advertise-peer-urls",
                             "initial-cluster",
                             "initial-cluster-state",
                             "initial-cluster-token",
                             "heartbeat-interval",
                             "election-timeout",
                             "snapshot-count",
                             "experimental-snapshot-catchup-entries",
                             "auto-compaction-retention",
                             "listen-metrics-urls",
                             "max-request-bytes",
                             "max-txn-ops",
                             "experimental-lease-reads",
                             "experimental-watch-progress-notify-interval"};

std::string EnvName(const std::string& key) {
  std::string e = "WARDEN_";
  for (char ch : key) e += ch == '-' ? '_' : static_cast<char>(std::toupper(ch));
  return e;
}

}  // namespace

Result<std::string> UrlToAddress(const std::string& url) {
  std::string rest = url;
  for (const char* scheme : {"http://", "https://", "unix://"}) {
    if (rest.rfind(scheme, 0) == 0) {
      rest = rest.substr(std::string(scheme).size());
      break;
    }
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (rest.empty() || colon == std::string::npos || colon + 1 >= rest.size()) {
    return Status::InvalidArgument("invalid URL \"" + url + "\": want http://host:port");
  }
  for (size_t i = colon + 1; i < rest.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(rest[i]))) {
      return Status::InvalidArgument("invalid port in URL \"" + url + "\"");
    }
  }
  return rest;
}

NodeId MemberIdFor(const std::vector<std::string>& peer_urls, const std::string& token) {
  std::vector<std::string> sorted = peer_urls;
  std::sort(sorted.begin(), sorted.end());
  std::string key = JoinList(sorted) + "|" + token;
  // Two CRCs over different prefixes make a 64-bit id; 0 is reserved.
  const uint64_t hi = crc32c::Value(key);
  const uint64_t lo = crc32c::Value("warden-member-id:" + key);
  uint64_t id = (hi << 32) | lo;
  if (id == 0) id = 1;
  return NodeId(id);
}

Status FinishConfig(ServerConfig* c) {
  if (c->name.empty()) return Status::InvalidArgument("--name must not be empty");
  if (c->data_dir.empty()) c->data_dir = c->name + ".warden";
  if (c->advertise_client_urls.empty()) c->advertise_client_urls = c->listen_client_urls;
  if (c->initial_advertise_peer_urls.empty()) c->initial_advertise_peer_urls = c->listen_peer_urls;
  if (c->listen_client_urls.empty())
    return Status::InvalidArgument("--listen-client-urls is empty");
  for (const auto* list : {&c->listen_client_urls, &c->advertise_client_urls, &c->listen_peer_urls,
                           &c->initial_advertise_peer_urls, &c->listen_metrics_urls}) {
    for (const std::string& u : *list) {
      if (Result<std::string> a = UrlToAddress(u); !a.ok()) return a.status();
    }
  }
  if (c->heartbeat_interval_ms <= 0)
    return Status::InvalidArgument("--heartbeat-interval must be > 0");
  if (c->election_timeout_ms < 5 * c->heartbeat_interval_ms) {
    return Status::InvalidArgument("--election-timeout (" + std::to_string(c->election_timeout_ms) +
                                   "ms) must be at least 5 times --heartbeat-interval (" +
                                   std::to_string(c->heartbeat_interval_ms) + "ms)");
  }
  if (c->initial_cluster_state != "new" && c->initial_cluster_state != "existing") {
    return Status::InvalidArgument(
        "--initial-cluster-state must be \"new\" or \"existing\", not \"" +
        c->initial_cluster_state + "\"");
  }
  if (c->initial_cluster.empty()) {
    c->initial_cluster = c->name + "=" + JoinList(c->initial_advertise_peer_urls);
  }
  // name=url entries; a name may repeat for several URLs.
  std::map<std::string, std::vector<std::string>> by_name;
  std::vector<std::string> order;
  for (const std::string& item : SplitList(c->initial_cluster)) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size()) {
      return Status::InvalidArgument("invalid --initial-cluster entry \"" + item +
                                     "\": want name=http://host:port");
    }
    const std::string name = item.substr(0, eq);
    const std::string url = item.substr(eq + 1);
    if (Result<std::string> a = UrlToAddress(url); !a.ok()) return a.status();
    if (!by_name.count(name)) order.push_back(name);
    by_name[name].push_back(url);
  }
  if (!by_name.count(c->name)) {
    return Status::InvalidArgument("--initial-cluster has no entry for this member (--name " +
                                   c->name + ")");
  }
  c->members.clear();
  std::vector<std::string> all_urls;
  for (const std::string& name : order) {
    ServerConfig::Member m;
    m.name = name;
    m.peer_urls = by_name[name];
    m.id = MemberIdFor(m.peer_urls, c->initial_cluster_token);
    all_urls.insert(all_urls.end(), m.peer_urls.begin(), m.peer_urls.end());
    if (name == c->name) c->self_id = m.id;
    c->members.push_back(std::move(m));
  }
  std::sort(all_urls.begin(), all_urls.end());
  c->cluster_id = MemberIdFor(all_urls, c->initial_cluster_token + "/cluster").value();
  return Status::Ok();
}

Result<ServerConfig> ParseServerConfig(int argc, char** argv,
                                       const std::map<std::string, std::string>& env,
                                       std::string* help) {
  ServerConfig c;
  CLI::App app{"warden: a distributed lock and coordination service (etcd v3 compatible)"};
  app.set_version_flag("--version", "warden 0.1");
  std::map<std::string, std::string> given;
  for (const char* key : kKeys) {
    app.add_option(std::string("--") + key, given[key]);
  }
  std::string config_file;
  app.add_option("--config-file", config_file, "YAML file with the same keys as the flags");
  std::vector<std::string> bugs;
  app.add_option("--inject-bug", bugs, "plant a known bug (tests only)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    *help = app.help();
    return c;
  } catch (const CLI::CallForVersion&) {
    *help = "warden 0.1\n";
    return c;
  } catch (const CLI::ParseError& e) {
    return Status::InvalidArgument(e.what());
  }
  c.inject_bugs = bugs;
  if (config_file.empty()) {
    if (auto it = env.find("WARDEN_CONFIG_FILE"); it != env.end()) config_file = it->second;
  }
  if (!config_file.empty()) {
    try {
      YAML::Node root = YAML::LoadFile(config_file);
      if (!root.IsMap()) return Status::InvalidArgument(config_file + ": want a YAML mapping");
      for (const auto& kv : root) {
        const std::string key = kv.first.as<std::string>();
        std::string value;
        if (kv.second.IsSequence()) {
          std::vector<std::string> items;
          for (const auto& x : kv.second) items.push_back(x.as<std::string>());
          value = JoinList(items);
        } else {
          value = kv.second.as<std::string>();
        }
        if (Status s = ApplyValue(&c, key, value); !s.ok()) {
          return Status::InvalidArgument(config_file + ": " + s.message());
        }
      }
    } catch (const YAML::Exception& e) {
      return Status::InvalidArgument("cannot read --config-file " + config_file + ": " + e.what());
    }
  }
  for (const char* key : kKeys) {
    if (auto it = env.find(EnvName(key)); it != env.end()) {
      if (Status s = ApplyValue(&c, key, it->second); !s.ok()) {
        return Status::InvalidArgument(EnvName(key) + ": " + s.message());
      }
    }
  }
  for (const char* key : kKeys) {
    if (app.count(std::string("--") + key) > 0) {
      if (Status s = ApplyValue(&c, key, given[key]); !s.ok()) return s;
    }
  }
  if (Status s = FinishConfig(&c); !s.ok()) return s;
  return c;
}

}  // namespace warden::server
