/* badesp: points RSP just above the unmapped NULL page, then faults: the CPU cannot push
 * the exception frame (a double fault). */
#include "fluid_module.h"

__asm__(".text\n.globl fluid_main\n.type fluid_main,@function\nfluid_main:\n"
	"\tmovl $0x1000, %esp\n\tud2\n.size fluid_main, .-fluid_main\n");
