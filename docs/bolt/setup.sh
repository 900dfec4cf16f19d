#!/bin/sh
# setup.sh — the BOLT experiments' workbench (docs/BOLT.md), outside the
# project's build: a scratch Debian trixie rootfs with bolt-18 (the pinned
# toolchain's lock is not touched), qemu-user for the edge-profile plugin,
# the host harness and the plugin. Work dir: $BOLTWORK (/tmp/boltwork).
set -e
W=${BOLTWORK:-/tmp/boltwork}
ROOTFS=${BOLT_ROOTFS:-/tmp/bolt-rootfs}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$W"
if [ ! -x "$ROOTFS/usr/lib/llvm-18/bin/llvm-bolt" ]; then
  mmdebstrap --variant=apt --include=clang-18,lld-18,llvm-18,bolt-18,libclang-rt-18-dev \
    --aptopt='Acquire::Languages "none"' trixie "$ROOTFS"
fi
command -v qemu-x86_64 >/dev/null || apt-get install -y qemu-user
# boltfs TOOL ARGS: run an LLVM 18 tool (llvm-bolt, perf2bolt, clang, ld.lld, ...) of the scratch rootfs
cat > "$W/boltfs" <<EOT
#!/bin/sh
t=\$1; shift
exec bwrap --ro-bind $ROOTFS / --bind /tmp /tmp --dev /dev --proc /proc --chdir "\$PWD" --unshare-net --setenv LC_ALL C.UTF-8 /usr/lib/llvm-18/bin/\$t "\$@"
EOT
chmod +x "$W/boltfs"
gcc -O2 -Wall -Wextra -o "$W/modrun" "$REPO/docs/bolt/modrun.c"
gcc -O2 -Wall -Wextra -shared -fPIC -fvisibility=hidden -o "$W/edgeprof.so" "$REPO/docs/bolt/edgeprof.c"
# The module sources, and module.ld adapted for x86_64 and BOLT: .rela.dyn
# instead of .rel.dyn, the image at 0x1000 instead of 0 (llvm-bolt crashes on
# an image at 0), and __fluid_image_start absolute (else BOLT takes it for an
# alias of the first function and moves it with that function).
rm -rf "$W/src"; mkdir -p "$W/src"; cp -r "$REPO/modules" "$W/src/"
sed -e 's/\*(.rel.dyn .rel.\*)/*(.rela.dyn .rela.*)/' -e 's/^\t.rel.dyn :/\t.rela.dyn :/' \
    "$W/src/modules/module.ld" > "$W/src/modules/module64.ld"
sed -e 's/^\t\. = 0;/\t. = 0x1000;/' -e 's/^\t__fluid_image_start = \.;/\t__fluid_image_start = ABSOLUTE(.);/' \
    "$W/src/modules/module64.ld" > "$W/src/modules/module64-0x1000.ld"
cp "$REPO/docs/bolt/instr-rt.c" "$W/instr-rt.c"
cd "$W"
echo "setup: $W ready ($("$W/boltfs" llvm-bolt --version | grep -m1 'LLVM version'))"
