/*
 * test_module.c — in-kernel tests of the module loader (kernel/module): a
 * hand-assembled module is loaded, relocated, run and measured; copies with
 * a corrupted header, checksum, relocation or entry are refused with a
 * reason and never executed.
 */
#include "crc32.h"
#include "jit_allocator.h"
#include "ktest.h"
#include "module.h"
#include "string.h"
#if __has_include("vm.h") /* the kernel's page tables (W^X): check what the loader did */
#include "vm.h"
#define TEST_VM_PROT 1
#endif

#define TEST_POOL_BYTES (32u * 1024u)

static uint8_t pool_mem[TEST_POOL_BYTES] __attribute__((aligned(4096)));
static struct jit_pool pool;

/* Image: code "mov eax, <status>; ret" (6 bytes) padded with nops to a
 * page (code and data never share one), then one 64-bit data word holding
 * image offset 4 (relocated: load address + 4), bss 8. */
#define IMG_CODE   FLUID_MOD_PAGE_SIZE
#define IMG_DATA   8u
#define IMG_BSS    8u
#define N_RELOCS   1u
#define MOD_BYTES  (FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA + 8u * N_RELOCS)

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void fix_crc(uint8_t *m, uint32_t len)
{
	wr32(m + FLUID_MOD_OFF_CRC32, crc32_ieee(m + FLUID_MOD_CRC_START, len - FLUID_MOD_CRC_START));
}

static void make_module(uint8_t *m, const char *name, int32_t status)
{
	memset(m, 0, MOD_BYTES);
	wr32(m + FLUID_MOD_OFF_MAGIC, FLUID_MOD_MAGIC);
	m[FLUID_MOD_OFF_ABI_VERSION] = FLUID_MOD_ABI_VERSION;
	m[FLUID_MOD_OFF_HDR_SIZE] = FLUID_MOD_HDR_SIZE;
	wr32(m + FLUID_MOD_OFF_FILE_SIZE, MOD_BYTES);
	strncpy((char *)m + FLUID_MOD_OFF_NAME, name, FLUID_MOD_NAME_MAX - 1);
	wr32(m + FLUID_MOD_OFF_VARIANT, FLUID_VARIANT_PGO);
	for (uint32_t i = 0; i < FLUID_MOD_HASH_SIZE; i++)
		m[FLUID_MOD_OFF_HASH + i] = (uint8_t)(0xA0 + i);
	wr32(m + FLUID_MOD_OFF_IMAGE_OFFSET, FLUID_MOD_HDR_SIZE);
	wr32(m + FLUID_MOD_OFF_CODE_SIZE, IMG_CODE);
	wr32(m + FLUID_MOD_OFF_DATA_SIZE, IMG_DATA);
	wr32(m + FLUID_MOD_OFF_BSS_SIZE, IMG_BSS);
	wr32(m + FLUID_MOD_OFF_ALIGN, 64);
	wr32(m + FLUID_MOD_OFF_ENTRY, 0);
	wr32(m + FLUID_MOD_OFF_RELOC_OFFSET, FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA);
	wr32(m + FLUID_MOD_OFF_RELOC_COUNT, N_RELOCS);
	wr32(m + FLUID_MOD_OFF_PROFILE, FLUID_MOD_NO_OFFSET);
	wr32(m + FLUID_MOD_OFF_SERVICES, FLUID_SERVICES_VERSION);
	uint8_t *img = m + FLUID_MOD_HDR_SIZE;
	img[0] = 0xB8; /* mov eax, imm32 */
	wr32(img + 1, (uint32_t)status);
	img[5] = 0xC3; /* ret */
	memset(img + 6, 0x90, IMG_CODE - 6);
	wr32(img + IMG_CODE, 4); /* the data word: image offset 4 (high half 0) */
	uint8_t *rel = img + IMG_CODE + IMG_DATA;
	wr32(rel, IMG_CODE);     /* relocate the data word */
	wr32(rel + 4, FLUID_R_X86_64_RELATIVE);
	fix_crc(m, MOD_BYTES);
}

