; modcall.asm — enter a module's entry point so that the kernel can take
; control back: module_call saves the kernel's callee-saved registers,
; segment registers and stack pointer, then calls the entry;
; module_call_abort (reached by iret from an exception or timer handler, or
; by a jump from a kernel service) restores them and makes module_call
; return 1, whatever the module did to the registers or its stack.
;
; Invariant: module_call_esp is nonzero exactly while a module_call is
; active (between the save and the return), and then it is the kernel stack
; pointer at the save; module_call_abort is only ever entered in that window
; (kernel/module/guard.c checks module_guard_active() first).

BITS 32

KERNEL_DATA_SEL equ 0x10

section .bss
align 4
global module_call_esp
module_call_esp: resd 1

section .text

; int module_call(fluid_entry_fn entry, const struct fluid_services *svc,
;                 int32_t *status)
; 0: the entry returned, its value is in *status.  1: aborted.
global module_call
module_call:
	push ebp
	mov ebp, esp
	push ebx
	push esi
	push edi
	push ds
	push es
	push fs
	push gs
	mov [module_call_esp], esp
	push dword [ebp + 12]       ; svc
	call [ebp + 8]              ; entry(svc)
	mov ecx, [ebp + 16]
	mov [ecx], eax              ; *status = the entry's return value
	xor eax, eax
.restore:
	mov esp, [module_call_esp]
	mov dword [module_call_esp], 0
	pop gs
	pop fs
	pop es
	pop ds
	pop edi
	pop esi
	pop ebx
	pop ebp
	ret

; Not a function: the abort paths jump or iret here, on whatever stack the
; module left, with interrupts as the handler set them (IF=1).
global module_call_abort
module_call_abort:
	cld
	mov ax, KERNEL_DATA_SEL     ; DS/ES for the restore; module_call's
	mov ds, ax                  ; own saved values are popped after it
	mov es, ax
	mov eax, 1
	jmp module_call.restore
