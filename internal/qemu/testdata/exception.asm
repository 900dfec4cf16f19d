; exception.asm — prints a (fake) CPU exception dump the way the kernel
; does, the fail marker, and exits EXIT_CPU_EXCEPTION (39).
%include "common.inc"
main:
        PRINT l1
        PRINT l2
        PRINT l3
        PRINT l4
        EXIT 0x13
l1:     db "*** CPU EXCEPTION 14 (page fault) err=0x00000002", 13, 10, 0
l2:     db "RIP=ffffffff80101234 CS=0008 RFLAGS=0000000000000002", 13, 10, 0
l3:     db "backtrace: 0xffffffff80101234 0xffffffff80100abc", 13, 10, 0
l4:     db "FLUID-END fail exception: page fault at 0xdeadbeef", 13, 10, 0
%include "footer.inc"
