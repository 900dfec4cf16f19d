; spin.asm — prints one line then spins forever with interrupts off.
%include "common.inc"
main:
        PRINT l1
.spin:  jmp .spin
l1:     db "harness: spinning forever", 13, 10, 0
%include "footer.inc"
