#!/usr/bin/env bash
# libferry.so exports the public API and nothing else: every strong symbol it defines is a C
# call (ferry_*) or a member of the public C++ API (ferry::, mooncake:: as the headers of
# include/ferry declare them) -- internals such as EngineImpl or the transports stay hidden.
# (Weak symbols are the standard library's templates, which have default visibility by design.)
set -euo pipefail
lib=$1
# (Here-strings, not pipes into grep -q: under pipefail an early exit of grep would make the
# writer fail with SIGPIPE and a present symbol look missing.)
strong=$(nm -DC --defined-only "$lib" | awk '$2 ~ /^[TDBR]$/' | cut -d' ' -f3-)
count=$(wc -l <<<"$strong")
bad=$(grep -vE '^(ferry_[a-z0-9_]+$|ferry::|mooncake::)' <<<"$strong" || true)
internal=$(grep -E '^ferry::(EngineImpl|[a-z_]+::)' <<<"$strong" | grep -v '^ferry::ext::' || true)
for needed in ferry_version ferry_submit_transfer 'ferry::TransferEngine::submitTransfer' 'ferry::Config::load' \
              'mooncake::TransferEngine::init' 'ferry::ext::probe'; do
  grep -q "^$needed" <<<"$strong" || { echo "libferry.so does not export $needed" >&2; exit 1; }
done
[ -z "$bad$internal" ] || { echo "libferry.so exports more than the public API:" >&2; echo "$bad$internal" | head -20 >&2; exit 1; }
echo "exports: $count public symbols, nothing else"
