/*
 * modrun.c — host harness for BOLT experiments: loads one linked x86_64
 * Fluid OS module ELF (every PT_LOAD, at a fixed base), applies its
 * R_X86_64_RELATIVE dynamic relocations, and calls fluid_main with a
 * services table like the kernel's (check counts, print to stdout).
 *
 *   modrun [-p] MODULE.elf [repeat] env LIGHT=1 for the light workload,
 *                                  MODRUN_FINI=1 to call DT_FINI at the end
 *
 * -p loads it as internal/modfmt would pack it and the kernel load it: only
 * the image [__fluid_image_start, __fluid_image_end) is copied (every other
 * allocated section must be -pie bookkeeping: dynsym, dynstr, hash, rela,
 * dynamic; else it refuses, naming the section), at PACKED_BASE, with the
 * R_X86_64_RELATIVE relocations rebased by -__fluid_image_start.
 *
 * The base is fixed (MODRUN_BASE) so the QEMU plugin (edgeprof.c) can name
 * module-relative offsets. Exit 0 when every call returned FLUID_OK.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODRUN_BASE 0x10000000UL
#define PACKED_BASE 0x10000000UL /* the image start lands here in -p mode */

/* packed_load: the -p loader; returns the entry or NULL (after a message). */
static uint8_t *packed_load(const char *path, uint8_t *f)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	Elf64_Shdr *sh = (Elf64_Shdr *)(f + eh->e_shoff);
	const char *shstr = (const char *)f + sh[eh->e_shstrndx].sh_offset;
	uint64_t start = 0, end = 0;
	int have = 0;
	for (int i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type != SHT_SYMTAB)
			continue;
		Elf64_Sym *sym = (Elf64_Sym *)(f + sh[i].sh_offset);
		const char *str = (const char *)f + sh[sh[i].sh_link].sh_offset;
		for (uint64_t k = 0; k < sh[i].sh_size / sizeof *sym; k++) {
			if (!strcmp(str + sym[k].st_name, "__fluid_image_start"))
				start = sym[k].st_value, have |= 1;
			if (!strcmp(str + sym[k].st_name, "__fluid_image_end"))
				end = sym[k].st_value, have |= 2;
		}
	}
	if (have != 3 || end < start) {
		fprintf(stderr, "%s: no __fluid_image_start/__fluid_image_end\n", path);
		return NULL;
	}
	/* MODRUN_EXTEND=1: the packer proposed in docs/BOLT.md for BOLT's
	 * layout: the image runs on to the last allocated section that is not
	 * -pie bookkeeping (e.g. the jump tables BOLT moved into a new .rodata),
	 * the gap (bss, bookkeeping) zero-filled. */
	if (getenv("MODRUN_EXTEND"))
		for (int i = 0; i < eh->e_shnum; i++) {
			Elf64_Shdr *s = &sh[i];
			if (!(s->sh_flags & SHF_ALLOC) || s->sh_type == SHT_DYNSYM || s->sh_type == SHT_STRTAB ||
			    s->sh_type == SHT_HASH || s->sh_type == SHT_GNU_HASH || s->sh_type == SHT_RELA ||
			    s->sh_type == SHT_DYNAMIC)
				continue;
			if (s->sh_addr + s->sh_size > end)
				end = s->sh_addr + s->sh_size;
		}
	uint8_t *base = mmap((void *)PACKED_BASE, (end - start + 4095) & ~4095UL, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (base != (uint8_t *)PACKED_BASE) {
		perror("mmap packed base");
		return NULL;
	}
	int nrel = 0;
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < eh->e_shnum; i++) {
			Elf64_Shdr *s = &sh[i];
			if (!(s->sh_flags & SHF_ALLOC) || !s->sh_size)
				continue;
			if (s->sh_addr >= end) {
				if (s->sh_type == SHT_DYNSYM || s->sh_type == SHT_STRTAB || s->sh_type == SHT_HASH ||
				    s->sh_type == SHT_GNU_HASH || s->sh_type == SHT_RELA || s->sh_type == SHT_DYNAMIC) {
					if (pass == 1 && s->sh_type == SHT_RELA)
						for (uint64_t o = 0; o < s->sh_size; o += sizeof(Elf64_Rela)) {
							Elf64_Rela *r = (Elf64_Rela *)(f + s->sh_offset + o);
							if (ELF64_R_TYPE(r->r_info) != R_X86_64_RELATIVE || r->r_offset < start ||
							    r->r_offset + 8 > end) {
								fprintf(stderr, "%s: relocation type %lu at 0x%lx not packable\n", path,
									(unsigned long)ELF64_R_TYPE(r->r_info), (unsigned long)r->r_offset);
								return NULL;
							}
							*(uint64_t *)(base + r->r_offset - start) = (uint64_t)base + r->r_addend - start;
							nrel++;
						}
					continue;
				}
				fprintf(stderr, "%s: section %s at 0x%lx lies after the image end 0x%lx: not packable\n", path,
					shstr + s->sh_name, (unsigned long)s->sh_addr, (unsigned long)end);
				return NULL;
			}
			if (s->sh_addr < start || s->sh_addr + s->sh_size > end) {
				fprintf(stderr, "%s: section %s [0x%lx,0x%lx) is not inside the image [0x%lx,0x%lx)\n", path,
					shstr + s->sh_name, (unsigned long)s->sh_addr, (unsigned long)(s->sh_addr + s->sh_size),
					(unsigned long)start, (unsigned long)end);
				return NULL;
			}
			if (pass == 0 && s->sh_type != SHT_NOBITS)
				memcpy(base + s->sh_addr - start, f + s->sh_offset, s->sh_size);
		}
	if (eh->e_entry < start || eh->e_entry >= end) {
		fprintf(stderr, "%s: entry 0x%lx outside the image\n", path, (unsigned long)eh->e_entry);
		return NULL;
	}
	printf("modrun: packed image [0x%lx,0x%lx) %lu bytes, relocs=%d\n", (unsigned long)start, (unsigned long)end,
	       (unsigned long)(end - start), nrel);
	return base + eh->e_entry - start;
}

