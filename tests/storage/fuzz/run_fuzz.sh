#!/usr/bin/env bash
# Builds the WAL fuzz target with clang++ and libFuzzer (+ ASan/UBSan) and runs
# it for a bounded time over the committed seed corpus.
#   usage: run_fuzz.sh SOURCE_ROOT WORK_DIR SECONDS
# Exits 77 (ctest SKIP_RETURN_CODE) when clang++ or -fsanitize=fuzzer is not
# available, so the test skips cleanly with the project's default g++ build.
set -euo pipefail
src=$1
work=$2
secs=$3
CXX_FUZZ=${CXX_FUZZ:-clang++}

if ! command -v "$CXX_FUZZ" >/dev/null 2>&1; then
  echo "run_fuzz: $CXX_FUZZ not found; skipping the fuzz run"
  exit 77
fi
mkdir -p "$work"
printf 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }\n' \
  > "$work/probe.cc"
if ! "$CXX_FUZZ" -fsanitize=fuzzer "$work/probe.cc" -o "$work/probe" >/dev/null 2>&1; then
  echo "run_fuzz: $CXX_FUZZ cannot link -fsanitize=fuzzer; skipping the fuzz run"
  exit 77
fi

# Headers are included as "layer/file.h": expose each layer through a symlink.
mkdir -p "$work/include"
for layer in base raft storage; do
  ln -sfn "$src/src/$layer" "$work/include/$layer"
done
flags=(-std=c++20 -O1 -gline-tables-only -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -I"$work/include")
objs=()
pids=()
for f in "$src"/src/storage/{crc32c,posix_file_system,fault_file_system,wal_format,wal,snapshot_store}.cc \
         "$src/tests/storage/fuzz/wal_fuzz.cc"; do
  o="$work/$(basename "$f" .cc).o"
  "$CXX_FUZZ" "${flags[@]}" -c "$f" -o "$o" &
  objs+=("$o")
  pids+=($!)
  # At most two compilers at a time (the machine is shared).
  if (( ${#pids[@]} == 2 )); then
    for p in "${pids[@]}"; do wait "$p"; done
    pids=()
  fi
done
for p in "${pids[@]}"; do wait "$p"; done
"$CXX_FUZZ" "${flags[@]}" "${objs[@]}" -o "$work/wal_fuzz"

# New inputs go to a scratch corpus; the committed seeds are only read.
rm -rf "$work/corpus"
mkdir -p "$work/corpus"
"$work/wal_fuzz" -max_total_time="$secs" -max_len=16384 -rss_limit_mb=2048 -timeout=10 \
  -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" "$src/tests/storage/fuzz/corpus"
