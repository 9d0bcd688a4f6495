# enospc_common.sh: sourced by test_enospc.sh and test_enospc_late.sh after common.sh (a full file
# system, issue 24 item 1): a 1 MiB tmpfs at $WORK/fs and the checks every case makes.
FS=$WORK/fs
# A hang is a failure: every job runs under a timeout (common.sh's run: exit 124).
RUN_TIMEOUT=40

mount_tmpfs() {
    if ! mount -t tmpfs -o size=1m strata-enospc "$FS" 2> mount.err; then
        skip "cannot mount a tmpfs here: $(cat mount.err)"
    fi
    trap 'umount "$FS" 2> /dev/null' EXIT
}

# expect_enospc WHAT DIR FILE RC [ORPHAN...]: the job failed as a full disk must: exit 1
# (not a hang, 124, nor a crash, 139), the message naming ENOSPC and FILE, neither FILE
# nor any ORPHAN left in DIR
expect_enospc() {
    local what=$1 dir=$2 file=$3 rc=$4 f
    shift 4
    [ "$rc" = 1 ] || fail "$what: exit $rc, not 1 (124 is a hang, 139 a crash): $(tail -3 err.txt)"
    grep -q "ENOSPC" err.txt && grep -q "$file" err.txt ||
        fail "$what: message names no ENOSPC and $file: $(cat err.txt)"
    for f in "$file" "$@"; do
        [ ! -e "$dir/$f" ] || fail "$what: orphan $f left"
    done
}

# fill_disk [KIB]: nothing left on the tmpfs but KIB (default 0) KiB, in $FS/filler
fill_disk() {
    local free
    free=$(df -k --output=avail "$FS" | tail -1)
    dd if=/dev/zero of="$FS/filler" bs=1k count=$((free - ${1:-0})) 2> /dev/null
}

# same_manifest WHAT: $FS/W's MANIFEST is W's, byte for byte (the previous commit)
same_manifest() {
    cmp -s "$FS/W/MANIFEST" W/MANIFEST || fail "$1: MANIFEST changed"
}

# unchanged WHAT: $FS/W is at its previous commit and fsck finds it clean
unchanged() {
    same_manifest "$1"
    run 1 fsck "$FS/W" --quiet > /dev/null 2>&1 || fail "$1: fsck after ENOSPC"
}
