#!/bin/sh
# build-pgo-modules.sh OUT_DIR SRC_DIR PROF_DIR: every module as the PGO
# variant (internal/build UseFlags, with PROF_DIR/<module>.profdata, the
# indexed profiles `go tool mage pgo` leaves in build/profile/indexed/),
# otherwise as build-modules.sh (module64-0x1000.ld, --emit-relocs), for
# pipeline.sh: BOLT on top of PGO. SRC_DIR is a copy of modules/ and all
# three directories must lie under /tmp (the scratch rootfs binds only /tmp).
set -e
W=${BOLTWORK:-/tmp/boltwork}
out=$1; S=$2; P=$3
mkdir -p "$out"
cd "$W"
CF="--target=x86_64-unknown-none-elf -std=c11 -ffreestanding -fno-stack-protector -fpie -mno-red-zone -O2 -fno-asynchronous-unwind-tables -Wall -Wextra -Werror -g -I$S/include"
for m in expr fib hash interp lz matrix sort; do
  UF="-fprofile-instr-use=$P/$m.profdata -Werror=profile-instr-out-of-date -Werror=profile-instr-unprofiled -Werror=profile-instr-missing -mllvm -enable-ext-tsp-block-placement=1 -mllvm -unroll-allow-peeling=false"
  objs=""
  for s in $S/$m/*.c $S/lib/runtime.c; do
    o=$out/$m.$(basename $s .c).o
    ./boltfs clang $CF $UF -c $s -o $o
    objs="$objs $o"
  done
  ./boltfs ld.lld -m elf_x86_64 -pie -z notext --no-dynamic-linker -nostdlib --build-id=none \
    -e fluid_main --emit-relocs -T src/modules/module64-0x1000.ld -o $out/$m.elf $objs
done
