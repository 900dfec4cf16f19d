/*
 * ata.c — ATA, primary bus, master drive, LBA28, polling (see ata.h).
 * Data moves by bus-master IDE DMA when PCI bus 0 has an IDE controller
 * that can do it (QEMU's pc machine: the PIIX3 at 00:01.1), else by PIO
 * (rep insw, one sector per DRQ). Every wait is bounded; a missing drive
 * or a stuck controller ends in an error code and a detail string, never
 * a hang.
 */
#include "ata.h"
#include "cpu.h"
#include "console.h"
#include "fmt.h"
#include "string.h"
#include "bootinfo.h"
#include "timer.h"

/* Primary bus I/O ports. */
#define ATA_IO_BASE        0x1F0
#define ATA_REG_DATA       (ATA_IO_BASE + 0)
#define ATA_REG_ERROR      (ATA_IO_BASE + 1)
#define ATA_REG_SECCOUNT   (ATA_IO_BASE + 2)
#define ATA_REG_LBA_LO     (ATA_IO_BASE + 3)
#define ATA_REG_LBA_MID    (ATA_IO_BASE + 4)
#define ATA_REG_LBA_HI     (ATA_IO_BASE + 5)
#define ATA_REG_DRIVE      (ATA_IO_BASE + 6)
#define ATA_REG_STATUS     (ATA_IO_BASE + 7)  /* read */
#define ATA_REG_COMMAND    (ATA_IO_BASE + 7)  /* write */
#define ATA_REG_ALTSTATUS  0x3F6              /* read: status without clearing IRQ */
#define ATA_REG_DEVCTRL    0x3F6              /* write */

/* Status register bits. */
#define ATA_SR_ERR         0x01
#define ATA_SR_DRQ         0x08
#define ATA_SR_DF          0x20
#define ATA_SR_DRDY        0x40
#define ATA_SR_BSY         0x80

/* Device control bits. */
#define ATA_DC_NIEN        0x02  /* no interrupts: we poll */

/* Drive/head register: LBA mode, master. */
#define ATA_DRIVE_LBA_MASTER 0xE0

/* Commands. */
#define ATA_CMD_READ_PIO   0x20
#define ATA_CMD_READ_DMA   0xC8
#define ATA_CMD_IDENTIFY   0xEC

/* A wait gives up after ATA_TIMEOUT_MS by the TSC and at least
 * ATA_POLL_LIMIT polls (the count alone if the TSC is not calibrated).
 * The count alone is not a time: a poll under QEMU's TCG takes about
 * 0.15 us, so 4,000,000 polls were 0.6 s, less than one 128 KiB READ DMA
 * takes from a slow or busy host disk. */
#define ATA_POLL_LIMIT     4000000u
#define ATA_TIMEOUT_MS     5000u
#define ATA_MAX_PER_CMD    256u  /* sector count 0 means 256 */

/* PCI configuration mechanism 1. */
#define PCI_CONFIG_ADDR    0xCF8
#define PCI_CONFIG_DATA    0xCFC
#define PCI_ENABLE         0x80000000u
#define PCI_REG_ID         0x00  /* vendor (low 16), device (high 16)   */
#define PCI_REG_COMMAND    0x04  /* command (low 16), status (high 16)  */
#define PCI_REG_CLASS      0x08  /* class, subclass, prog-if, revision  */
#define PCI_REG_BAR4       0x20  /* IDE: the bus-master register block  */
#define PCI_CMD_IO         0x0001
#define PCI_CMD_MASTER     0x0004
#define PCI_CLASS_IDE      0x0101 /* mass storage, IDE                  */
#define PCI_PROGIF_BM      0x80   /* prog-if: bus mastering supported   */
#define PCI_PROGIF_NATIVE1 0x01   /* prog-if: primary channel in PCI native mode */

