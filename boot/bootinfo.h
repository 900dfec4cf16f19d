/*
 * bootinfo.h — the one definition of the disk layout, the kernel header and
 * the boot-info structure that stage 2 hands to the kernel.
 *
 * Both sides include this file:
 *   - C (kernel, host tools) includes it directly;
 *   - NASM (boot/stage1.asm, boot/stage2.asm) includes build/gen/bootinfo.inc,
 *     which the build generates from the `#define` lines below
 *     (internal/build turns `#define NAME VALUE` into `%define NAME VALUE`).
 *   - Go (internal/image) mirrors the numbers as constants; a test parses this
 *     file and fails if they drift.
 * So: every number lives here as a `#define` with a plain integer value, and
 * the C structs below are checked against the offsets with _Static_assert.
 */
#ifndef FLUID_BOOTINFO_H
#define FLUID_BOOTINFO_H

/* ---- Disk layout (512-byte sectors, LBA) ------------------------------- */
#define SECTOR_SIZE            512
#define STAGE2_LBA             1      /* stage 2 starts right after the MBR   */
#define STAGE2_MAX_SECTORS     62     /* LBA 1..62: 31 KiB for stage 2        */
#define STAGE2_LOAD_SEG        0x0000
#define STAGE2_LOAD_ADDR       0x8000 /* stage 1 loads stage 2 here           */
#define KERNEL_HDR_LBA         64     /* one header sector, then the payload  */
#define PART1_LBA              32768  /* FAT32 partition 1 starts at 16 MiB   */
#define KERNEL_MAX_SECTORS     32703  /* PART1_LBA - KERNEL_HDR_LBA - 1       */
#define DISK_SIGNATURE         0x464C5544 /* fixed MBR disk signature        */

/* ---- Stage 1 <-> stage 2 -------------------------------------------------
 * Stage 1 reads stage 2's first sector from STAGE2_LBA to STAGE2_LOAD_ADDR,
 * checks "FLS2" at offset 3 and the sector count at offset 7 (1..
 * STAGE2_MAX_SECTORS; layout in boot/stage2hdr.inc), reads exactly that many
 * sectors and jumps to STAGE2_LOAD_ADDR with DL = BIOS boot drive. Stage 2
 * ends with a second copy of the magic and checks it before running anything
 * past its first sector. boot_info.stage2_sectors is that count. */
#define STAGE2_MAGIC           0x32534C46 /* "FLS2" little-endian */
#define STAGE2_MAGIC_OFFSET    3

/* ---- Kernel header (the sector at KERNEL_HDR_LBA) -----------------------
 * Written by internal/image from kernel.elf. The payload (the kernel's
 * loadable bytes from load_addr, flat) starts at KERNEL_HDR_LBA + 1.
 * All fields little-endian uint32. CRC-32 is IEEE 802.3 (poly 0xEDB88320,
 * init 0xFFFFFFFF, final xor 0xFFFFFFFF) — the same as Go's crc32.ChecksumIEEE.
 */
#define KHDR_MAGIC             0x44554C46 /* "FLUD" little-endian */
#define KHDR_VERSION           1
#define KHDR_OFF_MAGIC         0
#define KHDR_OFF_VERSION       4
#define KHDR_OFF_HDR_SIZE      8   /* = SECTOR_SIZE                          */
#define KHDR_OFF_LOAD_ADDR     12  /* physical, >= 1 MiB                     */
#define KHDR_OFF_ENTRY         16  /* physical entry, inside the payload     */
#define KHDR_OFF_PAYLOAD_SIZE  20  /* bytes on disk after the header sector  */
#define KHDR_OFF_MEM_SIZE      24  /* bytes from load_addr to end of .bss    */
#define KHDR_OFF_PAYLOAD_CRC   28  /* CRC-32 of the payload bytes            */
#define KHDR_OFF_HDR_CRC       32  /* CRC-32 of header bytes 0..31           */
#define KHDR_SIZE              36
#define KERNEL_LOAD_MIN        0x100000

/* ---- The x86_64 kernel's addresses ---------------------------------------
 * The kernel is linked in the higher half: physical address P of the
 * kernel image is virtual KERNEL_VMA + P (kernel/kernel.ld puts its load
 * address, KERNEL_LOAD_MIN, at KERNEL_VMA + KERNEL_LOAD_MIN; internal/image
 * refuses a kernel.elf whose segments disagree). The header's entry is
 * the PHYSICAL address of _start, which runs on the boot identity map and
 * jumps to the higher half itself. Physical memory is also mapped at
 * virtual = physical (the direct map; kernel/mm/vm.c). */
#define KERNEL_VMA             0xFFFFFFFF80000000

/* ---- Stage 2 -> kernel hand-off -----------------------------------------
 * 64-bit long mode, interrupts off, A20 on, EFER.LME | EFER.NXE, paging on
 * stage 2's boot tables: virtual 0..4 GiB = physical (identity, 2 MiB
 * pages, writable, executable) and KERNEL_VMA..+1 GiB = physical 0..1 GiB;
 * CS = 0x18 (64-bit code), DS = ES = SS = 0x10 (flat data), and:
 *   RDI = physical address of struct boot_info (= BOOTINFO_ADDR)
 *   RSI = BOOTINFO_MAGIC
 * (the SysV x86_64 argument registers). The kernel must not assume
 * anything about RSP, and replaces the GDT and page tables at once. */
#define BOOTINFO_MAGIC         0x49424C46 /* "FLBI" little-endian */
#define BOOTINFO_VERSION       1
#define BOOTINFO_ADDR          0x5000
#define BOOTINFO_E820_MAX      32
#define E820_ENTRY_SIZE        24

