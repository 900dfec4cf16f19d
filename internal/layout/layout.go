// Package layout mirrors boot/bootinfo.h — the disk layout, the kernel
// header, the boot-info structure and the QEMU exit codes — as Go constants,
// and turns the header's `#define` lines into the NASM include the boot
// sectors assemble against.
//
// boot/bootinfo.h is the one definition. A test parses it with ParseDefines
// and fails if any constant here drifts from it (or if the header gains a
// number this package does not mirror).
package layout

// Disk layout (512-byte sectors, LBA).
const (
	SectorSize       = 512        // SECTOR_SIZE
	Stage2LBA        = 1          // STAGE2_LBA: stage 2 starts right after the MBR
	Stage2MaxSectors = 62         // STAGE2_MAX_SECTORS: LBA 1..62
	Stage2LoadSeg    = 0x0000     // STAGE2_LOAD_SEG
	Stage2LoadAddr   = 0x8000     // STAGE2_LOAD_ADDR: stage 1 loads stage 2 here
	KernelHdrLBA     = 64         // KERNEL_HDR_LBA: one header sector, then the payload
	Part1LBA         = 32768      // PART1_LBA: FAT32 partition 1 starts at 16 MiB
	KernelMaxSectors = 32703      // KERNEL_MAX_SECTORS: PART1_LBA - KERNEL_HDR_LBA - 1
	DiskSignature    = 0x464C5544 // DISK_SIGNATURE: fixed MBR disk signature at byte 440
)

// Stage 1 <-> stage 2.
const (
	Stage2Magic       = 0x32534C46 // STAGE2_MAGIC: "FLS2" little-endian
	Stage2MagicOffset = 3          // STAGE2_MAGIC_OFFSET
)

// Kernel header (the sector at KernelHdrLBA). All fields little-endian uint32.
const (
	KHdrMagic         = 0x44554C46 // KHDR_MAGIC: "FLUD" little-endian
	KHdrVersion       = 1          // KHDR_VERSION
	KHdrOffMagic      = 0          // KHDR_OFF_MAGIC
	KHdrOffVersion    = 4          // KHDR_OFF_VERSION
	KHdrOffHdrSize    = 8          // KHDR_OFF_HDR_SIZE (= SectorSize)
	KHdrOffLoadAddr   = 12         // KHDR_OFF_LOAD_ADDR: physical, >= KernelLoadMin
	KHdrOffEntry      = 16         // KHDR_OFF_ENTRY: physical entry, inside the payload
	KHdrOffPayloadSz  = 20         // KHDR_OFF_PAYLOAD_SIZE: bytes on disk after the header
	KHdrOffMemSize    = 24         // KHDR_OFF_MEM_SIZE: bytes from load_addr to end of .bss
	KHdrOffPayloadCRC = 28         // KHDR_OFF_PAYLOAD_CRC: CRC-32 IEEE of the payload
	KHdrOffHdrCRC     = 32         // KHDR_OFF_HDR_CRC: CRC-32 IEEE of header bytes 0..31
	KHdrSize          = 36         // KHDR_SIZE
	KernelLoadMin     = 0x100000   // KERNEL_LOAD_MIN: 1 MiB
)

// KernelVMA is where the x86_64 kernel is linked: physical P of the kernel
// image runs at virtual KernelVMA + P (KERNEL_VMA).
const KernelVMA uint64 = 0xFFFFFFFF80000000 // KERNEL_VMA

