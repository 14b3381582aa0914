#!/usr/bin/env bash
# Smoke run of the fuzz targets, for CI: installs cargo-fuzz when missing (pinned, --locked),
# builds every target in one `cargo fuzz build` (release, no sanitizer: the project's code is
# forbid(unsafe_code), and coverage-guided fuzzing is what finds its bugs), then runs each target
# for FUZZ_SMOKE_SECONDS (default 30; 0 builds only) over its committed corpus. Any crash, leak, timeout or
# out-of-memory fails the script; the failing input is left in fuzz/artifacts/<target>/.
#
# Stable Rust is enough: RUSTC_BOOTSTRAP=1 lets it accept the flags cargo-fuzz passes.
# New inputs found go to a temporary directory, so the committed corpus is not changed.
#
#   bash fuzz/smoke.sh                  # all targets
#   bash fuzz/smoke.sh config endpoint  # some
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
CARGO_FUZZ_VERSION=0.13.2
SECONDS_PER_TARGET=${FUZZ_SMOKE_SECONDS:-30}
export RUSTC_BOOTSTRAP=1 CARGO_TERM_COLOR=never

if ! command -v cargo >/dev/null 2>&1 && [[ -r $HOME/.cargo/env ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
if [[ $(cargo fuzz --version 2>/dev/null) != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
    echo "==> installing cargo-fuzz $CARGO_FUZZ_VERSION"
    cargo install cargo-fuzz --version "=$CARGO_FUZZ_VERSION" --locked --quiet
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

echo "==> cargo fuzz build -s none (${#targets[@]} targets)"
cargo fuzz build -s none
if ((SECONDS_PER_TARGET == 0)); then
    echo "==> built (FUZZ_SMOKE_SECONDS=0: no runs)"
    exit 0
fi

scratch=$(mktemp -d -t fuzz-smoke.XXXXXX)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
    echo "==> $target: ${SECONDS_PER_TARGET}s over corpus/$target"
    mkdir -p "$scratch/$target" "corpus/$target"
    log=$scratch/$target.log
    if ! cargo fuzz run -s none "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        echo "FAILED: $target (the input is in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
    grep -E '^(#[0-9]+[[:space:]]+(INITED|DONE)|stat::number_of_executed_units)' "$log" || true
done
echo "==> fuzz smoke: ${#targets[@]} targets OK"
