#!/bin/sh
# instr-pipeline.sh OBJ_DIR OUT_DIR: BOLT instrumentation without Linux.
# For every module (objects in OBJ_DIR from build-modules.sh, plus an empty
# _fini so BOLT has a DT_FINI to hook):
#   1. llvm-bolt -instrument with instr-rt.a (no system calls)  -> .own.elf
#   2. run it; DT_FINI called like fluid_profile_dump copies the counters
#      out (the guest's part)                                    -> .counters
#   3. llvm-bolt -instrument with BOLT's own runtime (same counter layout),
#      run on the host with the guest's counters loaded, DT_FINI writes the
#      fdata (the host's part)                                   -> .fdata
#   4. llvm-bolt -data=.fdata (layout opts), then measure like pipeline.sh.
set -e
W=${BOLTWORK:-/tmp/boltwork}
in=$1; out=$2
mkdir -p $out
LD="$W/boltfs ld.lld -m elf_x86_64 -pie -z notext --no-dynamic-linker -nostdlib --build-id=none -e fluid_main --emit-relocs -T $W/src/modules/module64-0x1000.ld"
printf 'void _fini(void) {}\n' > $out/fini.c
$W/boltfs clang --target=x86_64-unknown-none-elf -ffreestanding -fpie -mno-red-zone -O2 -c $out/fini.c -o $out/fini.o
$W/boltfs clang --target=x86_64-unknown-none-elf -ffreestanding -fpie -mno-red-zone -O2 -c $W/instr-rt.c -o $out/instr-rt.o
rm -f $out/instr-rt.a; $W/boltfs llvm-ar rcs $out/instr-rt.a $out/instr-rt.o
plug="$W/edgeprof.so,base=0x10000000,size=0x1000000"
for m in ${MODULES:-expr fib hash interp lz matrix sort}; do
  $LD -o $out/$m.elf $in/$m.*.o $out/fini.o
  $W/boltfs llvm-bolt $out/$m.elf -o $out/$m.own.elf -instrument --no-huge-pages \
    --runtime-instrumentation-lib=../../../..$out/instr-rt.a > $out/$m.own.txt 2>&1
  MODRUN_COUNTERS=$out/$m.counters qemu-x86_64 -plugin $plug,out=$out/$m.own.pa $W/modrun $out/$m.own.elf > $out/$m.own.run.txt 2> $out/$m.own.prof.txt
  $W/boltfs llvm-bolt $out/$m.elf -o $out/$m.real.elf -instrument --no-huge-pages \
    --instrumentation-binpath=$out/$m.real.elf --instrumentation-file=$out/$m.fdata > $out/$m.real.txt 2>&1
  LIGHT=1 MODRUN_SETCOUNTERS=$out/$m.counters MODRUN_FINI=1 $W/modrun $out/$m.real.elf > $out/$m.real.run.txt
  $W/boltfs llvm-bolt $out/$m.elf -o $out/$m.bolt.elf -data=$out/$m.fdata -dyno-stats \
    -reorder-blocks=ext-tsp -split-functions -use-old-text -no-huge-pages > $out/$m.bolt.txt 2>&1
  qemu-x86_64 -plugin $plug,out=$out/$m.base.pa $W/modrun $out/$m.elf > /dev/null 2> $out/$m.base.prof.txt
  qemu-x86_64 -plugin $plug,link=0x1000,out=$out/$m.bolt.pa $W/modrun -p $out/$m.bolt.elf > $out/$m.bolt.run.txt 2> $out/$m.bolt.prof.txt || true
  echo "$m: O2 [$(grep -o 'insns=[0-9]* .*taken=[0-9]*' $out/$m.base.prof.txt)] instrumented(own rt) [$(grep -o 'insns=[0-9]*' $out/$m.own.prof.txt) $(grep -o 'status=[a-zA-Z]*' $out/$m.own.run.txt)] counters=$(stat -c %s $out/$m.counters)B fdata=$(wc -l < $out/$m.fdata)l BOLT(packed) [$(grep -o 'insns=[0-9]* .*taken=[0-9]*' $out/$m.bolt.prof.txt) $(grep -o 'status=[a-zA-Z]*' $out/$m.bolt.run.txt)]"
done
