#!/usr/bin/env bash
# Line coverage of one source folder by one test binary, with gcov (no extra package):
#   scripts/coverage.sh [folder] [test-binary] [min-percent]
# Default: the rdma transport (src/transport/rdma) by ferry_rdma_tests, which drive it over
# the verbs emulation; exits 1 below min-percent (default 85). verbs_api.cpp is left out: its
# dlopen of the real libibverbs cannot run its success path on a machine without RDMA.
set -euo pipefail
cd "$(dirname "$0")/.."
folder=${1:-src/transport/rdma}
binary=${2:-ferry_rdma_tests}
min=${3:-85}
dir=build-cov
cmake -S . -B $dir -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS="--coverage -O0" \
  -DCMAKE_EXE_LINKER_FLAGS=--coverage -DCMAKE_SHARED_LINKER_FLAGS=--coverage -DCMAKE_UNITY_BUILD=OFF \
  -DFERRY_BUILD_PYTHON=OFF >/dev/null
cmake --build $dir -j2 --target "$binary" >/dev/null
find $dir -name '*.gcda' -delete
(cd $dir && "bin/$binary" >/dev/null 2>&1) || { echo "coverage: $binary failed" >&2; exit 1; }
objdir=$(find $dir -type d -path "*ferry_objects.dir/$folder" | head -1)
[ -n "$objdir" ] || { echo "coverage: no objects for $folder" >&2; exit 1; }
python3 - "$objdir" "$folder" "$min" <<'PY'
import glob, os, re, subprocess, sys
objdir, folder, minimum = sys.argv[1], sys.argv[2], float(sys.argv[3])
total = hit = 0
rows = []
for gcda in sorted(glob.glob(os.path.join(objdir, "*.gcda"))):
    out = subprocess.run(["gcov", "-n", "-o", objdir, gcda], capture_output=True, text=True).stdout
    # "File '.../src/transport/rdma/x.cpp'\nLines executed:91.23% of 171"
    for name, pct, n in re.findall(r"File '([^']+)'\nLines executed:([\d.]+)% of (\d+)", out):
        if folder not in name or name.endswith("verbs_api.cpp") or not name.endswith(".cpp"):
            continue
        n = int(n)
        h = round(float(pct) * n / 100)
        total += n
        hit += h
        rows.append((os.path.relpath(name), h, n))
for name, h, n in rows:
    print(f"  {name:50s} {100.0 * h / n:6.1f}% of {n}")
pct = 100.0 * hit / total if total else 0.0
print(f"coverage: {folder}: {pct:.1f}% of {total} lines (bar {minimum:.0f}%)")
sys.exit(0 if pct >= minimum else 1)
PY
