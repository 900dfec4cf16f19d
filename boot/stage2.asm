; stage2.asm — Fluid OS stage 2: real-mode loader, hands off to the kernel in
; 32-bit protected mode.
;
; Stage 1 loads this flat binary (at most STAGE2_MAX_SECTORS sectors) to
; STAGE2_LOAD_ADDR and jumps to its first byte with DL = BIOS boot drive,
; CS = DS = ES = SS = 0. It begins with a short jmp, the "FLS2" magic at
; offset STAGE2_MAGIC_OFFSET (stage 1 refuses to jump without it) and its own
; size in sectors at STAGE2_SECTORS_OFFSET (stage2hdr.inc); stage 1 reads
; exactly that many sectors. boot_info.stage2_sectors = that size. The last
; 4 bytes of stage 2 repeat the magic (stage2_trailer); code in the first
; sector checks them before running anything beyond it.
;
; What it does, in order (each step prints a "stage2: ..." line on COM1 and
; the screen):
;   1. COM1 = 16550 at 0x3F8, 115200 8N1, FIFO on, no interrupts. The
;      screen is written directly in text memory (B800h, or B000h in mode 7;
;      nothing in graphics modes), continuing below the BIOS's lines and
;      scrolling at the bottom: INT 10h teletype cost ~4 ms of QEMU time.
;   2. Checks INT 13h extensions (AH=41h).
;   3. A20: checks (wrap-around test), then BIOS INT 15h AX=2401h, then the
;      keyboard controller (command 0xD1, output port 0xDF), then fast A20
;      (port 0x92 bit 1); each attempt is verified by the wrap-around test.
;      The method is recorded in boot_info.a20_method (A20_*).
;   4. E820 memory map (INT 15h EAX=E820h) into boot_info.e820[], at most
;      BOOTINFO_E820_MAX entries, zero-length entries dropped.
;   5. Partition 1 (LBA, sector count) from the MBR partition table that the
;      BIOS loaded at 0x7C00 (entry at 0x7C00 + 446).
;   6. Kernel header sector (KERNEL_HDR_LBA): magic, version, hdr_size,
;      header CRC-32, load_addr >= KERNEL_LOAD_MIN, payload_size <= mem_size,
;      payload sectors <= KERNEL_MAX_SECTORS, entry in
;      [load_addr, load_addr + payload_size), load_addr + mem_size below
;      4 GiB and inside one usable E820 range.
;   7. Payload: INT 13h AH=42h reads of CHUNK_SECTORS sectors into the bounce
;      buffer, each chunk copied to load_addr and up in unreal mode (DS/ES
;      with 4 GiB limits, interrupts off while the limits are relied on;
;      unreal mode is re-entered before each use because a BIOS call may
;      reload the segment caches). A failed read is retried after a disk
;      reset (AH=00h), READ_TRIES attempts in all.
;   8. Zeroes the .bss tail: mem_size - payload_size bytes after the payload.
;   9. CRC-32 (IEEE, = Go's crc32.ChecksumIEEE) of the loaded bytes at
;      load_addr, compared with the header.
;  10. Fills boot_info, loads the flat GDT, enters 32-bit protected mode and
;      jumps to the header's entry point.
; Any failure: "stage2: FATAL: <reason>" on COM1 and the screen, then
; EXIT_BOOT_ERROR written to DEBUG_EXIT_PORT (QEMU exits 43), then cli/hlt
; forever. Stage 2 never jumps to a kernel it has not fully checked.
;
; Memory map (physical):
;   0x00000-0x004FF  IVT + BIOS data area (only the page 0 cursor at
;                    0x450/0x451 is written, to follow our screen output)
;   0x00500-0x00510  A20 wrap-around test bytes (restored after each test)
;   0x01000-0x01FFF  CRC-32 tables T0..T3 (4 x 256 dwords, slicing-by-4,
;                    built at run time)
;   0x02000-0x021FF  kernel header sector buffer
;   0x02200-0x02217  E820 scratch entry
;   0x05000-0x0533F  struct boot_info (BOOTINFO_ADDR, BOOTINFO_SIZE bytes)
;   0x05340-0x07BFF  stack (SP = 0x7C00 at entry, grows down)
;   0x07C00-0x07DFF  MBR as loaded by the BIOS (partition table read here)
;   0x08000-0x0FBFF  stage 2 (code, data, GDT)
;   0x10000-0x17FFF  bounce buffer for disk reads (CHUNK_SECTORS * 512)
;   0xB8000-0xB8F9F  text screen (0xB0000 in mode 7)
;   0x100000-...     kernel (load_addr from the header, >= KERNEL_LOAD_MIN)
; The GDT the kernel starts with lives inside stage 2 (0x8000..0xFBFF): the
; kernel must load its own GDT before it reuses memory below 1 MiB.
;
; Register use:
;   real mode: CS = DS = ES = SS = 0 throughout (all addresses here are
;     linear; putc loads ES with the text segment briefly and restores it);
;     FS/GS unused; DS/ES get 4 GiB limits in unreal mode only around the
;     copy, zero and CRC loops, with IF = 0 there.
;   ESI/ECX/EAX in crc32: pointer, length, running CRC; EBX/EDX: table
;     indices. In load_payload the loop state lives in memory (cur_lba,
;     left_sectors, left_bytes, dest) because INT 13h may clobber registers.
;   hand-off: 32-bit protected mode, paging off, IF = 0, DF = 0,
;     CS = 0x08 (flat code), DS = ES = FS = GS = SS = 0x10 (flat data),
;     EAX = BOOTINFO_MAGIC, EBX = BOOTINFO_ADDR, ESP = 0x7C00 (the kernel
;     must not rely on it), other registers undefined.

%include "bootinfo.inc"
%include "common.inc"
%include "stage2hdr.inc"


CRC_TABLE       equ 0x1000           ; T0; T1..T3 follow, 1 KiB each
CRC_T1          equ CRC_TABLE + 0x400
CRC_T2          equ CRC_TABLE + 0x800
CRC_T3          equ CRC_TABLE + 0xC00
HDR_BUF         equ 0x2000           ; one sector
HDR_BUF_SEG     equ HDR_BUF >> 4
E820_TMP        equ 0x2200           ; one E820 entry, scratch
STACK_TOP       equ 0x7C00
MBR_ADDR        equ 0x7C00
MBR_PART1       equ MBR_ADDR + 446   ; partition table entry 1
BOUNCE_ADDR     equ 0x10000
BOUNCE_SEG      equ BOUNCE_ADDR >> 4
CHUNK_SECTORS   equ 64               ; 32 KiB per INT 13h call
READ_TRIES      equ 3
A20_TEST_LO     equ 0x0500           ; 0000:0500 = linear 0x000500
A20_TEST_HI     equ 0x0510           ; FFFF:0510 = linear 0x100500
KBC_TIMEOUT     equ 0xFFFF           ; polls of port 0x64 before giving up
SEL_CODE32      equ 0x08
SEL_DATA32      equ 0x10
E820_SMAP       equ 0x534D4150       ; "SMAP"
BDA_VIDEO_MODE  equ 0x449            ; BIOS data area: current video mode
BDA_CURSOR_COL  equ 0x450            ; page 0 cursor column
BDA_CURSOR_ROW  equ 0x451            ; page 0 cursor row
BDA_CRTC_PORT   equ 0x463            ; CRTC index port (0x3D4 colour, 0x3B4 mono)
SCR_COLS        equ 80
SCR_ROWS        equ 25
SCR_BYTES       equ SCR_COLS * SCR_ROWS * 2
SCR_ATTR        equ 0x07             ; light grey on black

; Test hook (never set by the normal build): -DSTAGE2_TEST_A20_SKIP=<mask>
; makes stage 2 first turn A20 off through port 0x92 and then skip the A20
; methods in the mask (1 = BIOS, 2 = KBC, 4 = fast), so each method and the
; failure path can be exercised under QEMU.
%ifdef STAGE2_TEST_A20_SKIP
%define STAGE2_TEST_A20_OFF 1
%else
%define STAGE2_TEST_A20_SKIP 0
%endif

        bits 16
        org STAGE2_LOAD_ADDR

stage2_start:
        jmp short main
        nop
        dd STAGE2_MAGIC                  ; "FLS2" at offset 3 (stage 1 checks it)
%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if ($ - $$) != STAGE2_MAGIC_OFFSET + 4
%error "STAGE2_MAGIC must sit at offset STAGE2_MAGIC_OFFSET"
%endif
%endif
        dw STAGE2_SECTORS                ; our size: stage 1 reads this many
%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if ($ - $$) != STAGE2_SECTORS_OFFSET + 2
%error "the stage 2 size must sit at offset STAGE2_SECTORS_OFFSET"
%endif
%endif

main:
        cli
        xor ax, ax
        mov ds, ax
        mov es, ax
        mov ss, ax
        mov sp, STACK_TOP
        sti
        cld
        mov [boot_drive], dl             ; DL = boot drive from stage 1

        call serial_init
        call screen_init
        ; Stage 1 read as many sectors as our size field says; if the field
        ; were short, the tail of stage 2 would be missing: check the
        ; trailer at our very end before running any code beyond sector 1.
        cmp dword [stage2_trailer], STAGE2_MAGIC
        mov si, e_truncated
        jne die
        jmp main2

; ---------------------------------------------------------------------------
; First-sector code: everything main and die need before the trailer check
; (serial, screen, puts, die) lives here, within the first 512 bytes.

serial_init:
        COM1_INIT
        mov dl, (COM1_BASE + 4) & 0xFF
        mov al, 0x03
        out dx, al                       ; MCR: DTR + RTS
        ret

; screen_init: the screen is written directly (text memory), not through
; INT 10h: the BIOS teletype costs ~4 ms of QEMU time for our few lines.
; Only the 80x25 text modes the BIOS boots in are handled (BDA 0x449 mode
; 2/3: colour text at B800h; 7: mono at B000h); in any other mode stage 2
; writes to COM1 only. Output starts on the line after the BIOS cursor
; (BDA 0x450 column, 0x451 row of page 0).
screen_init:
        mov al, [BDA_VIDEO_MODE]
        mov bx, 0xB800
        cmp al, 2
        je .text
        cmp al, 3
        je .text
        mov bh, 0xB0
        cmp al, 7
        jne .done
.text:
        mov [scr_seg], bx
        movzx ax, byte [BDA_CURSOR_ROW]
        cmp byte [BDA_CURSOR_COL], 0
        je .row
        inc ax                           ; BIOS left a partial line
.row:
        mov dx, SCR_COLS * 2
        mul dx
        mov [scr_pos], ax                ; may be past the end: putc scrolls
.done:
        ret

; putc: AL = char to COM1 and the screen ('\n' = next line on the screen).
; Preserves all registers, 32-bit halves too.
putc:
        pushad
        mov ah, al
        COM1_SEND
        mov cx, [scr_seg]
        jcxz .done
        push es
        mov es, cx
        mov di, [scr_pos]
        cmp di, SCR_BYTES                ; full screen: scroll first
        jb .put
        push ax
        call scroll
        pop ax
.put:
        cmp al, 10
        je .newline
        mov ah, SCR_ATTR
        stosw
        jmp .store
.newline:
        mov ax, di                       ; DI = start of the next line
        xor dx, dx
        mov cx, SCR_COLS * 2
        div cx                           ; AX = row
        inc ax
        mul cx
        mov di, ax
        div cl                           ; AL = new row (AX < 25 * 160)
        cmp al, SCR_ROWS - 1
        jbe .bda
        mov al, SCR_ROWS - 1             ; the next char scrolls to line 24
.bda:
        mov [BDA_CURSOR_ROW], al         ; keep the BIOS cursor in step
        mov byte [BDA_CURSOR_COL], 0
.store:
        mov [scr_pos], di
        pop es
.done:
        popad
        ret

; scroll: ES = text segment; moves lines 1..24 up, blanks line 24, and
; sets DI = start of line 24. Clobbers AX, CX, SI.
scroll:
        push ds
        push es
        pop ds
        mov si, SCR_COLS * 2
        xor di, di
        mov cx, SCR_COLS * (SCR_ROWS - 1)
        rep movsw
        mov ax, (SCR_ATTR << 8) | ' '
        mov cx, SCR_COLS
        rep stosw
        pop ds
        mov di, SCR_COLS * 2 * (SCR_ROWS - 1)
        ret

; cursor_sync: move the hardware cursor to the next output cell (CRTC
; registers 0Eh/0Fh at the port in BDA 0x463), once, before leaving stage 2.
; Preserves all registers.
cursor_sync:
        pusha
        cmp word [scr_seg], 0
        je .done
        mov bx, [scr_pos]
        shr bx, 1                        ; cell index
        cmp bx, SCR_COLS * SCR_ROWS
        jb .set
        mov bx, SCR_COLS * (SCR_ROWS - 1) ; past the end: last line (scrolled later)
.set:
        mov dx, [BDA_CRTC_PORT]
        mov al, 0x0E                     ; cursor location high
        mov ah, bh
        out dx, ax
        mov al, 0x0F                     ; cursor location low
        mov ah, bl
        out dx, ax
.done:
        popa
        ret

; puts: SI = NUL-terminated string. Preserves all but SI (left past the NUL).
puts:
        push ax
.next:
        lodsb
        test al, al
        jz .done
        call putc
        jmp .next
.done:
        pop ax
        ret

newline:
        push ax
        mov al, 10
        call putc
        pop ax
        ret

; die: SI = reason. "stage2: FATAL: <reason>", exit 43, halt.
die:
        push si
        mov si, s_fatal
        call puts
        pop si
        call puts
die_end:
        call newline
        call cursor_sync
        mov eax, EXIT_BOOT_ERROR
        mov dx, DEBUG_EXIT_PORT
        out dx, eax                      ; QEMU isa-debug-exit: status 43
.halt:
        cli
        hlt
        jmp .halt

s_fatal:        db "stage2: FATAL: ", 0
e_truncated:    db "stage 2 is truncated (its size field is wrong); rebuild boot/stage2.asm", 0
        align 2
scr_seg:        dw 0                     ; text segment; 0 = no screen output
scr_pos:        dw 0                     ; byte offset of the next cell

first_sector_end:
%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if (first_sector_end - stage2_start) > SECTOR_SIZE
%error "stage 2's first-sector code (main .. die) must fit in 512 bytes"
%endif
%endif

main2:

        ; boot_info: all zero, then the fields known now.
        mov di, BOOTINFO_ADDR
        mov cx, BOOTINFO_SIZE
        xor al, al
        rep stosb
        movzx eax, byte [boot_drive]
        mov [BOOTINFO_ADDR + BI_OFF_BOOT_DRIVE], eax

        mov si, s_start
        call puts
        movzx eax, byte [boot_drive]
        call puthex8
        call newline

        ; INT 13h AH=41h: extensions present? in: BX = 0x55AA, DL = drive;
        ; out: CF clear, BX = 0xAA55, CX bit 0 = AH=42h supported.
        mov ah, 0x41
        mov bx, 0x55AA
        mov dl, [boot_drive]
        int 0x13
        mov si, e_noext
        jc die
        cmp bx, 0xAA55
        jne die
        test cl, 1
        jz die

        call build_crc_table
        call enable_a20
        call read_e820
        call read_part1
        call check_header
        call load_payload
        call finish_payload
        jmp handoff

; ---------------------------------------------------------------------------
; A20

; a20_on: ZF = 0 if A20 is enabled (0x000500 and 0x100500 are different
; bytes), ZF = 1 if addresses wrap at 1 MiB. Preserves all but flags.
a20_on:
        push ax
        push ds
        push es
        push si
        push di
        xor ax, ax
        mov ds, ax                       ; DS = 0x0000
        not ax
        mov es, ax                       ; ES = 0xFFFF
        mov si, A20_TEST_LO
        mov di, A20_TEST_HI
        mov al, [ds:si]
        mov ah, [es:di]
        push ax                          ; originals
        mov byte [ds:si], 0x00
        mov byte [es:di], 0xFF
        cmp byte [ds:si], 0xFF           ; ZF = 1: the write to 1 MiB+ wrapped
        pop ax
        mov [es:di], ah                  ; restore high first: if they alias,
        mov [ds:si], al                  ; the low original wins (mov keeps ZF)
        pop di
        pop si
        pop es
        pop ds
        pop ax
        ret

enable_a20:
%ifdef STAGE2_TEST_A20_OFF
        in al, 0x92                      ; test hook: A20 off via port 0x92
        and al, 0xFC                     ; bit 1 = A20, bit 0 = reset (keep 0)
        out 0x92, al
%endif
        mov byte [a20_method], A20_ALREADY_ON
        call a20_on
        jnz .done

%if !(STAGE2_TEST_A20_SKIP & 1)
        ; INT 15h AX=2401h: enable A20. out: CF clear and AH = 0 on success.
        mov byte [a20_method], A20_BIOS
        mov ax, 0x2401
        int 0x15
        call a20_on
        jnz .done
%endif

%if !(STAGE2_TEST_A20_SKIP & 2)
        ; 8042 keyboard controller: command 0xD1 (write output port), data
        ; 0xDF (A20 on, CPU reset line inactive).
        mov byte [a20_method], A20_KBC
        cli
        call kbc_wait
        mov al, 0xD1
        out 0x64, al
        call kbc_wait
        mov al, 0xDF
        out 0x60, al
        call kbc_wait
        sti
        mov cx, 0x100                    ; the 8042 may take a while: re-test
.kbc_poll:
        call a20_on
        jnz .done
        loop .kbc_poll
%endif

%if !(STAGE2_TEST_A20_SKIP & 4)
        ; Fast A20: System Control Port A (0x92) bit 1; never set bit 0
        ; (that resets the machine).
        mov byte [a20_method], A20_FAST
        in al, 0x92
        or al, 0x02
        and al, 0xFE
        out 0x92, al
        call a20_on
        jnz .done
%endif

        mov si, e_a20
        jmp die
.done:
        movzx eax, byte [a20_method]
        mov [BOOTINFO_ADDR + BI_OFF_A20_METHOD], eax
        mov si, s_a20
        call puts
        movzx bx, byte [a20_method]
        shl bx, 1
        mov si, [a20_names + bx]
        call puts
        jmp newline

; kbc_wait: poll the 8042 status port (0x64) until the input buffer is
; empty (bit 1 clear), at most KBC_TIMEOUT times (no 8042: reads 0xFF).
kbc_wait:
        push cx
        mov cx, KBC_TIMEOUT
.poll:
        in al, 0x64
        test al, 0x02
        jz .ok
        loop .poll
.ok:
        pop cx
        ret

; ---------------------------------------------------------------------------
; E820

read_e820:
        mov di, BOOTINFO_ADDR + BI_OFF_E820
        xor ebx, ebx                     ; continuation value: 0 = first call
        xor bp, bp                       ; entries kept
.next:
        ; Every call gets the same scratch buffer (like Linux: at least one
        ; BIOS assumes the buffer of the previous call); kept entries are
        ; copied to boot_info.
        mov dword [E820_TMP + 20], 1     ; ACPI 3.0 attributes: "valid" if the
                                         ; BIOS only writes 20 bytes
        push di
        mov di, E820_TMP
        ; INT 15h EAX=E820h: in: EBX = continuation, ECX = buffer size,
        ; EDX = "SMAP", ES:DI = buffer. out: CF clear, EAX = "SMAP",
        ; ECX = bytes written, EBX = next continuation (0 = last entry).
        ; CF set = unsupported (first call) or past the end.
        mov eax, 0xE820
        mov ecx, E820_ENTRY_SIZE
        mov edx, E820_SMAP
        int 0x15
        pop di
        jc .done
        cmp eax, E820_SMAP
        jne .done
        cmp ecx, 20
        jb .skip                         ; malformed
        mov eax, [E820_TMP + 8]          ; drop zero-length entries
        or eax, [E820_TMP + 12]
        jz .skip
        test byte [E820_TMP + 20], 1     ; ACPI 3.0: bit 0 clear = ignore entry
        jz .skip
        mov si, E820_TMP
        mov cx, E820_ENTRY_SIZE / 4
        rep movsd                        ; DS:SI -> ES:DI, DI to the next slot
        inc bp
        cmp bp, BOOTINFO_E820_MAX
        jae .full
.skip:
        test ebx, ebx
        jnz .next
        jmp .done
.full:
        test ebx, ebx
        jz .done
        mov byte [e820_truncated], 1
.done:
.stored:
        movzx eax, bp
        mov [BOOTINFO_ADDR + BI_OFF_E820_COUNT], eax
        mov si, s_e820
        call puts
        movzx eax, bp
        call putdec
        mov si, s_e820_tail
        call puts
        cmp byte [e820_truncated], 0
        je .msg_done
        mov si, s_e820_trunc
        call puts
.msg_done:
        jmp newline

; ---------------------------------------------------------------------------
; Partition 1 from the MBR the BIOS loaded at 0x7C00 (stage 1 never writes
; to it). Entry: +8 = first LBA, +12 = sector count.

read_part1:
        mov eax, [MBR_PART1 + 8]
        mov [BOOTINFO_ADDR + BI_OFF_PART1_LBA], eax
        mov eax, [MBR_PART1 + 12]
        mov [BOOTINFO_ADDR + BI_OFF_PART1_SECTORS], eax
        mov si, s_part1
        call puts
        mov eax, [MBR_PART1 + 8]
        call putdec
        mov si, s_part1_mid
        call puts
        mov eax, [MBR_PART1 + 12]
        call putdec
        mov si, s_part1_tail
        call puts
        jmp newline

; ---------------------------------------------------------------------------
; Kernel header

check_header:
        mov eax, KERNEL_HDR_LBA
        mov cx, 1
        mov bx, HDR_BUF_SEG
        call read_sectors

        mov si, e_magic
        cmp dword [HDR_BUF + KHDR_OFF_MAGIC], KHDR_MAGIC
        jne die
        mov si, e_version
        cmp dword [HDR_BUF + KHDR_OFF_VERSION], KHDR_VERSION
        jne die
        mov si, e_hdrsize
        cmp dword [HDR_BUF + KHDR_OFF_HDR_SIZE], SECTOR_SIZE
        jne die

        mov esi, HDR_BUF                 ; CRC-32 of header bytes 0..31
        mov ecx, KHDR_OFF_HDR_CRC
        call crc32
        mov edx, [HDR_BUF + KHDR_OFF_HDR_CRC]
        mov si, e_hdrcrc
        cmp eax, edx
        jne die_crc

        mov eax, [HDR_BUF + KHDR_OFF_LOAD_ADDR]
        mov [k_load], eax
        mov si, e_load
        cmp eax, KERNEL_LOAD_MIN
        jb die
        mov ecx, [HDR_BUF + KHDR_OFF_PAYLOAD_SIZE]
        mov [k_size], ecx
        mov edx, [HDR_BUF + KHDR_OFF_MEM_SIZE]
        mov [k_mem], edx
        mov si, e_empty
        test ecx, ecx
        jz die
        mov si, e_memsize
        cmp ecx, edx
        ja die
        add edx, eax                     ; end of the kernel image in memory
        mov si, e_wrap
        jc die
        mov [k_end], edx

        mov edx, ecx                     ; payload sectors = ceil(size / 512)
        shr edx, 9
        test ecx, SECTOR_SIZE - 1
        jz .whole
        inc edx
.whole:
        mov [k_sectors], edx
        mov si, e_sectors
        cmp edx, KERNEL_MAX_SECTORS
        ja die

        mov edx, [HDR_BUF + KHDR_OFF_ENTRY]
        mov [k_entry], edx
        mov si, e_entry
        cmp edx, eax                     ; entry >= load_addr
        jb die
        sub edx, eax
        cmp edx, ecx                     ; entry - load_addr < payload_size
        jae die

        mov eax, [HDR_BUF + KHDR_OFF_PAYLOAD_CRC]
        mov [k_crc], eax

        call check_fits_ram

        mov si, s_hdr
        call puts
        mov eax, [k_load]
        call puthex32
        mov si, s_hdr_entry
        call puts
        mov eax, [k_entry]
        call puthex32
        mov si, s_hdr_size
        call puts
        mov eax, [k_size]
        call putdec
        mov si, s_hdr_mem
        call puts
        mov eax, [k_mem]
        call putdec
        jmp newline

; check_fits_ram: [k_load, k_end) must lie inside one usable E820 range
; below 4 GiB. Skipped (with a note) when the BIOS gave no E820 map.
check_fits_ram:
        mov cx, [BOOTINFO_ADDR + BI_OFF_E820_COUNT]
        jcxz .no_map
        mov di, BOOTINFO_ADDR + BI_OFF_E820
.entry:
        cmp dword [di + 16], E820_USABLE
        jne .next
        cmp dword [di + 4], 0            ; base above 4 GiB: not for us
        jne .next
        mov eax, [di]                    ; base <= load?
        cmp eax, [k_load]
        ja .next
        add eax, [di + 8]                ; end = base + length (64-bit)
        mov edx, [di + 12]
        adc edx, 0
        jnz .fits                        ; range reaches past 4 GiB
        cmp eax, [k_end]
        jae .fits
.next:
        add di, E820_ENTRY_SIZE
        loop .entry
        mov si, e_noram
        jmp die
.no_map:
        mov si, s_noram_check
        call puts
        call newline
.fits:
        ret

; ---------------------------------------------------------------------------
; Payload

load_payload:
        mov dword [cur_lba], KERNEL_HDR_LBA + 1
        mov eax, [k_sectors]
        mov [left_sectors], eax
        mov eax, [k_size]
        mov [left_bytes], eax
        mov eax, [k_load]
        mov [dest], eax
.chunk:
        mov ecx, [left_sectors]
        test ecx, ecx
        jz .done
        cmp ecx, CHUNK_SECTORS
        jbe .size_ok
        mov ecx, CHUNK_SECTORS
.size_ok:
        mov [chunk], cx
        mov eax, [cur_lba]
        mov bx, BOUNCE_SEG
        call read_sectors                ; CX sectors at EAX -> BOUNCE_ADDR

        movzx ecx, word [chunk]          ; bytes = min(chunk * 512, left)
        shl ecx, 9
        cmp ecx, [left_bytes]
        jbe .bytes_ok
        mov ecx, [left_bytes]
.bytes_ok:
        sub [left_bytes], ecx
        cli                              ; unreal mode from here to sti
        call enter_unreal
        mov esi, BOUNCE_ADDR
        mov edi, [dest]
        mov edx, ecx
        shr ecx, 2
        a32 rep movsd                    ; DS:ESI -> ES:EDI, 4 GiB limits
        mov ecx, edx
        and ecx, 3
        a32 rep movsb
        sti
        mov [dest], edi

        movzx eax, word [chunk]
        add [cur_lba], eax
        sub [left_sectors], eax
        jmp .chunk
.done:
        mov eax, [k_sectors]
        mov [BOOTINFO_ADDR + BI_OFF_KERNEL_SECTORS], eax
        mov si, s_loaded
        call puts
        mov eax, [k_sectors]
        call putdec
        mov si, s_loaded_tail
        call puts
        jmp newline

; finish_payload: zero .bss, check the payload CRC-32 at load_addr.
finish_payload:
        cli                              ; unreal mode until handoff
        call enter_unreal
        mov edi, [k_load]                ; .bss = [load + size, load + mem)
        add edi, [k_size]
        mov ecx, [k_mem]
        sub ecx, [k_size]
        mov edx, ecx
        xor eax, eax
        shr ecx, 2
        a32 rep stosd
        mov ecx, edx
        and ecx, 3
        a32 rep stosb

        mov esi, [k_load]
        mov ecx, [k_size]
        call crc32
        mov edx, [k_crc]
        mov si, e_paycrc
        cmp eax, edx
        jne die_crc
        mov si, s_crc_ok
        call puts
        mov eax, edx
        call puthex32
        jmp newline

; read_sectors: read CX (1..CHUNK_SECTORS) sectors starting at LBA EAX to
; BX:0000. Retries after a disk reset; READ_TRIES attempts, then dies with
; the LBA and the BIOS status in the message. Clobbers AX, DX, SI.
read_sectors:
        mov [rd_lba], eax
        mov [rd_count], cx
        mov [rd_seg], bx
        mov byte [rd_tries], READ_TRIES
.try:
        mov byte [dap], 16               ; packet size
        mov byte [dap + 1], 0
        mov ax, [rd_count]
        mov [dap + 2], ax                ; sectors (a failed call may change it)
        mov word [dap + 4], 0            ; buffer offset
        mov ax, [rd_seg]
        mov [dap + 6], ax                ; buffer segment
        mov eax, [rd_lba]
        mov [dap + 8], eax               ; LBA low
        mov dword [dap + 12], 0          ; LBA high
        ; INT 13h AH=42h: extended read. in: DL = drive, DS:SI = DAP.
        ; out: CF clear = ok; CF set = error, AH = status.
        mov si, dap
        mov dl, [boot_drive]
        mov ah, 0x42
        int 0x13
        jnc .ok
        mov [rd_status], ah
        ; INT 13h AH=00h: reset disk system, DL = drive.
        xor ah, ah
        mov dl, [boot_drive]
        int 0x13
        dec byte [rd_tries]
        jnz .try
        jmp die_read
.ok:
        mov eax, [rd_lba]
        mov cx, [rd_count]
        ret

; ---------------------------------------------------------------------------
; Unreal mode: DS and ES keep base 0 but get 4 GiB limits, so 32-bit
; addresses (a32 prefixes) reach all memory from real mode. Call with IF = 0
; and keep IF = 0 while relying on it (a BIOS interrupt handler may reload
; the segment caches). Preserves all registers but flags.

enter_unreal:
        push eax
        push ds
        push es
        lgdt [gdt_desc]
        mov eax, cr0
        or al, 1
        mov cr0, eax                     ; protected mode (CS cache unchanged)
        jmp short .pm                    ; flush prefetch
.pm:
        mov ax, SEL_DATA32
        mov ds, ax                       ; loads the 4 GiB limit into the caches
        mov es, ax
        mov eax, cr0
        and al, 0xFE
        mov cr0, eax                     ; back to real mode
        pop es                           ; selector 0 again: base 0, the
        pop ds                           ; 4 GiB limit stays cached
        pop eax
        ret

; ---------------------------------------------------------------------------
; CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init and final xor
; 0xFFFFFFFF: Go's crc32.ChecksumIEEE), slicing-by-4: T0 is the classic
; byte table, Tk[i] = (T(k-1)[i] >> 8) ^ T0[T(k-1)[i] & 0xFF], so four
; input bytes cost four table lookups.

build_crc_table:
        mov di, CRC_TABLE                ; T0
        xor edx, edx                     ; i = 0..255
.entry:
        mov eax, edx
        mov cx, 8
.bit:
        shr eax, 1
        jnc .nox
        xor eax, 0xEDB88320
.nox:
        loop .bit
        stosd
        inc dx
        cmp dx, 256
        jb .entry
        ; T1..T3 from the table before each (DI now = CRC_T1).
        mov si, CRC_TABLE
        mov cx, 3 * 256
.slice:
        mov eax, [si]                    ; T(k-1)[i]
        movzx bx, al
        shl bx, 2
        shr eax, 8
        xor eax, [CRC_TABLE + bx]
        stosd                            ; Tk[i]
        add si, 4
        loop .slice
        ret

; crc32: EAX = CRC-32 of ECX bytes at linear ESI (ESI above 64 KiB needs
; unreal mode). Clobbers EBX, ECX, EDX, ESI.
crc32:
        mov eax, 0xFFFFFFFF
        push ecx
        shr ecx, 2                       ; whole dwords
        jz .tail
.dword:
        mov ebx, [esi]
        add esi, 4
        xor ebx, eax
        movzx eax, bl
        mov eax, [CRC_T3 + eax * 4]
        movzx edx, bh
        xor eax, [CRC_T2 + edx * 4]
        shr ebx, 16
        movzx edx, bl
        xor eax, [CRC_T1 + edx * 4]
        movzx edx, bh
        xor eax, [CRC_TABLE + edx * 4]
        dec ecx
        jnz .dword
.tail:
        pop ecx
        and ecx, 3                       ; 0..3 bytes left
        jz .done
.byte:
        movzx ebx, byte [esi]
        inc esi
        xor bl, al
        shr eax, 8
        xor eax, [CRC_TABLE + ebx * 4]
        dec ecx
        jnz .byte
.done:
        not eax
        ret

; ---------------------------------------------------------------------------
; Hand-off: boot_info, GDT, protected mode, jump to the header's entry.

handoff:
        mov dword [BOOTINFO_ADDR + BI_OFF_MAGIC], BOOTINFO_MAGIC
        mov dword [BOOTINFO_ADDR + BI_OFF_VERSION], BOOTINFO_VERSION
        mov dword [BOOTINFO_ADDR + BI_OFF_STAGE2_LBA], STAGE2_LBA
        mov dword [BOOTINFO_ADDR + BI_OFF_STAGE2_SECTORS], STAGE2_SECTORS
        mov dword [BOOTINFO_ADDR + BI_OFF_KERNEL_LBA], KERNEL_HDR_LBA
        mov eax, [k_load]
        mov [BOOTINFO_ADDR + BI_OFF_KERNEL_LOAD], eax
        mov eax, [k_size]
        mov [BOOTINFO_ADDR + BI_OFF_KERNEL_SIZE], eax
        mov eax, [k_mem]
        mov [BOOTINFO_ADDR + BI_OFF_KERNEL_MEM], eax
        mov eax, [k_entry]
        mov [BOOTINFO_ADDR + BI_OFF_KERNEL_ENTRY], eax

        mov si, s_jump
        call puts
        mov eax, [k_entry]
        call puthex32
        call newline
        call cursor_sync

        cli
        lgdt [gdt_desc]
        mov eax, cr0
        or al, 1                         ; PE; paging stays off
        mov cr0, eax
        jmp dword SEL_CODE32:pm_entry    ; loads CS = 0x08, 32-bit code

        bits 32
pm_entry:
        mov ax, SEL_DATA32
        mov ds, ax
        mov es, ax
        mov fs, ax
        mov gs, ax
        mov ss, ax
        mov esp, STACK_TOP
        mov eax, BOOTINFO_MAGIC
        mov ebx, BOOTINFO_ADDR
        jmp [k_entry]                    ; the header's entry point
        bits 16

; ---------------------------------------------------------------------------
; Failure

; die_crc: SI = reason, EDX = CRC from the header, EAX = computed CRC.
die_crc:
        push eax
        push edx
        push si
        mov si, s_fatal
        call puts
        pop si
        call puts
        mov si, s_crc_hdr
        call puts
        pop eax
        call puthex32
        mov si, s_crc_got
        call puts
        pop eax
        call puthex32
        mov si, s_crc_tail
        call puts
        jmp die_end

; die_read: the read at rd_lba failed READ_TRIES times.
die_read:
        mov si, s_fatal
        call puts
        mov si, e_read
        call puts
        mov eax, [rd_lba]
        call putdec
        mov si, e_read_count
        call puts
        movzx eax, word [rd_count]
        call putdec
        mov si, e_read_status
        call puts
        movzx eax, byte [rd_status]
        call puthex8
        mov si, e_read_tail
        call puts
        jmp die_end

; ---------------------------------------------------------------------------
; Number output (putc, puts, newline are in the first-sector block).

; puthex32: "0x" and 8 hex digits of EAX. puthex8: "0x" and 2 digits of AL.
puthex32:
        push eax
        push cx
        mov cx, 8
        jmp puthex
puthex8:
        push eax
        push cx
        shl eax, 24
        mov cx, 2
puthex:
        push eax
        mov al, '0'
        call putc
        mov al, 'x'
        call putc
        pop eax
.digit:
        rol eax, 4
        push eax
        and al, 0x0F
        add al, '0'
        cmp al, '9'
        jbe .out
        add al, 'a' - '9' - 1
.out:
        call putc
        pop eax
        loop .digit
        pop cx
        pop eax
        ret

; putdec: EAX as unsigned decimal. Preserves all registers.
putdec:
        push eax
        push ecx
        push edx
        mov ecx, 10
        push word 0xFFFF                 ; end marker
.div:
        xor edx, edx
        div ecx
        push dx
        test eax, eax
        jnz .div
.out:
        pop ax
        cmp ax, 0xFFFF
        je .end
        add al, '0'
        call putc
        jmp .out
.end:
        pop edx
        pop ecx
        pop eax
        ret

; ---------------------------------------------------------------------------
; Data

        align 8
gdt:
        dq 0                             ; 0x00 null
        dq 0x00CF9A000000FFFF            ; 0x08 code: base 0, 4 GiB, 32-bit, ring 0
        dq 0x00CF92000000FFFF            ; 0x10 data: base 0, 4 GiB, read/write
gdt_end:
gdt_desc:
        dw gdt_end - gdt - 1
        dd gdt

a20_names:
        dw 0, s_a20_already, s_a20_bios, s_a20_kbc, s_a20_fast

s_start:        db "stage2: started, boot drive ", 0
s_a20:          db "stage2: A20 on (", 0
s_a20_already:  db "already on)", 0
s_a20_bios:     db "BIOS INT 15h)", 0
s_a20_kbc:      db "keyboard controller)", 0
s_a20_fast:     db "fast A20 port 0x92)", 0
s_e820:         db "stage2: E820 memory map: ", 0
s_e820_tail:    db " entries", 0
s_e820_trunc:   db " (more ignored: table full)", 0
s_part1:        db "stage2: partition 1: LBA ", 0
s_part1_mid:    db ", ", 0
s_part1_tail:   db " sectors", 0
s_noram_check:  db "stage2: no E820 map: kernel placement not checked against RAM", 0
s_hdr:          db "stage2: header ok: load ", 0
s_hdr_entry:    db " entry ", 0
s_hdr_size:     db " size ", 0
s_hdr_mem:      db " mem ", 0
s_loaded:       db "stage2: kernel payload read: ", 0
s_loaded_tail:  db " sectors", 0
s_crc_ok:       db "stage2: payload CRC-32 ok ", 0
s_jump:         db "stage2: entering kernel at ", 0
s_crc_hdr:      db " (header says ", 0
s_crc_got:      db ", computed ", 0
s_crc_tail:     db "); rebuild the disk image", 0

e_noext:        db "no INT 13h extensions (AH=41h): the BIOS cannot do LBA reads from this drive", 0
e_a20:          db "cannot enable A20 (BIOS INT 15h, keyboard controller and port 0x92 all failed)", 0
e_magic:        db "no kernel header at LBA 64 (magic is not FLUD); rebuild the disk image", 0
e_version:      db "kernel header version is not 1; stage 2 and the image builder disagree, rebuild both", 0
e_hdrsize:      db "kernel header hdr_size is not 512; rebuild the disk image", 0
e_hdrcrc:       db "kernel header CRC-32 mismatch: header sector corrupted", 0
e_load:         db "kernel load_addr below 1 MiB; fix the kernel link address", 0
e_empty:        db "kernel payload_size is 0; rebuild the kernel", 0
e_memsize:      db "kernel payload_size > mem_size in the header; rebuild the disk image", 0
e_wrap:         db "kernel load_addr + mem_size wraps past 4 GiB", 0
e_sectors:      db "kernel payload too large for the disk area before partition 1 (max 32703 sectors)", 0
e_entry:        db "kernel entry point outside [load_addr, load_addr + payload_size)", 0
e_noram:        db "kernel [load_addr, load_addr + mem_size) is not inside usable RAM (E820); give the VM more memory", 0
e_paycrc:       db "kernel payload CRC-32 mismatch: payload corrupted", 0
e_read:         db "disk read error at LBA ", 0
e_read_count:   db " (", 0
e_read_status:  db " sectors, INT 13h status ", 0
e_read_tail:    db ") after 3 tries; the disk image is damaged or too short", 0

; Variables (zero-initialised in the binary, so stage 2 is re-entrant-safe
; only in the sense that every field is written before it is read).
boot_drive:     db 0
a20_method:     db 0
e820_truncated: db 0
rd_tries:       db 0
rd_status:      db 0
        align 4
rd_lba:         dd 0
rd_count:       dw 0
rd_seg:         dw 0
chunk:          dw 0
        align 4
k_load:         dd 0
k_entry:        dd 0
k_size:         dd 0
k_mem:          dd 0
k_end:          dd 0
k_sectors:      dd 0
k_crc:          dd 0
cur_lba:        dd 0
left_sectors:   dd 0
left_bytes:     dd 0
dest:           dd 0
        align 4
dap:            times 16 db 0

stage2_trailer: dd STAGE2_MAGIC         ; last 4 bytes: main checks them
stage2_end:
STAGE2_SECTORS equ (stage2_end - stage2_start + SECTOR_SIZE - 1) / SECTOR_SIZE
%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if (stage2_end - stage2_start) > STAGE2_MAX_SECTORS * SECTOR_SIZE
%error "stage2 is larger than STAGE2_MAX_SECTORS * 512 bytes: stage 1 would load only part of it"
%endif
%endif
