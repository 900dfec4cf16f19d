/*
 * interp — a stack-machine bytecode interpreter (switch dispatch) running
 * two small programs it assembles itself: counting/summing primes below P
 * by trial division, and the total Collatz steps of 1..C. The interpreter
 * loop is the classic PGO target: which opcodes are hot decides the layout.
 * Known answers: modules/interp/known_answers.py (plain Python loops).
 */
#include "fluid_module.h"

#define PRIME_LIMIT_DEFAULT   4000
#define PRIME_LIMIT_LIGHT     1000
#define COLLATZ_N_DEFAULT     1000
#define COLLATZ_N_LIGHT       300

/* python3 modules/interp/known_answers.py */
#define PRIMES_DEFAULT        550u
#define PRIME_SUM_DEFAULT     1013507u
#define COLLATZ_DEFAULT       59542u
#define PRIMES_LIGHT          168u
#define PRIME_SUM_LIGHT       76127u
#define COLLATZ_LIGHT         14167u

enum op {
	OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_MOD,
	OP_LT, OP_EQ, OP_JZ, OP_JMP, OP_DUP, OP_POP, OP_INC,
};

#define CODE_MAX   256
#define LABELS_MAX 16
#define STACK_MAX  32
#define VARS       8

struct asm_state {
	int32_t code[CODE_MAX];
	int n;
	int label_at[LABELS_MAX];
	int fixup_at[CODE_MAX];  /* code index -> label id + 1, 0 = none */
	int bad;
};

static void emit(struct asm_state *a, int32_t v)
{
	if (a->n < CODE_MAX)
		a->code[a->n++] = v;
	else
		a->bad = 1;
}

static void op1(struct asm_state *a, enum op o, int32_t arg)
{
	emit(a, o);
	emit(a, arg);
}

static void jump(struct asm_state *a, enum op o, int label)
{
	emit(a, o);
	if (a->n < CODE_MAX)
		a->fixup_at[a->n] = label + 1;
	emit(a, 0);
}

static void label(struct asm_state *a, int l)
{
	a->label_at[l] = a->n;
}

static void link(struct asm_state *a)
{
	for (int i = 0; i < a->n; i++)
		if (a->fixup_at[i])
			a->code[i] = a->label_at[a->fixup_at[i] - 1];
}

/* vars: 0 n, 1 d, 2 count, 3 sum, 4 limit, 5 isprime */
static void asm_primes(struct asm_state *a, int32_t limit)
{
	enum { L_LOOP, L_END, L_INNER, L_INNER_END, L_NEXT, L_COMPOSITE, L_SKIP };
	op1(a, OP_PUSH, limit); op1(a, OP_STORE, 4);
	op1(a, OP_PUSH, 2); op1(a, OP_STORE, 0);
	label(a, L_LOOP);
	op1(a, OP_LOAD, 0); op1(a, OP_LOAD, 4); emit(a, OP_LT); jump(a, OP_JZ, L_END);
	op1(a, OP_PUSH, 2); op1(a, OP_STORE, 1);
	op1(a, OP_PUSH, 1); op1(a, OP_STORE, 5);
	label(a, L_INNER);
	/* while d*d < n+1 */
	op1(a, OP_LOAD, 1); emit(a, OP_DUP); emit(a, OP_MUL);
	op1(a, OP_LOAD, 0); op1(a, OP_PUSH, 1); emit(a, OP_ADD); emit(a, OP_LT);
	jump(a, OP_JZ, L_INNER_END);
	op1(a, OP_LOAD, 0); op1(a, OP_LOAD, 1); emit(a, OP_MOD);
	op1(a, OP_PUSH, 0); emit(a, OP_EQ); emit(a, OP_DUP);
	jump(a, OP_JZ, L_NEXT);
	emit(a, OP_POP);
	jump(a, OP_JMP, L_COMPOSITE);
	label(a, L_NEXT);
	emit(a, OP_POP);
	op1(a, OP_INC, 1);
	jump(a, OP_JMP, L_INNER);
	label(a, L_COMPOSITE);
	op1(a, OP_PUSH, 0); op1(a, OP_STORE, 5);
	label(a, L_INNER_END);
	op1(a, OP_LOAD, 5); jump(a, OP_JZ, L_SKIP);
	op1(a, OP_INC, 2);
	op1(a, OP_LOAD, 3); op1(a, OP_LOAD, 0); emit(a, OP_ADD); op1(a, OP_STORE, 3);
	label(a, L_SKIP);
	op1(a, OP_INC, 0);
	jump(a, OP_JMP, L_LOOP);
	label(a, L_END);
	emit(a, OP_HALT);
}

