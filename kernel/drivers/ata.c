/*
 * ata.c — ATA PIO, primary bus, master drive, LBA28, polling (see ata.h).
 * Every wait is bounded; a missing drive or a stuck controller ends in an
 * error code and a detail string, never a hang.
 */
#include "ata.h"
#include "cpu.h"
#include "fmt.h"
#include "string.h"

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
#define ATA_CMD_IDENTIFY   0xEC

/* Polls of the alternate status register before a wait gives up. Each
 * port read takes on the order of a microsecond (real hardware and QEMU
 * alike), so this is a few seconds, far beyond any healthy PIO command. */
#define ATA_POLL_LIMIT     4000000u
#define ATA_MAX_PER_CMD    256u  /* sector count 0 means 256 */

static struct {
	int ready;
	uint32_t sectors;
	char model[41];
	char detail[96];
} ata;

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
	for (uint32_t i = 0; i < ATA_POLL_LIMIT; i++) {
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

int ata_init(void)
{
	ata.ready = 0;
	ata.sectors = 0;
	ata.model[0] = '\0';
	ata.detail[0] = '\0';
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
	for (uint32_t i = 0; i < ATA_POLL_LIMIT; i++) {
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
		ksnprintf(ata.detail, sizeof(ata.detail), "ata_read before a successful ata_init");
		return ATA_ERR_NOT_READY;
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
		int rc = wait_ready(0, "before READ SECTORS");
		if (rc)
			return rc;
		outb(ATA_REG_DRIVE, (uint8_t)(ATA_DRIVE_LBA_MASTER | ((lba >> 24) & 0x0F)));
		delay400ns();
		outb(ATA_REG_SECCOUNT, (uint8_t)(n == ATA_MAX_PER_CMD ? 0 : n));
		outb(ATA_REG_LBA_LO, (uint8_t)lba);
		outb(ATA_REG_LBA_MID, (uint8_t)(lba >> 8));
		outb(ATA_REG_LBA_HI, (uint8_t)(lba >> 16));
		outb(ATA_REG_COMMAND, ATA_CMD_READ_PIO);
		for (uint32_t s = 0; s < n; s++) {
			delay400ns();
			rc = wait_ready(1, "READ SECTORS");
			if (rc)
				return rc;
			for (int i = 0; i < 256; i++)
				*dst++ = inw(ATA_REG_DATA);
		}
		lba += n;
		count -= n;
	}
	return ATA_OK;
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