/* Bus-master IDE registers of the primary channel (from BAR4). */
#define BM_COMMAND         0x0
#define BM_STATUS          0x2
#define BM_PRDT            0x4
#define BM_CMD_START       0x01
#define BM_CMD_TO_MEMORY   0x08  /* the device writes memory: a disk read */
#define BM_ST_ACTIVE       0x01
#define BM_ST_ERROR        0x02
#define BM_ST_IRQ          0x04
#define BM_ST_CAPABLE      0x60  /* drive 0/1 DMA capable: the firmware's, kept */

/* A PRD entry: a physical region below 4 GiB that does not cross a 64 KiB
 * boundary, byte count 0 meaning 64 KiB, EOT on the last one. */
struct prd {
	uint32_t phys;
	uint16_t bytes;
	uint16_t flags;
} __attribute__((packed));
#define PRD_EOT            0x8000u
#define PRD_MAX            8u    /* 128 KiB touches at most 3 64 KiB pages */
#define DMA_BOUNCE_BYTES   (ATA_MAX_PER_CMD * ATA_SECTOR_SIZE)

static struct {
	int ready;
	uint32_t sectors;
	char model[41];
	char detail[96];
	uint16_t bm;          /* bus-master register base, 0 = PIO only */
	int force_pio;        /* ata_force_pio: tests compare both paths */
	int stuck;            /* a READ DMA timed out: the drive may still be in it */
	char mode[96];        /* how data moves, for the boot log        */
} ata;

/* The PRD table (dword aligned, inside one 64 KiB page) and a bounce
 * buffer for destinations the controller cannot reach (above 4 GiB, or at
 * an odd address). Both in .bss: physical = virtual - KERNEL_VMA. */
static struct prd prdt[PRD_MAX] __attribute__((aligned(64)));
static uint8_t bounce[DMA_BOUNCE_BYTES] __attribute__((aligned(4096)));

/* The TSC value at which a wait that starts now gives up, 0 if the TSC
 * is not calibrated (then ATA_POLL_LIMIT polls alone bound it). */
static uint64_t wait_end(void)
{
	uint64_t khz = tsc_khz();
	return khz ? rdtsc() + khz * ATA_TIMEOUT_MS : 0;
}

/* 1 once a wait of i polls that started with wait_end() = end is over. */
static int wait_over(uint32_t i, uint64_t end)
{
	return i >= ATA_POLL_LIMIT && (!end || rdtsc() >= end);
}

static void delay400ns(void)
{
	for (int i = 0; i < 4; i++)
		(void)inb(ATA_REG_ALTSTATUS);
}

static int set_detail(int err, const char *what, uint8_t status)
{
	ksnprintf(ata.detail, sizeof(ata.detail), "%s (status 0x%02x, error 0x%02x)", what,
		  (unsigned)status, (unsigned)inb(ATA_REG_ERROR));
	return err;
}

/* Wait until BSY clears; then, if want_drq, until DRQ sets (or ERR/DF). */
static int wait_ready(int want_drq, const char *what)
{
	uint8_t s = 0;
	uint64_t end = wait_end();
	for (uint32_t i = 0; !wait_over(i, end); i++) {
		s = inb(ATA_REG_ALTSTATUS);
		if (s == 0xFF)
			return set_detail(ATA_ERR_NO_DRIVE, what, s);
		if (s & ATA_SR_BSY)
			continue;
		if (s & (ATA_SR_ERR | ATA_SR_DF))
			return set_detail(ATA_ERR_DEVICE, what, s);
		if (!want_drq || (s & ATA_SR_DRQ))
			return ATA_OK;
	}
	return set_detail(ATA_ERR_TIMEOUT, what, s);
}

/* Clear the bus-master status's error and interrupt bits (write 1 to
 * clear) and keep its "DMA capable" bits 5 and 6, which are read/write
 * flags the firmware set (SFF-8038i): writing 0 there would clear them. */
static void bm_ack(void)
{
	uint8_t st = inb(ata.bm + BM_STATUS);
	outb(ata.bm + BM_STATUS, (uint8_t)((st & BM_ST_CAPABLE) | BM_ST_ERROR | BM_ST_IRQ));
}