static int has(const char *s, const char *sub)
{
	size_t n = strlen(sub);
	for (; *s; s++)
		if (strncmp(s, sub, n) == 0)
			return 1;
	return 0;
}

KTEST(module_loads_relocates_and_runs)
{
	static uint8_t m[MOD_BYTES];
	make_module(m, "tiny", FLUID_OK);
	KT_EQ_U(jit_pool_init(&pool, pool_mem, TEST_POOL_BYTES), 0);
	module_records_reset();
	struct module_record *rec = module_record_new("tiny.mod");
	KT_ASSERT(rec != NULL);
	struct module mod;
	int rc = module_load(rec, m, MOD_BYTES, &pool, &mod);
	if (rc != 0)
		ktest_fail(__FILE__, __LINE__, "refused: %s", rec->reason);
	KT_EQ_U(rc, 0);
	KT_EQ_STR(rec->name, "tiny");
	KT_EQ_STR(rec->hash, "a0a1a2a3a4a5a6a7");
	KT_EQ_U(rec->variant, FLUID_VARIANT_PGO);
	KT_EQ_U(rec->base & (FLUID_MOD_PAGE_SIZE - 1), 0); /* page aligned: W^X per page */
	KT_EQ_U(rec->size, IMG_CODE + IMG_DATA + IMG_BSS);
	uint64_t word; /* the whole 64-bit word moved by the load address */
	memcpy(&word, (uint8_t *)rec->base + IMG_CODE, 8);
	KT_ASSERT(word == (uint64_t)rec->base + 4);
	KT_ASSERT(rec->profile == NULL);
#ifdef TEST_VM_PROT
	/* W^X: the code page read-only and executable, the data page
	 * (relocated word, bss) read-write and not executable. */
	KT_EQ_U(vm_prot(rec->base), VM_R | VM_X);
	KT_EQ_U(vm_prot(rec->base + IMG_CODE), VM_R | VM_W);
#endif
	mod.runs = 5;
	KT_EQ_U(module_execute(&mod), 0);
	KT_EQ_U(rec->result, MODULE_OK);
	KT_EQ_U(rec->calls, 5);
	KT_ASSERT(rec->cycles_min <= rec->cycles_max);
	KT_ASSERT(rec->cycles_total >= rec->cycles_max);
	KT_ASSERT(rec->cycles_max > 0);
	/* a module runs once: a second execute is refused */
	KT_ASSERT(module_execute(&mod) == -1);
	KT_EQ_U(rec->calls, 5);
	size_t n;
	const struct module_record *all = module_records(&n);
	KT_EQ_U(n, 1);
	KT_ASSERT(all == rec);
	/* unloading gives the whole-page block back to the pool */
	struct jit_stats st;
	jit_stats(&pool, &st);
	KT_EQ_U(st.used, 2 * FLUID_MOD_PAGE_SIZE);
	uintptr_t base = rec->base;
	module_unload(&mod);
	jit_stats(&pool, &st);
	KT_EQ_U(st.used, 0);
	KT_ASSERT(mod.entry == NULL);
#ifdef TEST_VM_PROT
	KT_EQ_U(vm_prot(base), VM_R | VM_W); /* back to RW+NX for the pool's next block */
#else
	(void)base;
#endif
	module_unload(&mod); /* a second unload is a no-op */
}

KTEST(module_failing_status_is_reported)
{
	static uint8_t m[MOD_BYTES];
	make_module(m, "sad", FLUID_FAIL);
	KT_EQ_U(jit_pool_init(&pool, pool_mem, TEST_POOL_BYTES), 0);
	module_records_reset();
	struct module_record *rec = module_record_new("sad.mod");
	struct module mod;
	KT_EQ_U(module_load(rec, m, MOD_BYTES, &pool, &mod), 0);
	mod.runs = 2;
	KT_ASSERT(module_execute(&mod) == -1);
	KT_EQ_U(rec->result, MODULE_FAIL);
	KT_EQ_U(rec->calls, 2);
	KT_ASSERT(has(rec->reason, "entry returned 1"));
	module_unload(&mod);
}

