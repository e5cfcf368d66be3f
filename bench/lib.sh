# bench/lib.sh: what the bench scripts share. Source it after setting NAME (for messages):
#   bench_need CMD:PACKAGE...   installs the Debian packages of missing commands
#   bench_binary                sets BIN: $FRONTGATE_BIN, or a release build (once)
#   bench_free_port             prints a free loopback port below the ephemeral range
#   bench_post_script           writes $TMP/post.lua, a wrk script for POST /api/items with a
#                               small JSON body (needs bench_tmp first)
#   bench_tmp                   sets TMP, a private copy of BIN in it, and PIDS=(); every pid
#                               added to PIDS (and its children) is stopped on exit, and TMP is
#                               removed unless KEEP_TMP=1
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
die() { echo "$NAME: $*" >&2; exit 1; }
say() { echo "== $*" >&2; }

bench_need() {
    local need=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}; pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || need+=("$pkg")
    done
    ((${#need[@]})) || return 0
    say "installing ${need[*]}"
    local sudo=""; [[ $(id -u) == 0 ]] || sudo="sudo"
    $sudo apt-get update -qq || die "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null || die "apt-get install ${need[*]} failed"
}

bench_binary() {
    if [[ -n ${FRONTGATE_BIN:-} ]]; then
        BIN=$FRONTGATE_BIN
    else
        say "building frontgate (release)"
        (cd "$ROOT" && cargo build --release -p frontgate >&2) || die "cargo build failed"
        local target_dir=${CARGO_TARGET_DIR:-$ROOT/target}
        [[ $target_dir == /* ]] || target_dir=$ROOT/$target_dir
        BIN=$target_dir/release/frontgate
    fi
    [[ -x $BIN ]] || die "no frontgate binary at $BIN"
}

bench_cleanup() {
    local pid kids
    for pid in "${PIDS[@]}"; do
        kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        # shellcheck disable=SC2086
        kill -KILL "$pid" $kids 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "$NAME: kept $TMP" >&2; else rm -rf "$TMP"; fi
}

bench_tmp() {
    TMP=$(mktemp -d "${TMPDIR:-/tmp}/frontgate-$NAME.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
    # Run a private copy: a shared CARGO_TARGET_DIR may see the binary rebuilt by another checkout.
    cp "$BIN" "$TMP/frontgate"
    BIN=$TMP/frontgate
}

# A free loopback port, below the kernel's ephemeral range: a port from that range, checked
# free now, can be taken as the source port of a load connection before the server binds it.
# Called as $(bench_free_port), in a subshell, so the ports already handed out are kept in a
# file in TMP (call bench_tmp first), not in a variable.
bench_free_port() {
    local lo p used=$TMP/.ports
    [[ -n ${TMP:-} ]] || die "bench_free_port needs bench_tmp first"
    read -r lo _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || lo=32768
    ((lo > 12000)) || die "the ephemeral port range starts at $lo: no room below it"
    for _ in $(seq 1 200); do
        p=$((10000 + RANDOM % (lo - 10000)))
        grep -qx "$p" "$used" 2>/dev/null && continue
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p" >>"$used"
            echo "$p"
            return 0
        fi
    done
    die "no free loopback port found"
}

bench_post_script() {
    printf '%s\n' 'wrk.method = "POST"' 'wrk.body = "{\"name\":\"bench item\"}"' \
        'wrk.headers["Content-Type"] = "application/json"' >"$TMP/post.lua"
}
