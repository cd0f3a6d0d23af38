// Uncontended acquire + release latency of the C++ client (src/client)
// against a running cluster: one session, `--cycles` Lock/Release pairs on
// one path, each pair timed on the steady clock; prints p50/p90/p99/max.
//
//   build/bench/warden_client_bench --endpoints 127.0.0.1:2379 --cycles 2000
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "src/client/lock.h"
#include "src/client/session.h"

int main(int argc, char** argv) {
  using namespace warden::client;
  std::string endpoints = "127.0.0.1:2379";
  int cycles = 2000;
  int warmup = 50;
  std::string path = "/bench/uncontended";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--endpoints"))
      endpoints = argv[i + 1];
    else if (!std::strcmp(argv[i], "--cycles"))
      cycles = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--warmup"))
      warmup = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--path"))
      path = argv[i + 1];
    else {
      std::fprintf(stderr, "usage: %s [--endpoints a,b] [--cycles N] [--warmup N] [--path P]\n",
                   argv[0]);
      return 2;
    }
  }
  if (cycles <= 0) cycles = 1;
  ClientOptions o;
  o.endpoints.clear();
  size_t start = 0;
  while (start <= endpoints.size()) {
    const size_t comma = endpoints.find(',', start);
    const std::string e =
        endpoints.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (!e.empty()) o.endpoints.push_back(e);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  Client client(o);
  SessionOptions so;
  so.ttl_s = 10;
  so.owner_id = "bench";
  Result<std::unique_ptr<Session>> s = Session::Create(&client, so);
  if (!s.ok()) {
    std::fprintf(stderr, "bench: %s\n", s.status().ToString().c_str());
    return 1;
  }
  std::vector<double> us;
  us.reserve(cycles);
  LockOptions lo;
  for (int i = 0; i < warmup + cycles; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Result<LockHandle> h = (*s)->Lock(path, lo);
    if (!h.ok()) {
      std::fprintf(stderr, "bench: %s\n", h.status().ToString().c_str());
      return 1;
    }
    if (Status r = h->Release(); !r.ok()) {
      std::fprintf(stderr, "bench: %s\n", r.ToString().c_str());
      return 1;
    }
    const auto t1 = std::chrono::steady_clock::now();
    if (i >= warmup) us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
  }
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us[std::min(us.size() - 1, static_cast<size_t>(p * static_cast<double>(us.size())))];
  };
  double sum = 0;
  for (double v : us) sum += v;
  std::printf(
      "uncontended acquire+release: cycles=%zu p50=%.0fus p90=%.0fus p99=%.0fus max=%.0fus "
      "mean=%.0fus\n",
      us.size(), pct(0.50), pct(0.90), pct(0.99), us.back(), sum / static_cast<double>(us.size()));
  (void)(*s)->Close();
  return 0;
}
