// wardenctl's pure helpers (src/cli/cli_util.h): durations, exit codes, and
// the environment that makes a nested wardenctl act as the outer owner.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <map>

#include "src/cli/cli_util.h"

namespace warden::cli {
namespace {

int64_t Ms(const std::string& s) {
  client::Result<int64_t> r = ParseDurationMs(s);
  EXPECT_TRUE(r.ok()) << s << ": " << r.status().ToString();
  return r.ok() ? *r : -1;
}

TEST(ClientCliDurationTest, Units) {
  EXPECT_EQ(Ms("500ms"), 500);
  EXPECT_EQ(Ms("5s"), 5000);
  EXPECT_EQ(Ms("1.5s"), 1500);
  EXPECT_EQ(Ms("1m"), 60000);
  EXPECT_EQ(Ms("2h"), 7200000);
  EXPECT_EQ(Ms("0"), 0);
  EXPECT_EQ(Ms("3"), 3000);    // a bare number is seconds
  EXPECT_EQ(Ms("1500us"), 2);  // rounded up
}

TEST(ClientCliDurationTest, Refusals) {
  for (const char* bad : {"", "s", "-1s", "5x", "1..5s", "abc", "5 s", ".", "1e3s"}) {
    client::Result<int64_t> r = ParseDurationMs(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), client::Code::kInvalid);
    }
  }
}

TEST(ClientCliExitCodeTest, DistinctCodesPerOutcome) {
  using client::Code;
  EXPECT_EQ(ExitCodeFor(Code::kOk), 0);
  EXPECT_EQ(ExitCodeFor(Code::kWouldBlock), 3);
  EXPECT_EQ(ExitCodeFor(Code::kTimeout), 4);
  EXPECT_EQ(ExitCodeFor(Code::kDeadlock), 5);
  EXPECT_EQ(ExitCodeFor(Code::kConditionFailed), 6);
  EXPECT_EQ(ExitCodeFor(Code::kUnavailable), 7);
  EXPECT_EQ(ExitCodeFor(Code::kSessionEnded), 8);
  EXPECT_EQ(ExitCodeFor(Code::kInvalid), 2);
  EXPECT_EQ(ExitCodeFor(Code::kError), 1);
}

TEST(ClientCliExitCodeTest, CommandStatus) {
  EXPECT_EQ(CommandExitCode(0), 0);
  EXPECT_EQ(CommandExitCode(7 << 8), 7);  // exited 7
  EXPECT_EQ(CommandExitCode(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(CommandExitCode(SIGTERM), 128 + SIGTERM);
}

struct FakeEnv {
  std::map<std::string, std::string> vars;
  std::function<const char*(const char*)> fn() {
    return [this](const char* k) -> const char* {
      auto it = vars.find(k);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

TEST(ClientCliNestingTest, OuterWardenctlMakesItsOwnIdentity) {
  FakeEnv env;
  client::Result<Identity> id = IdentityFromEnv(env.fn(), "wardenctl:h:1");
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(id->nested());
  EXPECT_EQ(id->owner, "wardenctl:h:1");
}

TEST(ClientCliNestingTest, OwnerAloneNamesTheOwnerOfANewSession) {
  FakeEnv env;
  env.vars["WARDEN_OWNER"] = "batch-7";
  client::Result<Identity> id = IdentityFromEnv(env.fn(), "wardenctl:h:1");
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(id->nested());
  EXPECT_EQ(id->owner, "batch-7");
}

TEST(ClientCliNestingTest, SessionAndOwnerFromTheOuterWardenctl) {
  FakeEnv env;
  env.vars["WARDEN_SESSION"] = "7587869013419722756";
  env.vars["WARDEN_OWNER"] = "wardenctl:h:42";
  client::Result<Identity> id = IdentityFromEnv(env.fn(), "wardenctl:h:99");
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->nested());
  EXPECT_EQ(id->session, 7587869013419722756);
  EXPECT_EQ(id->owner, "wardenctl:h:42");  // same owner: reentrant, one wait-for node
}

TEST(ClientCliNestingTest, EmptySessionIsNotNested) {
  FakeEnv env;
  env.vars["WARDEN_SESSION"] = "";
  client::Result<Identity> id = IdentityFromEnv(env.fn(), "d");
  ASSERT_TRUE(id.ok());
  EXPECT_FALSE(id->nested());
}

TEST(ClientCliNestingTest, BadSessionIsRefused) {
  for (const char* bad : {"abc", "-5", "0", "12x", "99999999999999999999", "9999999999999999999"}) {
    FakeEnv env;
    env.vars["WARDEN_SESSION"] = bad;
    client::Result<Identity> id = IdentityFromEnv(env.fn(), "d");
    EXPECT_FALSE(id.ok()) << bad;
  }
}

TEST(ClientCliNestingTest, ChildEnvReplacesInheritedValues) {
  const std::vector<std::string> parent = {"PATH=/bin", "WARDEN_FENCING_TOKEN=1",
                                           "WARDEN_SESSION=5", "WARDEN_SESSIONX=keep",
                                           "HOME=/root"};
  std::vector<std::string> env = ChildEnv(parent, 42, 9, "o", "a:1,b:2", "/x");
  std::map<std::string, std::string> m;
  for (const std::string& kv : env) {
    const size_t eq = kv.find('=');
    EXPECT_TRUE(m.emplace(kv.substr(0, eq), kv.substr(eq + 1)).second) << "duplicate " << kv;
  }
  EXPECT_EQ(m["PATH"], "/bin");
  EXPECT_EQ(m["HOME"], "/root");
  EXPECT_EQ(m["WARDEN_SESSIONX"], "keep");
  EXPECT_EQ(m["WARDEN_FENCING_TOKEN"], "42");
  EXPECT_EQ(m["WARDEN_SESSION"], "9");
  EXPECT_EQ(m["WARDEN_OWNER"], "o");
  EXPECT_EQ(m["WARDEN_ENDPOINTS"], "a:1,b:2");
  EXPECT_EQ(m["WARDEN_LOCK"], "/x");
}

TEST(ClientCliNestingTest, ChildEnvRoundTripsThroughIdentity) {
  std::vector<std::string> env = ChildEnv({}, 42, 123, "wardenctl:h:5", "e:1", "/x");
  FakeEnv fe;
  for (const std::string& kv : env) {
    fe.vars[kv.substr(0, kv.find('='))] = kv.substr(kv.find('=') + 1);
  }
  client::Result<Identity> id = IdentityFromEnv(fe.fn(), "other");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(id->session, 123);
  EXPECT_EQ(id->owner, "wardenctl:h:5");
}

TEST(ClientCliSplitTest, Endpoints) {
  EXPECT_EQ(SplitList("a:1, b:2,,c:3 "), (std::vector<std::string>{"a:1", "b:2", "c:3"}));
  EXPECT_TRUE(SplitList("").empty());
}

}  // namespace
}  // namespace warden::cli
