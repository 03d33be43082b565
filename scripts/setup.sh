#!/usr/bin/env bash
# Installs every Debian package that Ferry's build, tests and benchmarks need.
# Idempotent: packages already present are skipped, and apt-get update runs at most once.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libgtest-dev libgmock-dev nlohmann-json3-dev
  clang libclang-rt-14-dev      # libFuzzer target and sanitizers
  iperf3                        # reference figures in bench/
  python3 python3-dev pybind11-dev python3-numpy python3-pytest python3-setuptools  # Python API
  etcd-server redis-server libhiredis-dev  # metadata backends; tests start their own servers
  liburing-dev                          # io_uring file segments
  libibverbs-dev                        # RDMA: verbs headers (the library is loaded at run time)
  libssl-dev                            # HMAC-SHA256 (libcrypto) for the cluster token
  libcurl4-openssl-dev                  # HTTP client of the metadata stores (kept-alive connections)
  libxxhash-dev                         # XXH3 digests of registered ranges
  prometheus-cpp-dev prometheus         # /metrics text format; tests check it with promtool
  python3-matplotlib                    # ferry-bench --plot (ferry-plot)
  python3-pip python3-venv python3-wheel  # the wheel, installed into a venv by the Python tests
  dpkg-dev                              # CPack's .deb: dpkg-shlibdeps finds its dependencies
  util-linux                            # tests: prlimit, unshare (pid namespaces)
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
