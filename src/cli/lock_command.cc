// wardenctl lock NAME [flags] -- CMD...: acquire, run CMD, release.
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "src/cli/commands.h"
#include "src/client/lock.h"
#include "src/client/session.h"

extern char** environ;

namespace warden::cli {

namespace {

using client::Clock;
using client::Code;
using client::Millis;

std::string DefaultOwner() {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0) std::strcpy(host, "host");
  return std::string("wardenctl:") + host + ":" + std::to_string(getpid());
}

// Forks and execs `command` with `env`. The child dies with SIGTERM when
// wardenctl dies (kill -9 included): its lock ends with the session soon
// after, so the command must not go on believing it holds it.
pid_t Spawn(const std::vector<std::string>& command, const std::vector<std::string>& env) {
  std::vector<char*> argv;
  for (const std::string& s : command) argv.push_back(const_cast<char*>(s.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (const std::string& s : env) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid != 0) return pid;
  // Child: async-signal-safe calls only until exec.
  SignalThread::UnblockInChild();
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(128 + SIGTERM);
  execvpe(argv[0], argv.data(), envp.data());
  const int err = errno;
  const char* prefix = "wardenctl: cannot run ";
  (void)!write(2, prefix, std::strlen(prefix));
  (void)!write(2, argv[0], std::strlen(argv[0]));
  (void)!write(2, ": ", 2);
  const char* why = strerror(err);
  (void)!write(2, why, std::strlen(why));
  (void)!write(2, "\n", 1);
  _exit(err == ENOENT ? 127 : 126);
}

}  // namespace

int RunLock(const Globals& g, const LockArgs& a) {
  if (a.name.empty()) {
    Fail("lock: no lock name (wardenctl lock NAME [flags] -- CMD...)");
    return kExitUsage;
  }
  client::LockOptions o;
  o.shared = a.shared;
  o.priority = a.priority;
  o.value = a.value;
  if (!a.wait.empty()) {
    client::Result<int64_t> w = ParseDurationMs(a.wait);
    if (!w.ok()) return FailWith(client::Status(Code::kInvalid, "--wait: " + w.status().message()));
    o.wait = Millis(*w);
  }
  if (!a.ttl.empty()) {
    client::Result<int64_t> t = ParseDurationMs(a.ttl);
    if (!t.ok()) return FailWith(client::Status(Code::kInvalid, "--ttl: " + t.status().message()));
    o.ttl = Millis(*t);
  }
  client::Result<int64_t> session_ttl = ParseDurationMs(a.session_ttl);
  if (!session_ttl.ok() || *session_ttl <= 0) {
    Fail("--session-ttl: want a positive duration, not \"" + a.session_ttl + "\"");
    return kExitUsage;
  }
  client::Result<Identity> id =
      IdentityFromEnv([](const char* k) { return std::getenv(k); }, DefaultOwner());
  if (!id.ok()) return FailWith(id.status());

  // Shared with the signal thread and the session's loss callback.
  std::atomic<pid_t> child{0};
  std::atomic<bool> lost{false};
  client::CancelToken cancel;
  SignalThread signals([&](int sig) {
    const pid_t pid = child.load();
    if (pid > 0) {
      kill(pid, sig);  // the command decides; we release when it exits
    } else {
      cancel.Cancel();
    }
  });

  client::Client c(g.client);
  std::unique_ptr<client::Session> session;
  if (id->nested()) {
    // The outer wardenctl keeps the session alive; we act as its owner.
    session = client::Session::Attach(&c, id->session, id->owner);
  } else {
    client::SessionOptions so;
    so.ttl_s = (*session_ttl + 999) / 1000;
    so.owner_id = id->owner;
    client::Result<std::unique_ptr<client::Session>> s = client::Session::Create(&c, so);
    if (!s.ok()) {
      const bool down = s.status().code() == Code::kUnavailable;
      return FailWith(client::Status(s.status().code(),
                                     (down ? "no cluster member reachable at " + c.EndpointList()
                                           : std::string("cannot create a session")) +
                                         ": " + s.status().message()));
    }
    session = std::move(*s);
  }
  const bool kill_on_loss = a.kill_on_loss;
  const std::string name = a.name;
  auto on_lost = [&, name](const std::string& why) {
    lost = true;
    const pid_t pid = child.load();
    std::string line = why + ": lock " + name + " may now be held by someone else";
    if (pid > 0 && kill_on_loss) {
      line += "; sending SIGTERM to the command (pid " + std::to_string(pid) + ")";
      kill(pid, SIGTERM);
    }
    Fail("warning: " + line);
  };
  session->OnLost([&, s = session.get()] {
    on_lost("session " + std::to_string(s->id()) + " lost (" + s->lost_reason() + ")");
  });

  o.cancel = &cancel;
  client::Result<client::LockHandle> h = session->Lock(a.name, o);
  if (!h.ok()) {
    int code = ExitCodeFor(h.status().code());
    if (h.status().code() == Code::kCancelled && signals.received() != 0) {
      Fail("lock " + a.name + ": interrupted while waiting");
      code = 128 + signals.received();
    } else {
      (void)FailWith(h.status());
    }
    if (!id->nested()) (void)session->Close();
    return code;
  }

  // A hold with a TTL is trusted until its local deadline only.
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread ttl_watch;
  if (std::optional<Clock::time_point> until = h->hold_deadline()) {
    ttl_watch = std::thread([&, until] {
      std::unique_lock<std::mutex> lock(mu);
      if (!cv.wait_until(lock, *until, [&] { return done; })) {
        lock.unlock();
        on_lost("the hold's --ttl ran out");
      }
    });
  }

  int exit_code = kExitOk;
  if (!h->valid()) {
    Fail("lock " + a.name + ": the session was lost right after the grant");
    exit_code = kExitSessionLost;
  } else if (a.command.empty()) {
    // No command: hold until a signal (or the session is lost).
    std::printf("%s %" PRIu64 "\n", a.name.c_str(), h->token());
    std::fflush(stdout);
    for (int i = 0; signals.received() == 0 && !lost.load() && i < 1000000000; ++i) {
      std::this_thread::sleep_for(Millis(50));
    }
    exit_code = lost.load() ? kExitSessionLost : kExitOk;
  } else {
    std::vector<std::string> parent;
    for (char** e = environ; *e != nullptr; ++e) parent.emplace_back(*e);
    const std::vector<std::string> env =
        ChildEnv(parent, h->token(), session->id(), h->owner().id(), c.EndpointList(), a.name);
    const pid_t pid = Spawn(a.command, env);
    if (pid < 0) {
      Fail(std::string("cannot fork: ") + std::strerror(errno));
      exit_code = kExitError;
    } else {
      child = pid;
      // A loss between the grant and now: the callback did not see the child.
      if (lost.load() && kill_on_loss) kill(pid, SIGTERM);
      int status = 0;
      while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      child = 0;
      exit_code = CommandExitCode(status);
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    done = true;
  }
  cv.notify_all();
  if (ttl_watch.joinable()) ttl_watch.join();
  // Release even a hold whose TTL ran out on our clock (it may not have on
  // the cluster's yet); a lost session has nothing left to release.
  const bool was_valid = h->valid();
  if (session->alive()) {
    client::Status s = h->Release();
    if (!s.ok() && was_valid) Fail("warning: " + s.ToString());
  }
  if (!id->nested()) (void)session->Close();
  return exit_code;
}

}  // namespace warden::cli
