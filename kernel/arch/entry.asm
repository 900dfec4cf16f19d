; entry.asm — the kernel's first instructions (_start, the ELF entry).
;
; Stage 2 jumps here, to _start's PHYSICAL address (the kernel header's
; entry), in 64-bit long mode on its boot page tables (identity map of the
; first 4 GiB, and KERNEL_VMA -> physical 0..1 GiB), IF = 0, with
;   RDI = &boot_info (physical, identity-mapped), RSI = BOOTINFO_MAGIC,
; and no promise about RSP (boot/bootinfo.h). _start jumps to its own
; higher-half address at once, takes its own stack (in .bss, which stage 2
; zeroed: the kernel image is flat from load_addr and stage 2 zeroes
; mem_size - payload_size bytes after the payload) and calls
;   kernel_main(uint32_t magic, const struct boot_info *bi).
; Until kernel/mm/vm.c switches CR3, only stage 2's two mappings exist.

BITS 64
DEFAULT REL

STACK_SIZE equ 64 * 1024

extern kernel_main

section .text.entry progbits alloc exec nowrite align=16
global _start
_start:
	cli
	cld
	mov r12, rdi                ; R12 = boot_info (callee-saved, survives)
	mov r13d, esi               ; R13 = boot magic
	mov rax, .high              ; absolute: the higher-half address
	jmp rax
.high:
	mov rsp, kernel_stack_top   ; our stack, 16-byte aligned
	xor ebp, ebp                ; RBP = 0 ends every backtrace here
	mov edi, r13d               ; arg 1: magic
	mov rsi, r12                ; arg 2: const struct boot_info *
	call kernel_main

	; kernel_main never returns; if it does, stop here.
.halt:
	cli
	hlt
	jmp .halt

; The stack sits on top of a guard page that kernel/mm/vm.c leaves
; unmapped, so an overflow faults (and #DF, on its own IST stack, reports
; it) instead of silently overwriting the rest of .bss.
section .bss nobits alloc noexec write align=4096
global kernel_stack_guard
global kernel_stack_bottom
global kernel_stack_top
kernel_stack_guard:
	resb 4096
kernel_stack_bottom:
	resb STACK_SIZE
kernel_stack_top:
