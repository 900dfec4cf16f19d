; stage2.asm — Fluid OS stage 2: real-mode loader, hands off to the x86_64
; kernel in 64-bit long mode. This file is the entry, the order of the steps and
; the memory map; each job lives in boot/stage2/<job>.inc (below).
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
; the screen; the file that does it in brackets):
;   1. COM1 = 16550 at 0x3F8, 115200 8N1, FIFO on, no interrupts; the screen
;      is written directly in text memory [console.inc].
;   2. Checks INT 13h extensions (AH=41h) [main2, here]; builds the CRC-32
;      tables [crc32.inc].
;   3. A20: wrap-around test, then BIOS INT 15h AX=2401h, the keyboard
;      controller, fast A20 (port 0x92); boot_info.a20_method [a20.inc].
;   4. E820 memory map into boot_info.e820[] [e820.inc].
;   5. Partition 1 (LBA, sector count) from the MBR partition table that the
;      BIOS loaded at 0x7C00 [check.inc].
;   6. Kernel header sector (KERNEL_HDR_LBA): magic, version, hdr_size,
;      header CRC-32, load_addr >= KERNEL_LOAD_MIN, payload_size <= mem_size,
;      payload sectors <= KERNEL_MAX_SECTORS, entry in
;      [load_addr, load_addr + payload_size), load_addr + mem_size below
;      4 GiB and inside one usable E820 range [check.inc].
;   7. Payload: INT 13h AH=42h reads of CHUNK_SECTORS sectors into the bounce
;      buffer (retried after a disk reset, READ_TRIES attempts), each chunk
;      copied to load_addr and up in unreal mode [payload.inc, unreal.inc].
;   8. Zeroes the .bss tail: mem_size - payload_size bytes after the payload.
;   9. CRC-32 (IEEE, = Go's crc32.ChecksumIEEE) of the loaded bytes at
;      load_addr, compared with the header [payload.inc, crc32.inc].
;  10. CPUID: long mode, NX and PAE, else "this CPU has no long mode"
;      [longmode.inc].
;  11. Fills boot_info, loads the GDT, enters 32-bit protected mode, builds
;      the boot page tables (identity 0..4 GiB and KERNEL_VMA -> 0..1 GiB,
;      2 MiB pages), PAE, EFER.LME | NXE, paging on, 64-bit code, and jumps
;      to the header's (physical) entry point [handoff.inc, longmode.inc].
; Any failure: "stage2: FATAL: <reason>" on COM1 and the screen, then
; EXIT_BOOT_ERROR written to DEBUG_EXIT_PORT (QEMU exits 43), then cli/hlt
; forever [die in console.inc, die_crc/die_read in fail.inc]. Invariant:
; stage 2 never jumps to a kernel it has not fully checked — every check
; above either passes or ends in die*, which does not return.
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
;   0x18000-0x1EFFF  boot page tables: PML4, PDPT (low), PDPT (kernel),
;                    4 PDs (PT_BASE .. PT_BASE + PT_BYTES)
;   0xB8000-0xB8F9F  text screen (0xB0000 in mode 7)
;   0x100000-...     kernel (load_addr from the header, >= KERNEL_LOAD_MIN)
; The GDT and page tables the kernel starts with live inside stage 2's
; memory: the kernel loads its own before it reuses memory below 1 MiB.
;
; Register conventions (each routine's comment gives its own contract:
; "in", "out", "clobbers"; "preserves all" includes the 32-bit halves):
;   real mode: CS = DS = ES = SS = 0 throughout, so every address here is
;     linear (putc loads ES with the text segment briefly and restores it);
;     FS/GS unused; DF = 0 (cld in main, nothing sets it); DS/ES get 4 GiB
;     limits in unreal mode only around the copy, zero and CRC loops, with
;     IF = 0 there.
;   Steps that call the BIOS keep their loop state in memory (data.inc),
;     not in registers: INT 13h/15h may clobber more than they document.
;   hand-off: 64-bit long mode on the boot page tables, IF = 0, DF = 0,
;     CS = 0x18 (64-bit code), DS = ES = FS = GS = SS = 0x10 (flat data),
;     RDI = BOOTINFO_ADDR, RSI = BOOTINFO_MAGIC, RSP = 0x7C00 (the kernel
;     must not rely on it), other registers undefined.
;
; Layout of the binary: the includes below emit code and data in the order
; they are listed, and that order is part of the contract:
;   - console.inc must directly follow main: it holds everything main and
;     die need before the trailer check, and it must end within the first
;     512 bytes (the only sector known to be loaded until the trailer is
;     checked; an assertion in console.inc enforces it);
;   - data.inc and then stage2_trailer come last, so the trailer is the
;     final 4 bytes of the image;
;   - any other reordering changes no behaviour but does change the bytes
;     (the split into files was checked byte-identical against the single
;     file it came from).
; The files are build inputs of the NASM step (internal/build:
; bootIncludeDirs), as NASM 2.16.01's depfile leaves includes out.

%include "bootinfo.inc"
%include "common.inc"
%include "stage2hdr.inc"

; Addresses of the memory map above and the GDT selectors (the constants a
; single job uses live at the top of its file).
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
A20_TEST_LO     equ 0x0500           ; 0000:0500 = linear 0x000500
A20_TEST_HI     equ 0x0510           ; FFFF:0510 = linear 0x100500
SEL_CODE32      equ 0x08
SEL_DATA32      equ 0x10
SEL_CODE64      equ 0x18
PT_BASE         equ 0x18000          ; boot page tables (longmode.inc)
PT_PML4         equ PT_BASE
PT_PDPT_LO      equ PT_BASE + 0x1000 ; identity 0..512 GiB (4 entries used)
PT_PDPT_HI      equ PT_BASE + 0x2000 ; the top 512 GiB (KERNEL_VMA)
PT_PD           equ PT_BASE + 0x3000 ; 4 PDs: 0..4 GiB in 2 MiB pages
PT_BYTES        equ 0x7000

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

; main: entry from stage 1 (DL = boot drive, CS = 0). Sets up DS = ES =
; SS = 0, SP = STACK_TOP, DF = 0, COM1 and the screen, then refuses a
; truncated stage 2 before running any code past the first sector.
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

%include "stage2/console.inc"

; main2: the steps, in order; each either returns with its part done or
; dies (see the list at the top). Nothing returns here: handoff jumps to
; the kernel. Invariant: boot_info is zeroed before any step writes to it,
; so every field a step does not set (or a short E820 table) reads 0.
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
        call check_long_mode
        jmp handoff

%include "stage2/a20.inc"
%include "stage2/e820.inc"
%include "stage2/check.inc"
%include "stage2/payload.inc"
%include "stage2/unreal.inc"
%include "stage2/crc32.inc"
%include "stage2/handoff.inc"
%include "stage2/longmode.inc"
%include "stage2/fail.inc"
%include "stage2/number.inc"
%include "stage2/data.inc"
stage2_trailer: dd STAGE2_MAGIC         ; last 4 bytes: main checks them
stage2_end:
STAGE2_SECTORS equ (stage2_end - stage2_start + SECTOR_SIZE - 1) / SECTOR_SIZE
%if ASM_CHECKS  ; size/offset assertions (skipped by nasm -M)
%if (stage2_end - stage2_start) > STAGE2_MAX_SECTORS * SECTOR_SIZE
%error "stage2 is larger than STAGE2_MAX_SECTORS * 512 bytes: stage 1 would load only part of it"
%endif
%endif
