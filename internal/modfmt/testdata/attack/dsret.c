/* dsret: returns FLUID_OK with DS, ES, FS and GS holding the null selector.
 * The kernel must not touch memory through the module's segments. */
#include "fluid_module.h"

__asm__(".text\n.globl fluid_main\n.type fluid_main,@function\nfluid_main:\n"
	"\txorl %eax, %eax\n\tmovl %eax, %ds\n\tmovl %eax, %es\n\tmovl %eax, %fs\n\tmovl %eax, %gs\n"
	"\tret\n.size fluid_main, .-fluid_main\n");
