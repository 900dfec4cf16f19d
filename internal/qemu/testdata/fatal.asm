; fatal.asm — what stage 2 does when it refuses a kernel: a FATAL line and
; EXIT_BOOT_ERROR (43), no end marker.
%include "common.inc"
main:
        PRINT l1
        PRINT l2
        EXIT 0x15
l1:     db "stage2: loading kernel", 13, 10, 0
l2:     db "stage2: FATAL: kernel header CRC mismatch", 13, 10, 0
%include "footer.inc"
