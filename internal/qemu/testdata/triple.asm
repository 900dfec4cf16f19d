; triple.asm — triple fault: load an empty IVT/IDT (limit 0) and raise an
; interrupt; every delivery faults, the CPU shuts down and resets, and QEMU
; with -no-reboot exits 0.
%include "common.inc"
main:
        PRINT l1
        lidt [empty_idt]
        int3
.spin:  jmp .spin
empty_idt:
        dw 0                       ; limit 0: no vector is valid
        dd 0
l1:     db "harness: about to triple fault", 13, 10, 0
%include "footer.inc"