#define BI_OFF_MAGIC           0
#define BI_OFF_VERSION         4
#define BI_OFF_BOOT_DRIVE      8   /* BIOS drive number (0x80 = first disk)  */
#define BI_OFF_STAGE2_LBA      12
#define BI_OFF_STAGE2_SECTORS  16
#define BI_OFF_KERNEL_LBA      20  /* LBA of the kernel header sector        */
#define BI_OFF_KERNEL_SECTORS  24  /* payload sectors read                   */
#define BI_OFF_KERNEL_LOAD     28  /* load address (from the header)         */
#define BI_OFF_KERNEL_SIZE     32  /* payload bytes                          */
#define BI_OFF_KERNEL_MEM      36  /* bytes incl. .bss                       */
#define BI_OFF_KERNEL_ENTRY    40
#define BI_OFF_PART1_LBA       44  /* from the MBR partition table at boot   */
#define BI_OFF_PART1_SECTORS   48
#define BI_OFF_A20_METHOD      52  /* A20_* below                            */
#define BI_OFF_E820_COUNT      56
#define BI_OFF_E820            64  /* BOOTINFO_E820_MAX entries              */
#define BOOTINFO_SIZE          832 /* 64 + 32 * 24                           */

#define A20_ALREADY_ON         1
#define A20_BIOS               2
#define A20_KBC                3
#define A20_FAST               4

#define E820_USABLE            1
#define E820_RESERVED          2
#define E820_ACPI_RECLAIM      3
#define E820_ACPI_NVS          4
#define E820_BAD               5

#if !defined(__ASSEMBLER__) && !defined(__NASM__)
#include <stdint.h>

struct e820_entry {
	uint64_t base;
	uint64_t length;
	uint32_t type;
	uint32_t acpi_ext;
} __attribute__((packed));

struct boot_info {
	uint32_t magic;
	uint32_t version;
	uint32_t boot_drive;
	uint32_t stage2_lba;
	uint32_t stage2_sectors;
	uint32_t kernel_lba;
	uint32_t kernel_sectors;
	uint32_t kernel_load;
	uint32_t kernel_size;
	uint32_t kernel_mem;
	uint32_t kernel_entry;
	uint32_t part1_lba;
	uint32_t part1_sectors;
	uint32_t a20_method;
	uint32_t e820_count;
	uint32_t reserved0;
	struct e820_entry e820[BOOTINFO_E820_MAX];
} __attribute__((packed));

struct kernel_header {
	uint32_t magic;
	uint32_t version;
	uint32_t hdr_size;
	uint32_t load_addr;
	uint32_t entry;
	uint32_t payload_size;
	uint32_t mem_size;
	uint32_t payload_crc;
	uint32_t hdr_crc;
} __attribute__((packed));

#define BI_CHECK(f, off) _Static_assert(__builtin_offsetof(struct boot_info, f) == (off), #f)
BI_CHECK(magic, BI_OFF_MAGIC);
BI_CHECK(version, BI_OFF_VERSION);
BI_CHECK(boot_drive, BI_OFF_BOOT_DRIVE);
BI_CHECK(stage2_lba, BI_OFF_STAGE2_LBA);
BI_CHECK(stage2_sectors, BI_OFF_STAGE2_SECTORS);
BI_CHECK(kernel_lba, BI_OFF_KERNEL_LBA);
BI_CHECK(kernel_sectors, BI_OFF_KERNEL_SECTORS);
BI_CHECK(kernel_load, BI_OFF_KERNEL_LOAD);
BI_CHECK(kernel_size, BI_OFF_KERNEL_SIZE);
BI_CHECK(kernel_mem, BI_OFF_KERNEL_MEM);
BI_CHECK(kernel_entry, BI_OFF_KERNEL_ENTRY);
BI_CHECK(part1_lba, BI_OFF_PART1_LBA);
BI_CHECK(part1_sectors, BI_OFF_PART1_SECTORS);
BI_CHECK(a20_method, BI_OFF_A20_METHOD);
BI_CHECK(e820_count, BI_OFF_E820_COUNT);
BI_CHECK(e820, BI_OFF_E820);
_Static_assert(sizeof(struct e820_entry) == E820_ENTRY_SIZE, "e820 entry size");
_Static_assert(sizeof(struct boot_info) == BOOTINFO_SIZE, "boot_info size");
_Static_assert(__builtin_offsetof(struct kernel_header, hdr_crc) == KHDR_OFF_HDR_CRC, "khdr");
_Static_assert(sizeof(struct kernel_header) == KHDR_SIZE, "khdr size");
#undef BI_CHECK
#endif

/* ---- QEMU isa-debug-exit (iobase 0xf4, iosize 4) ------------------------
 * The guest writes v; QEMU exits with status (v << 1) | 1. */
#define DEBUG_EXIT_PORT        0xf4
#define EXIT_PASS              0x10 /* qemu status 33: everything passed      */
#define EXIT_TEST_FAIL         0x11 /* 35: an in-kernel test failed           */
#define EXIT_PANIC             0x12 /* 37: panic()                            */
#define EXIT_CPU_EXCEPTION     0x13 /* 39: CPU exception                      */
#define EXIT_MODULE_FAIL       0x14 /* 41: a module failed its result check   */
#define EXIT_BOOT_ERROR        0x15 /* 43: stage 2 refused the kernel / disk  */

#endif /* FLUID_BOOTINFO_H */
