; floor.asm — the boot-time benchmark floor: the least a boot sector can do.
;
; A 512-byte MBR (0x55AA at 510) that sets up COM1 exactly as stage 2 does,
; writes "floor: ok" on it and exits QEMU through isa-debug-exit with
; EXIT_PASS (status 33). The bench target boots it next to the real image:
; the difference in QEMU wall time is what stages 1 and 2 and the kernel cost
; on top of QEMU start-up and the BIOS. On real hardware it halts.

%include "bootinfo.inc"

; ASM_CHECKS: 1 when NASM really assembles. In dependency-only mode
; (nasm -M, __?PASS?__ = 0) or preprocess-only mode (3) labels and $ have
; no values, so the size and offset assertions are skipped there.
%if __?PASS?__ != 0 && __?PASS?__ != 3
%define ASM_CHECKS 1
%else
%define ASM_CHECKS 0
%endif

COM1_BASE       equ 0x3F8

        bits 16
        org 0x7C00

start:
        cli
        xor ax, ax
        mov ds, ax
        mov ss, ax
        mov sp, 0x7C00
        cld

        ; COM1: 115200 8N1, FIFO on, no interrupts (same as stage 2).
        mov dx, COM1_BASE + 1
        out dx, al                       ; IER = 0 (AL = 0)
        mov dl, (COM1_BASE + 3) & 0xFF
        mov al, 0x80
        out dx, al                       ; LCR: DLAB = 1
        mov dl, COM1_BASE & 0xFF
        mov al, 1
        out dx, al                       ; divisor low: 115200 / 1
        inc dx
        xor al, al
        out dx, al                       ; divisor high
        mov dl, (COM1_BASE + 3) & 0xFF
        mov al, 0x03
        out dx, al                       ; LCR: 8N1
        dec dx
        mov al, 0xC7
        out dx, al                       ; FCR: FIFO on, clear

        mov si, msg
.next:
        lodsb
        test al, al
        jz .exit
        mov ah, al
        mov dx, COM1_BASE + 5            ; LSR
        mov cx, 0xFFFF                   ; bounded wait for THR empty
.wait:
        in al, dx
        test al, 0x20
        jnz .send
        loop .wait
.send:
        mov al, ah
        mov dl, COM1_BASE & 0xFF
        out dx, al
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
