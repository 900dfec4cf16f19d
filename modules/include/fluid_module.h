/*
 * fluid_module.h — the Fluid OS module ABI: the on-disk module file format
 * (".mod", written by internal/modfmt, parsed by kernel/module/modparse.c)
 * and the kernel services table a module's entry point receives.
 *
 * This is the only header a module includes. It is also included by the
 * kernel and by the host build of the parser, so it depends on <stdint.h>
 * and <stddef.h> only.
 *
 * File layout (all integers little-endian):
 *
 *   0            struct fluid_mod_header (FLUID_MOD_HDR_SIZE bytes)
 *   image_offset image bytes: code (text + rodata) then data, exactly as
 *                linked at address 0; bss (zeroed by the loader) follows in
 *                memory, not in the file
 *   reloc_offset reloc_count * struct fluid_mod_reloc
 *   file_size    end of file
 *
 * The checksum is CRC-32 IEEE (poly 0xEDB88320, init/xorout 0xFFFFFFFF, as
 * Go's crc32.ChecksumIEEE) over file bytes [FLUID_MOD_CRC_START, file_size),
 * i.e. everything after the crc32 field.
 *
 * Architecture: x86_64 only (ABI 3). Modules are compiled position
 * independent (-fpie, -mno-red-zone) and linked at address 0 with `-pie -z
 * notext`, so code reaches code and data RIP-relative and needs no
 * relocation; only stored addresses (pointer tables, pointers in data) do.
 *
 * Relocations: every entry names a 64-bit word inside the image (code or
 * data) that holds an address relative to image start; the loader adds the
 * load address. Allowed types are R_X86_64_64 (1) and R_X86_64_RELATIVE
 * (8) — the two types such a link can leave, the packer having written the
 * addend (RELATIVE) or symbol + addend (64) into the word — and nothing else.
 *
 * Pages (W^X): the kernel maps a module's code read-only and executable and
 * its data and bss read-write and never executable, page by page. So when a
 * module has data or bss, code_size is a multiple of FLUID_MOD_PAGE_SIZE
 * (modules/module.ld starts .data on a page): code and data never share a
 * page. Relocations are applied before the code becomes read-only.
 */
#ifndef FLUID_MODULE_H
#define FLUID_MODULE_H

#include <stddef.h>
#include <stdint.h>

/* ---- File format -------------------------------------------------------- */
#define FLUID_MOD_MAGIC         0x444F4D46u /* "FMOD" little-endian */
#define FLUID_MOD_ABI_VERSION   3u   /* 3: x86_64, 64-bit relocation words (2: i686) */
#define FLUID_MOD_HDR_SIZE      108u
#define FLUID_MOD_CRC_START     12u  /* CRC covers [12, file_size)           */
#define FLUID_MOD_NAME_MAX      32u  /* name field incl. the NUL             */
#define FLUID_MOD_HASH_SIZE     8u   /* leading bytes of SHA-256(image||relocs) */
#define FLUID_MOD_MAX_ALIGN     4096u
#define FLUID_MOD_PAGE_SIZE     4096u /* code_size is a multiple when data/bss exist */
#define FLUID_MOD_MAX_IMAGE     (1u << 22) /* 4 MiB code+data+bss          */
#define FLUID_MOD_MAX_RELOCS    (1u << 16)
#define FLUID_MOD_NO_OFFSET     0xFFFFFFFFu /* "no profile hook"             */
#define FLUID_MOD_MAX_DEADLINE_MS 600000u /* 10 min: a larger deadline is a mistake */

/* Variant tags (header field `variant`). */
#define FLUID_VARIANT_BASELINE      0u /* -O2                               */
#define FLUID_VARIANT_O3            1u /* -O3                               */
#define FLUID_VARIANT_PGO           2u /* -O2 -fprofile-instr-use           */
#define FLUID_VARIANT_INSTRUMENTED  3u /* -O2 -fprofile-instr-generate      */
#define FLUID_VARIANT_COUNT         4u

/* Relocation types (the ELF x86_64 numbers); both mean "add the load
 * address to the 64-bit word at this image offset". */
#define FLUID_R_X86_64_64       1u
#define FLUID_R_X86_64_RELATIVE 8u

/* Header flags. */
#define FLUID_MOD_F_PROFILE     0x1u /* profile_offset names a dump hook    */
#define FLUID_MOD_F_KNOWN       FLUID_MOD_F_PROFILE

