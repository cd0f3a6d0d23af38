// warden: one member of a Warden cluster. See README.md and docs/server.md.
#include <grpcpp/grpcpp.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "src/server/auto_compactor.h"
#include "src/server/config.h"
#include "src/server/etcd_services.h"
#include "src/server/locks.h"
#include "src/server/metrics.h"
#include "src/server/node_host.h"
#include "src/server/peer.h"
#include "src/server/watch.h"
#include "src/storage/env.h"
#include "src/storage/write_behind_env.h"

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

struct JoinAnswer {
  NodeId member_id;
  uint64_t cluster_id = 0;
  std::map<NodeId, std::vector<std::string>> members;
};

// --initial-cluster-state existing: asks the other members listed in
// --initial-cluster (whoever answers first) for this member's id and the
// cluster id. Refused when no member has our peer URLs (MemberAdd first).
Result<JoinAnswer> JoinCluster(const ServerConfig& config) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  std::string last_error = "no other member is listed in --initial-cluster";
  for (int round = 0; std::chrono::steady_clock::now() < deadline && round < 600; ++round) {
    for (const ServerConfig::Member& m : config.members) {
      if (m.id == config.self_id || m.peer_urls.empty()) continue;
      Result<std::string> address = UrlToAddress(m.peer_urls.front());
      if (!address.ok()) continue;
      auto stub =
          raftpb::Peer::NewStub(grpc::CreateChannel(*address, grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      raftpb::JoinRequest req;
      for (const std::string& u : config.initial_advertise_peer_urls) req.add_peer_urls(u);
      raftpb::JoinResponse resp;
      grpc::Status st = stub->Join(&ctx, req, &resp);
      if (st.ok()) {
        JoinAnswer a;
        a.member_id = NodeId(resp.member_id());
        a.cluster_id = resp.cluster_id();
        for (const auto& pm : resp.members()) {
          a.members[NodeId(pm.id())] = {pm.peer_urls().begin(), pm.peer_urls().end()};
        }
        return a;
      }
      if (st.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        return Status::FailedPrecondition("cannot join the cluster: " + st.error_message());
      }
      last_error = m.name + " (" + *address + "): " + st.error_message();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Unavailable("cannot join the cluster: no member answered within 60 s; last: " +
                             last_error);
}

// The member and cluster ids a data directory belongs to, in
// <data-dir>/member ("member <id> cluster <id>"). Written on first start,
// read on every later one (a joined member's ids are not derivable from its
// flags).
Status KeepIdentity(const std::string& dir, ServerConfig* config) {
  storage::Env* env = storage::Env::Default();
  const std::string path = dir + "/member";
  if (env->FileExists(path)) {
    Result<std::string> text = env->ReadFile(path);
    if (!text.ok()) return text.status();
    unsigned long long member = 0, cluster = 0;
    if (std::sscanf(text->c_str(), "member %llu cluster %llu", &member, &cluster) != 2 ||
        member == 0) {
      return Status::Corruption(path + " is damaged: expected \"member <id> cluster <id>\"");
    }
    config->self_id = NodeId(member);
    config->cluster_id = cluster;
    return Status::Ok();
  }
  const std::string tmp = path + ".tmp";
  if (env->FileExists(tmp)) (void)env->RemoveFile(tmp);  // from a start that crashed
  Result<std::unique_ptr<storage::WritableFile>> f = env->OpenForAppend(tmp, 0, 0);
  if (!f.ok()) return f.status();
  const std::string text = "member " + std::to_string(config->self_id.value()) + " cluster " +
                           std::to_string(config->cluster_id) + "\n";
  if (Status st = (*f)->Append(text); !st.ok()) return st;
  if (Status st = (*f)->Sync(); !st.ok()) return st;
  if (Status st = env->RenameFile(tmp, path); !st.ok()) return st;
  return env->SyncDir(dir);
}

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
  store_options.keep_entries_after_snapshot = config.snapshot_catchup_entries;
  // ack-before-fsync keeps unsynced bytes in the process (write_behind_env.h)
  // so that a kill -9 loses them as a power loss would.
  storage::WriteBehindEnv write_behind(storage::Env::Default());
  storage::Env* store_env = skip_sync ? &write_behind : storage::Env::Default();
  Result<std::unique_ptr<storage::LogStore>> store =
      storage::LogStore::Open(store_env, config.data_dir, store_options);
  if (!store.ok())
    Fatal("cannot open the data directory " + config.data_dir + ": " + store.status().message());
  for (const std::string& note : (*store)->recovery_notes()) Log("recovery: " + note);

  const bool fresh = (*store)->LastIndex() == Index(0) && (*store)->hard_state().IsEmpty();
  if (fresh && config.initial_cluster_state == "new") {
    std::vector<NodeId> voters;
    std::vector<state::MemberRecord> records;
    for (const auto& m : config.members) {
      voters.push_back(m.id);
      records.push_back({m.id.value(), m.name, m.peer_urls});
    }
    raft::Snapshot boot = raft::BootstrapSnapshot(voters);
    boot.data = state::StateMachine::BootstrapImage(boot.metadata.index, records);
    Status s = (*store)->Save(boot, {}, std::nullopt, true);
    if (!s.ok()) Fatal("cannot bootstrap " + config.data_dir + ": " + s.message());
    Log("bootstrapped a new cluster of " + std::to_string(voters.size()) + " member(s) in " +
        config.data_dir);
  } else if (fresh) {
    // Joining a running cluster: ask its members who we are.
    Result<JoinAnswer> joined = JoinCluster(config);
    if (!joined.ok()) Fatal(joined.status().message());
    config.self_id = joined->member_id;
    config.cluster_id = joined->cluster_id;
    std::vector<ServerConfig::Member> members;
    for (const auto& [id, urls] : joined->members) {
      ServerConfig::Member m;
      m.id = id;
      m.peer_urls = urls;
      for (const auto& known : config.members) {
        if (known.id == id) m.name = known.name;
      }
      if (id == config.self_id) m.name = config.name;
      members.push_back(std::move(m));
    }
    config.members = std::move(members);
    Log("joining cluster " + std::to_string(config.cluster_id) + " as member " +
        std::to_string(config.self_id.value()));
  } else {
    Log("resuming from " + config.data_dir);
  }
  // The identity this data directory belongs to, written once: a joined
  // member's ids come from the cluster, not from its flags.
  if (Status s = KeepIdentity(config.data_dir, &config); !s.ok()) Fatal(s.message());

  node::NodeConfig nc;
  nc.raft.id = config.self_id;
  nc.raft.heartbeat_ticks = 1;
  nc.raft.election_ticks =
      static_cast<int>(config.election_timeout_ms / config.heartbeat_interval_ms);
  // Random per run: it also seeds the proposal ids (node::Node::Start), which
  // must differ between members started in the same millisecond.
  nc.raft.seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}() ^
                 config.self_id.value();
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
  // Peers follow the membership: Raft's configuration with addresses from
  // the replicated member table, re-read whenever either changes.
  raft::ConfState synced_conf;
  uint64_t synced_version = UINT64_MAX;
  bool removal_logged = false;
  WatchHub* watch_hub_ptr = nullptr;  // set before the node loop starts
  bool disk_failure_logged = false;
  auto sync_members = [&](node::Node& n) {
    if (!n.disk_failure().ok() && !disk_failure_logged) {
      disk_failure_logged = true;
      Log("disk failure: " + n.disk_failure().ToString() +
          "; this member no longer takes part in Raft and refuses writes (NOSPACE alarm), "
          "serializable reads keep working; restart it once the disk is fixed");
      // Its watchers would wait for events that never come: end them so
      // their clients reconnect to another member.
      if (watch_hub_ptr != nullptr) {
        watch_hub_ptr->FailAll(
            {grpc::StatusCode::UNAVAILABLE, "etcdserver: member stopped applying (disk failure)"});
      }
    }
    if (n.removed() && !removal_logged) {
      removal_logged = true;
      Log("this member was removed from the cluster; shutting down");
      g_stop = 1;
    }
    if (n.conf_state() == synced_conf && n.state().members().version() == synced_version) return;
    synced_conf = n.conf_state();
    synced_version = n.state().members().version();
    std::map<NodeId, std::vector<std::string>> urls;
    std::map<NodeId, std::string> addresses;
    for (const MemberView& v : CurrentMembers(config, n)) {
      urls[v.id] = v.peer_urls;
      if (v.peer_urls.empty() || v.id == config.self_id) continue;
      if (Result<std::string> a = UrlToAddress(v.peer_urls.front()); a.ok()) addresses[v.id] = *a;
    }
    directory.SetMembers(std::move(urls));
    transport.SetPeers(addresses);
  };
  NodeHost host(nc, std::move(store).value(), &transport, config.heartbeat_interval_ms);
  host.durable_log()->set_skip_sync(skip_sync);
  host.set_after_batch(sync_members);
  host_ptr = &host;

  PeerService peer_service(
      config.cluster_id, &directory,
      [&host](std::vector<raft::Message> batch) {
        host.RunOrPost([batch = std::move(batch)](node::Node& n) {
          for (const raft::Message& m : batch) n.Step(m);
        });
      },
      [&host](int64_t id, std::function<void(const Result<int64_t>&)> done) {
        host.Post([id, done = std::move(done)](node::Node& n) { n.KeepAlive(id, done); });
      },
      // A killed leader's streams end at once: its followers need not wait
      // out its lease to elect the next (raft::Raft::ReportUnreachable).
      [&host](NodeId peer) { host.Post([peer](node::Node& n) { n.ReportUnreachable(peer); }); });
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
  watch_hub_ptr = &watch_hub;
  WatchService watch(&ctx, &watch_hub);
  ClusterService cluster(&ctx);
  LockHub lock_hub;
  LocksService locks(&ctx, &lock_hub);
  V3LockService v3lock(&ctx, &lock_hub);
  V3ElectionService v3election(&ctx, &lock_hub);
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
  client_builder.RegisterService(&locks);
  client_builder.RegisterService(&v3lock);
  client_builder.RegisterService(&v3election);
  std::unique_ptr<grpc::Server> client_server = client_builder.BuildAndStart();
  if (!client_server) Fatal("cannot listen on the client URLs (is the port taken?)");

  // The first task of the loop: no entry is applied before the sinks are in
  // place.
  host.Post([&watch_hub, &lock_hub](node::Node& n) {
    n.set_event_sink(
        [&watch_hub, &lock_hub, &n](const std::vector<state::Event>& events, int64_t revision) {
          watch_hub.OnEvents(n, events, revision);
          lock_hub.OnKvEvents(n, events);
        });
    n.set_lock_sink([&lock_hub, &n](const state::ApplyResult& r) { lock_hub.OnApply(n, r); });
    n.set_snapshot_observer([](const raft::SnapshotMetadata& md) {
      Log("installed the leader's snapshot of index " + std::to_string(md.index.value()) +
          " (term " + std::to_string(md.term.value()) + ")");
    });
  });
  if (Status s = host.Start(); !s.ok()) Fatal("cannot start the node: " + s.message());
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
