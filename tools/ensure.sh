#!/bin/sh
# Installs what ooo needs on a fresh Debian machine that has only Node and
# npm: bun (from npm), the project's packages and Debian's tools. Quick when
# everything is already there; safe to run again.
#
# usage: ensure.sh [build|test]
#   build  what building images and deploying them need (npm run build-image,
#          npm run demo)
#   test   that and the test toolchain: the reference tools the tests compare
#          with (diskimage-builder, os-apply-config, Glance, Swift, …) and
#          what the tests and benchmarks drive (npm test, .ci/run); the default
set -eu
cd "$(dirname "$0")/.."

mode=${1:-test}
case $mode in
    build | test) ;;
    *)
        printf 'usage: %s [build|test]\n' "$0" >&2
        exit 2
        ;;
esac

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

# Building: the builder's namespaces, debian-minimal's base root, disk
# images (GPT, ext4, GRUB) and qcow2.
need mmdebstrap mmdebstrap
need unshare util-linux
need setpriv util-linux
need mkfs.ext4 e2fsprogs
need debugfs e2fsprogs
need sfdisk fdisk
need qemu-img qemu-utils
need grub-mkimage grub-common
need /usr/lib/grub/i386-pc/boot.img grub-pc-bin
# Golden disks boot under UEFI too: GRUB's EFI image on a FAT32 EFI system
# partition made with mkfs.vfat and mtools.
need /usr/lib/grub/x86_64-efi/kernel.img grub-efi-amd64-bin
need mkfs.vfat dosfstools
need mcopy mtools
# busybox-base needs a *static* busybox; Debian's plain busybox is dynamic.
need readelf binutils
# -t ramdisk: the initramfs's archives and their compression.
need cpio cpio
need zstd zstd
if ! { [ -x /bin/busybox ] && ! readelf -d /bin/busybox 2>/dev/null | grep -q NEEDED; }; then
    missing="$missing busybox-static"
fi
# Deploying: the qemu driver's nodes, and the helper that carries each guest
# connection to the deployer's services on loopback.
need qemu-system-x86_64 qemu-system-x86
need socat socat
# Bare metal: BMCs through ipmitool, DHCP/TFTP by dnsmasq, Debian's iPXE for
# network boot; UEFI machines (and qemu nodes in UEFI mode) run OVMF.
need ipmitool ipmitool
need dnsmasq dnsmasq-base
need /usr/lib/ipxe/snponly.efi ipxe
need /usr/lib/ipxe/qemu/efi-virtio.rom ipxe-qemu
need /usr/share/OVMF/OVMF_CODE_4M.fd ovmf
# A stack's own CA and its services' certificates (deployer/stack-tls.ts).
need openssl openssl

if [ "$mode" = test ]; then
    # Reference tools the tests and benchmarks compare ooo with.
    need disk-image-create python3-diskimage-builder
    need debootstrap debootstrap
    need sudo sudo
    need os-apply-config python3-os-apply-config
    need glance python3-glanceclient
    # Our store client is tested against a real Glance (test/support/glance.ts).
    need /usr/lib/python3/dist-packages/glance/cmd/api.py python3-glance
    # The image store's Swift backend is tested against a one-node Swift on
    # loopback (test/support/swift.ts); tempauth keeps its tokens in memcached.
    need swift-proxy-server swift-proxy
    need swift-account-server swift-account
    need swift-container-server swift-container
    need swift-object-server swift-object
    need memcached memcached
    # bench/store.ts compares downloads with curl as a reference client (and
    # measures what one sha256 stream costs alone with openssl, above).
    need curl curl
    # The canonical tar's tests set capabilities and extended attributes.
    need getcap libcap2-bin
    need setfattr attr
    # The reproducibility test clones the repository twice, builds in each
    # on one CPU or all, and says what differs between the two builds.
    need git git
    need taskset util-linux
    need diffoscope diffoscope-minimal
    # builder/disk/grub.test.ts runs grub.cfg in GRUB built as a program.
    need grub-emu grub-emu
    # Signed images are checked against minisign itself, both ways.
    need minisign minisign
    # The bare-metal test bed (test/support/testbed.ts): machines powered
    # through BMCs (ipmi_sim; the Redfish front is checked with sushy).
    need ipmi_sim openipmi
    need /usr/lib/python3/dist-packages/sushy/__init__.py python3-sushy
    # The embedded Ironic (deployer/ironic/): Debian's all-in-one `ironic`
    # and ironic-dbsync (ironic-common; it starts no service when installed),
    # and genisoimage, with which the conductor makes a JSON config drive an
    # ISO. Only a stack with an embedded Ironic needs them: ooo says so.
    need ironic ironic-common
    need genisoimage genisoimage
    # Nothing in ooo uses these yet (they were installed from the start).
    need mkfs.erofs erofs-utils
    need rsync rsync
fi

if [ -n "$missing" ]; then
    say "installing Debian packages:$missing"
    as_root apt-get update -q >/dev/null
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
