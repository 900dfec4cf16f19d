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
; int module_call_hook(fluid_profile_fn hook, uint8_t *buf, uint32_t cap,
;                      int32_t *status)
; The same for a module's profile dump hook, hook(buf, cap).
;
; The module is trusted with nothing it hands back: after it returns,
; nothing the module could have changed is used before it is restored. DS
; and SS are reloaded first (the module may have loaded null or other
; selectors), ESP comes from module_call_esp, EBP and EFLAGS (IF, DF,
; AC, ...) from the save area, and *status is a pointer in the save area,
; not something reached through the module's EBP.
;
; The save area, from module_call_esp up: GS FS ES DS EDI ESI EBX EFLAGS
; status EBP, then the return address.
global module_call
module_call:
	push ebp
	mov ebp, esp
	push dword [ebp + 16]       ; status
	call save                   ; (returns with the save area below it)
	push dword [ebp + 12]       ; svc
	call [ebp + 8]              ; entry(svc)
	jmp returned

global module_call_hook
module_call_hook:
	push ebp
	mov ebp, esp
	push dword [ebp + 20]       ; status
	call save
	push dword [ebp + 16]       ; cap
	push dword [ebp + 12]       ; buf
	call [ebp + 8]              ; hook(buf, cap)
	jmp returned

; Pushes the rest of the save area under the caller's status pointer and
; records ESP in module_call_esp; returns to its caller on top of it.
save:
	pop eax                     ; our return address
	pushfd
	push ebx
	push esi
	push edi
	push ds
	push es
	push fs
	push gs
	mov [module_call_esp], esp
	jmp eax

; The module returned (EAX = its value); anything but CS and EIP may be its.
returned:
	cli                         ; until the kernel's ESP and flags are back
	cld
	mov edx, eax                ; the module's return value
	mov cx, KERNEL_DATA_SEL
	mov ds, cx
	xor eax, eax
.restore:                           ; EAX = 0 (EDX = value) or 1; DS = kernel
	mov cx, KERNEL_DATA_SEL
	mov ss, cx                  ; (interrupts are held until after the next
	mov esp, [module_call_esp]  ;  instruction: SS and ESP change together)
	mov dword [module_call_esp], 0
	pop gs
	pop fs
	pop es
	pop ds
	pop edi
	pop esi
	pop ebx
	popfd                       ; the kernel's IF, DF=0, AC
	pop ecx                     ; status
	test eax, eax
	jnz .done
	mov [ecx], edx
.done:
	pop ebp
	ret

; Not a function: the abort paths jump or iret here, on whatever stack the
; module left, with interrupts as the handler set them (IF=1), or arrive by
; the double-fault task's return on the stack module_call saved.
global module_call_abort
module_call_abort:
	cli
	cld
	clts                        ; the double-fault path comes back by a task
	                            ; switch, which sets CR0.TS (the FPU would #NM)
	mov ax, KERNEL_DATA_SEL     ; DS/ES for the restore; module_call's
	mov ds, ax                  ; own saved values are popped after it
	mov es, ax
	mov eax, 1
	jmp returned.restore