// Stage 2 -> kernel hand-off: struct boot_info at BootInfoAddr.
const (
	BootInfoMagic    = 0x49424C46 // BOOTINFO_MAGIC: "FLBI" little-endian
	BootInfoVersion  = 1          // BOOTINFO_VERSION
	BootInfoAddr     = 0x5000     // BOOTINFO_ADDR
	BootInfoE820Max  = 32         // BOOTINFO_E820_MAX
	E820EntrySize    = 24         // E820_ENTRY_SIZE
	BIOffMagic       = 0          // BI_OFF_MAGIC
	BIOffVersion     = 4          // BI_OFF_VERSION
	BIOffBootDrive   = 8          // BI_OFF_BOOT_DRIVE
	BIOffStage2LBA   = 12         // BI_OFF_STAGE2_LBA
	BIOffStage2Sects = 16         // BI_OFF_STAGE2_SECTORS
	BIOffKernelLBA   = 20         // BI_OFF_KERNEL_LBA
	BIOffKernelSects = 24         // BI_OFF_KERNEL_SECTORS
	BIOffKernelLoad  = 28         // BI_OFF_KERNEL_LOAD
	BIOffKernelSize  = 32         // BI_OFF_KERNEL_SIZE
	BIOffKernelMem   = 36         // BI_OFF_KERNEL_MEM
	BIOffKernelEntry = 40         // BI_OFF_KERNEL_ENTRY
	BIOffPart1LBA    = 44         // BI_OFF_PART1_LBA
	BIOffPart1Sects  = 48         // BI_OFF_PART1_SECTORS
	BIOffA20Method   = 52         // BI_OFF_A20_METHOD
	BIOffE820Count   = 56         // BI_OFF_E820_COUNT
	BIOffE820        = 64         // BI_OFF_E820
	BootInfoSize     = 832        // BOOTINFO_SIZE: 64 + 32 * 24
)

// A20 methods reported in boot_info.a20_method.
const (
	A20AlreadyOn = 1 // A20_ALREADY_ON
	A20BIOS      = 2 // A20_BIOS
	A20KBC       = 3 // A20_KBC
	A20Fast      = 4 // A20_FAST
)

// E820 memory map entry types.
const (
	E820Usable      = 1 // E820_USABLE
	E820Reserved    = 2 // E820_RESERVED
	E820ACPIReclaim = 3 // E820_ACPI_RECLAIM
	E820ACPINVS     = 4 // E820_ACPI_NVS
	E820Bad         = 5 // E820_BAD
)

// QEMU isa-debug-exit: the guest writes v to DebugExitPort, QEMU exits with
// status (v << 1) | 1.
const (
	DebugExitPort    = 0xf4 // DEBUG_EXIT_PORT
	ExitPass         = 0x10 // EXIT_PASS: everything passed
	ExitTestFail     = 0x11 // EXIT_TEST_FAIL: an in-kernel test failed
	ExitPanic        = 0x12 // EXIT_PANIC: panic()
	ExitCPUException = 0x13 // EXIT_CPU_EXCEPTION: CPU exception
	ExitModuleFail   = 0x14 // EXIT_MODULE_FAIL: a module failed its result check
	ExitBootError    = 0x15 // EXIT_BOOT_ERROR: stage 2 (or 1) refused the disk / kernel
)

// QEMU process exit statuses the guest's exit values become.
const (
	StatusPass         = ExitPass<<1 | 1         // 33
	StatusTestFail     = ExitTestFail<<1 | 1     // 35
	StatusPanic        = ExitPanic<<1 | 1        // 37
	StatusCPUException = ExitCPUException<<1 | 1 // 39
	StatusModuleFail   = ExitModuleFail<<1 | 1   // 41
	StatusBootError    = ExitBootError<<1 | 1    // 43
	// StatusReset is QEMU's own exit status when, under -no-reboot, the
	// guest reset itself (a triple fault) or QEMU was shut down normally.
	StatusReset = 0
)

// QEMUStatus returns the QEMU exit status for a guest exit value v.
func QEMUStatus(v int) int { return v<<1 | 1 }

// StatusName names a QEMU exit status for messages ("pass", "test-fail",
// "panic", "cpu-exception", "module-fail", "boot-error", "reset"), or "" if
// the status is none of ours.
func StatusName(status int) string {
	switch status {
	case StatusPass:
		return "pass"
	case StatusTestFail:
		return "test-fail"
	case StatusPanic:
		return "panic"
	case StatusCPUException:
		return "cpu-exception"
	case StatusModuleFail:
		return "module-fail"
	case StatusBootError:
		return "boot-error"
	case StatusReset:
		return "reset"
	}
	return ""
}
