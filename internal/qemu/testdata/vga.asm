; vga.asm — writes a line into VGA text memory, says "ready" on COM1, waits
; about two seconds (BIOS tick counter, IRQ 0 at ~18.2 Hz) so the host can
; stop the VM and read the screen, then passes.
%include "common.inc"
BDA_TICKS       equ 0x046C         ; BIOS data area: timer ticks since midnight
WAIT_TICKS      equ 36             ; ~2 s
main:
        mov ax, 0xB800             ; colour text mode buffer segment
        mov es, ax
        xor di, di
        mov ax, 0x0720             ; blank cell: space, grey on black
        mov cx, 80 * 25
        rep stosw                  ; clear the BIOS messages
        xor di, di
        mov si, msg
        mov ah, 0x1F               ; attribute: white on blue
.copy:  lodsb
        test al, al
        jz .copied
        stosw                      ; char + attribute
        jmp .copy
.copied:
        xor ax, ax
        mov es, ax
        PRINT ready
        sti                        ; let IRQ 0 advance the tick counter
        mov ebx, [BDA_TICKS]
        add ebx, WAIT_TICKS
.wait:  hlt
        cmp [BDA_TICKS], ebx
        jb .wait
        PRINT done
        EXIT 0x10
msg:    db "FLUID VGA TEST 42", 0
ready:  db "harness: vga ready", 13, 10, 0
done:   db "FLUID-END pass", 13, 10, 0
%include "footer.inc"
