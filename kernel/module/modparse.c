/*
 * modparse.c — validate a module file (modules/include/fluid_module.h) held
 * in a byte buffer. Pure: no kernel calls, no allocation, no globals, so the
 * same file builds for the host and is fuzzed there (internal/modfmt).
 *
 * Invariant: modparse returns 0 only when every offset, size, count and
 * relocation target it reports lies inside buf[0..len) and the checksum
 * matches; internal/modfmt's Parse mirrors these checks in the same order.
 */
#define FLUID_MODPARSE_HOST 1 /* only the pure part of module.h */
#include "module.h"
#include "crc32.h"

/* Little-endian field reads at any alignment: a module file sits in a
 * buffer that FAT32 or a test filled at any address, and the format is
 * little-endian whatever the host (the fuzz target runs on the host). */
static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

const char *module_variant_name(uint32_t variant)
{
	switch (variant) {
	case FLUID_VARIANT_BASELINE: return "baseline";
	case FLUID_VARIANT_O3: return "O3";
	case FLUID_VARIANT_PGO: return "PGO";
	case FLUID_VARIANT_INSTRUMENTED: return "instrumented";
	default: return "unknown";
	}
}

/* The x86_64 relocation names; internal/modfmt's relocTypeName knows the
 * same set (a test compares them through modparse_check). */
const char *module_reloc_name(uint32_t type)
{
	switch (type) {
	case 0: return "R_X86_64_NONE";
	case 1: return "R_X86_64_64";
	case 2: return "R_X86_64_PC32";
	case 3: return "R_X86_64_GOT32";
	case 4: return "R_X86_64_PLT32";
	case 5: return "R_X86_64_COPY";
	case 6: return "R_X86_64_GLOB_DAT";
	case 7: return "R_X86_64_JUMP_SLOT";
	case 8: return "R_X86_64_RELATIVE";
	case 9: return "R_X86_64_GOTPCREL";
	case 10: return "R_X86_64_32";
	case 11: return "R_X86_64_32S";
	case 12: return "R_X86_64_16";
	case 13: return "R_X86_64_PC16";
	case 14: return "R_X86_64_8";
	case 15: return "R_X86_64_PC8";
	case 16: return "R_X86_64_DTPMOD64";
	case 17: return "R_X86_64_DTPOFF64";
	case 18: return "R_X86_64_TPOFF64";
	case 24: return "R_X86_64_PC64";
	case 25: return "R_X86_64_GOTOFF64";
	case 26: return "R_X86_64_GOTPC32";
	case 32: return "R_X86_64_SIZE32";
	case 33: return "R_X86_64_SIZE64";
	case 37: return "R_X86_64_IRELATIVE";
	case 41: return "R_X86_64_GOTPCRELX";
	case 42: return "R_X86_64_REX_GOTPCRELX";
	default: return "unknown";
	}
}

/* --- a tiny formatter, so the error text needs no kernel fmt ---
 *
 * Invariant of struct errbuf: len < cap whenever cap > 0, and p[len] is
 * the NUL that ends the text so far. Text that does not fit is cut off,
 * never written past p[cap - 1]; cap == 0 (the caller passed no buffer)
 * writes nothing at all. The caller owns p; the errbuf only borrows it
 * for one modparse call. */
struct errbuf {
	char *p;
	size_t cap, len;
};

static void eput(struct errbuf *e, const char *s)
{
	while (*s && e->len + 1 < e->cap)
		e->p[e->len++] = *s++;
	if (e->cap)
		e->p[e->len] = '\0';
}

/* v in base 10 or 16 (with "0x"). A uint64_t has at most 20 decimal
 * digits, so tmp[24] and out[26] never fill up. */
static void eputu(struct errbuf *e, uint64_t v, unsigned base)
{
	char tmp[24];
	int i = 0;
	if (base == 16)
		eput(e, "0x");
	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && i < (int)sizeof(tmp));
	char out[26];
	int j = 0;
	while (i > 0)
		out[j++] = tmp[--i];
	out[j] = '\0';
	eput(e, out);
}

/* fail(e, "text", value, "text", value, ...) helpers, kept explicit. */
static int fail1(struct errbuf *e, const char *a)
{
	eput(e, a);
	return -1;
}

