# Thin wrapper over CMake. The two commands of the README:
#   make run    install what is missing, build, start streamfenced on conf/streamfence.yaml
#   make test   install what is missing (test clients too), build, run every test
#   make test-sanitize   the same tests against an ASan + UBSan build (build-asan)
#   make fuzz   run every fuzz target FUZZ_SECONDS (default 60) under libFuzzer
BUILD ?= build
JOBS ?= $(shell nproc)
CONFIG ?= conf/streamfence.yaml

.PHONY: all setup setup-test configure build run test test-sanitize fuzz package bench clean

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

configure:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

run: setup build
	exec $(BUILD)/host/streamfenced --config $(CONFIG)

test: setup-test build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

# The whole ctest suite against an ASan + UBSan build of host, plugins and tools, in its own
# tree (tests/fuzz/README.md says how long it takes). Any sanitizer report fails the run:
# reports go to files, so one from a server a test starts and never asks for its exit status
# counts too. Not the packaging tests: they build their own Release tree, no sanitizer in it.
SANITIZE_LOGS = $(CURDIR)/build-asan/sanitizer-reports
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:log_path=$(SANITIZE_LOGS)/asan \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$(SANITIZE_LOGS)/ubsan
test-sanitize: setup-test
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSF_SANITIZE=ON >/dev/null
	@cmake --build build-asan -j $(JOBS)
	@rm -rf $(SANITIZE_LOGS) && mkdir -p $(SANITIZE_LOGS)
	cd build-asan && $(SANITIZE_ENV) ctest --output-on-failure -j $(JOBS) -LE packaging; rc=$$?; \
	if [ -n "$$(ls -A $(SANITIZE_LOGS))" ]; then head -n 60 $(SANITIZE_LOGS)/*; \
	echo "sanitizer reports: $(SANITIZE_LOGS)"; exit 1; fi; exit $$rc

# Fuzzing (tests/fuzz/README.md): clang + libFuzzer + ASan/UBSan in their own tree; every
# target runs FUZZ_SECONDS, one after another.
FUZZ_SECONDS ?= 60
fuzz:
	@scripts/setup.sh --fuzz
	@cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSF_FUZZ=ON \
		-DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	@cmake --build build-fuzz -j $(JOBS) --target fuzz_all
	tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

# Packages are built in their own tree with prefix /usr, so the daemon's default plugin
# directory is the one the package installs.
package: setup-test
	@cmake -S . -B build-pkg -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >/dev/null
	@cmake --build build-pkg -j $(JOBS)
	cd build-pkg && cpack
	@ls -1 build-pkg/packages/*.deb build-pkg/packages/*.rpm

bench: setup-test build
	bench/run.sh $(BUILD)
	bench/overload.sh $(BUILD)
	bench/dashboard.sh $(BUILD)
	bench/storm.sh $(BUILD)

clean:
	rm -rf $(BUILD)
