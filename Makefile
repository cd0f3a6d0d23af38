# Warden's entry points. Everything installs what it needs first (scripts/bootstrap).
#   make build      configure and build (RelWithDebInfo, assertions on) into build/
#   make test       bootstrap, build, run every test (ctest), as CI does
#   make run        build, then run a local 3-member cluster in the foreground
#   make sim        the simulator over the CI seed range with all faults
#   make sim-soak   100,000 seeds with every fault, stopped after SOAK_SECONDS (2 h) of wall time
#   make asan|tsan  build and test with sanitizers
#   make fuzz       libFuzzer targets (clang) for FUZZ_SECONDS each, corpus in build-fuzz/
#   make bench-storage  the WAL benchmark (bench/wal_bench) on the disk; see bench/RESULTS.md
#   make chaos-smoke    real 3-member cluster under faults + both planted bugs (< 5 min; part of make test)
#   make chaos      every nemesis x workload for CHAOS_MINUTES (20), then the table (docs/chaos.md)
#   make bench-client   uncontended lock acquire+release latency of the C++ client against
#                       a running cluster (ENDPOINTS, default the `make run` cluster)
#   make bench-compare  Warden vs etcd 3.4 (3 members each) with warden-bench, ROUNDS (3) x BENCH_SECONDS (5); ~10 min
#   make bench-scale    1M keys, 100k watches, 10k connections, restart with 1M keys (Warden and etcd); ~15-25 min
JOBS ?= 2
BUILD ?= build
SOAK_SEEDS ?= 0:100000
SOAK_SECONDS ?= 7200
FUZZ_SECONDS ?= 600
CHAOS_MINUTES ?= 20
ENDPOINTS ?= 127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379

.PHONY: all bootstrap build test run sim sim-soak asan tsan fuzz bench-storage bench-client \
	bench-tools bench-compare bench-scale chaos-smoke chaos format clean

all: build

bootstrap:
	@scripts/bootstrap

$(BUILD)/build.ninja: | bootstrap
	cmake --preset release

build: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 1200

run: build
	scripts/run-cluster

sim: build
	$(BUILD)/warden-sim --seeds 0:500 --faults all

sim-soak: build
	$(BUILD)/warden-sim --seeds $(SOAK_SEEDS) --faults all --soak-seconds $(SOAK_SECONDS)

asan: bootstrap
	cmake --preset asan && cmake --build build-asan -j $(JOBS) && cd build-asan && ctest --output-on-failure -j $(JOBS)

tsan: bootstrap
	cmake --preset tsan && cmake --build build-tsan -j $(JOBS) && cd build-tsan && ctest --output-on-failure -j $(JOBS)

fuzz: bootstrap
	FUZZ_SECONDS=$(FUZZ_SECONDS) JOBS=$(JOBS) scripts/fuzz

bench-storage: build
	cmake --build $(BUILD) -j $(JOBS) --target wal_bench
	$(BUILD)/bench/wal_bench --benchmark_repetitions=3 --benchmark_enable_random_interleaving=true \
	  --benchmark_report_aggregates_only=true --benchmark_counters_tabular=true

chaos-smoke: build
	cd $(BUILD) && ctest --output-on-failure -R '^chaos_smoke$$'

chaos: build
	WARDEN_BUILD=$(abspath $(BUILD)) /usr/bin/python3 tests/chaos/chaos.py matrix --minutes $(CHAOS_MINUTES) \
	  --out $(abspath $(BUILD))/chaos

bench-client: build
	$(BUILD)/bench/warden_client_bench --endpoints $(ENDPOINTS) --cycles 2000

# warden-bench and warden only, not every test (bench/README.md).
bench-tools: bootstrap $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS) --target warden warden-bench

bench-compare: bench-tools
	/usr/bin/python3 bench/compare.py

bench-scale: bench-tools
	/usr/bin/python3 bench/scale.py

format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD) build-asan build-tsan build-fuzz