#define FLUID_MOD_OFF_MAGIC          0
#define FLUID_MOD_OFF_ABI_VERSION    4  /* uint16 */
#define FLUID_MOD_OFF_HDR_SIZE       6  /* uint16 */
#define FLUID_MOD_OFF_CRC32          8
#define FLUID_MOD_OFF_FILE_SIZE      12
#define FLUID_MOD_OFF_NAME           16 /* char[32], NUL-terminated */
#define FLUID_MOD_OFF_VARIANT        48
#define FLUID_MOD_OFF_FLAGS          52
#define FLUID_MOD_OFF_HASH           56 /* uint8[8] */
#define FLUID_MOD_OFF_IMAGE_OFFSET   64
#define FLUID_MOD_OFF_CODE_SIZE      68
#define FLUID_MOD_OFF_DATA_SIZE      72
#define FLUID_MOD_OFF_BSS_SIZE       76
#define FLUID_MOD_OFF_ALIGN          80
#define FLUID_MOD_OFF_ENTRY          84 /* offset in the image, inside code */
#define FLUID_MOD_OFF_RELOC_OFFSET   88
#define FLUID_MOD_OFF_RELOC_COUNT    92
#define FLUID_MOD_OFF_PROFILE        96 /* image offset of fluid_profile_dump or FLUID_MOD_NO_OFFSET */
#define FLUID_MOD_OFF_DEADLINE       100 /* ms per entry call, 0 = the kernel default */
#define FLUID_MOD_OFF_SERVICES       104 /* FLUID_SERVICES_VERSION the module was compiled against */

struct fluid_mod_header {
	uint32_t magic;
	uint16_t abi_version;
	uint16_t header_size;
	uint32_t crc32;
	uint32_t file_size;
	char     name[FLUID_MOD_NAME_MAX];
	uint32_t variant;
	uint32_t flags;
	uint8_t  hash[FLUID_MOD_HASH_SIZE];
	uint32_t image_offset;
	uint32_t code_size;
	uint32_t data_size;
	uint32_t bss_size;
	uint32_t align;
	uint32_t entry_offset;
	uint32_t reloc_offset;
	uint32_t reloc_count;
	uint32_t profile_offset;
	uint32_t deadline_ms;
	uint32_t services_version;
} __attribute__((packed));

struct fluid_mod_reloc {
	uint32_t offset; /* image offset of the 64-bit word to adjust (offset + 8 <= code + data) */
	uint32_t type;   /* FLUID_R_X86_64_64 or FLUID_R_X86_64_RELATIVE */
} __attribute__((packed));

_Static_assert(sizeof(struct fluid_mod_header) == FLUID_MOD_HDR_SIZE, "module header size");
_Static_assert(__builtin_offsetof(struct fluid_mod_header, profile_offset) == FLUID_MOD_OFF_PROFILE,
	       "module header layout");
_Static_assert(__builtin_offsetof(struct fluid_mod_header, deadline_ms) == FLUID_MOD_OFF_DEADLINE,
	       "module header layout");
_Static_assert(__builtin_offsetof(struct fluid_mod_header, services_version) == FLUID_MOD_OFF_SERVICES,
	       "module header layout");
_Static_assert(sizeof(struct fluid_mod_reloc) == 8, "module reloc size");

/*
 * The profile hook. A module built for profiling may define
 *
 *     int32_t fluid_profile_dump(uint8_t *buf, uint32_t cap);
 *
 * internal/modfmt then records its image offset in the header field
 * profile_offset (and sets FLUID_MOD_F_PROFILE); the loader checks that it
 * lies inside the code and exposes it as module->profile. Contract: called with
 * buf == NULL it returns the number of bytes it needs; otherwise it writes at
 * most cap bytes and returns the number written, or a negative value on
 * error. The loader never calls it; the profiler (kernel/prof) does.
 */
#define FLUID_PROFILE_SYMBOL    "fluid_profile_dump"
typedef int32_t (*fluid_profile_fn)(uint8_t *buf, uint32_t cap);

/*
 * The deadline. A module may declare how long one call of its entry may
 * take, in milliseconds, at file scope:
 *
 *     FLUID_DEADLINE_MS(500);
 *
 * internal/modfmt then records the value in the header field deadline_ms
 * (0 = the kernel's default, MODULE_DEADLINE_MS). The kernel gives a module
 * deadline x calls for all its calls together (one call with LIGHT=1) and
 * stops it, reporting "timed out", when it overruns.
 */
