#!/usr/bin/env bash
# Coverage-guided fuzzing of every decoder (fuzz/, cargo-fuzz and libFuzzer), outside the test
# suite: scripts/test.sh never runs it.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      # default: 60 s, every target
#
# Needs a nightly toolchain and a C++ compiler (libFuzzer is built from source); installs
# cargo-fuzz when it is missing. Builds the targets
# with debug assertions and overflow checks, then runs them one after the other, each for
# SECONDS on one core, with the corpus kept in fuzz/corpus/TARGET (seeded from
# fuzz/seeds/TARGET) and the target's dictionary from fuzz/dicts. Prints, per target, the
# executions, the corpus size and the coverage libFuzzer reports, and writes the same table
# to fuzz/target/fuzz-summary.md. A failing target keeps the input that failed in
# fuzz/artifacts/TARGET and makes the script exit 1 after the others have run.
#
# SANITIZER (default `none`): what cargo-fuzz instruments with. Ferrio's crates forbid unsafe
# code, so the default trades AddressSanitizer for roughly twice the executions; set
# SANITIZER=address to check the dependencies' unsafe code as well.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-60}
shift || true
sanitizer=${SANITIZER:-none}
toolchain=${FUZZ_TOOLCHAIN:-nightly}

if ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  echo "the fuzzers need a $toolchain toolchain: rustup toolchain install $toolchain" >&2
  exit 2
fi
if ! cargo "+$toolchain" fuzz --version >/dev/null 2>&1; then
  echo "==> installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$toolchain" fuzz list)
fi

dict_of() {
  case "$1" in
    engine_*) echo dicts/engine.dict ;;
    socketio_*) echo dicts/socketio.dict ;;
    msgpack_*) echo dicts/msgpack.dict ;;
    redis_*) echo dicts/redis.dict ;;
  esac
}

echo "==> building the targets (sanitizer: $sanitizer)"
cargo "+$toolchain" fuzz build --sanitizer "$sanitizer"

mkdir -p target/fuzz-logs
summary=target/fuzz-summary.md
{
  echo "Fuzzed on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git describe --always --dirty), $(rustc "+$toolchain" --version), sanitizer $sanitizer, ${seconds} s per target."
  echo
  echo "| target | executions | execs/s | corpus (files) | coverage (cov / ft) | result |"
  echo "|---|---|---|---|---|---|"
} >"$summary"

failed=0
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  seeds=()
  [ -d "seeds/$target" ] && seeds=("seeds/$target")
  dict=$(dict_of "$target")
  log="target/fuzz-logs/$target.log"
  echo "==> $target for ${seconds} s (log: fuzz/$log)"
  result=ok
  # -timeout: one input taking over 10 s is a hang worth reporting; -rss_limit_mb: likewise.
  if ! cargo "+$toolchain" fuzz run --sanitizer "$sanitizer" "$target" "corpus/$target" "${seeds[@]}" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    ${dict:+-dict=$dict} >"$log" 2>&1; then
    result="FAILED (see fuzz/$log and fuzz/artifacts/$target)"
    failed=1
  fi
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | tail -n 1 | grep -o '[0-9]*$' || true)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -n 1 | sed -E 's/cov: ([0-9]+) ft: ([0-9]+)/\1 \/ \2/' || true)
  files=$(find "corpus/$target" -type f | wc -l)
  printf '    executions %s, %s/s, corpus %s files, coverage %s: %s\n' \
    "${execs:-?}" "${rate:-?}" "$files" "${cov:-?}" "$result"
  echo "| $target | ${execs:-?} | ${rate:-?} | $files | ${cov:-?} | $result |" >>"$summary"
done

echo
cat "$summary"
exit "$failed"
