; isr.asm — one stub per IDT vector and the common entry into C (x86_64).
;
; Each stub makes the stack look the same: [vector][error code] on top of
; what the CPU pushed (RIP, CS, RFLAGS, RSP, SS — always all five in long
; mode). For the vectors where the CPU pushes no error code the stub
; pushes a 0. The common stub saves the fifteen general registers (struct
; int_frame in idt.h) and calls interrupt_dispatch(struct int_frame *).
; Stack alignment: the CPU aligns RSP to 16 before its frame; frame (5 or
; 6 qwords) + stub pushes (2 or 1) + 15 registers = 22 qwords, so RSP is
; 16-byte aligned at the call, as the SysV ABI wants.

BITS 64
DEFAULT REL

extern interrupt_dispatch

section .text

; Vectors where the CPU pushes an error code: #DF 8, #TS 10, #NP 11, #SS 12,
; #GP 13, #PF 14, #AC 17, #CP 21, #VC 29, #SX 30.
%macro ISR 1
isr_stub_%1:
%if %1 == 8 || (%1 >= 10 && %1 <= 14) || %1 == 17 || %1 == 21 || %1 == 29 || %1 == 30
	push qword %1               ; error code already on the stack
%else
	push qword 0                ; fake error code
	push qword %1
%endif
	jmp isr_common
%endmacro

%assign v 0
%rep 256
	ISR v
%assign v v+1
%endrep

isr_common:
	push rax
	push rbx
	push rcx
	push rdx
	push rsi
	push rdi
	push rbp
	push r8
	push r9
	push r10
	push r11
	push r12
	push r13
	push r14
	push r15
	cld                         ; C code assumes DF = 0
	mov rdi, rsp                ; RDI = struct int_frame *
	call interrupt_dispatch
global isr_return
isr_return:
	pop r15
	pop r14
	pop r13
	pop r12
	pop r11
	pop r10
	pop r9
	pop r8
	pop rbp
	pop rdi
	pop rsi
	pop rdx
	pop rcx
	pop rbx
	pop rax
	add rsp, 16                 ; drop vector and error code
	iretq

; Table of the 256 stub addresses, read by idt_init().
section .rodata
global isr_stub_table
align 8
isr_stub_table:
%assign v 0
%rep 256
	dq isr_stub_ %+ v
%assign v v+1
%endrep
