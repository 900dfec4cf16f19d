; floor.asm — the boot-time benchmark floor: the least a boot sector can do.
;
; A 512-byte MBR (0x55AA at 510) that sets up COM1 exactly as stage 2 does,
; writes "floor: ok" on it and exits QEMU through isa-debug-exit with
; EXIT_PASS (status 33). The bench target boots it next to the real image:
; the difference in QEMU wall time is what stages 1 and 2 and the kernel cost
; on top of QEMU start-up and the BIOS. On real hardware it halts.

%include "bootinfo.inc"
%include "common.inc"



        bits 16
        org 0x7C00

start:
        BOOT_SECTOR_ENTRY
        cld

        ; COM1: 115200 8N1, FIFO on, no interrupts (same as stage 2).
        COM1_INIT

        mov si, msg
.next:
        lodsb
        test al, al
        jz .exit
        mov ah, al
        COM1_SEND
        jmp .next

.exit:
        mov eax, EXIT_PASS
        mov dx, DEBUG_EXIT_PORT
        out dx, eax                      ; QEMU isa-debug-exit: status 33
.halt:
        hlt
        jmp .halt

msg:    db "floor: ok", 10, 0

%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if ($ - $$) > 510
%error "floor.asm does not fit in one boot sector"
%endif
%endif
        times 510 - ($ - $$) db 0
        dw 0xAA55
