; modcall.asm — enter a module's code so that the kernel can take control
; back (x86_64): module_call / module_call_hook save the kernel's
; callee-saved registers (RBX, RBP, R12-R15), RFLAGS, the status pointer
; and the stack pointer, then call the module with the SysV ABI;
; module_call_abort (reached by iretq from an exception or timer handler,
; also #DF on its IST stack, or by a jump from a kernel service) restores
; them and makes the call return 1, whatever the module did to the
; registers or its stack.
;
; Invariant: module_call_rsp is nonzero exactly while a module call is
; active (between the save and the return), and then it is the kernel stack
; pointer at the save; module_call_abort is only ever entered in that window
; (kernel/module/guard.c checks it first).

BITS 64
DEFAULT REL

KERNEL_DATA_SEL equ 0x10
MSR_FS_BASE     equ 0xC0000100

extern gdt_fs_block                 ; arch/gdt.c: the FS base (canary block)

section .bss
align 8
global module_call_rsp
module_call_rsp: resq 1

section .text

; int module_call(fluid_entry_fn entry, const struct fluid_services *svc,
;                 int32_t *status)
; RDI = entry, RSI = svc, RDX = status.
; 0: the entry returned, its value is in *status.  1: aborted.
; int module_call_hook(fluid_profile_fn hook, uint8_t *buf, uint32_t cap,
;                      int32_t *status)
; RDI = hook, RSI = buf, EDX = cap, RCX = status. The same for a module's
; profile dump hook, hook(buf, cap).
;
; The module is trusted with nothing it hands back: after it returns,
; nothing the module could have changed is used before it is restored. DS,
; ES and SS are reloaded first (the module may have loaded null or other
; selectors), FS and GS get the null selector and the FS base its canary
; block again (a null selector load clears the base), RSP comes from
; module_call_rsp, RBP, the callee-saved
; registers and RFLAGS (IF, DF, AC, TF, ...) from the save area, and
; *status is a pointer in the save area, not something reached through a
; register the module could have changed.
;
; The save area, from module_call_rsp up: R15 R14 R13 R12 RBX RFLAGS
; status status RBP, then the return address (10 qwords with it: the
; status pointer twice keeps RSP 16-byte aligned for the call into the
; module, as the SysV ABI wants).
global module_call
module_call:
	push rbp
	mov rbp, rsp
	push rdx                    ; status
	push rdx                    ; (again: alignment)
	call save                   ; (returns with the save area below it)
	mov rax, rdi
	mov rdi, rsi                ; entry(svc)
	call rax
	jmp returned

global module_call_hook
module_call_hook:
	push rbp
	mov rbp, rsp
	push rcx                    ; status
	push rcx                    ; (again: alignment)
	call save
	mov rax, rdi
	mov rdi, rsi                ; hook(buf, cap)
	mov esi, edx
	call rax
	jmp returned

; Pushes the rest of the save area under the caller's status pointer and
; records RSP in module_call_rsp; returns to its caller on top of it.
; Clobbers R11.
save:
	pop r11                     ; our return address
	pushfq
	push rbx
	push r12
	push r13
	push r14
	push r15
	mov [module_call_rsp], rsp
	jmp r11

; The module returned (EAX = its value); anything but CS and RIP may be its.
returned:
	cli                         ; until the kernel's RSP and flags are back
	cld
	mov r8d, eax                ; the module's return value
	xor r9d, r9d
.restore:                           ; R9D = 0 (R8D = value) or 1
	mov cx, KERNEL_DATA_SEL
	mov ds, cx
	mov es, cx
	mov ss, cx                  ; (interrupts are held until after the next
	mov rsp, [module_call_rsp]  ;  instruction: SS and RSP change together)
	xor ecx, ecx
	mov fs, cx
	mov gs, cx
	mov ecx, MSR_FS_BASE
	lea rax, [gdt_fs_block]
	mov rdx, rax
	shr rdx, 32
	wrmsr
	mov qword [module_call_rsp], 0
	pop r15
	pop r14
	pop r13
	pop r12
	pop rbx
	popfq                       ; the kernel's IF, DF=0, AC, TF
	pop rcx                     ; status (the alignment copy)
	pop rcx                     ; status
	test r9d, r9d
	jnz .done
	mov [rcx], r8d
.done:
	mov eax, r9d
	pop rbp
	ret

; Not a function: the abort paths jump or iretq here, with interrupts as
; the handler set them (IF=1); the guard points RSP at the saved kernel
; stack, but nothing here relies on the RSP it arrives with.
global module_call_abort
module_call_abort:
	cli
	cld
	mov r9d, 1
	jmp returned.restore
