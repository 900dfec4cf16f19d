/*
 * ata.h — ATA disk driver: the primary bus (0x1F0, control 0x3F6),
 * master drive, LBA28, polling with timeouts, interrupts disabled (nIEN);
 * bus-master IDE DMA when PCI has the controller for it, else PIO.
 * Read-only: the kernel never writes the disk.
 */
#ifndef FLUID_ATA_H
#define FLUID_ATA_H

#include <stdint.h>

#define ATA_SECTOR_SIZE     512u
#define ATA_LBA28_MAX       0x0FFFFFFFu  /* last LBA28 sector number */

/* Error codes (negative). ata_strerror names them. */
#define ATA_OK              0
#define ATA_ERR_NO_DRIVE    (-1)  /* floating bus / IDENTIFY got no answer  */
#define ATA_ERR_TIMEOUT     (-2)  /* BSY or DRQ did not settle in time       */
#define ATA_ERR_DEVICE      (-3)  /* status ERR or DF set after a command    */
#define ATA_ERR_RANGE       (-4)  /* LBA beyond LBA28 or the drive's size    */
#define ATA_ERR_NOT_ATA     (-5)  /* ATAPI/SATA signature, not a PIO disk    */
#define ATA_ERR_NOT_READY   (-6)  /* ata_init was not called / failed        */

/* Probe the primary master with IDENTIFY. 0 or an ATA_ERR_*. */
int ata_init(void);
/* Sectors the drive reports (LBA28 count), 0 before ata_init. */
uint32_t ata_sectors(void);
/* Model string from IDENTIFY (trimmed), "" before ata_init. */
const char *ata_model(void);

/* Read count sectors starting at lba into buf (count * 512 bytes).
 * 0 or an ATA_ERR_*; the error line details are in ata_last_detail(). */
int ata_read(uint32_t lba, uint32_t count, void *buf);

/* How ata_read moves data, found by ata_init: "bus-master DMA (PCI ...)"
 * or "PIO (rep insw): <why not DMA>". */
const char *ata_transfer_mode(void);
/* In-kernel tests: 1 = read by PIO even when DMA is available, 0 = back
 * to the mode ata_init found. */
void ata_force_pio(int on);

const char *ata_strerror(int err);
/* Status/error register values of the last failure, for messages. */
const char *ata_last_detail(void);

#endif
