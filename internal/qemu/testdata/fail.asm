; fail.asm — a failing in-kernel test: fail marker, EXIT_TEST_FAIL (35).
%include "common.inc"
main:
        PRINT l1
        PRINT l2
        EXIT 0x11
l1:     db "[ktest] FAIL harness_demo: 1 != 2", 13, 10, 0
l2:     db "FLUID-END fail test: 1 test failed", 13, 10, 0
%include "footer.inc"
