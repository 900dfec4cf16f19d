; exception.asm — prints a (fake) CPU exception dump the way the kernel
; does, the fail marker, and exits EXIT_CPU_EXCEPTION (39).
%include "common.inc"
main:
        PRINT l1
        PRINT l2
        PRINT l3
        PRINT l4
        EXIT 0x13
l1:     db "*** CPU EXCEPTION 14 (page fault) err=0x00000002 eip=0x00101234 cr2=0xdeadbeef", 13, 10, 0
l2:     db "eax=00000000 ebx=00005000 ecx=00000001 edx=000003f8", 13, 10, 0
l3:     db "backtrace: 0x00101234 0x00100abc", 13, 10, 0
l4:     db "FLUID-END fail exception: page fault at 0xdeadbeef", 13, 10, 0
%include "footer.inc"
