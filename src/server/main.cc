// warden: one member of a Warden cluster. See README.md and docs/server.md.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "absl/synchronization/mutex.h"
#include "src/server/auto_compactor.h"
#include "src/server/config.h"
#include "src/server/etcd_services.h"
#include "src/server/metrics.h"
#include "src/server/node_host.h"
#include "src/server/peer.h"
#include "src/server/watch.h"

extern char** environ;

namespace warden::server {
namespace {

std::mutex g_log_mu;
std::string g_name = "warden";

void Log(const std::string& line) {
  std::lock_guard<std::mutex> lock(g_log_mu);
  std::fprintf(stderr, "[%s] %s\n", g_name.c_str(), line.c_str());
  std::fflush(stderr);
}

[[noreturn]] void Fatal(const std::string& line) {
  Log("fatal: " + line);
  std::exit(1);
}

volatile std::sig_atomic_t g_stop = 0;
void OnSignal(int) { g_stop = 1; }

int Run(int argc, char** argv) {
  // Debian builds Abseil without NDEBUG, which turns on lock-order cycle
  // detection in every absl::Mutex (gRPC's locks): a graph update on each
  // nested acquire: about 2% of a member's CPU under a put load (perf; see
  // bench/RESULTS.md).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const size_t eq = kv.find('=');
    if (eq != std::string::npos && kv.rfind("WARDEN_", 0) == 0)
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  std::string help;
  Result<ServerConfig> parsed = ParseServerConfig(argc, argv, env, &help);
  if (!help.empty()) {
    std::cout << help;
    return 0;
  }
  if (!parsed.ok()) {
    std::fprintf(stderr, "warden: %s\nRun 'warden --help' for the flags.\n",
                 parsed.status().message().c_str());
    return 2;
  }
  ServerConfig config = std::move(parsed).value();
  Result<int64_t> retention_ms = ParseDurationMs(config.auto_compaction_retention);
  Result<int64_t> progress_ms = ParseDurationMs(config.watch_progress_notify_interval);
  for (const Result<int64_t>* r : {&retention_ms, &progress_ms}) {
    if (!r->ok()) {
      std::fprintf(stderr, "warden: %s\n", r->status().message().c_str());
      return 2;
    }
  }
  g_name = config.name;

  bool read_without_quorum = false;
  bool skip_sync = false;
  for (const std::string& bug : config.inject_bugs) {
    if (bug == "read-without-quorum") {
      read_without_quorum = true;
    } else if (bug == "ack-before-fsync") {
      skip_sync = true;
    } else {
      std::fprintf(stderr,
                   "warden: unknown --inject-bug %s (read-without-quorum, ack-before-fsync)\n",
                   bug.c_str());
      return 2;
    }
    Log("PLANTED BUG " + bug + ": for fault-injection tests only");
  }

  storage::LogStoreOptions store_options;
  Result<std::unique_ptr<storage::LogStore>> store =
      storage::LogStore::Open(storage::Env::Default(), config.data_dir, store_options);
  if (!store.ok())
    Fatal("cannot open the data directory " + config.data_dir + ": " + store.status().message());
  for (const std::string& note : (*store)->recovery_notes()) Log("recovery: " + note);

  const bool fresh = (*store)->LastIndex() == Index(0) && (*store)->hard_state().IsEmpty();
  if (fresh && config.initial_cluster_state == "new") {
    std::vector<NodeId> voters;
    for (const auto& m : config.members) voters.push_back(m.id);
    Status s = (*store)->Save(raft::BootstrapSnapshot(voters), {}, std::nullopt, true);
    if (!s.ok()) Fatal("cannot bootstrap " + config.data_dir + ": " + s.message());
    Log("bootstrapped a new cluster of " + std::to_string(voters.size()) + " member(s) in " +
        config.data_dir);
  } else if (!fresh) {
    Log("resuming from " + config.data_dir);
  }

  node::NodeConfig nc;
  nc.raft.id = config.self_id;
  nc.raft.heartbeat_ticks = 1;
  nc.raft.election_ticks =
      static_cast<int>(config.election_timeout_ms / config.heartbeat_interval_ms);
  nc.raft.seed = config.self_id.value() ^ static_cast<uint64_t>(SteadyClock().NowMs());
  nc.raft.lease_reads = config.lease_reads;
  nc.snapshot_count = config.snapshot_count;
  nc.kv_limits.max_txn_ops = config.max_txn_ops;
  nc.kv_limits.max_request_bytes = config.max_request_bytes;
  nc.raft.bugs.read_without_quorum = read_without_quorum;
  NodeHost* host_ptr = nullptr;
  PeerDirectory directory;
  PeerTransport transport(config.self_id, config.name, config.cluster_id,
                          config.advertise_client_urls, &directory,
                          [&host_ptr](NodeId peer, bool snapshot, bool ok) {
                            if (host_ptr == nullptr) return;
                            host_ptr->Post([peer, snapshot, ok](node::Node& n) {
                              if (snapshot) {
                                n.ReportSnapshot(peer, ok);
                              } else if (!ok) {
                                n.ReportUnreachable(peer);
                              }
                            });
                          });
  for (const auto& m : config.members) {
    if (m.id == config.self_id) continue;
    Result<std::string> address = UrlToAddress(m.peer_urls.front());
    transport.AddPeer(m.id, *address);
  }
  NodeHost host(nc, std::move(store).value(), &transport, config.heartbeat_interval_ms);
  host.durable_log()->set_skip_sync(skip_sync);
  host_ptr = &host;

  PeerService peer_service(
      config.cluster_id, &directory,
      [&host](raft::Message m) { host.Post([m = std::move(m)](node::Node& n) { n.Step(m); }); },
      [&host](int64_t id, std::function<void(const Result<int64_t>&)> done) {
        host.Post([id, done = std::move(done)](node::Node& n) { n.KeepAlive(id, done); });
      });
  grpc::ServerBuilder peer_builder;
  for (const std::string& url : config.listen_peer_urls) {
    peer_builder.AddListeningPort(*UrlToAddress(url), grpc::InsecureServerCredentials());
  }
  peer_builder.SetMaxReceiveMessageSize(64 << 20);
  peer_builder.RegisterService(&peer_service);
  std::unique_ptr<grpc::Server> peer_server = peer_builder.BuildAndStart();
  if (!peer_server) Fatal("cannot listen on the peer URLs (is the port taken?)");

  Metrics metrics;
  host.durable_log()->set_persist_observer(
      [&metrics](double s) { metrics.ObserveFsyncSeconds(s); });
  ServerContext ctx(&host, &config, &directory, &metrics);
  KvService kv(&ctx);
  MaintenanceService maintenance(&ctx);
  LeaseService lease(&ctx);
  WatchHub watch_hub(&ctx);
  WatchService watch(&ctx, &watch_hub);
  ClusterService cluster(&ctx);
  grpc::ServerBuilder client_builder;
  for (const std::string& url : config.listen_client_urls) {
    client_builder.AddListeningPort(*UrlToAddress(url), grpc::InsecureServerCredentials());
  }
  client_builder.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes + (64 << 10)));
  client_builder.RegisterService(&kv);
  client_builder.RegisterService(&maintenance);
  client_builder.RegisterService(&lease);
  client_builder.RegisterService(&watch);
  client_builder.RegisterService(&cluster);
  std::unique_ptr<grpc::Server> client_server = client_builder.BuildAndStart();
  if (!client_server) Fatal("cannot listen on the client URLs (is the port taken?)");

