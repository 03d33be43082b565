#!/usr/bin/env bash
# libferry.so exports the public API and nothing else: every strong symbol it defines is a C
# call (ferry_*) or a member of the public C++ API (ferry::, mooncake:: as the headers of
# include/ferry declare them) -- internals such as EngineImpl or the transports stay hidden.
# (Weak symbols are the standard library's templates, which have default visibility by design.)
set -euo pipefail
lib=$1
mapfile -t strong < <(nm -DC --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/' | cut -d' ' -f3-)
bad=$(printf '%s\n' "${strong[@]}" | grep -vE '^(ferry_[a-z0-9_]+$|ferry::|mooncake::)' || true)
internal=$(printf '%s\n' "${strong[@]}" | grep -E '^ferry::(EngineImpl|[a-z_]+::)' | grep -v '^ferry::ext::' || true)
for needed in ferry_version ferry_submit_transfer 'ferry::TransferEngine::submitTransfer' 'ferry::Config::load' \
              'mooncake::TransferEngine::init' 'ferry::ext::probe'; do
  printf '%s\n' "${strong[@]}" | grep -q "^$needed" || { echo "libferry.so does not export $needed" >&2; exit 1; }
done
[ -z "$bad$internal" ] || { echo "libferry.so exports more than the public API:" >&2; echo "$bad$internal" | head -20 >&2; exit 1; }
echo "exports: ${#strong[@]} public symbols, nothing else"
