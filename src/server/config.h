// The server's configuration: etcd's flag names (so warden drops in for etcd),
// WARDEN_* environment variables (WARDEN_DATA_DIR for --data-dir) and a YAML
// --config-file with the same keys. Precedence: flags, then environment, then
// the file, then defaults. With nothing set, one member on 127.0.0.1:2379/2380
// with data in ./default.warden.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "src/base/ids.h"
#include "src/base/status.h"

namespace warden::server {

struct ServerConfig {
  std::string name = "default";
  std::string data_dir;  // default: <name>.warden
  std::vector<std::string> listen_client_urls{"http://127.0.0.1:2379"};
  std::vector<std::string> advertise_client_urls;  // default: listen_client_urls
  std::vector<std::string> listen_peer_urls{"http://127.0.0.1:2380"};
  std::vector<std::string> initial_advertise_peer_urls;  // default: listen_peer_urls
  std::string initial_cluster;  // name=peer-url,...; default: this member alone
  std::string initial_cluster_state = "new";
  std::string initial_cluster_token = "warden-cluster";
  int64_t heartbeat_interval_ms = 100;
  int64_t election_timeout_ms = 1000;
  uint64_t snapshot_count = 100000;  // etcd 3.4's default
  // Entries kept in the log behind a snapshot, so that a slow follower
  // catches up from the log rather than a snapshot (etcd 3.5's flag name).
  uint64_t snapshot_catchup_entries = 5000;
  std::string auto_compaction_retention = "0";  // hours, or a duration like "30m"
  std::vector<std::string> listen_metrics_urls;
  uint64_t max_request_bytes = 1536 * 1024;
  uint64_t max_txn_ops = 128;
  // etcd's --experimental-watch-progress-notify-interval (default 10m).
  std::string watch_progress_notify_interval = "10m";
  // Leader lease reads: only when clocks are trusted to run at the same rate.
  bool lease_reads = false;
  // Planted bugs for the chaos harness (never in production).
  std::vector<std::string> inject_bugs;

  // Derived by Finish().
  struct Member {
    std::string name;
    std::vector<std::string> peer_urls;
    NodeId id;
  };
  std::vector<Member> members;
  NodeId self_id;
  uint64_t cluster_id = 0;
};

// Parses argv and the environment. kInvalidArgument carries a message for
// the user (the caller prints it and exits with status 2). `help` is set when
// --help or --version was asked for, with the text to print.
Result<ServerConfig> ParseServerConfig(int argc, char** argv,
                                       const std::map<std::string, std::string>& env,
                                       std::string* help);

// Fills in defaults and derived fields, and checks consistency.
Status FinishConfig(ServerConfig* config);

// "http://127.0.0.1:2379" -> "127.0.0.1:2379" (what gRPC listens on).
Result<std::string> UrlToAddress(const std::string& url);

// A member's id, as etcd derives it: from its peer URLs and the cluster token.
NodeId MemberIdFor(const std::vector<std::string>& peer_urls, const std::string& token);

}  // namespace warden::server