struct bad_case {
	const char *what;
	uint32_t off;     /* field to overwrite (absolute file offset) */
	uint32_t value;
	int fix;          /* recompute the CRC afterwards */
	uint32_t len;     /* file length to pass (0 = MOD_BYTES) */
	const char *want; /* substring of the refusal */
};

KTEST(module_corrupted_is_refused)
{
	static const struct bad_case cases[] = {
		{ "magic", FLUID_MOD_OFF_MAGIC, 0x12345678, 1, 0, "bad magic" },
		{ "version", FLUID_MOD_OFF_ABI_VERSION, 7, 1, 0, "ABI version 7, this kernel reads 3: rebuild" },
		{ "i686 ABI", FLUID_MOD_OFF_ABI_VERSION, 2, 1, 0,
		  "ABI version 2, this kernel reads 3: rebuild the module with this tree's modules/include/fluid_module.h" },
		{ "old ABI", FLUID_MOD_OFF_ABI_VERSION, 1, 1, 0, "ABI version 1, this kernel reads 3: rebuild" },
		{ "services", FLUID_MOD_OFF_SERVICES, FLUID_SERVICES_VERSION + 1, 1, 0,
		  "built against services table version 3, this kernel has 2; rebuild the module with this "
		  "tree's modules/include/fluid_module.h" },
		/* A module built before ms and read_file were appended. */
		{ "services v1", FLUID_MOD_OFF_SERVICES, 1, 1, 0,
		  "built against services table version 1, this kernel has 2; rebuild the module with this "
		  "tree's modules/include/fluid_module.h" },
		{ "checksum", FLUID_MOD_HDR_SIZE + 1, 0xDEAD, 0, 0, "checksum mismatch" },
		{ "crc field", FLUID_MOD_OFF_CRC32, 0, 0, 0, "checksum mismatch" },
		{ "truncated", 0, 0, 0, MOD_BYTES - 4, "file size field" },
		{ "reloc type", FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA + 4, 2, 1, 0,
		  "unsupported type R_X86_64_PC32 (only R_X86_64_64 and R_X86_64_RELATIVE)" },
		{ "reloc type GOTPCREL", FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA + 4, 9, 1, 0, "R_X86_64_GOTPCREL" },
		{ "reloc type IRELATIVE", FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA + 4, 37, 1, 0, "R_X86_64_IRELATIVE" },
		/* the 64-bit word at code + data - 4 would end 4 bytes past the data */
		{ "reloc target", FLUID_MOD_HDR_SIZE + IMG_CODE + IMG_DATA, IMG_CODE + IMG_DATA - 4, 1, 0, "target" },
		{ "code shares a page with data", FLUID_MOD_OFF_CODE_SIZE, IMG_CODE - 16, 1, 0,
		  "is not a multiple of 4096, but data follows" },
		{ "reloc table", FLUID_MOD_OFF_RELOC_OFFSET, MOD_BYTES - 4, 1, 0, "relocation table" },
		{ "entry", FLUID_MOD_OFF_ENTRY, IMG_CODE, 1, 0, "entry offset" },
		{ "image size", FLUID_MOD_OFF_DATA_SIZE, 4096, 1, 0, "outside the file" },
		{ "alignment", FLUID_MOD_OFF_ALIGN, 8192, 1, 0, "alignment 8192" },
		{ "variant", FLUID_MOD_OFF_VARIANT, 9, 1, 0, "unknown variant" },
		{ "pool", FLUID_MOD_OFF_BSS_SIZE, TEST_POOL_BYTES * 2, 1, 0, "no room in the JIT pool" },
	};
	static uint8_t m[MOD_BYTES];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		make_module(m, "bad", FLUID_OK);
		if (c->len == 0) {
			if (c->off == FLUID_MOD_OFF_ABI_VERSION)
				m[c->off] = (uint8_t)c->value;
			else
				wr32(m + c->off, c->value);
		}
		uint32_t len = c->len ? c->len : MOD_BYTES;
		if (c->fix)
			fix_crc(m, len);
		KT_EQ_U(jit_pool_init(&pool, pool_mem, TEST_POOL_BYTES), 0);
		module_records_reset();
		struct module_record *rec = module_record_new("bad.mod");
		struct module mod;
		int rc = module_load(rec, m, len, &pool, &mod);
		if (rc == 0)
			ktest_fail(__FILE__, __LINE__, "case %s: corrupted module accepted", c->what);
		KT_ASSERT(rc == -1);
		KT_EQ_U(rec->result, MODULE_REFUSED);
		if (!has(rec->reason, c->want))
			ktest_fail(__FILE__, __LINE__, "case %s: reason \"%s\" lacks \"%s\"", c->what, rec->reason,
				   c->want);
		KT_ASSERT(has(rec->reason, c->want));
		/* never executed, nothing left in the pool */
		KT_ASSERT(module_execute(&mod) == -1);
		KT_EQ_U(rec->calls, 0);
		struct jit_stats st;
		jit_stats(&pool, &st);
		KT_EQ_U(st.used, 0);
	}
}

