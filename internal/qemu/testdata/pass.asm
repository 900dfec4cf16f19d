; pass.asm — prints a line and the pass marker, exits with EXIT_PASS (33).
%include "common.inc"
main:
        PRINT hello
        PRINT done
        EXIT 0x10
hello:  db "harness: hello", 13, 10, 0
done:   db "FLUID-END pass", 13, 10, 0
%include "footer.inc"
