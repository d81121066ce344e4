#!/usr/bin/env bash
# Creates a SoftHSM token for kyso development. Idempotent: running it again keeps the existing
# configuration, PINs and token.
#
#   hsm/create-dev-token.sh [--label LABEL] [DATA_DIR]
#
# DATA_DIR (default: $KYSO_DATA_DIR, else ./data) receives softhsm2.conf, tokens/, and the PIN
# files pin and so-pin (mode 600) when the PINs do not come from KYSO_HSM_PIN / KYSO_HSM_SO_PIN.
# Every token made here shares those PINs: this is a development setup, not a production one.
# The last line on stdout is the `export SOFTHSM2_CONF=...` to run (or: eval "$(...)").
set -euo pipefail

label="kyso-ca"
data_dir="${KYSO_DATA_DIR:-data}"

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --label) [ $# -ge 2 ] || usage 2; label="$2"; shift 2 ;;
        --label=*) label="${1#--label=}"; shift ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option: $1" >&2; usage 2 ;;
        *) data_dir="$1"; shift ;;
    esac
done

if [ -z "$label" ] || [ "${#label}" -gt 32 ]; then
    echo "token label must be 1 to 32 characters: '$label'" >&2
    exit 2
fi
command -v softhsm2-util >/dev/null || {
    echo "softhsm2-util not found: install softhsm2 (apt-get install softhsm2)" >&2
    exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$data_dir/tokens"
data_dir="$(cd "$data_dir" && pwd)"
conf="$data_dir/softhsm2.conf"
if [ ! -f "$conf" ]; then
    sed "s|@TOKENDIR@|$data_dir/tokens|" "$script_dir/softhsm2.conf.template" >"$conf"
    echo "wrote $conf" >&2
fi
export SOFTHSM2_CONF="$conf"

# A PIN from the environment, else from its file, else a new random one written to the file.
pin_from() {
    local var="$1" file="$2"
    if [ -n "${!var:-}" ]; then
        printf '%s' "${!var}"
    elif [ -s "$file" ]; then
        head -n 1 "$file" | tr -d '\r\n'
    else
        local pin
        pin="$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
        (umask 077 && printf '%s\n' "$pin" >"$file")
        chmod 600 "$file"
        echo "generated $file" >&2
        printf '%s' "$pin"
    fi
}
user_pin="$(pin_from KYSO_HSM_PIN "$data_dir/pin")"
so_pin="$(pin_from KYSO_HSM_SO_PIN "$data_dir/so-pin")"

existing_labels() {
    softhsm2-util --show-slots 2>/dev/null |
        sed -n 's/^[[:space:]]*Label:[[:space:]]*//p' | sed 's/[[:space:]]*$//'
}
# grep reads all its input (no -q): an early exit would SIGPIPE the pipeline under pipefail.
if existing_labels | grep -Fx -- "$label" >/dev/null; then
    echo "token '$label' already exists in $data_dir/tokens" >&2
else
    softhsm2-util --init-token --free --label "$label" --so-pin "$so_pin" --pin "$user_pin" >&2
    echo "created token '$label' in $data_dir/tokens" >&2
fi

echo "export SOFTHSM2_CONF=$conf"
