; stage1.asm — Fluid OS stage 1: the MBR boot code (bytes 0..439 of LBA 0).
;
; The BIOS loads LBA 0 to 0x0000:0x7C00 and jumps here with DL = boot drive.
; Stage 1 reads the first sector of stage 2 (STAGE2_LBA) to STAGE2_LOAD_ADDR
; with an INT 13h AH=42h extended read, checks the "FLS2" magic at
; STAGE2_MAGIC_OFFSET and stage 2's size field (stage2hdr.inc: sectors,
; 1..STAGE2_MAX_SECTORS), reads that many sectors, and jumps to
; STAGE2_LOAD_ADDR with DL = boot drive.
;
; This file assembles to exactly 440 bytes: the image builder writes it into
; bytes 0..439 of the MBR; the disk signature (440..445), the partition table
; (446..509) and the 0x55AA signature (510..511) are written by go-diskfs.
; Nothing here reads or relies on bytes 440..511.
;
; Failure (no INT 13h extensions, read error, no stage 2 magic, bad size):
; print "stage1: FATAL: <reason>" on the screen (INT 10h teletype) and COM1,
; write EXIT_BOOT_ERROR to the QEMU isa-debug-exit port (harmless on real
; hardware: nothing listens on port 0xf4), then halt forever.
;
; Memory used: 0x7C00..0x7DB7 (this code), stack below 0x7C00,
; 0x8000..0x8000+STAGE2_MAX_SECTORS*512 at most (stage 2).
;
; Register contract with stage 2: DL = BIOS boot drive, CS = DS = ES = SS = 0,
; SP = 0x7C00, IF = 1, DF = 0.

%include "bootinfo.inc"
%include "common.inc"
%include "stage2hdr.inc"


STAGE1_SIZE     equ 440          ; MBR bytes we own (disk signature follows)
READ_TRIES      equ 3            ; attempts for the stage 2 read

        bits 16
        org 0x7C00

start:
        BOOT_SECTOR_ENTRY
        jmp 0x0000:.cs_ok        ; some BIOSes enter at 07C0:0000: normalise CS
.cs_ok:
        sti
        cld
        mov [boot_drive], dl     ; DL = boot drive from the BIOS

        ; INT 13h AH=41h: check extensions present.
        ;   in:  BX = 0x55AA, DL = drive
        ;   out: CF clear, BX = 0xAA55, CX bit 0 = "fixed disk access
        ;        subset" (AH=42h etc.) supported; CF set = no extensions.
        mov ah, 0x41
        mov bx, 0x55AA
        int 0x13
        mov si, msg_noext
        jc fail
        cmp bx, 0xAA55
        jne fail
        test cl, 1
        jz fail

        ; Read the first sector of stage 2, check its magic and its size
        ; field, then read the whole of it (the size covers sector 1 too).
        mov ax, 1
        call read_stage2
        cmp dword [STAGE2_LOAD_ADDR + STAGE2_MAGIC_OFFSET], STAGE2_MAGIC
        mov si, msg_magic
        jne fail
        mov ax, [STAGE2_LOAD_ADDR + STAGE2_SECTORS_OFFSET]
        dec ax                   ; 1..MAX -> 0..MAX-1; 0 -> 0xFFFF
        cmp ax, STAGE2_MAX_SECTORS - 1
        mov si, msg_size
        ja fail
        inc ax
        call read_stage2
        mov dl, [boot_drive]     ; DL = boot drive for stage 2
        jmp 0x0000:STAGE2_LOAD_ADDR

; read_stage2: read AX sectors from STAGE2_LBA to STAGE2_LOAD_ADDR, READ_TRIES
; attempts with a disk reset in between; dies on failure.
read_stage2:
        mov di, READ_TRIES
        mov bp, ax
.try:
        ; The DAP count is rewritten on every attempt: a failed call may
        ; have stored the number of sectors actually transferred in it.
        mov [dap_count], bp
        ; INT 13h AH=42h: extended read.
        ;   in:  DL = drive, DS:SI = Disk Address Packet
        ;   out: CF clear = ok; CF set = error, AH = status
        mov si, dap
        mov dl, [boot_drive]
        mov ah, 0x42
        int 0x13
        jnc .ok
        ; INT 13h AH=00h: reset the disk system (DL = drive), then retry.
        xor ah, ah
        mov dl, [boot_drive]
        int 0x13
        dec di
        jnz .try
        mov si, msg_read
        jmp fail
.ok:
        ret

; fail: SI = reason (NUL-terminated). Prints "stage1: FATAL: <reason>" on
; COM1 and the screen, exits QEMU with EXIT_BOOT_ERROR, halts. Never returns.
fail:
        push si
        ; COM1: 115200 8N1, FIFO on, no interrupts.
        COM1_INIT
        mov si, msg_prefix
        call puts
        pop si
        call puts
        mov si, msg_nl
        call puts
        mov eax, EXIT_BOOT_ERROR
        mov dx, DEBUG_EXIT_PORT
        out dx, eax              ; QEMU isa-debug-exit: exits (v<<1)|1 = 43
.halt:
        cli
        hlt
        jmp .halt

; puts: SI = NUL-terminated string -> COM1 and screen. '\n' goes out as
; "\n" on COM1 and CR LF on the screen. Clobbers AX, BX, CX, DX, SI.
puts:
        lodsb
        test al, al
        jz .done
        mov ah, al
        COM1_SEND
        cmp al, 10
        jne .screen
        mov al, 13
        call tty
        mov al, 10
.screen:
        call tty
        jmp puts
.done:
        ret

; tty: AL = char. INT 10h AH=0Eh teletype output (BH = page 0, BL = colour
; in graphics modes); no return value.
tty:
        mov ah, 0x0E
        mov bx, 0x0007
        int 0x10
        ret

msg_prefix:     db "stage1: FATAL: ", 0
msg_noext:      db "no INT 13h extensions (BIOS too old or not a disk)", 0
msg_read:       db "cannot read stage 2 (INT 13h AH=42h failed)", 0
msg_magic:      db "no stage 2 (FLS2) at LBA 1", 0
msg_size:       db "stage 2 size field out of range", 0
msg_nl:         db 10, 0

boot_drive:     db 0

        align 4
; Disk Address Packet for INT 13h AH=42h.
dap:
        db 16                    ; packet size
        db 0                     ; reserved
dap_count:
        dw STAGE2_MAX_SECTORS    ; sectors to read
        dw STAGE2_LOAD_ADDR - STAGE2_LOAD_SEG * 16 ; buffer offset
        dw STAGE2_LOAD_SEG       ; buffer segment
        dq STAGE2_LBA            ; start LBA

%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if ($ - $$) > STAGE1_SIZE
%error "stage1 is larger than 440 bytes: it would overwrite the disk signature and partition table"
%endif
%endif
        times STAGE1_SIZE - ($ - $$) db 0
