#!/bin/sh
# Runs one hook inside its own mount and pid namespace (the builder starts
# us under `unshare --mount --propagation private --pid --fork --kill-child`).
# Every mount made here, by us or by the hook, disappears with the namespace
# when the hook ends or the build is killed, so there is no unmount code to
# forget and nothing can leak; every process the hook left behind dies with
# its pid namespace.
#
# usage: sandbox.sh host|target TARGET_ROOT HOOKS_DIR APT_ARCHIVES SHELL HOOK [ENV_FILE...]
set -eu
where=$1 target=$2 hooks=$3 apt_archives=$4 shell=$5 hook=$6
shift 6

if [ "$where" = target ]; then
    for d in proc sys dev tmp; do [ -d "$target/$d" ] || mkdir -p "$target/$d"; done
    mount -t proc proc "$target/proc"
    mount -t sysfs -o ro sysfs "$target/sys"
    mount --bind /dev "$target/dev"
    if [ -d "$target/dev/pts" ]; then mount --bind /dev/pts "$target/dev/pts"; fi
    mkdir -p "$target/tmp/in_target.d"
    mount --bind "$hooks" "$target/tmp/in_target.d"
    mount -o remount,bind,ro "$target/tmp/in_target.d"
    # /run is a fresh tmpfs for each hook: nothing a hook leaves there reaches the image.
    if [ -d "$target/run" ]; then mount -t tmpfs -o mode=0755 ooo-run "$target/run"; fi
    # The host's resolver for the length of the hook (as DIB swaps it in):
    # whatever the image has is moved aside and comes back afterwards — unless
    # the hook replaced the file itself (systemd-resolved does), then theirs stays.
    resolv="$target/etc/resolv.conf"
    saved="$target/etc/.resolv.conf.ooo-build"
    swapped=
    if [ -e /etc/resolv.conf ] && [ -d "$target/etc" ]; then
        if [ -e "$resolv" ] || [ -L "$resolv" ]; then mv "$resolv" "$saved"; fi
        cat /etc/resolv.conf > "$resolv"
        swapped=1
    fi
    # Downloaded packages persist on the host between builds, never in the image.
    if [ -d "$target/var/cache/apt/archives" ] && [ -n "$apt_archives" ]; then
        mount --bind "$apt_archives" "$target/var/cache/apt/archives"
    fi
    status=0
    chroot "$target" "$shell" /tmp/in_target.d/.ooo/run-hook "$hook" "$@" || status=$?
    if [ -n "$swapped" ]; then
        if [ -f "$resolv" ] && [ ! -L "$resolv" ] && cmp -s /etc/resolv.conf "$resolv"; then
            rm -f "$resolv"
            if [ -e "$saved" ] || [ -L "$saved" ]; then mv "$saved" "$resolv"; fi
        else
            rm -f "$saved"
        fi
    fi
    exit "$status"
else
    exec "$shell" "$hooks/.ooo/run-hook" "$hook" "$@"
fi
