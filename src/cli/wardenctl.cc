// wardenctl: the Warden command line client. See docs/client.md.
#include <google/protobuf/util/json_util.h>
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "src/cli/commands.h"
#include "src/client/election.h"
#include "src/client/lock.h"
#include "src/client/session.h"

namespace warden::cli {

using client::Clock;
using client::Code;
using client::Millis;

void Fail(const std::string& line) {
  std::fprintf(stderr, "wardenctl: %s\n", line.c_str());
  std::fflush(stderr);
}

namespace {
std::string g_endpoints;  // for the "no cluster member reachable" line
}  // namespace

int FailWith(const client::Status& s) {
  if (s.code() == Code::kUnavailable && s.message().find("reachable") == std::string::npos) {
    Fail("no cluster member reachable at " + g_endpoints + ": " + s.ToString());
  } else {
    Fail(s.ToString());
  }
  return ExitCodeFor(s.code());
}

// ---------------------------------------------------------------------------
// SignalThread

namespace {

constexpr int kStopSignal = SIGUSR2;  // internal: ends the signal thread

sigset_t HandledSignals() {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, kStopSignal}) sigaddset(&set, s);
  return set;
}

std::atomic<bool> g_signal_thread_stopping{false};

}  // namespace

SignalThread::SignalThread(std::function<void(int)> handler) : handler_(std::move(handler)) {
  const sigset_t set = HandledSignals();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  g_signal_thread_stopping = false;
  thread_ = std::thread([this, set] {
    for (int i = 0; i < 1000000; ++i) {
      int sig = 0;
      if (sigwait(&set, &sig) != 0) continue;
      if (sig == kStopSignal) {
        if (g_signal_thread_stopping.load()) return;
        continue;
      }
      int expected = 0;
      received_.compare_exchange_strong(expected, sig);
      handler_(sig);
    }
  });
}

SignalThread::~SignalThread() {
  g_signal_thread_stopping = true;
  pthread_kill(thread_.native_handle(), kStopSignal);
  thread_.join();
}

void SignalThread::UnblockInChild() {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  signal(SIGPIPE, SIG_DFL);
}

// ---------------------------------------------------------------------------
// lock inspect / list / watch

namespace {

std::string ModeName(warden::v1::LockMode m) {
  return m == warden::v1::SHARED ? "shared" : "exclusive";
}

std::string OwnerText(const warden::v1::Owner& o) {
  return std::to_string(o.session()) + "/" + (o.id().empty() ? "\"\"" : o.id());
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, opts);
  return out;
}

}  // namespace

int RunLockInspect(const Globals& g, const std::string& name) {
  if (name.empty()) {
    Fail("lock inspect: no lock name");
    return kExitUsage;
  }
  client::Client c(g.client);
  client::Result<warden::v1::InspectResponse> r = c.Inspect(name);
  if (!r.ok()) return FailWith(r.status());
  if (g.json) {
    std::printf("%s\n", ToJson(*r).c_str());
    return kExitOk;
  }
  std::printf("lock %s: %d holder(s), %d waiter(s)\n", name.c_str(), r->holders_size(),
              r->waiters_size());
  if (r->holders_size() > 0) {
    std::printf("%-8s %-10s %-12s %-6s %-12s %s\n", "HOLDER", "MODE", "TOKEN", "COUNT",
                "EXPIRES_IN", "OWNER(session/id)");
    for (const warden::v1::Holder& h : r->holders()) {
      const std::string exp =
          h.expires_in_ms() == 0 ? "-" : std::to_string(h.expires_in_ms()) + "ms";
      std::printf("%-8s %-10s %-12" PRIu64 " %-6u %-12s %s\n", "", ModeName(h.mode()).c_str(),
                  h.token(), h.hold_count(), exp.c_str(), OwnerText(h.owner()).c_str());
    }
  }
  if (r->waiters_size() > 0) {
    std::printf("%-8s %-10s %-12s %-6s %-12s %s\n", "POSITION", "MODE", "PRIORITY", "", "WAITED",
                "OWNER(session/id)");
    for (const warden::v1::Waiter& w : r->waiters()) {
      std::printf("%-8u %-10s %-12d %-6s %-12s %s\n", w.position(), ModeName(w.mode()).c_str(),
                  w.priority(), "", (std::to_string(w.waited_ms()) + "ms").c_str(),
                  OwnerText(w.owner()).c_str());
    }
  }
  return kExitOk;
}

