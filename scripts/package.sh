#!/usr/bin/env bash
# Makes the Debian package of a build (CPack: library, headers, CMake and pkg-config files,
# tools; dependencies from dpkg-shlibdeps) and prints its path:
#   bash scripts/package.sh [BUILD_DIR]            # default build/ (scripts/build.sh first)
#   bash scripts/package.sh --check [BUILD_DIR]    # and install it here, use it, remove it
# --check (root or sudo; what CI runs): installs the .deb with apt-get (so its declared
# dependencies must resolve), runs /usr/bin/ferry-bench --mode=loopback with --verify, checks
# pkg-config and the loader see the library, then `dpkg -r` and checks nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
if [ "${1:-}" = "--check" ]; then
  check=1
  shift
fi
dir=$(cd "${1:-build}" && pwd)
rm -f "$dir"/ferry_*.deb
(cd "$dir" && cpack -G DEB >/dev/null)
deb=$(ls "$dir"/ferry_*.deb)
echo "package: $deb"
dpkg-deb -f "$deb" Package Version Depends
[ $check -eq 1 ] || exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}' ferry 2>/dev/null)"; then
  echo "package: a ferry package is already installed here; not touching it" >&2
  exit 1
fi
removed=0
remove() { [ $removed -eq 1 ] || $SUDO dpkg -r ferry >/dev/null; removed=1; }
trap remove EXIT

version=$(dpkg-deb -f "$deb" Version)
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "$deb" >/dev/null
# (Here-strings, not pipes into grep -q, which under pipefail can fail the writer with SIGPIPE.)
grep -q "install ok installed" <<<"$(dpkg-query -W -f='${Status}\n' ferry)"
out=$(/usr/bin/ferry-bench --mode=loopback --duration=1 --buffer_size=64M --verify --json 2>/dev/null)
grep -q '"verified":true' <<<"$out" || { echo "package: ferry-bench from /usr/bin did not verify: $out" >&2; exit 1; }
[ "$(pkg-config --modversion ferry)" = "$version" ] || { echo "package: pkg-config does not see ferry $version" >&2; exit 1; }
grep -q "libferry.so.${version%.*} " <<<"$(ldconfig -p)" || { echo "package: the loader does not list libferry.so" >&2; exit 1; }
echo "package: installed $version, ferry-bench --mode=loopback verified, pkg-config and ldconfig see it"

remove
for f in /usr/bin/ferry-bench /usr/lib/libferry.so /usr/include/ferry/ferry.h /usr/lib/cmake/Ferry /usr/lib/pkgconfig/ferry.pc; do
  [ ! -e "$f" ] || { echo "package: $f is left after dpkg -r" >&2; exit 1; }
done
echo "package: removed cleanly"