/* vars: 0 k, 1 x, 2 steps, 4 limit */
static void asm_collatz(struct asm_state *a, int32_t limit)
{
	enum { L_OUTER, L_END, L_INNER, L_NEXT_K, L_EVEN, L_STEP };
	op1(a, OP_PUSH, limit); op1(a, OP_STORE, 4);
	op1(a, OP_PUSH, 1); op1(a, OP_STORE, 0);
	label(a, L_OUTER);
	op1(a, OP_LOAD, 0); op1(a, OP_LOAD, 4); op1(a, OP_PUSH, 1); emit(a, OP_ADD); emit(a, OP_LT);
	jump(a, OP_JZ, L_END);
	op1(a, OP_LOAD, 0); op1(a, OP_STORE, 1);
	label(a, L_INNER);
	op1(a, OP_LOAD, 1); op1(a, OP_PUSH, 1); emit(a, OP_EQ); emit(a, OP_DUP);
	jump(a, OP_JZ, L_STEP);
	emit(a, OP_POP);
	jump(a, OP_JMP, L_NEXT_K);
	label(a, L_STEP);
	emit(a, OP_POP);
	op1(a, OP_INC, 2);
	op1(a, OP_LOAD, 1); op1(a, OP_PUSH, 2); emit(a, OP_MOD);
	jump(a, OP_JZ, L_EVEN); /* x % 2 == 0 */
	op1(a, OP_LOAD, 1); op1(a, OP_PUSH, 3); emit(a, OP_MUL); op1(a, OP_PUSH, 1); emit(a, OP_ADD);
	op1(a, OP_STORE, 1);
	jump(a, OP_JMP, L_INNER);
	label(a, L_EVEN);
	op1(a, OP_LOAD, 1); op1(a, OP_PUSH, 2); emit(a, OP_DIV); op1(a, OP_STORE, 1);
	jump(a, OP_JMP, L_INNER);
	label(a, L_NEXT_K);
	op1(a, OP_INC, 0);
	jump(a, OP_JMP, L_OUTER);
	label(a, L_END);
	emit(a, OP_HALT);
}

/* Run code; returns 0 on HALT, -1 on a malformed program. */
static int run(const int32_t *code, int n, int32_t *vars, uint32_t *steps)
{
	int32_t st[STACK_MAX];
	int sp = 0, pc = 0;
	uint32_t executed = 0;
	for (;;) {
		if (pc < 0 || pc >= n)
			return -1;
		executed++;
		int32_t o = code[pc++];
		int32_t x, y;
		switch (o) {
		case OP_HALT:
			*steps = executed;
			return sp == 0 ? 0 : -1;
		case OP_PUSH:
			if (sp >= STACK_MAX) return -1;
			st[sp++] = code[pc++];
			break;
		case OP_LOAD:
			if (sp >= STACK_MAX || (uint32_t)code[pc] >= VARS) return -1;
			st[sp++] = vars[code[pc++]];
			break;
		case OP_STORE:
			if (sp < 1 || (uint32_t)code[pc] >= VARS) return -1;
			vars[code[pc++]] = st[--sp];
			break;
		case OP_INC:
			if ((uint32_t)code[pc] >= VARS) return -1;
			vars[code[pc++]]++;
			break;
		case OP_DUP:
			if (sp < 1 || sp >= STACK_MAX) return -1;
			st[sp] = st[sp - 1];
			sp++;
			break;
		case OP_POP:
			if (sp < 1) return -1;
			sp--;
			break;
		case OP_JMP:
			pc = code[pc];
			break;
		case OP_JZ:
			if (sp < 1) return -1;
			pc = st[--sp] == 0 ? code[pc] : pc + 1;
			break;
		default:
			if (sp < 2) return -1;
			y = st[--sp];
			x = st[--sp];
			switch (o) {
			case OP_ADD: x = (int32_t)((uint32_t)x + (uint32_t)y); break;
			case OP_SUB: x = (int32_t)((uint32_t)x - (uint32_t)y); break;
			case OP_MUL: x = (int32_t)((uint32_t)x * (uint32_t)y); break;
			case OP_DIV: if (y == 0) return -1; x /= y; break;
			case OP_MOD: if (y == 0) return -1; x %= y; break;
			case OP_LT: x = x < y; break;
			case OP_EQ: x = x == y; break;
			default: return -1;
			}
			st[sp++] = x;
		}
	}
}

int32_t fluid_main(const struct fluid_services *svc)
{
	struct asm_state a;
	int32_t vars[VARS];
	uint32_t steps = 0;
	int ok = 1;

	memset(&a, 0, sizeof(a));
	memset(vars, 0, sizeof(vars));
	asm_primes(&a, svc->light ? PRIME_LIMIT_LIGHT : PRIME_LIMIT_DEFAULT);
	link(&a);
	ok &= svc->check("assemble primes", (uint64_t)a.bad, 0);
	ok &= svc->check("run primes", (uint64_t)(uint32_t)run(a.code, a.n, vars, &steps), 0);
	ok &= svc->check("prime count", (uint32_t)vars[2], svc->light ? PRIMES_LIGHT : PRIMES_DEFAULT);
	ok &= svc->check("prime sum", (uint32_t)vars[3], svc->light ? PRIME_SUM_LIGHT : PRIME_SUM_DEFAULT);

	memset(&a, 0, sizeof(a));
	memset(vars, 0, sizeof(vars));
	asm_collatz(&a, svc->light ? COLLATZ_N_LIGHT : COLLATZ_N_DEFAULT);
	link(&a);
	ok &= svc->check("assemble collatz", (uint64_t)a.bad, 0);
	ok &= svc->check("run collatz", (uint64_t)(uint32_t)run(a.code, a.n, vars, &steps), 0);
	ok &= svc->check("collatz steps", (uint32_t)vars[2], svc->light ? COLLATZ_LIGHT : COLLATZ_DEFAULT);
	return ok ? FLUID_OK : FLUID_FAIL;
}
