#!/bin/sh
# Installs what ooo needs on a fresh Debian machine that has only Node and
# npm: bun (from npm), the project's packages, and the Debian tools the
# builder, the image tests and the reference comparisons use. Quick when
# everything is already there; safe to run again.
set -eu
cd "$(dirname "$0")/.."

say() { printf 'ensure: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v bun >/dev/null 2>&1; then
    say "installing bun from npm"
    npm install -g bun >/dev/null 2>&1 || as_root npm install -g bun
fi

if [ ! -d node_modules ] || [ bun.lock -nt node_modules ]; then
    say "installing JavaScript dependencies (bun install --frozen-lockfile)"
    bun install --frozen-lockfile
    touch node_modules
fi

# Debian packages: program to check -> package that provides it.
missing=""
need() { command -v "$1" >/dev/null 2>&1 || [ -e "$1" ] || missing="$missing $2"; }
need readelf binutils
need mmdebstrap mmdebstrap
need unshare util-linux
need setpriv util-linux
need mkfs.ext4 e2fsprogs
need mkfs.erofs erofs-utils
need sfdisk fdisk
need qemu-img qemu-utils
need qemu-system-x86_64 qemu-system-x86
need grub-mkimage grub-common
need /usr/lib/grub/i386-pc/boot.img grub-pc-bin
# Golden disks boot under UEFI too: GRUB's EFI image on a FAT32 EFI system
# partition made with mkfs.vfat and mtools; OVMF boots it in ooo test-image.
need /usr/lib/grub/x86_64-efi/kernel.img grub-efi-amd64-bin
need mkfs.vfat dosfstools
need mcopy mtools
need /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
# builder/disk/grub.test.ts runs grub.cfg in GRUB built as a program.
need grub-emu grub-emu
need debugfs e2fsprogs
# busybox-base needs a *static* busybox; Debian's plain busybox is dynamic.
if ! { [ -x /bin/busybox ] && ! readelf -d /bin/busybox 2>/dev/null | grep -q NEEDED; }; then
    missing="$missing busybox-static"
fi
need getcap libcap2-bin
need setfattr attr
need disk-image-create python3-diskimage-builder
need debootstrap debootstrap
need os-apply-config python3-os-apply-config
need glance python3-glanceclient
# Our store client is tested against a real Glance (test/support/glance.ts).
need /usr/lib/python3/dist-packages/glance/cmd/api.py python3-glance
# bench/store.ts compares downloads with curl as a reference client.
need curl curl
# bench/store.ts: what one sha256 stream costs alone, beside the store.
need openssl openssl
# The image store's Swift backend is tested against a one-node Swift on
# loopback (test/support/swift.ts); tempauth keeps its tokens in memcached.
need swift-proxy-server swift-proxy
need swift-account-server swift-account
need swift-container-server swift-container
need swift-object-server swift-object
need memcached memcached
need zstd zstd
need rsync rsync
need socat socat
need sudo sudo
if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    as_root apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