/* Before a command: wait until BSY clears. ERR and DF still describe the
 * previous command (they stay set until the next one is written): they
 * are that command's result, not a reason to refuse this one, or one
 * failed command would fail every read after it. */
static int wait_idle(const char *what)
{
	uint8_t s = 0;
	uint64_t end = wait_end();
	for (uint32_t i = 0; !wait_over(i, end); i++) {
		s = inb(ATA_REG_ALTSTATUS);
		if (s == 0xFF)
			return set_detail(ATA_ERR_NO_DRIVE, what, s);
		if (!(s & ATA_SR_BSY))
			return ATA_OK;
	}
	return set_detail(ATA_ERR_TIMEOUT, what, s);
}

static uint32_t pci_read(uint32_t dev, uint32_t fn, uint32_t reg)
{
	outl(PCI_CONFIG_ADDR, PCI_ENABLE | dev << 11 | fn << 8 | (reg & 0xFC));
	return inl(PCI_CONFIG_DATA);
}

static void pci_write(uint32_t dev, uint32_t fn, uint32_t reg, uint32_t v)
{
	outl(PCI_CONFIG_ADDR, PCI_ENABLE | dev << 11 | fn << 8 | (reg & 0xFC));
	outl(PCI_CONFIG_DATA, v);
}

/*
 * Find a bus-master IDE controller on PCI bus 0 whose primary channel is
 * in compatibility mode (so it is the 0x1F0 drive this driver talks to),
 * with an I/O BAR4; enable I/O decoding and bus mastering. ata.bm = BAR4,
 * or 0 and ata.mode says why PIO is used.
 */
static void dma_probe(void)
{
	ata.bm = 0;
	for (uint32_t dev = 0; dev < 32; dev++)
		for (uint32_t fn = 0; fn < 8; fn++) {
			uint32_t id = pci_read(dev, fn, PCI_REG_ID);
			if ((id & 0xFFFF) == 0xFFFF)
				continue;
			uint32_t cls = pci_read(dev, fn, PCI_REG_CLASS);
			uint32_t progif = (cls >> 8) & 0xFF;
			if ((cls >> 16) != PCI_CLASS_IDE || !(progif & PCI_PROGIF_BM) || (progif & PCI_PROGIF_NATIVE1))
				continue;
			uint32_t bar = pci_read(dev, fn, PCI_REG_BAR4);
			if (!(bar & 1) || (bar & 0xFFFC) == 0)
				continue; /* not an I/O BAR, or never assigned */
			uint32_t cmd = pci_read(dev, fn, PCI_REG_COMMAND);
			pci_write(dev, fn, PCI_REG_COMMAND, (cmd & 0xFFFF) | PCI_CMD_IO | PCI_CMD_MASTER);
			ata.bm = (uint16_t)(bar & 0xFFFC);
			ksnprintf(ata.mode, sizeof(ata.mode), "bus-master DMA (PCI 00:%02x.%u %04x:%04x, registers at 0x%x)",
				  dev, fn, id & 0xFFFF, id >> 16, (unsigned)ata.bm);
			return;
		}
	ksnprintf(ata.mode, sizeof(ata.mode), "PIO (rep insw): no bus-master IDE controller on PCI bus 0");
}

/* The physical address of buf[0..len) for the controller, or 0 when it
 * cannot reach it: the kernel image is at KERNEL_VMA + physical, the
 * direct map at virtual = physical; PRDs hold 32 bits and even addresses. */
static uint32_t dma_phys(const void *buf, uint32_t len)
{
	uintptr_t a = (uintptr_t)buf;
	if (a >= (uintptr_t)KERNEL_VMA)
		a -= (uintptr_t)KERNEL_VMA;
	if (a == 0 || (a & 1) || a + len > 0x100000000ull)
		return 0;
	return (uint32_t)a;
}

/* Select the master drive and issue cmd for n sectors (1..256; 256 goes
 * out as 0) from LBA28 address lba. The caller has waited for the drive
 * to be idle. */
