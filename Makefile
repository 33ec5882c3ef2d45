# Thin wrapper over CMake/CTest. `make demo` and `make test` are the
# README's two commands.
BUILD ?= build
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
BENCH_BUILD ?= build-bench
JOBS ?= 2

.PHONY: all demo demo-sim test test-normal test-asan setup bench bench-http clean

all:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo
	cmake --build $(BUILD) -j $(JOBS)

# The main demo (root: a namespace and a TAP device): the HTTP example
# served to the kernel's curl and wrk, see scripts/demo.sh.
demo: setup all
	bash scripts/demo.sh $(BUILD)

# The in-memory demo: two stacks on a simulated wire, no root needed.
demo-sim: all
	./$(BUILD)/examples/tern_demo --pcap $(BUILD)/tern-demo.pcap

setup:
	sh scripts/setup.sh

# The whole suite twice, a normal build then ASan+UBSan, and the threaded
# tests a third time under ThreadSanitizer.
test: setup test-normal test-asan test-tsan

test-normal:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_BUILD_TESTS=ON
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

test-asan:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DTERN_SANITIZE=ON -DTERN_BUILD_TESTS=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest -j $(JOBS) --output-on-failure

# Benchmarks (docs/bench.md): a build of their own without debug checks,
# then one run that prints the tables. BENCH_ARGS="--quick" for a short one.
# Missing packages only cost the lwIP column, so setup may fail here.
bench:
	sh scripts/setup.sh || echo "bench: going on without the missing packages"
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_DEBUG=OFF \
	  -DTERN_BUILD_TESTS=OFF -DTERN_BUILD_BENCH=ON
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target tern_bench
	./$(BENCH_BUILD)/bench/tern_bench $(BENCH_ARGS)

# HTTP requests per second under wrk, the HTTP example over TAP beside
# its kernel-socket twin over loopback (docs/bench.md). Needs root: it
# runs in a network namespace of its own. BENCH_HTTP_ARGS="--quick".
bench-http:
	sh scripts/setup.sh || echo "bench-http: going on without the missing packages"
	cmake -S . -B $(BENCH_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_DEBUG=OFF \
	  -DTERN_BUILD_TESTS=OFF -DTERN_BUILD_BENCH=ON
	cmake --build $(BENCH_BUILD) -j $(JOBS) --target tern_http tern_http_kernel
	bash bench/http_bench.sh $(BENCH_BUILD) $(BENCH_HTTP_ARGS)

test-tsan:
	cmake -S . -B $(TSAN_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTERN_TSAN=ON -DTERN_BUILD_TESTS=ON \
	  -DTERN_BUILD_BENCH=OFF
	cmake --build $(TSAN_BUILD) -j $(JOBS)
	cd $(TSAN_BUILD) && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	  ctest -j $(JOBS) -L threads --output-on-failure

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(TSAN_BUILD) $(BENCH_BUILD)
