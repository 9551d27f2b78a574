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
    # The host's resolver for the length of the hook; the image keeps its own file.
    if [ -f "$target/etc/resolv.conf" ] && [ ! -L "$target/etc/resolv.conf" ] && [ -e /etc/resolv.conf ]; then
        mount --bind /etc/resolv.conf "$target/etc/resolv.conf"
    fi
    # Downloaded packages persist on the host between builds, never in the image.
    if [ -d "$target/var/cache/apt/archives" ] && [ -n "$apt_archives" ]; then
        mount --bind "$apt_archives" "$target/var/cache/apt/archives"
    fi
    exec chroot "$target" "$shell" /tmp/in_target.d/.ooo/run-hook "$hook" "$@"
else
    exec "$shell" "$hooks/.ooo/run-hook" "$hook" "$@"
fi