static void issue_lba28(uint32_t lba, uint32_t n, uint8_t cmd)
{
	outb(ATA_REG_DRIVE, (uint8_t)(ATA_DRIVE_LBA_MASTER | ((lba >> 24) & 0x0F)));
	delay400ns();
	outb(ATA_REG_SECCOUNT, (uint8_t)(n == ATA_MAX_PER_CMD ? 0 : n));
	outb(ATA_REG_LBA_LO, (uint8_t)lba);
	outb(ATA_REG_LBA_MID, (uint8_t)(lba >> 8));
	outb(ATA_REG_LBA_HI, (uint8_t)(lba >> 16));
	outb(ATA_REG_COMMAND, cmd);
}

/*
 * One READ DMA of n (1..256) sectors at lba into the physical region
 * [phys, phys + n * 512). Invariants: the PRD table covers exactly
 * n * 512 bytes, every entry inside one 64 KiB page, the last marked EOT;
 * the engine is stopped (command START clear) whenever this returns, so
 * the controller never writes memory after the caller moved on. The
 * drive is polled (nIEN): done when the engine is no longer active and
 * BSY and DRQ are clear, within ATA_TIMEOUT_MS (wait_over).
 */
static int dma_read(uint32_t lba, uint32_t n, uint32_t phys)
{
	uint32_t left = n * ATA_SECTOR_SIZE, at = phys, k = 0;
	while (left) {
		uint32_t room = 0x10000u - (at & 0xFFFFu);
		uint32_t len = left < room ? left : room;
		prdt[k].phys = at;
		prdt[k].bytes = (uint16_t)(len & 0xFFFF); /* 0 = 64 KiB */
		prdt[k].flags = 0;
		at += len;
		left -= len;
		k++;
	}
	prdt[k - 1].flags = PRD_EOT;
	int rc = wait_idle("before READ DMA");
	if (rc)
		return rc;
	outb(ata.bm + BM_COMMAND, BM_CMD_TO_MEMORY); /* stopped, direction set */
	bm_ack();
	/* The PRD table's stores before the controller is told where it is
	 * (outb/outl carry no memory clobber). */
	__asm__ volatile("" ::: "memory");
	outl(ata.bm + BM_PRDT, dma_phys(prdt, sizeof(prdt)));
	issue_lba28(lba, n, ATA_CMD_READ_DMA);
	outb(ata.bm + BM_COMMAND, BM_CMD_TO_MEMORY | BM_CMD_START);
	uint8_t bs = 0, s = 0;
	uint32_t i = 0;
	int timed_out = 1;
	uint64_t end = wait_end();
	for (; !wait_over(i, end); i++) {
		bs = inb(ata.bm + BM_STATUS);
		s = inb(ATA_REG_ALTSTATUS);
		if ((s & ATA_SR_BSY) && !(bs & BM_ST_ERROR) && s != 0xFF)
			continue; /* the other status bits mean nothing while BSY is set (ATA) */
		if ((bs & BM_ST_ERROR) || s == 0xFF || (s & (ATA_SR_ERR | ATA_SR_DF)) ||
		    (!(bs & BM_ST_ACTIVE) && !(s & ATA_SR_DRQ))) {
			timed_out = 0; /* 0xFF: a floating bus, no drive answers */
			break;
		}
	}
	outb(ata.bm + BM_COMMAND, BM_CMD_TO_MEMORY); /* stop the engine */
	__asm__ volatile("" ::: "memory"); /* the bytes the controller wrote, not older ones */
	bm_ack();
	(void)inb(ATA_REG_STATUS); /* acknowledge the drive */
	if (timed_out)
		return set_detail(ATA_ERR_TIMEOUT, "READ DMA did not finish", s);
	if (s == 0xFF && !(bs & BM_ST_ERROR))
		return set_detail(ATA_ERR_NO_DRIVE, "READ DMA: the drive stopped answering", s);
	if ((bs & BM_ST_ERROR) || (!(s & ATA_SR_BSY) && (s & (ATA_SR_ERR | ATA_SR_DF)))) {
		ksnprintf(ata.detail, sizeof(ata.detail), "READ DMA at LBA %u: bus-master status 0x%02x, status 0x%02x, error 0x%02x",
			  lba, (unsigned)bs, (unsigned)s, (unsigned)inb(ATA_REG_ERROR));
		return ATA_ERR_DEVICE;
	}
	return ATA_OK;
}

