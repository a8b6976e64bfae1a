# okserve build. One Makefile, three variants that share every rule:
#   make            optimized build (release) of the server, the loadgen and the benchmarks
#   make run        build and run the server on 127.0.0.1:8080
#   make test       install what the tests need, build, run unit + integration tests
#   make asan/tsan  the same tests under AddressSanitizer+UBSan / ThreadSanitizer
#   make static     one statically linked server binary, build/static/okserve
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
else ifeq ($(VARIANT),static)
  OPT := -O2
  STATIC_LDFLAGS := -static -s
else
  $(error unknown VARIANT '$(VARIANT)': use release, asan, tsan, debug or static)
endif

# io_uring is optional: --mode uring is built when liburing's header is there (it falls
# back to the reactor at run time when the kernel refuses io_uring). The static build
# needs liburing.a as well (Debian's liburing-dev has it).
HAVE_URING := $(shell echo 'int main(){return 0;}' | \
                $(CXX) -x c++ -include liburing.h - -o /dev/null $(STATIC_LDFLAGS) -luring >/dev/null 2>&1 && echo 1)
ifeq ($(HAVE_URING),1)
  URING_FLAGS := -DOKSERVE_HAVE_URING=1
  URING_LIBS  := -luring
endif

CXXFLAGS += $(BASEFLAGS) $(OPT) $(URING_FLAGS)
LDFLAGS  += -pthread $(OPT) $(STATIC_LDFLAGS)
LDLIBS   += $(URING_LIBS)
# zlib, for the HdrHistogram logs (--hlog, loadgen report): loadgen and the unit tests only.
LOADGEN_LIBS := -lz

POOL_SRC    := $(sort $(wildcard pool/*.cpp))
SERVER_SRC  := $(sort $(filter-out server/main.cpp,$(shell find server -name '*.cpp')))
LOADGEN_SRC := $(sort $(filter-out tools/loadgen/main.cpp,$(wildcard tools/loadgen/*.cpp)))
TEST_SRC    := $(sort $(shell find tests -name '*.cpp' 2>/dev/null))

obj = $(patsubst %.cpp,$(BUILD)/obj/%.o,$(1))

POOL_LIB    := $(BUILD)/libokpool.a
SERVER_LIB  := $(BUILD)/libokserve.a
LOADGEN_LIB := $(BUILD)/libokload.a
SERVER_BIN  := $(BUILD)/okserve
LOADGEN_BIN := $(BUILD)/loadgen
UNIT_BIN    := $(BUILD)/unit_tests
POOL_BENCH  := $(BUILD)/pool_bench
FLOOR_BIN   := $(BUILD)/floor

.PHONY: all run test check asan tsan static fuzz bench bench-full install uninstall clean deps
.DEFAULT_GOAL := all

all: $(SERVER_BIN) $(LOADGEN_BIN) $(POOL_BENCH) $(FLOOR_BIN)

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

# The bench's yardstick: a minimal epoll loop, no HTTP beyond finding request ends.
$(FLOOR_BIN): $(call obj,tools/bench/floor.cpp)
	@echo "  LINK    $@"
	@$(CXX) $(LDFLAGS) $^ -o $@

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
	@$(MAKE) --no-print-directory VARIANT=$(VARIANT) $(SERVER_BIN) $(LOADGEN_BIN) $(POOL_BENCH) $(FLOOR_BIN) $(UNIT_BIN)
	@bash tests/run.sh $(BUILD)

check: test

asan:
	@$(MAKE) --no-print-directory VARIANT=asan test

tsan:
	@$(MAKE) --no-print-directory VARIANT=tsan test

# One self-contained binary (glibc, libstdc++ and liburing linked in) for an image FROM
# scratch: examples/docker/Dockerfile runs exactly this. Host names other than numeric
# addresses need glibc's NSS at run time, which a static binary has not: use addresses.
static:
	@$(MAKE) --no-print-directory VARIANT=static build/static/okserve

# Fuzzing (clang's libFuzzer with ASan + UBSan): each target in tests/fuzz/ runs for
# FUZZ_SECONDS on a copy of the corpus; a crash or a broken invariant fails, and the input
# that did it is left in build/fuzz/ (add it to tests/fuzz/corpus/ once fixed).
FUZZ_SECONDS ?= 60
FUZZ_CXX     ?= clang++
FUZZ_FLAGS   := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -DOKSERVE_FUZZER -I.
FUZZ_SRC     := server/connection.cpp server/access_log.cpp $(wildcard server/http/*.cpp)
FUZZ_TARGETS := request_fuzzer connection_fuzzer

fuzz: deps
	@bash tools/fuzz.sh "$(FUZZ_CXX)" "$(FUZZ_FLAGS)" "$(FUZZ_SECONDS)" "$(FUZZ_SRC)" $(FUZZ_TARGETS)

bench: all
	@bash tools/deps.sh bench
	@python3 tools/bench/bench.py --quick --bin $(SERVER_BIN) --loadgen $(LOADGEN_BIN) --pool-bench $(POOL_BENCH) --floor $(FLOOR_BIN)

bench-full: all
	@bash tools/deps.sh bench
	@python3 tools/bench/bench.py --bin $(SERVER_BIN) --loadgen $(LOADGEN_BIN) --pool-bench $(POOL_BENCH) --floor $(FLOOR_BIN)

# make install: the binaries, the static libraries, the public header and okserve.pc
# (pkg-config); PREFIX and DESTDIR as usual. make uninstall removes exactly those files.
VERSION    := $(shell sed -n 's/.*version_text = "okserve \(.*\)";/\1/p' server/config.hpp)
LIBDIR     := $(PREFIX)/lib
INCDIR     := $(PREFIX)/include/okserve
INSTALLED  := $(PREFIX)/bin/okserve $(PREFIX)/bin/loadgen $(LIBDIR)/libokserve.a $(LIBDIR)/libokpool.a \
              $(INCDIR)/okserve.hpp $(LIBDIR)/pkgconfig/okserve.pc

install: $(SERVER_BIN) $(LOADGEN_BIN) $(SERVER_LIB) $(POOL_LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCDIR)
	install -m 0755 $(SERVER_BIN) $(DESTDIR)$(PREFIX)/bin/okserve
	install -m 0755 $(LOADGEN_BIN) $(DESTDIR)$(PREFIX)/bin/loadgen
	install -m 0644 $(SERVER_LIB) $(DESTDIR)$(LIBDIR)/libokserve.a
	install -m 0644 $(POOL_LIB) $(DESTDIR)$(LIBDIR)/libokpool.a
	install -m 0644 server/include/okserve/okserve.hpp $(DESTDIR)$(INCDIR)/okserve.hpp
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS@|$(URING_LIBS)|' \
	    server/okserve.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/okserve.pc
	chmod 0644 $(DESTDIR)$(LIBDIR)/pkgconfig/okserve.pc

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(INCDIR) 2>/dev/null

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
