; entry.asm — the kernel's first instruction (_start, the ELF entry).
;
; Stage 2 jumps here in 32-bit protected mode, paging off, IF=0, with
;   EAX = BOOTINFO_MAGIC, EBX = &boot_info (physical),
; and no promise about ESP.  We keep both values in registers that
; `rep stosd` does not touch (ESI, EBX), zero all of .bss (which holds our
; stack, so the stack is set up only afterwards), then call
;   kernel_main(uint32_t magic, const struct boot_info *bi).

BITS 32

STACK_SIZE equ 64 * 1024

extern kernel_main
extern __bss_start
extern __bss_end

section .text.entry progbits alloc exec nowrite align=16
global _start
_start:
	cli
	cld                         ; rep stosd must count upwards
	mov esi, eax                ; ESI = boot magic (EAX is the stosd value)
	                            ; EBX = boot_info pointer, untouched below

	; Zero .bss: EDI = start, ECX = dword count, EAX = 0.
	; The linker script aligns __bss_start to a page and __bss_end to 4.
	mov edi, __bss_start
	mov ecx, __bss_end
	sub ecx, edi
	shr ecx, 2
	xor eax, eax
	rep stosd

	mov esp, stack_top          ; our stack, now zeroed, 16-byte aligned
	xor ebp, ebp                ; EBP = 0 ends every backtrace here

	push ebx                    ; arg 2: const struct boot_info *
	push esi                    ; arg 1: magic
	call kernel_main

	; kernel_main never returns; if it does, stop here.
.halt:
	cli
	hlt
	jmp .halt

; The stack sits on top of a guard page that paging_init leaves unmapped,
; so an overflow faults (and the #DF task reports it) instead of silently
; overwriting the rest of .bss.
section .bss nobits alloc noexec write align=4096
global kernel_stack_guard
global kernel_stack_bottom
global kernel_stack_top
kernel_stack_guard:
	resb 4096
kernel_stack_bottom:
	resb STACK_SIZE
kernel_stack_top:
stack_top equ kernel_stack_top