static int fail2(struct errbuf *e, const char *a, uint64_t x, unsigned base, const char *b)
{
	eput(e, a);
	eputu(e, x, base);
	eput(e, b);
	return -1;
}

static int valid_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

/*
 * modparse: check buf[0..len) as a module file, field by field.
 *
 * On entry: buf is readable for len bytes (or NULL); out may be NULL (only
 * the verdict is wanted); err[0..errlen) is writable (errlen may be 0).
 *
 * Returns 0 when the file is valid, and then (if out != NULL) out holds:
 *   - name: 1..31 of [a-z0-9_-], NUL-terminated, zero-padded to 32 bytes;
 *   - variant < FLUID_VARIANT_COUNT, flags within FLUID_MOD_F_KNOWN;
 *   - image = buf + image_offset, with image_offset >= the header size and
 *     code_size + data_size bytes of the file behind it; code_size > 0;
 *     code + data + bss <= FLUID_MOD_MAX_IMAGE (4 MiB), so their sum fits
 *     in a uint32_t;
 *   - align a power of two in 1..FLUID_MOD_MAX_ALIGN;
 *   - code_size a multiple of FLUID_MOD_PAGE_SIZE whenever data_size or
 *     bss_size is nonzero, so code and data never share a page (the
 *     loader maps code R+X and data RW+NX);
 *   - entry_offset < code_size, and profile_offset < code_size when the
 *     profile flag is set (FLUID_MOD_NO_OFFSET otherwise);
 *   - relocs = reloc_count 8-byte records inside the file after the image
 *     (NULL when there are none), reloc_count <= FLUID_MOD_MAX_RELOCS, each
 *     of type R_X86_64_64 or R_X86_64_RELATIVE with its 8-byte target
 *     inside code + data (never in bss, never past the image);
 *   - the CRC-32 over [FLUID_MOD_CRC_START, len) matched the header;
 *   - services_version == FLUID_SERVICES_VERSION: the module was compiled
 *     against this kernel's struct fluid_services (the header field comes
 *     from the record fluid_module.h puts in every module object).
 * The loader relies on exactly this list and checks none of it again.
 *
 * Returns -1 otherwise, with a one-line reason in err (cut to fit) and out
 * untouched: *out is written only after every check passed.
 *
 * Ownership: out->image and out->relocs point into buf; modparse copies
 * nothing, so they are valid only as long as the caller keeps buf.
 *
 * Arithmetic on offsets and sizes from the file is done in 64 bits
 * (filed, reloc_off, reloc_count * 8): a 32-bit sum could wrap and pass a
 * bound check. The checks run in the order of internal/modfmt's Parse, so
 * both name the same first failure for the same file (a test compares them).
 */
