#!/usr/bin/env bash
# Runs every cargo-fuzz target in this directory for a bounded time.
#
#   ./run.sh [seconds-per-target]      (default 60)
#
# Needs a nightly toolchain (libFuzzer instrumentation) and cargo-fuzz; it
# installs cargo-fuzz from crates.io when missing. New corpus entries go to
# corpus/<target> (git-ignored); committed seeds in seeds/<target> are read
# too. A crash leaves its input in artifacts/<target>/ and makes the script
# exit non-zero after the remaining targets have run.
set -euo pipefail

secs="${1:-60}"
case "$secs" in
    '' | *[!0-9]*) echo "usage: $0 [seconds-per-target]" >&2; exit 2 ;;
esac

# cargo-fuzz would otherwise look for ./fuzz under the enclosing workspace
# root, so every call names this directory explicitly.
cd "$(dirname "$0")"

if ! rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    echo "run.sh: a nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

here="$(pwd)"
mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$here")
if [ "${#targets[@]}" -eq 0 ]; then
    echo "run.sh: no fuzz targets found" >&2
    exit 2
fi

failed=()
for t in "${targets[@]}"; do
    echo "=== fuzz target $t: ${secs}s ==="
    mkdir -p "corpus/$t"
    dirs=("corpus/$t")
    if [ -d "seeds/$t" ]; then
        dirs+=("seeds/$t")
    fi
    if ! cargo +nightly fuzz run --fuzz-dir "$here" "$t" "${dirs[@]}" -- \
        -max_total_time="$secs" -print_final_stats=1; then
        failed+=("$t")
    fi
done

if [ "${#failed[@]}" -gt 0 ]; then
    echo "run.sh: FAILED targets: ${failed[*]} (inputs under artifacts/)" >&2
    exit 1
fi
echo "run.sh: all ${#targets[@]} target(s) ran ${secs}s without findings"