KTEST(module_name_must_match_file)
{
	static uint8_t m[MOD_BYTES];
	make_module(m, "tiny", FLUID_OK);
	KT_EQ_U(jit_pool_init(&pool, pool_mem, TEST_POOL_BYTES), 0);
	module_records_reset();
	struct module mod;
	struct module_record *rec = module_record_new("other.mod");
	KT_ASSERT(module_load(rec, m, MOD_BYTES, &pool, &mod) == -1);
	KT_ASSERT(has(rec->reason, "rename the file to tiny.mod"));
	rec = module_record_new("TINY.MOD"); /* FAT short names are upper case */
	KT_EQ_U(module_load(rec, m, MOD_BYTES, &pool, &mod), 0);
	module_unload(&mod);
}

/* A module built against another services table is refused before any of
 * it runs, with the message to rebuild it, and the next module still loads
 * and runs. */
KTEST(module_services_version_is_refused)
{
	static uint8_t m[MOD_BYTES];
	make_module(m, "stale", FLUID_OK);
	wr32(m + FLUID_MOD_OFF_SERVICES, 0);
	fix_crc(m, MOD_BYTES);
	KT_EQ_U(jit_pool_init(&pool, pool_mem, TEST_POOL_BYTES), 0);
	module_records_reset();
	struct module mod;
	struct module_record *rec = module_record_new("stale.mod");
	KT_ASSERT(module_load(rec, m, MOD_BYTES, &pool, &mod) == -1);
	KT_EQ_U(rec->result, MODULE_REFUSED);
	KT_EQ_STR(rec->reason, "built against services table version 0, this kernel has 2; rebuild the module "
			       "with this tree's modules/include/fluid_module.h");
	KT_ASSERT(module_execute(&mod) == -1);
	KT_EQ_U(rec->calls, 0);

	make_module(m, "fresh", FLUID_OK);
	struct module_record *ok = module_record_new("fresh.mod");
	KT_EQ_U(module_load(ok, m, MOD_BYTES, &pool, &mod), 0);
	mod.runs = 1;
	KT_EQ_U(module_execute(&mod), 0);
	KT_EQ_U(ok->result, MODULE_OK);
	KT_EQ_U(rec->result, MODULE_REFUSED);
	module_unload(&mod);
}

KTEST(modparse_reloc_names)
{
	KT_EQ_STR(module_reloc_name(2), "R_X86_64_PC32");
	KT_EQ_STR(module_reloc_name(8), "R_X86_64_RELATIVE");
	KT_EQ_STR(module_reloc_name(1), "R_X86_64_64");
	KT_EQ_STR(module_reloc_name(37), "R_X86_64_IRELATIVE");
	KT_EQ_STR(module_reloc_name(99), "unknown");
	KT_EQ_STR(module_variant_name(FLUID_VARIANT_O3), "O3");
}
