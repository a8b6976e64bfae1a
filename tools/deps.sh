#!/usr/bin/env bash
# Installs what okserve's tests (deps.sh test) and benchmarks (deps.sh bench) need: the
# same list, since the tests run the benchmark harness in quick mode.
# As root it uses apt-get; otherwise it prints the exact command to run and fails.
set -u
what=${1:-test}  # "test" or "bench": one list serves both

# command-or-file  debian-package
needs=(
  "g++:g++" "make:make" "python3:python3" "curl:curl" "wrk:wrk" "ab:apache2-utils"
  "h2load:nghttp2-client" "hey:hey" "slowhttptest:slowhttptest" "/usr/include/doctest/doctest.h:doctest-dev"
  "/usr/include/liburing.h:liburing-dev"
  # loadgen's HdrHistogram logs (--hlog, loadgen report) are zlib-compressed.
  "/usr/include/zlib.h:zlib1g-dev"
  # The benchmark harness runs in quick mode inside the tests (test_bench.py).
  "nginx:nginx-light" "strace:strace" "taskset:util-linux"
  # Several instances behind a balancer (test_haproxy.py, examples/haproxy/).
  "haproxy:haproxy"
  # make fuzz: clang's libFuzzer (and its sanitizer runtimes).
  "clang++:clang" "/usr/lib/llvm-14/lib/clang/14.0.6/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-14-dev"
  # The library is built against its installed tree with pkg-config (test_embed.py).
  "pkg-config:pkg-config"
  # The live page is tested in a headless browser (test_live_page.py); a font for its text.
  "chromium:chromium" "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf:fonts-dejavu-core"
  # test_platforms.py: systemd-socket-activate and systemd-analyze (systemd), file(1) on
  # the static binary.
  "systemd-socket-activate:systemd" "file:file"
)

missing=()
for pair in "${needs[@]}"; do
  probe=${pair%%:*} pkg=${pair#*:}
  if [[ $probe == /* ]]; then
    [[ -e $probe ]] || missing+=("$pkg")
  else
    command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe ]] || missing+=("$pkg")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "okserve: missing test tools; run as root: $cmd" >&2
  exit 1
fi
echo "okserve: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >/tmp/okserve-apt.log 2>&1; then
  tail -n 20 /tmp/okserve-apt.log >&2
  echo "okserve: '$cmd' failed" >&2
  exit 1
fi
exit 0