/* The bounce buffer's copy: rep movsq, 8 bytes a step (QEMU's TCG runs
 * a rep string instruction one step at a time: rep movsb, the kernel's
 * memcpy, is 8 times the steps). */
static void copy_qwords(void *dst, const void *src, size_t qwords)
{
	__asm__ volatile("cld; rep movsq" : "+D"(dst), "+S"(src), "+c"(qwords) : : "memory");
}

/* n sectors (1..256) by PIO: one rep insw per sector, after its DRQ. */
static int pio_read(uint32_t lba, uint32_t n, uint16_t *dst)
{
	int rc = wait_idle("before READ SECTORS");
	if (rc)
		return rc;
	issue_lba28(lba, n, ATA_CMD_READ_PIO);
	for (uint32_t s = 0; s < n; s++) {
		delay400ns();
		rc = wait_ready(1, "READ SECTORS");
		if (rc)
			return rc;
		insw(ATA_REG_DATA, dst, ATA_SECTOR_SIZE / 2); /* one sector, one rep insw */
		dst += ATA_SECTOR_SIZE / 2;
	}
	return ATA_OK;
}

int ata_init(void)
{
	ata.ready = 0;
	ata.sectors = 0;
	ata.model[0] = '\0';
	ata.detail[0] = '\0';
	ata.bm = 0;
	ksnprintf(ata.mode, sizeof(ata.mode), "none: no drive");
	outb(ATA_REG_DEVCTRL, ATA_DC_NIEN);
	uint8_t s = inb(ATA_REG_STATUS);
	if (s == 0xFF)
		return set_detail(ATA_ERR_NO_DRIVE, "primary bus floating", s);
	outb(ATA_REG_DRIVE, 0xA0); /* select master, CHS bits irrelevant for IDENTIFY */
	delay400ns();
	outb(ATA_REG_SECCOUNT, 0);
	outb(ATA_REG_LBA_LO, 0);
	outb(ATA_REG_LBA_MID, 0);
	outb(ATA_REG_LBA_HI, 0);
	outb(ATA_REG_COMMAND, ATA_CMD_IDENTIFY);
	delay400ns();
	if (inb(ATA_REG_STATUS) == 0)
		return set_detail(ATA_ERR_NO_DRIVE, "IDENTIFY: no drive on primary master", 0);
	/* Poll BSY first; a non-ATA device shows its signature in LBA mid/hi. */
	uint64_t end = wait_end();
	for (uint32_t i = 0; !wait_over(i, end); i++) {
		s = inb(ATA_REG_ALTSTATUS);
		if (!(s & ATA_SR_BSY))
			break;
	}
	if (s & ATA_SR_BSY)
		return set_detail(ATA_ERR_TIMEOUT, "IDENTIFY: drive stays busy", s);
	if (inb(ATA_REG_LBA_MID) || inb(ATA_REG_LBA_HI))
		return set_detail(ATA_ERR_NOT_ATA, "IDENTIFY: not a PATA disk (ATAPI/SATA signature)", s);
	int rc = wait_ready(1, "IDENTIFY");
	if (rc)
		return rc;
	uint16_t id[256];
	for (int i = 0; i < 256; i++)
		id[i] = inw(ATA_REG_DATA);
	ata.sectors = (uint32_t)id[60] | (uint32_t)id[61] << 16; /* LBA28 capacity */
	for (int i = 0; i < 20; i++) {                          /* words 27..46, byte-swapped */
		ata.model[2 * i] = (char)(id[27 + i] >> 8);
		ata.model[2 * i + 1] = (char)(id[27 + i] & 0xFF);
	}
	ata.model[40] = '\0';
	for (int i = 39; i >= 0 && ata.model[i] == ' '; i--)
		ata.model[i] = '\0';
	if (ata.sectors == 0)
		return set_detail(ATA_ERR_NOT_ATA, "IDENTIFY: drive reports no LBA28 sectors", s);
	dma_probe();
	ata.ready = 1;
	return ATA_OK;
}