int RunLockList(const Globals& g, const std::string& prefix) {
  client::Client c(g.client);
  client::Result<std::vector<std::string>> r = c.ListLocks(prefix);
  if (!r.ok()) return FailWith(r.status());
  if (g.json) {
    std::string out = "[";
    for (size_t i = 0; i < r->size(); ++i) {
      warden::v1::InspectRequest tmp;  // a string, JSON-escaped by protobuf
      tmp.set_path((*r)[i]);
      std::string j = ToJson(tmp);
      out += (i ? "," : "") + j.substr(j.find(':') + 1, j.rfind('}') - j.find(':') - 1);
    }
    std::printf("%s]\n", out.c_str());
    return kExitOk;
  }
  for (const std::string& p : *r) std::printf("%s\n", p.c_str());
  return kExitOk;
}

int RunLockWatch(const Globals& g, const std::string& prefix, int64_t count) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t seen = 0;
  bool stop = false;
  SignalThread signals([&](int) {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  });
  client::Client c(g.client);
  client::LockWatcher w(&c, prefix, true, [&](const warden::v1::LockEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    if (stop) return;
    if (g.json) {
      std::printf("%s\n", ToJson(e).c_str());
    } else {
      std::printf("%s %s owner=%s mode=%s token=%" PRIu64 " revision=%" PRId64 "\n",
                  warden::v1::LockEvent::Type_Name(e.type()).c_str(), e.path().c_str(),
                  OwnerText(e.owner()).c_str(), ModeName(e.mode()).c_str(), e.token(),
                  e.revision());
    }
    std::fflush(stdout);
    if (count > 0 && ++seen >= count) {
      stop = true;
      cv.notify_all();
    }
  });
  if (w.WaitReady(g.client.command_timeout)) {
    Fail("watching lock events under \"" + prefix + "\"");
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return stop; });
  }
  w.Stop();
  return kExitOk;  // an interrupt is the normal end of a watch
}

// ---------------------------------------------------------------------------
// session

int RunSessionGrant(const Globals& g, const std::string& ttl) {
  client::Result<int64_t> ms = ParseDurationMs(ttl);
  if (!ms.ok() || *ms <= 0) {
    Fail("session grant: want a positive TTL, not \"" + ttl + "\"");
    return kExitUsage;
  }
  client::Client c(g.client);
  client::Result<client::Client::LeaseInfo> r = c.LeaseGrant((*ms + 999) / 1000);
  if (!r.ok()) return FailWith(r.status());
  if (g.json) {
    std::printf("{\"id\":%" PRId64 ",\"ttl\":%" PRId64 "}\n", r->id, r->ttl_s);
  } else {
    std::printf("session %" PRId64 " granted with TTL %" PRId64 "s\n", r->id, r->ttl_s);
  }
  return kExitOk;
}

int RunSessionKeepAlive(const Globals& g, int64_t id) {
  std::atomic<bool> stop{false};
  SignalThread signals([&](int) { stop = true; });
  client::Client c(g.client);
  client::SessionOptions so;
  so.revoke_on_close = false;  // keepalive does not own the session
  client::Result<std::unique_ptr<client::Session>> s = client::Session::Resume(&c, id, so);
  if (!s.ok()) return FailWith(s.status());
  std::printf("session %" PRId64 " kept alive (TTL %" PRId64 "s) until interrupted\n", id,
              ((*s)->remaining_ms() + 999) / 1000);
  std::fflush(stdout);
  for (int i = 0; !stop.load() && (*s)->alive() && i < 1000000000; ++i) {
    std::this_thread::sleep_for(Millis(50));
  }
  if (!(*s)->alive() && !stop.load()) {
    Fail("session " + std::to_string(id) + " lost: " + (*s)->lost_reason());
    return kExitSessionLost;
  }
  return kExitOk;
}

int RunSessionRevoke(const Globals& g, int64_t id) {
  client::Client c(g.client);
  if (client::Status s = c.LeaseRevoke(id); !s.ok()) return FailWith(s);
  std::printf("session %" PRId64 " revoked\n", id);
  return kExitOk;
}