int modparse(const uint8_t *buf, size_t len, struct modparse_info *out, char *err, size_t errlen)
{
	struct errbuf e = { err, errlen, 0 };
	if (errlen)
		err[0] = '\0';
	if (!buf || len < FLUID_MOD_HDR_SIZE) {
		fail2(&e, "file too short: ", len, 10, " bytes, the header alone is ");
		return fail2(&e, "", FLUID_MOD_HDR_SIZE, 10, "");
	}
	if (rd32(buf + FLUID_MOD_OFF_MAGIC) != FLUID_MOD_MAGIC)
		return fail2(&e, "bad magic ", rd32(buf + FLUID_MOD_OFF_MAGIC), 16, " (want \"FMOD\")");
	if (rd16(buf + FLUID_MOD_OFF_ABI_VERSION) != FLUID_MOD_ABI_VERSION) {
		fail2(&e, "ABI version ", rd16(buf + FLUID_MOD_OFF_ABI_VERSION), 10, ", this kernel reads ");
		return fail2(&e, "", FLUID_MOD_ABI_VERSION, 10, ": rebuild the module with this tree's modules/include/fluid_module.h");
	}
	if (rd16(buf + FLUID_MOD_OFF_HDR_SIZE) != FLUID_MOD_HDR_SIZE) {
		fail2(&e, "header size ", rd16(buf + FLUID_MOD_OFF_HDR_SIZE), 10, ", want ");
		return fail2(&e, "", FLUID_MOD_HDR_SIZE, 10, "");
	}
	if ((uint64_t)rd32(buf + FLUID_MOD_OFF_FILE_SIZE) != (uint64_t)len)
		return fail2(&e, "file size field ", rd32(buf + FLUID_MOD_OFF_FILE_SIZE), 10,
			     " does not match the file: truncated or padded");
	uint32_t want = rd32(buf + FLUID_MOD_OFF_CRC32);
	uint32_t got = crc32_ieee(buf + FLUID_MOD_CRC_START, len - FLUID_MOD_CRC_START);
	if (want != got) {
		eput(&e, "checksum mismatch: header says ");
		eputu(&e, want, 16);
		return fail2(&e, ", contents give ", got, 16, "");
	}
	/* The file is intact; now the table its code will call. A mismatch
	 * means the module indexes struct fluid_services differently. */
	uint32_t services = rd32(buf + FLUID_MOD_OFF_SERVICES);
	if (services != FLUID_SERVICES_VERSION) {
		fail2(&e, "built against services table version ", services, 10, ", this kernel has ");
		return fail2(&e, "", FLUID_SERVICES_VERSION, 10,
			     "; rebuild the module with this tree's modules/include/fluid_module.h");
	}

	const char *name = (const char *)buf + FLUID_MOD_OFF_NAME;
	uint32_t nlen = 0;
	while (nlen < FLUID_MOD_NAME_MAX && name[nlen])
		nlen++;
	if (nlen == FLUID_MOD_NAME_MAX)
		return fail1(&e, "name is not NUL-terminated");
	if (nlen == 0)
		return fail1(&e, "bad name: only 1..31 of a-z 0-9 _ - allowed");
	for (uint32_t i = 0; i < nlen; i++)
		if (!valid_name_char(name[i]))
			return fail1(&e, "bad name: only 1..31 of a-z 0-9 _ - allowed");
	for (uint32_t i = nlen; i < FLUID_MOD_NAME_MAX; i++)
		if (name[i])
			return fail1(&e, "name padding is not zero");

	uint32_t variant = rd32(buf + FLUID_MOD_OFF_VARIANT);
	uint32_t flags = rd32(buf + FLUID_MOD_OFF_FLAGS);
	uint32_t image_off = rd32(buf + FLUID_MOD_OFF_IMAGE_OFFSET);
	uint32_t code = rd32(buf + FLUID_MOD_OFF_CODE_SIZE);
	uint32_t data = rd32(buf + FLUID_MOD_OFF_DATA_SIZE);
	uint32_t bss = rd32(buf + FLUID_MOD_OFF_BSS_SIZE);
	uint32_t align = rd32(buf + FLUID_MOD_OFF_ALIGN);
	uint32_t entry = rd32(buf + FLUID_MOD_OFF_ENTRY);
	uint64_t reloc_off = rd32(buf + FLUID_MOD_OFF_RELOC_OFFSET);
	uint64_t reloc_count = rd32(buf + FLUID_MOD_OFF_RELOC_COUNT);
	uint32_t profile = rd32(buf + FLUID_MOD_OFF_PROFILE);

	if (variant >= FLUID_VARIANT_COUNT)
		return fail2(&e, "unknown variant ", variant, 10, "");
	if (flags & ~FLUID_MOD_F_KNOWN)
		return fail2(&e, "unknown flags ", flags & ~FLUID_MOD_F_KNOWN, 16, "");
	if (rd32(buf + FLUID_MOD_OFF_DEADLINE) > FLUID_MOD_MAX_DEADLINE_MS)
		return fail2(&e, "deadline ", rd32(buf + FLUID_MOD_OFF_DEADLINE), 10, " ms exceeds 600000 ms");
	if (code == 0)
		return fail1(&e, "code size is 0");
	if (align == 0 || align > FLUID_MOD_MAX_ALIGN || (align & (align - 1)))
		return fail2(&e, "alignment ", align, 10, " is not a power of two up to 4096");
	if ((data || bss) && code % FLUID_MOD_PAGE_SIZE)
		return fail2(&e, "code size ", code, 16,
			     " is not a multiple of 4096, but data follows: code and data would share a page");
	uint64_t filed = (uint64_t)code + data;
	if (filed + bss > FLUID_MOD_MAX_IMAGE)
		return fail2(&e, "image of ", filed + bss, 10, " bytes exceeds 4194304");
	if (image_off < FLUID_MOD_HDR_SIZE || (uint64_t)image_off + filed > len)
		return fail2(&e, "image at offset ", image_off, 10, " is outside the file");
	if (entry >= code)
		return fail2(&e, "entry offset ", entry, 16, " is outside the code");
	if (reloc_count > FLUID_MOD_MAX_RELOCS)
		return fail2(&e, "", reloc_count, 10, " relocations exceed the limit of 65536");
	if (reloc_count > 0 &&
	    (reloc_off < (uint64_t)image_off + filed || reloc_off + reloc_count * 8u > len))
		return fail2(&e, "relocation table at offset ", reloc_off, 10,
			     " is outside the file after the image");
	if (flags & FLUID_MOD_F_PROFILE) {
		if (profile >= code)
			return fail2(&e, "profile hook offset ", profile, 16, " is outside the code");
	} else if (profile != FLUID_MOD_NO_OFFSET) {
		return fail2(&e, "profile hook offset ", profile, 16, " set without the profile flag");
	}
	for (uint64_t i = 0; i < reloc_count; i++) {
		const uint8_t *r = buf + reloc_off + i * 8u;
		uint32_t off = rd32(r), type = rd32(r + 4);
		if (type != FLUID_R_X86_64_64 && type != FLUID_R_X86_64_RELATIVE) {
			eput(&e, "relocation ");
			eputu(&e, i, 10);
			eput(&e, ": unsupported type ");
			if (module_reloc_name(type)[0] == 'u')
				eputu(&e, type, 10);
			else
				eput(&e, module_reloc_name(type));
			return fail1(&e, " (only R_X86_64_64 and R_X86_64_RELATIVE)");
		}
		if ((uint64_t)off + 8 > filed) {
			eput(&e, "relocation ");
			eputu(&e, i, 10);
			return fail2(&e, ": target ", off, 16, " is outside the image code+data");
		}
	}

	if (out) {
		for (uint32_t i = 0; i < FLUID_MOD_NAME_MAX; i++)
			out->name[i] = name[i];
		for (uint32_t i = 0; i < FLUID_MOD_HASH_SIZE; i++)
			out->hash[i] = buf[FLUID_MOD_OFF_HASH + i];
		out->variant = variant;
		out->flags = flags;
		out->image = buf + image_off;
		out->code_size = code;
		out->data_size = data;
		out->bss_size = bss;
		out->align = align;
		out->entry_offset = entry;
		out->relocs = reloc_count ? buf + reloc_off : NULL;
		out->reloc_count = (uint32_t)reloc_count;
		out->profile_offset = profile;
		out->deadline_ms = rd32(buf + FLUID_MOD_OFF_DEADLINE);
		out->services_version = services;
	}
	return 0;
}

/*
 * module_relocate: apply info's relocations to mem, a copy of the image
 * that will run at address base (the loader passes mem itself; the host
 * test passes high kernel addresses). Pure, like modparse.
 *
 * On entry: info came from a successful modparse, so every entry's type is
 * FLUID_R_X86_64_64 or FLUID_R_X86_64_RELATIVE and its 8-byte target lies
 * inside code + data; mem holds those code_size + data_size bytes.
 * Each entry adds base to the little-endian 64-bit word at its offset
 * (modulo 2^64, as address arithmetic does); the packer put the
 * image-relative address there, so afterwards the word holds the absolute
 * address. Byte-wise access: neither mem nor the words need alignment.
 */
void module_relocate(uint8_t *mem, uint64_t base, const struct modparse_info *info)
{
	for (uint32_t i = 0; i < info->reloc_count; i++) {
		const uint8_t *r = info->relocs + (size_t)i * sizeof(struct fluid_mod_reloc);
		uint8_t *w = mem + rd32(r);
		uint64_t v = 0;
		for (int b = 7; b >= 0; b--)
			v = v << 8 | w[b];
		v += base;
		for (int b = 0; b < 8; b++, v >>= 8)
			w[b] = (uint8_t)v;
	}
}
