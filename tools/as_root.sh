# Sourced by tools/install.sh and tools/test.sh: apt_install PACKAGE... runs apt-get update and
# apt-get install as root, through sudo when we are not root and sudo exists. It fails, printing
# why on stdout, when neither is possible; under COVGAN_TEST_PLAN it only prints what it would do.

if [ "$(id -u)" = 0 ]; then
    as_root=""
elif command -v sudo >/dev/null 2>&1; then
    as_root="sudo"
else
    as_root="none"
fi

apt_install() {
    if [ "$as_root" = none ]; then
        echo "not root and no sudo"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "no apt-get on this machine"
        return 1
    fi
    if [ -n "${COVGAN_TEST_PLAN:-}" ]; then
        echo "would run: ${as_root:+$as_root }apt-get update && apt-get install $*"
        return 0
    fi
    # A fresh machine's package lists are empty: update first, every time.
    $as_root apt-get update -qq >&2 &&
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