uint32_t ata_sectors(void)
{
	return ata.sectors;
}

const char *ata_model(void)
{
	return ata.model;
}

int ata_read(uint32_t lba, uint32_t count, void *buf)
{
	uint16_t *dst = buf;
	if (!ata.ready) {
		ksnprintf(ata.detail, sizeof(ata.detail), ata.stuck ? "the drive is still in a READ DMA that timed out: no reads this boot"
								     : "ata_read before a successful ata_init");
		return ata.stuck ? ATA_ERR_TIMEOUT : ATA_ERR_NOT_READY;
	}
	if (count == 0)
		return ATA_OK;
	if (lba > ATA_LBA28_MAX || count > ata.sectors || lba > ata.sectors - count) {
		ksnprintf(ata.detail, sizeof(ata.detail), "LBA %u + %u sectors beyond the drive (%u sectors)",
			  lba, count, ata.sectors);
		return ATA_ERR_RANGE;
	}
	while (count) {
		uint32_t n = count > ATA_MAX_PER_CMD ? ATA_MAX_PER_CMD : count;
		int rc;
		if (ata.bm && !ata.force_pio) {
			uint32_t phys = dma_phys(dst, n * ATA_SECTOR_SIZE);
			rc = dma_read(lba, n, phys ? phys : dma_phys(bounce, sizeof(bounce)));
			if (rc == ATA_OK && !phys)
				copy_qwords(dst, bounce, n * ATA_SECTOR_SIZE / 8);
			if (rc == ATA_ERR_TIMEOUT) {
				/* The drive may still be inside that READ DMA (QEMU keeps
				 * DRQ set until the request drains): a PIO read now would
				 * be handed that command's data as its own. No fallback:
				 * this read and every later one fail, naming why. */
				kprintf("ata: %s (%s): the drive is still in that command; no more disk reads this boot\n",
					ata_last_detail(), ata_strerror(rc));
				ata.ready = 0;
				ata.stuck = 1;
				return rc;
			}
			if (rc != ATA_OK) {
				/* The command ended with an error status: say so once and
				 * go on without DMA; PIO reads the same sectors. */
				kprintf("ata: %s (%s); reading by PIO from now on\n", ata_last_detail(), ata_strerror(rc));
				ata.bm = 0;
				ksnprintf(ata.mode, sizeof(ata.mode), "PIO (rep insw): bus-master DMA failed");
				rc = pio_read(lba, n, dst);
			}
		} else {
			rc = pio_read(lba, n, dst);
		}
		if (rc)
			return rc;
		dst += n * ATA_SECTOR_SIZE / 2;
		lba += n;
		count -= n;
	}
	return ATA_OK;
}

void ata_force_pio(int on)
{
	ata.force_pio = on;
}

const char *ata_transfer_mode(void)
{
	return ata.mode;
}

const char *ata_strerror(int err)
{
	switch (err) {
	case ATA_OK: return "ok";
	case ATA_ERR_NO_DRIVE: return "no drive";
	case ATA_ERR_TIMEOUT: return "timeout";
	case ATA_ERR_DEVICE: return "device error";
	case ATA_ERR_RANGE: return "LBA out of range";
	case ATA_ERR_NOT_ATA: return "not an ATA disk";
	case ATA_ERR_NOT_READY: return "driver not initialised";
	default: return "unknown error";
	}
}

const char *ata_last_detail(void)
{
	return ata.detail;
}
