/* ebpret: returns FLUID_OK with RBP cleared (a callee-saved register the
 * ABI says it must keep). The kernel must not use the module's RBP. */
#include "fluid_module.h"

__asm__(".text\n.globl fluid_main\n.type fluid_main,@function\nfluid_main:\n"
	"\txorl %ebp, %ebp\n\txorl %eax, %eax\n\tret\n.size fluid_main, .-fluid_main\n");
