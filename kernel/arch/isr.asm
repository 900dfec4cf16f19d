; isr.asm — one stub per IDT vector and the common entry into C.
;
; Each stub makes the stack look the same: [error code][vector] on top of
; what the CPU pushed (EIP, CS, EFLAGS; ring 0 only, so no ESP/SS).  For the
; vectors where the CPU pushes no error code the stub pushes a 0.  The common
; stub saves the general registers and segment registers (struct int_frame in
; idt.h), loads the kernel data segment and calls
; interrupt_dispatch(struct int_frame *).

BITS 32

KERNEL_DATA_SEL equ 0x10

extern interrupt_dispatch

section .text

; Vectors where the CPU pushes an error code: #DF 8, #TS 10, #NP 11, #SS 12,
; #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
%macro ISR 1
isr_stub_%1:
%if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30
	push dword %1               ; error code already on the stack
%else
	push dword 0                ; fake error code
	push dword %1
%endif
	jmp isr_common
%endmacro

%assign v 0
%rep 256
	ISR v
%assign v v+1
%endrep

isr_common:
	pushad                      ; EAX ECX EDX EBX ESP EBP ESI EDI
	push ds
	push es
	push fs
	push gs
	mov ax, KERNEL_DATA_SEL
	mov ds, ax
	mov es, ax
	mov fs, ax
	mov gs, ax
	cld                         ; C code assumes DF = 0
	mov eax, esp                ; EAX = struct int_frame *
	push eax
	call interrupt_dispatch
	add esp, 4
	pop gs
	pop fs
	pop es
	pop ds
	popad
	add esp, 8                  ; drop vector and error code
	iretd

; Table of the 256 stub addresses, read by idt_init().
section .rodata
global isr_stub_table
align 4
isr_stub_table:
%assign v 0
%rep 256
	dd isr_stub_ %+ v
%assign v v+1
%endrep
