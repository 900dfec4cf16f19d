/* flagsret: returns FLUID_OK with interrupts disabled and the direction
 * flag set. A module that runs after it must still be stoppable by the
 * timer, and the kernel's string functions must still run forwards. */
#include "fluid_module.h"

__asm__(".text\n.globl fluid_main\n.type fluid_main,@function\nfluid_main:\n"
	"\tcli\n\tstd\n\txorl %eax, %eax\n\tret\n.size fluid_main, .-fluid_main\n");
