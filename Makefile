# okserve build. One Makefile, three variants that share every rule:
#   make            optimized build (release) of the server, the loadgen and the benchmarks
#   make run        build and run the server on 127.0.0.1:8080
#   make test       install what the tests need, build, run unit + integration tests
#   make asan/tsan  the same tests under AddressSanitizer+UBSan / ThreadSanitizer
# Sources are found by wildcard, so a new .cpp file needs no edit here.

CXX      ?= g++
PREFIX   ?= /usr/local
DESTDIR  ?=
VARIANT  ?= release
ARGS     ?=

BUILD    ?= build/$(VARIANT)
WARN     := -Wall -Wextra -Werror -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wpedantic
BASEFLAGS := -std=c++20 -pthread -MMD -MP $(WARN) -I.

ifeq ($(VARIANT),release)
  OPT := -O2 -g
else ifeq ($(VARIANT),asan)
  OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
else ifeq ($(VARIANT),tsan)
  OPT := -O1 -g -fsanitize=thread
else ifeq ($(VARIANT),debug)
  OPT := -O0 -g
else
  $(error unknown VARIANT '$(VARIANT)': use release, asan, tsan or debug)
endif

# io_uring is optional: --mode uring is built when liburing's header is there (it falls
# back to the reactor at run time when the kernel refuses io_uring).
HAVE_URING := $(shell echo 'int main(){return 0;}' | \
                $(CXX) -x c++ -include liburing.h - -o /dev/null -luring >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_URING),1)
  URING_FLAGS := -DOKSERVE_HAVE_URING=1
  URING_LIBS  := -luring
endif

CXXFLAGS += $(BASEFLAGS) $(OPT) $(URING_FLAGS)
LDFLAGS  += -pthread $(OPT)
LDLIBS   += $(URING_LIBS)
# zlib, for the HdrHistogram logs (--hlog, loadgen report): loadgen and the unit tests only.
LOADGEN_LIBS := -lz

POOL_SRC    := $(sort $(wildcard pool/*.cpp))
SERVER_SRC  := $(sort $(filter-out server/main.cpp,$(shell find server -name '*.cpp')))
LOADGEN_SRC := $(sort $(filter-out tools/loadgen/main.cpp,$(wildcard tools/loadgen/*.cpp)))
TEST_SRC    := $(sort $(shell find tests -name '*.cpp'))

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

POOL_LIB    := $(BUILD)/libokpool.a
SERVER_LIB  := $(BUILD)/libokserve.a
LOADGEN_LIB := $(BUILD)/libokload.a
SERVER_BIN  := $(BUILD)/okserve
LOADGEN_BIN := $(BUILD)/loadgen
UNIT_BIN    := $(BUILD)/unit_tests
POOL_BENCH  := $(BUILD)/pool_bench

.PHONY: all run test check asan tsan fuzz bench bench-full install uninstall clean deps
.DEFAULT_GOAL := all

all: $(SERVER_BIN) $(LOADGEN_BIN) $(POOL_BENCH)

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  CXX     $<"
	@$(CXX) $(CXXFLAGS) -c $< -o $@

$(POOL_LIB): $(call obj,$(POOL_SRC))
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(SERVER_LIB): $(call obj,$(SERVER_SRC))
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(LOADGEN_LIB): $(call obj,$(LOADGEN_SRC))
	@mkdir -p $(dir $@)
	@echo "  AR      $@"
	@$(AR) rcs $@ $^

$(SERVER_BIN): $(call obj,server/main.cpp) $(SERVER_LIB) $(POOL_LIB)
	@echo "  LINK    $@"
	@$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(LOADGEN_BIN): $(call obj,tools/loadgen/main.cpp) $(LOADGEN_LIB)
	@echo "  LINK    $@"
	@$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(LOADGEN_LIBS)

$(POOL_BENCH): $(call obj,tools/bench/pool_bench.cpp) $(POOL_LIB)
	@echo "  LINK    $@"
	@$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(UNIT_BIN): $(call obj,$(TEST_SRC)) $(SERVER_LIB) $(LOADGEN_LIB) $(POOL_LIB)
	@echo "  LINK    $@"
	@$(CXX) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(LOADGEN_LIBS)

# The live page is taken into the binary whole (server/admin/page.cpp, .incbin).
$(BUILD)/obj/server/admin/page.o: server/admin/page.html

run: $(SERVER_BIN)
	./$(SERVER_BIN) $(ARGS)

deps:
	@bash tools/deps.sh test

# The test command: unit tests (doctest) then integration tests (real binary, real
# clients); tests/run.sh prints the summed "N passed, N failed" as its last line.
test: deps
	@$(MAKE) --no-print-directory VARIANT=$(VARIANT) $(SERVER_BIN) $(LOADGEN_BIN) $(POOL_BENCH) $(UNIT_BIN)
	@bash tests/run.sh $(BUILD)

check: test

asan:
	@$(MAKE) --no-print-directory VARIANT=asan test

tsan:
	@$(MAKE) --no-print-directory VARIANT=tsan test

# Fuzzing (clang's libFuzzer with ASan + UBSan): each target in tests/fuzz/ runs for
# FUZZ_SECONDS on a copy of the corpus; a crash or a broken invariant fails, and the input
# that did it is left in build/fuzz/ (add it to tests/fuzz/corpus/ once fixed).
FUZZ_SECONDS ?= 60
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DOKSERVE_FUZZER -I.
FUZZ_SRC     := server/connection.cpp $(wildcard server/http/*.cpp)
FUZZ_TARGETS := request_fuzzer connection_fuzzer

fuzz: deps
	@bash tools/fuzz.sh "$(FUZZ_CXX)" "$(FUZZ_FLAGS)" "$(FUZZ_SECONDS)" "$(FUZZ_SRC)" $(FUZZ_TARGETS)

bench: all
	@bash tools/deps.sh bench
	@python3 tools/bench/bench.py --quick --bin $(SERVER_BIN) --loadgen $(LOADGEN_BIN) --pool-bench $(POOL_BENCH)

bench-full: all
	@bash tools/deps.sh bench
	@python3 tools/bench/bench.py --bin $(SERVER_BIN) --loadgen $(LOADGEN_BIN) --pool-bench $(POOL_BENCH)

install: $(SERVER_BIN)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(SERVER_BIN) $(DESTDIR)$(PREFIX)/bin/okserve

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/okserve

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