#define FLUID_DEADLINE_SYMBOL   "fluid_deadline_ms"
#define FLUID_DEADLINE_MS(ms) \
	__attribute__((used)) const uint32_t fluid_deadline_ms = (ms)

/* ---- Kernel services ------------------------------------------------------ */
/* Bump whenever struct fluid_services changes in any way (a field added,
 * removed, reordered or retyped): the loader refuses modules compiled
 * against another value, so no module calls the wrong function pointer. */
#define FLUID_SERVICES_VERSION  2u

/*
 * The services version record. Every object file that includes this header
 * carries FLUID_SERVICES_VERSION as one uint32 in the section
 * FLUID_SERVICES_SECTION, so a module cannot forget to declare the table it
 * was compiled against. modules/module.ld keeps that section out of the
 * image (an INFO section: not loaded, not hashed); internal/modfmt reads it
 * from the ELF, refuses an ELF without it or with differing values, and
 * records the value in the header field services_version; the kernel's
 * module parser (kernel/module/modparse.c) refuses a module whose value is
 * not this header's FLUID_SERVICES_VERSION, before any of it runs. The
 * kernel and the host build of the parser include this header too; they
 * define FLUID_NO_SERVICES_RECORD first, as they are not modules.
 */
#define FLUID_SERVICES_SECTION  ".fluid_services_version"
#ifndef FLUID_NO_SERVICES_RECORD
__attribute__((used, section(".fluid_services_version"), aligned(4)))
static const uint32_t fluid_services_version_record = FLUID_SERVICES_VERSION;
/* Modules are x86_64 (ABI 3): an object compiled for another target would
 * index struct fluid_services with other pointer sizes. */
_Static_assert(sizeof(void *) == 8 && sizeof(size_t) == 8, "modules are x86_64: compile with modfmt.CFlags");
#endif

/* Module return status. */
#define FLUID_OK                0
#define FLUID_FAIL              1

struct fluid_services {
	uint32_t version;   /* FLUID_SERVICES_VERSION                           */
	uint32_t light;     /* nonzero: LIGHT=1, shrink the work                  */
	/* Console (COM1 + VGA). printf supports the kernel's kvsnprintf set:
	 * %d %i %u %x %X %p %s %c %%, l/ll/z sizes, width, 0/- flags. */
	void (*print)(const char *s);
	void (*printf)(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
	/* Memory from the kernel heap; alloc returns NULL when out of memory. */
	void *(*alloc)(size_t size);
	void (*free)(void *p);
	/* Cycle counter (rdtsc). */
	uint64_t (*rdtsc)(void);
	/* Result reporting: prints "check <module>: <name> ok|FAIL got=... want=..."
	 * only on failure (ok checks are counted), records a failure for the
	 * module, and returns got == expected. */
	int (*check)(const char *name, uint64_t got, uint64_t expected);
	/* Milliseconds since the kernel's timer started (PIT ticks). */
	uint64_t (*ms)(void);
	/* The whole file at an absolute FAT32 path (e.g. "/llama/model.gguf"),
	 * read from the partition on the first request and kept for the rest
	 * of the boot; *size gets its length in bytes. NULL when the file is
	 * missing, is a directory, or cannot be read or held in RAM, after the
	 * kernel printed why ("file PATH: <reason>"). The bytes belong to the
	 * kernel: read them, never write or free them. 16-byte aligned. */
	const void *(*read_file)(const char *path, uint64_t *size);
};

/* Entry point of every module (the ELF entry symbol). Returns FLUID_OK or
 * FLUID_FAIL; the kernel also treats any failed check() as a failure. */
typedef int32_t (*fluid_entry_fn)(const struct fluid_services *svc);
#define FLUID_ENTRY_SYMBOL      "fluid_main"
int32_t fluid_main(const struct fluid_services *svc);

/* ---- Freestanding helpers every module links (modules/lib/runtime.c) ----- */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);

/* The workloads' input generator: Marsaglia's xorshift32 (13, 17, 5). Every
 * module's known answers (modules/<name>/known_answers.py) replay this exact
 * sequence, so it lives here once. */
static inline uint32_t xorshift32(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

#endif /* FLUID_MODULE_H */