  if (Status s = host.Start(); !s.ok()) Fatal("cannot start the node: " + s.message());
  host.Post([&watch_hub](node::Node& n) {
    n.set_event_sink([&watch_hub, &n](const std::vector<state::Event>& events, int64_t revision) {
      watch_hub.OnEvents(n, events, revision);
    });
  });
  watch_hub.StartProgressNotify(&host, *progress_ms);
  AutoCompactor compactor(&host, *retention_ms);
  compactor.Start();
  std::vector<std::string> metrics_addresses;
  for (const std::string& url : config.listen_metrics_urls)
    metrics_addresses.push_back(*UrlToAddress(url));
  if (Status s = metrics.Serve(metrics_addresses, &host, &watch_hub); !s.ok()) Fatal(s.message());
  Log("serving clients on " + config.listen_client_urls.front() + ", peers on " +
      config.listen_peer_urls.front() + " (member " + std::to_string(config.self_id.value()) + ")");

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  while (!g_stop) {
    struct timespec ts {
      0, 100 * 1000 * 1000
    };
    nanosleep(&ts, nullptr);
  }
  Log("shutting down");
  metrics.Stop();
  client_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  peer_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  host.Stop();
  transport.Stop();
  return 0;
}

}  // namespace
}  // namespace warden::server

int main(int argc, char** argv) { return warden::server::Run(argc, argv); }
