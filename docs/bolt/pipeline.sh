#!/bin/sh
# pipeline.sh IN_DIR OUT_DIR [llvm-bolt options...]: for every module ELF in
# IN_DIR (build-modules.sh with module64-0x1000.ld): record an LBR-like edge
# profile with the edgeprof QEMU plugin, convert it with perf2bolt --pa,
# optimize with llvm-bolt, and measure both ELFs (guest instructions and
# taken branches inside the module, checks ok) with the plugin again.
set -e
W=${BOLTWORK:-/tmp/boltwork}
in=$1; out=$2; shift 2
mkdir -p $out
[ $# -gt 0 ] || set -- -reorder-blocks=ext-tsp -split-functions -use-old-text -no-huge-pages
plug="$W/edgeprof.so,base=0x10000000,size=0x1000000"
for m in ${MODULES:-expr fib hash interp lz matrix sort}; do
  qemu-x86_64 -plugin $plug,link=0x1000,out=$out/$m.pa $W/modrun -p $in/$m.elf > $out/$m.run.txt 2> $out/$m.prof.txt
  $W/boltfs perf2bolt $in/$m.elf --pa -p $out/$m.pa -o $out/$m.fdata > $out/$m.perf2bolt.txt 2>&1
  $W/boltfs llvm-bolt $in/$m.elf -o $out/$m.bolt.elf -data=$out/$m.fdata -dyno-stats "$@" > $out/$m.bolt.txt 2>&1 || { echo "$m: llvm-bolt failed: $(grep -v '^ *#' $out/$m.bolt.txt | tail -3)"; continue; }
  qemu-x86_64 -plugin $plug,link=0x1000,out=$out/$m.bolt.pa $W/modrun -p $out/$m.bolt.elf > $out/$m.bolt.run.txt 2> $out/$m.bolt.prof.txt || true
  b=$(grep -o 'insns=[0-9]* .*taken=[0-9]*' $out/$m.prof.txt); a=$(grep -o 'insns=[0-9]* .*taken=[0-9]*' $out/$m.bolt.prof.txt)
  grep -q 'status=' $out/$m.bolt.run.txt || a="refused: $(grep -v '^edgeprof' $out/$m.bolt.prof.txt | head -1)"
  echo "$m: O2 [$b $(grep -o 'status=[a-zA-Z]*' $out/$m.run.txt)]  BOLT [$a $(grep -o 'status=[a-zA-Z]*' $out/$m.bolt.run.txt)] mismatching: $(grep -o 'mismatching.*' $out/$m.perf2bolt.txt)"
done
