# raftkv front door: a thin layer over CMake + Ninja.
#   make run    install deps if missing, build, start one raftkv node (foreground)
#   make test   install deps if missing, build normal + sanitizer trees, run every suite
#   make bench  raftkv vs etcd side by side (scripts/bench-compare), report in bench/results/
#   make microbench  the Google Benchmark binaries of each layer
#   make clean  remove build trees
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)
CMAKE_GEN  := -G Ninja
# ccache keys on paths relative to the checkout, so fresh clones (CI) reuse
# objects compiled in another clone on the same machine.
export CCACHE_BASEDIR := $(CURDIR)
# Arguments passed to raftkv by `make run`, e.g. make run ARGS="--log-level debug"
ARGS       ?=

.PHONY: all deps build build-asan run test test-normal test-asan bench microbench sim clean

all: build

deps:
	@scripts/install-deps

# Both trees carry line tables only (-g1): backtraces, sanitizer reports and
# perf profiles keep file:line, and a clean build is about a fifth faster
# than with full debug info (the objects are a quarter of the size, so links
# are faster too). For variables in gdb, configure a tree of your own, e.g.
#   cmake -S . -B build-dbg -G Ninja -DCMAKE_BUILD_TYPE=Debug
$(BUILD)/build.ninja:
	cmake -S . -B $(BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -g1 -DNDEBUG"

$(ASAN_BUILD)/build.ninja:
	cmake -S . -B $(ASAN_BUILD) $(CMAKE_GEN) -DCMAKE_BUILD_TYPE=Debug \
	  -DCMAKE_CXX_FLAGS_DEBUG="-g1" -DRAFTKV_SANITIZE=ON -DRAFTKV_BUILD_BENCHMARKS=OFF

build: deps $(BUILD)/build.ninja
	cmake --build $(BUILD) -j $(JOBS)

build-asan: deps $(ASAN_BUILD)/build.ninja
	cmake --build $(ASAN_BUILD) -j $(JOBS)

run: build
	@if [ -x $(BUILD)/src/server/raftkv ]; then \
	  exec $(BUILD)/src/server/raftkv $(ARGS); \
	else \
	  echo "make run: the raftkv server is not built in this tree yet" >&2; exit 1; \
	fi

test-normal: build
	cd $(BUILD) && ctest --no-label-summary --output-on-failure -j $(JOBS) --timeout 600

test-asan: build-asan
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --no-label-summary --output-on-failure -j $(JOBS) --timeout 900 -LE no-sanitize

test: test-normal test-asan

bench: build
	@scripts/bench-compare --build-dir $(BUILD)

microbench: build
	@scripts/run-benchmarks $(BUILD)

sim: build
	$(BUILD)/src/sim/raftkv-sim --seeds 2000

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
