#!/bin/sh
# build-modules.sh OUT_DIR LDSCRIPT [extra clang flags]: every module for
# x86_64 (freestanding, -fpie, -mno-red-zone, -O2 unless overridden), linked
# -pie -z notext with --emit-relocs (BOLT's relocation mode needs them).
# Compiles with the scratch rootfs's clang 18.1.8 (Debian 1:18.1.8-18+b1, the
# same release as the pinned toolchain).
set -e
W=${BOLTWORK:-/tmp/boltwork}
cd "$W"
out=$1; lds=$2; shift 2
mkdir -p "$out"
CF="--target=x86_64-unknown-none-elf -std=c11 -ffreestanding -fno-stack-protector -fpie -mno-red-zone -O2 -fno-asynchronous-unwind-tables -Wall -Wextra -Werror -g -Isrc/modules/include"
for m in expr fib hash interp lz matrix sort; do
  objs=""
  for s in src/modules/$m/*.c src/modules/lib/runtime.c; do
    o=$out/$m.$(basename $s .c).o
    ./boltfs clang $CF "$@" -c $s -o $o
    objs="$objs $o"
  done
  ./boltfs ld.lld -m elf_x86_64 -pie -z notext --no-dynamic-linker -nostdlib --build-id=none \
    -e fluid_main --emit-relocs -T src/modules/$lds -o $out/$m.elf $objs
done