struct fluid_services {
	uint32_t version, light;
	void (*print)(const char *s);
	void (*printf)(const char *fmt, ...);
	void *(*alloc)(size_t size);
	void (*free)(void *p);
	uint64_t (*rdtsc)(void);
	int (*check)(const char *name, uint64_t got, uint64_t expected);
};

static int checks, failures;
static void s_print(const char *s) { fputs(s, stdout); }
static void s_printf(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}
static uint64_t s_rdtsc(void) { return 0; }
static int s_check(const char *name, uint64_t got, uint64_t want)
{
	checks++;
	if (got != want) {
		failures++;
		printf("check: %s FAIL got=%llu want=%llu\n", name, (unsigned long long)got, (unsigned long long)want);
	}
	return got == want;
}

int main(int argc, char **argv)
{
	int packed = argc > 1 && !strcmp(argv[1], "-p");
	if (packed)
		argc--, argv++;
	if (argc < 2) {
		fprintf(stderr, "usage: modrun [-p] MODULE.elf [repeat]\n");
		return 2;
	}
	int repeat = argc > 2 ? atoi(argv[2]) : 1;
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		perror(argv[1]);
		return 2;
	}
	uint8_t *f = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64) {
		fprintf(stderr, "%s: not an x86_64 ELF64\n", argv[1]);
		return 2;
	}
	struct fluid_services svc = {1, getenv("LIGHT") != NULL, s_print, s_printf, malloc, free, s_rdtsc, s_check};
	if (packed) {
		int32_t (*pentry)(const struct fluid_services *) = (void *)packed_load(argv[1], f);
		if (!pentry)
			return 2;
		int pbad = 0;
		for (int i = 0; i < repeat; i++)
			pbad |= pentry(&svc) != 0;
		printf("modrun: %s (packed) calls=%d checks=%d failures=%d status=%s\n", argv[1], repeat, checks, failures,
		       pbad || failures ? "FAIL" : "ok");
		return pbad || failures;
	}
	Elf64_Phdr *ph = (Elf64_Phdr *)(f + eh->e_phoff);
	uint64_t end = 0;
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_vaddr + ph[i].p_memsz > end)
			end = ph[i].p_vaddr + ph[i].p_memsz;
	end = (end + 4095) & ~4095UL;
	uint8_t *base = mmap((void *)MODRUN_BASE, end, PROT_READ | PROT_WRITE | PROT_EXEC,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (base != (uint8_t *)MODRUN_BASE) {
		perror("mmap module base");
		return 2;
	}
	Elf64_Dyn *dyn = NULL;
	for (int i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD)
			memcpy(base + ph[i].p_vaddr, f + ph[i].p_offset, ph[i].p_filesz);
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = (Elf64_Dyn *)(f + ph[i].p_offset);
	}
	uint64_t rela = 0, relasz = 0, fini = 0;
	for (; dyn && dyn->d_tag != DT_NULL; dyn++) {
		if (dyn->d_tag == DT_FINI)
			fini = dyn->d_un.d_ptr;
		if (dyn->d_tag == DT_RELA)
			rela = dyn->d_un.d_ptr;
		if (dyn->d_tag == DT_RELASZ)
			relasz = dyn->d_un.d_val;
	}
	int nrel = 0;
	for (uint64_t o = 0; o < relasz; o += sizeof(Elf64_Rela)) {
		Elf64_Rela *r = (Elf64_Rela *)(base + rela + o);
		if (ELF64_R_TYPE(r->r_info) != R_X86_64_RELATIVE) {
			fprintf(stderr, "%s: dynamic relocation type %lu at 0x%lx: only R_X86_64_RELATIVE is handled\n",
				argv[1], (unsigned long)ELF64_R_TYPE(r->r_info), (unsigned long)r->r_offset);
			return 2;
		}
		*(uint64_t *)(base + r->r_offset) = (uint64_t)base + r->r_addend;
		nrel++;
	}
	int32_t (*entry)(const struct fluid_services *) = (void *)(base + eh->e_entry);
	int bad = 0;
	for (int i = 0; i < repeat; i++)
		bad |= entry(&svc) != 0;
	/* MODRUN_FINI=1: call DT_FINI afterwards, as a loader that honours it
	 * would (BOLT's instrumentation runtime dumps its profile there). */
	/* MODRUN_COUNTERS=FILE: call DT_FINI as fluid_profile_dump(buf, cap)
	 * (instr-rt.c's __bolt_instr_fini) and write what it returns to FILE. */
	if (getenv("MODRUN_COUNTERS") && fini) {
		static uint8_t buf[1 << 20];
		int64_t n = ((int64_t(*)(uint8_t *, uint64_t))(base + fini))(buf, sizeof buf);
		FILE *c = fopen(getenv("MODRUN_COUNTERS"), "wb");
		if (n < 0 || !c || fwrite(buf, 1, n, c) != (size_t)n || fclose(c)) {
			fprintf(stderr, "modrun: counter dump failed (%lld)\n", (long long)n);
			return 2;
		}
		printf("modrun: %lld counter bytes -> %s\n", (long long)n, getenv("MODRUN_COUNTERS"));
	}
	/* MODRUN_SETCOUNTERS=FILE: overwrite .bolt.instr.counters with counters
	 * dumped elsewhere (the guest), so that the real runtime's DT_FINI
	 * (MODRUN_FINI=1) writes them out as an fdata file. */
	if (getenv("MODRUN_SETCOUNTERS")) {
		Elf64_Shdr *sh = (Elf64_Shdr *)(f + eh->e_shoff);
		const char *shstr = (const char *)f + sh[eh->e_shstrndx].sh_offset;
		FILE *c = fopen(getenv("MODRUN_SETCOUNTERS"), "rb");
		size_t got = 0;
		for (int i = 0; c && i < eh->e_shnum; i++)
			if (!strcmp(shstr + sh[i].sh_name, ".bolt.instr.counters"))
				got = fread(base + sh[i].sh_addr, 1, sh[i].sh_size, c);
		if (!got) {
			fprintf(stderr, "modrun: no counters loaded from %s\n", getenv("MODRUN_SETCOUNTERS"));
			return 2;
		}
		printf("modrun: %zu counter bytes loaded\n", got);
	}
	if (getenv("MODRUN_FINI") && fini) {
		fflush(stdout);
		((void (*)(void))(base + fini))();
	}
	printf("modrun: %s relocs=%d calls=%d checks=%d failures=%d status=%s\n", argv[1], nrel, repeat, checks,
	       failures, bad || failures ? "FAIL" : "ok");
	return bad || failures;
}
