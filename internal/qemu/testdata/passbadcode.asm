; passbadcode.asm — prints the pass marker but exits EXIT_TEST_FAIL (35).
%include "common.inc"
main:
        PRINT l1
        EXIT 0x11
l1:     db "FLUID-END pass", 13, 10, 0
%include "footer.inc"
