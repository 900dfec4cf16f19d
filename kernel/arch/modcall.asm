; modcall.asm — enter a module's entry point so that the kernel can take
; control back (x86_64): module_call saves the kernel's callee-saved
; registers (RBX, RBP, R12-R15) and its stack pointer, then calls the entry
; with the SysV ABI; module_call_abort (reached by iretq from an exception
; or timer handler, or by a jump from a kernel service) restores them and
; makes module_call return 1, whatever the module did to the registers or
; its stack.
;
; Invariant: module_call_rsp is nonzero exactly while a module_call is
; active (between the save and the return), and then it is the kernel stack
; pointer at the save; module_call_abort is only ever entered in that window
; (kernel/module/guard.c checks it first).

BITS 64
DEFAULT REL

KERNEL_DATA_SEL equ 0x10

section .bss
align 8
global module_call_rsp
module_call_rsp: resq 1

section .text

; int module_call(fluid_entry_fn entry, const struct fluid_services *svc,
;                 int32_t *status)
; RDI = entry, RSI = svc, RDX = status.
; 0: the entry returned, its value is in *status.  1: aborted.
global module_call
module_call:
	push rbp
	mov rbp, rsp
	push rbx
	push r12
	push r13
	push r14
	push r15
	push rdx                    ; status (RSP is now 16-byte aligned)
	mov [module_call_rsp], rsp
	mov rax, rdi
	mov rdi, rsi                ; entry(svc)
	call rax
	mov rdx, [rsp]
	mov [rdx], eax              ; *status = the entry's return value
	xor eax, eax
.restore:
	mov rsp, [module_call_rsp]
	mov qword [module_call_rsp], 0
	add rsp, 8                  ; status
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	pop rbp
	ret

; Not a function: the abort paths jump or iretq here, with interrupts as
; the handler set them (IF=1); the guard points RSP at the saved kernel
; stack, but nothing here relies on the RSP it arrives with.
global module_call_abort
module_call_abort:
	cld
	mov ax, KERNEL_DATA_SEL     ; a module may have loaded DS/ES
	mov ds, ax
	mov es, ax
	mov eax, 1
	jmp module_call.restore
