; nomarker.asm — exits with EXIT_PASS (33) but never prints the end marker.
%include "common.inc"
main:
        PRINT l1
        EXIT 0x10
l1:     db "harness: leaving without a marker", 13, 10, 0
%include "footer.inc"
