/* clihang: disables interrupts and spins: no timer tick can stop it. */
#include "fluid_module.h"

__asm__(".text\n.globl fluid_main\n.type fluid_main,@function\nfluid_main:\n"
	"\tcli\n1:\tjmp 1b\n.size fluid_main, .-fluid_main\n");