int RunSessionTtl(const Globals& g, int64_t id) {
  client::Client c(g.client);
  client::Result<client::Client::LeaseInfo> r = c.LeaseTimeToLive(id, true);
  if (!r.ok()) return FailWith(r.status());
  if (g.json) {
    std::printf("{\"id\":%" PRId64 ",\"ttl\":%" PRId64 ",\"granted_ttl\":%" PRId64 "}\n", id,
                r->ttl_s, r->granted_ttl_s);
  } else {
    std::printf("session %" PRId64 " granted with TTL %" PRId64 "s, remaining %" PRId64 "s\n", id,
                r->granted_ttl_s, r->ttl_s);
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------
// elect

int RunElect(const Globals& g, const std::string& name, const std::string& value) {
  client::CancelToken cancel;
  std::atomic<bool> stop{false};
  SignalThread signals([&](int) {
    stop = true;
    cancel.Cancel();
  });
  client::Client c(g.client);
  client::SessionOptions so;
  so.ttl_s = 10;
  client::Result<std::unique_ptr<client::Session>> s = client::Session::Create(&c, so);
  if (!s.ok()) return FailWith(s.status());
  client::Session& session = **s;
  client::Election e(&session, name);
  if (client::Status st = e.Campaign(value, &cancel); !st.ok()) {
    if (st.code() == Code::kCancelled && signals.received() != 0) return 128 + signals.received();
    return FailWith(st);
  }
  std::printf("%s\n%s\n", e.key().key().c_str(), value.c_str());
  std::fflush(stdout);
  for (int i = 0; !stop.load() && session.alive() && i < 1000000000; ++i) {
    std::this_thread::sleep_for(Millis(50));
  }
  if (!stop.load()) {
    Fail("election " + name + ": session lost (" + session.lost_reason() +
         "); no longer the leader");
    return kExitSessionLost;
  }
  if (client::Status st = e.Resign(); !st.ok()) Fail("warning: " + st.ToString());
  (void)session.Close();
  return kExitOk;
}

int RunElectListen(const Globals& g, const std::string& name) {
  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  SignalThread signals([&](int) {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
    cv.notify_all();
  });
  client::Client c(g.client);
  auto obs = client::Election::Observe(&c, name, [&](const mvccpb::KeyValue& kv) {
    std::lock_guard<std::mutex> lock(mu);
    std::printf("%s\n%s\n", kv.key().c_str(), kv.value().c_str());
    std::fflush(stdout);
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return stop; });
  lock.unlock();
  obs->Stop();
  return kExitOk;
}

// ---------------------------------------------------------------------------
// put / get

int RunPut(const Globals& g, const std::string& key, const std::string& value) {
  client::Client c(g.client);
  if (client::Status s = c.Put(key, value); !s.ok()) return FailWith(s);
  std::printf("OK\n");
  return kExitOk;
}

int RunGet(const Globals& g, const std::string& key) {
  client::Client c(g.client);
  client::Result<std::optional<std::string>> r = c.Get(key);
  if (!r.ok()) return FailWith(r.status());
  if (r->has_value()) std::printf("%s\n%s\n", key.c_str(), (*r)->c_str());
  return kExitOk;
}

}  // namespace warden::cli

// ---------------------------------------------------------------------------
// main

int main(int argc, char** argv) {
  using namespace warden::cli;
  // Everything after the first "--" is the command to run under a lock.
  std::vector<std::string> command;
  int cli_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--") {
      command.assign(argv + i + 1, argv + argc);
      cli_argc = i;
      break;
    }
  }

  CLI::App app{"wardenctl: the Warden command line client (docs/client.md)"};
  app.fallthrough();
  app.require_subcommand(1);
  std::string endpoints = "127.0.0.1:2379";
  std::string dial_timeout = "2s";
  std::string command_timeout = "5s";
  std::string write_out = "table";
  app.add_option("--endpoints", endpoints, "comma-separated host:port list")
      ->envname("WARDEN_ENDPOINTS")
      ->capture_default_str();
  app.add_option("--dial-timeout", dial_timeout, "to connect to one endpoint")
      ->capture_default_str();
  app.add_option("--command-timeout", command_timeout, "of one request, retries included")
      ->capture_default_str();
  app.add_option("-w,--write-out", write_out, "table or json")->capture_default_str();

  LockArgs la;
  std::vector<std::string> lock_words;
  CLI::App* lock =
      app.add_subcommand("lock", "hold lock NAME while CMD runs (lock NAME -- CMD...)");
  lock->add_option("name", la.name, "the lock path");
  lock->add_option("cmd", lock_words, "the command (better after --)");
  lock->add_flag("--shared", la.shared, "shared (read) mode instead of exclusive");
  lock->add_option("--ttl", la.ttl, "hold TTL (e.g. 30s); the command is stopped when it runs out");
  lock->add_option("--wait", la.wait, "how long to wait (0 = try-lock); default: no limit");
  lock->add_option("--priority", la.priority, "queue priority (higher first; aging 1 level/s)");
  lock->add_option("--session-ttl", la.session_ttl, "TTL of the session (lease)")
      ->capture_default_str();
  lock->add_flag("--kill-on-loss,!--no-kill-on-loss", la.kill_on_loss,
                 "SIGTERM the command when the session is lost (default on)");
  lock->add_option("--value", la.value, "a value stored with the hold");
  std::string inspect_name, list_prefix, watch_prefix;
  int64_t watch_count = 0;
  CLI::App* inspect = lock->add_subcommand("inspect", "holders and waiters of a lock");
  inspect->add_option("name", inspect_name)->required();
  CLI::App* list = lock->add_subcommand("list", "lock paths (with holders or waiters)");
  list->add_option("prefix", list_prefix);
  CLI::App* watch = lock->add_subcommand("watch", "print lock events under a prefix");
  watch->add_option("prefix", watch_prefix);
  watch->add_option("--count", watch_count, "stop after N events");

  CLI::App* session = app.add_subcommand("session", "sessions (etcd leases)");
  session->require_subcommand(1);
  std::string grant_ttl;
  int64_t session_id = 0;
  CLI::App* grant = session->add_subcommand("grant", "grant a session: grant TTL");
  grant->add_option("ttl", grant_ttl)->required();
  CLI::App* keepalive = session->add_subcommand("keepalive", "keep a session alive until ^C");
  keepalive->add_option("id", session_id)->required();
  CLI::App* revoke = session->add_subcommand("revoke", "revoke a session");
  revoke->add_option("id", session_id)->required();
  CLI::App* ttl = session->add_subcommand("ttl", "remaining TTL of a session");
  ttl->add_option("id", session_id)->required();

  std::string elect_name, elect_value;
  bool elect_listen = false;
  CLI::App* elect = app.add_subcommand("elect", "campaign (elect NAME VALUE) or observe (-l)");
  elect->add_option("name", elect_name)->required();
  elect->add_option("value", elect_value);
  elect->add_flag("-l,--listen", elect_listen, "observe the leader instead of campaigning");

  std::string kv_key, kv_value;
  CLI::App* put = app.add_subcommand("put", "put KEY VALUE");
  put->add_option("key", kv_key)->required();
  put->add_option("value", kv_value)->required();
  CLI::App* get = app.add_subcommand("get", "get KEY");
  get->add_option("key", kv_key)->required();

  try {
    app.parse(cli_argc, argv);
  } catch (const CLI::CallForHelp&) {
    std::printf("%s", app.help().c_str());
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      std::printf("%s", app.help().c_str());
      return kExitOk;
    }
    Fail(e.what());
    return kExitUsage;
  }

  Globals g;
  g.client.endpoints = SplitList(endpoints);
  g_endpoints = endpoints;
  if (g.client.endpoints.empty()) {
    Fail("--endpoints is empty");
    return kExitUsage;
  }
  for (auto [flag, text, out] :
       {std::tuple{"--dial-timeout", &dial_timeout, &g.client.dial_timeout},
        std::tuple{"--command-timeout", &command_timeout, &g.client.command_timeout}}) {
    warden::client::Result<int64_t> ms = ParseDurationMs(*text);
    if (!ms.ok() || *ms <= 0) {
      Fail(std::string(flag) + ": want a positive duration, not \"" + *text + "\"");
      return kExitUsage;
    }
    *out = warden::client::Millis(*ms);
  }
  if (write_out != "table" && write_out != "json" && write_out != "simple") {
    Fail("--write-out: want table or json, not \"" + write_out + "\"");
    return kExitUsage;
  }
  g.json = write_out == "json";

  if (lock->parsed()) {
    if (inspect->parsed()) return RunLockInspect(g, inspect_name);
    if (list->parsed()) return RunLockList(g, list_prefix);
    if (watch->parsed()) return RunLockWatch(g, watch_prefix, watch_count);
    la.command = command;
    if (la.command.empty())
      la.command = lock_words;
    else if (!lock_words.empty()) {
      Fail("lock: unexpected arguments before --: " + lock_words.front());
      return kExitUsage;
    }
    return RunLock(g, la);
  }
  if (session->parsed()) {
    if (grant->parsed()) return RunSessionGrant(g, grant_ttl);
    if (keepalive->parsed()) return RunSessionKeepAlive(g, session_id);
    if (revoke->parsed()) return RunSessionRevoke(g, session_id);
    if (ttl->parsed()) return RunSessionTtl(g, session_id);
  }
  if (elect->parsed()) {
    if (elect_listen) return RunElectListen(g, elect_name);
    if (elect_value.empty()) {
      Fail("elect: want NAME VALUE (or -l NAME to observe)");
      return kExitUsage;
    }
    return RunElect(g, elect_name, elect_value);
  }
  if (put->parsed()) return RunPut(g, kv_key, kv_value);
  if (get->parsed()) return RunGet(g, kv_key);
  Fail("no command (see wardenctl --help)");
  return kExitUsage;
}
