#include "src/server/metrics.h"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <future>

#include "src/server/node_host.h"
#include "src/server/watch.h"

namespace warden::server {

class MetricsHandler final : public CivetHandler {
 public:
  MetricsHandler(Metrics* m, bool health) : m_(m), health_(health) {}
  bool handleGet(CivetServer*, struct mg_connection* conn) override {
    int code = 200;
    std::string body, type = "text/plain; version=0.0.4";
    if (health_) {
      std::tie(code, body) = m_->Health();
      type = "application/json";
    } else {
      body = m_->Scrape();
    }
    mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n\r\n", code,
              code == 200 ? "OK" : "Service Unavailable", type.c_str(), body.size());
    mg_write(conn, body.data(), body.size());
    return true;
  }

 private:
  Metrics* m_;
  bool health_;
};

Metrics::Metrics() : registry_(std::make_shared<prometheus::Registry>()) {
  using prometheus::BuildCounter;
  using prometheus::BuildGauge;
  using prometheus::BuildHistogram;
  auto gauge = [&](const char* name, const char* help) {
    return &BuildGauge().Name(name).Help(help).Register(*registry_).Add({});
  };
  term_ = gauge("warden_raft_term", "The current Raft term of this member.");
  commit_ = gauge("warden_raft_commit_index", "The highest log index known committed.");
  applied_ = gauge("warden_raft_applied_index", "The highest log index applied.");
  is_leader_ = gauge("warden_is_leader", "1 if this member is the leader.");
  leader_changes_ = &BuildCounter()
                         .Name("warden_leader_changes_total")
                         .Help("Leader changes seen by this member.")
                         .Register(*registry_)
                         .Add({});
  watchers_ = gauge("warden_watchers", "Watchers registered on this member.");
  leases_ = gauge("warden_leases", "Leases in the replicated state.");
  keys_ = gauge("warden_keys", "Keys in the key space.");
  revision_ = gauge("warden_revision", "The key space revision.");
  const prometheus::Histogram::BucketBoundaries buckets = {
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
  proposal_ = &BuildHistogram()
                   .Name("warden_proposal_duration_seconds")
                   .Help("From a write's arrival to its apply result, on the leader.")
                   .Register(*registry_)
                   .Add({}, buckets);
  fsync_ = &BuildHistogram()
                .Name("warden_wal_fsync_duration_seconds")
                .Help("Persisting one Ready, fdatasync included.")
                .Register(*registry_)
                .Add({}, buckets);
}

Metrics::~Metrics() { Stop(); }

Status Metrics::Serve(const std::vector<std::string>& addresses, NodeHost* host, WatchHub* hub) {
  host_ = host;
  hub_ = hub;
  if (addresses.empty()) return Status::Ok();
  std::string ports;
  for (const std::string& a : addresses) ports += (ports.empty() ? "" : ",") + a;
  std::vector<std::string> options = {"listening_ports", ports, "num_threads", "2"};
  try {
    http_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    return Status::IoError(std::string("cannot serve metrics on ") + ports + ": " + e.what());
  }
  handlers_.push_back(std::make_unique<MetricsHandler>(this, false));
  http_->addHandler("/metrics", handlers_.back().get());
  handlers_.push_back(std::make_unique<MetricsHandler>(this, true));
  http_->addHandler("/health", handlers_.back().get());
  return Status::Ok();
}

void Metrics::Stop() {
  if (http_) http_->close();
  http_.reset();
}

std::string Metrics::Scrape() {
  if (host_ != nullptr) {
    auto done = std::make_shared<std::promise<void>>();
    std::future<void> ready = done->get_future();
    host_->Post([this, done](node::Node& n) {
      const raft::NodeStatus s = n.RaftStatus();
      term_->Set(static_cast<double>(s.term.value()));
      commit_->Set(static_cast<double>(s.commit.value()));
      applied_->Set(static_cast<double>(n.state().applied_index().value()));
      is_leader_->Set(n.IsLeader() ? 1 : 0);
      if (s.leader.value() != last_leader_ && s.leader != kNoNode) {
        if (last_leader_ != 0) leader_changes_->Increment();
        last_leader_ = s.leader.value();
      }
      watchers_->Set(static_cast<double>(hub_ != nullptr ? hub_->watcher_count() : 0));
      leases_->Set(static_cast<double>(n.state().leases().all().size()));
      keys_->Set(static_cast<double>(n.state().kv().key_count()));
      revision_->Set(static_cast<double>(n.state().kv().current_revision()));
      done->set_value();
    });
    ready.wait_for(std::chrono::seconds(1));
  }
  return prometheus::TextSerializer().Serialize(registry_->Collect());
}

std::pair<int, std::string> Metrics::Health() {
  auto answer = std::make_shared<std::promise<std::pair<int, std::string>>>();
  std::future<std::pair<int, std::string>> result = answer->get_future();
  host_->Post([answer](node::Node& n) {
    if (!n.disk_failure().ok()) {
      answer->set_value(
          {503, R"({"health":"false","reason":"disk: )" + n.disk_failure().message() + "\"}"});
    } else if (n.leader() == kNoNode) {
      answer->set_value({503, R"({"health":"false","reason":"no leader"})"});
    } else {
      answer->set_value({200, R"({"health":"true"})"});
    }
  });
  if (result.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
    return {503, R"({"health":"false","reason":"the node loop does not answer"})"};
  }
  return result.get();
}

}  // namespace warden::server
