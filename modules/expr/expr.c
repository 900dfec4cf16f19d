/*
 * expr — generates arithmetic expressions as text, then tokenizes, parses
 * (recursive descent, C precedence) and evaluates them with 32-bit
 * wrapping integers. Known answers: modules/expr/known_answers.py, which
 * parses the same text with a shunting-yard parser instead.
 *
 * Semantics: + - * wrap modulo 2^32; / and % truncate toward zero as in C;
 * x / 0 = 0 and x % 0 = 0; x / -1 = -x (wrapping) and x % -1 = 0.
 * A '-' directly before a number where an operand is expected is its sign.
 */
#include "fluid_module.h"

#define EXPR_COUNT_DEFAULT 3000u
#define EXPR_COUNT_LIGHT   200u
#define EXPR_DEPTH         6
#define EXPR_SEED          0x9E3779B9u
#define TEXT_MAX           2048u

/* python3 modules/expr/known_answers.py */
#define SUM_DEFAULT        0x8c728c33u
#define TOKENS_DEFAULT     143774u
#define SUM_LIGHT          0xb89497d8u
#define TOKENS_LIGHT       8698u

struct text {
	char *p;
	uint32_t n;
	int overflow;
};

static void put(struct text *t, char c)
{
	if (t->n + 1 < TEXT_MAX)
		t->p[t->n++] = c;
	else
		t->overflow = 1;
}

static void put_num(struct text *t, uint32_t v)
{
	char d[10];
	int k = 0;
	do {
		d[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (k)
		put(t, d[--k]);
}

static void gen(struct text *t, uint32_t *s, int depth)
{
	uint32_t x = xorshift32(s);
	if (depth == 0 || (x & 3) == 0) {
		if (((x >> 20) & 7) == 0)
			put(t, '-');
		put_num(t, (x >> 8) % 1000);
		return;
	}
	int paren = (x >> 12) & 1;
	if (paren)
		put(t, '(');
	gen(t, s, depth - 1);
	if ((x >> 16) & 1)
		put(t, ' ');
	put(t, "+-*/%"[(x >> 4) % 5]);
	if ((x >> 17) & 1)
		put(t, ' ');
	gen(t, s, depth - 1);
	if (paren)
		put(t, ')');
}

/* ---- tokenizer ---- */
enum tok { T_NUM, T_PLUS, T_MINUS, T_STAR, T_SLASH, T_PERCENT, T_LPAREN, T_RPAREN, T_END, T_ERR };

struct lexer {
	const char *p;
	enum tok kind;
	int32_t val;
	int operand_expected;
	uint32_t tokens;
};

static void next(struct lexer *lx)
{
	while (*lx->p == ' ')
		lx->p++;
	char c = *lx->p;
	int neg = 0;
	if (c == '\0') {
		lx->kind = T_END;
		return;
	}
	lx->tokens++;
	if (c == '-' && lx->operand_expected && lx->p[1] >= '0' && lx->p[1] <= '9') {
		neg = 1;
		c = *++lx->p;
	}
	if (c >= '0' && c <= '9') {
		uint32_t v = 0;
		while (*lx->p >= '0' && *lx->p <= '9')
			v = v * 10 + (uint32_t)(*lx->p++ - '0');
		lx->val = (int32_t)(neg ? 0u - v : v);
		lx->kind = T_NUM;
		lx->operand_expected = 0;
		return;
	}
	lx->p++;
	lx->operand_expected = 1;
	switch (c) {
	case '+': lx->kind = T_PLUS; break;
	case '-': lx->kind = T_MINUS; break;
	case '*': lx->kind = T_STAR; break;
	case '/': lx->kind = T_SLASH; break;
	case '%': lx->kind = T_PERCENT; break;
	case '(': lx->kind = T_LPAREN; break;
	case ')': lx->kind = T_RPAREN; lx->operand_expected = 0; break;
	default: lx->kind = T_ERR; break;
	}
}

static int32_t apply(enum tok op, int32_t x, int32_t y)
{
	switch (op) {
	case T_PLUS: return (int32_t)((uint32_t)x + (uint32_t)y);
	case T_MINUS: return (int32_t)((uint32_t)x - (uint32_t)y);
	case T_STAR: return (int32_t)((uint32_t)x * (uint32_t)y);
	case T_SLASH:
		if (y == 0) return 0;
		if (y == -1) return (int32_t)(0u - (uint32_t)x);
		return x / y;
	case T_PERCENT:
		if (y == 0 || y == -1) return 0;
		return x % y;
	default: return 0;
	}
}

/* ---- parser: expr := term (+|- term)*, term := factor (*|/|% factor)*,
 *      factor := NUM | ( expr ) ---- */
static int32_t parse_expr(struct lexer *lx, int *err, int depth);

static int32_t parse_factor(struct lexer *lx, int *err, int depth)
{
	if (lx->kind == T_NUM) {
		int32_t v = lx->val;
		next(lx);
		return v;
	}
	if (lx->kind == T_LPAREN && depth < 64) {
		next(lx);
		int32_t v = parse_expr(lx, err, depth + 1);
		if (lx->kind != T_RPAREN) {
			*err = 1;
			return 0;
		}
		next(lx);
		return v;
	}
	*err = 1;
	return 0;
}

static int32_t parse_term(struct lexer *lx, int *err, int depth)
{
	int32_t v = parse_factor(lx, err, depth);
	while (!*err && (lx->kind == T_STAR || lx->kind == T_SLASH || lx->kind == T_PERCENT)) {
		enum tok op = lx->kind;
		next(lx);
		v = apply(op, v, parse_factor(lx, err, depth));
	}
	return v;
}

static int32_t parse_expr(struct lexer *lx, int *err, int depth)
{
	int32_t v = parse_term(lx, err, depth);
	while (!*err && (lx->kind == T_PLUS || lx->kind == T_MINUS)) {
		enum tok op = lx->kind;
		next(lx);
		v = apply(op, v, parse_term(lx, err, depth));
	}
	return v;
}

int32_t fluid_main(const struct fluid_services *svc)
{
	uint32_t count = svc->light ? EXPR_COUNT_LIGHT : EXPR_COUNT_DEFAULT;
	char *buf = svc->alloc(TEXT_MAX);
	if (!buf) {
		svc->print("expr: out of memory\n");
		return FLUID_FAIL;
	}
	uint32_t s = EXPR_SEED, sum = 0, tokens = 0, errors = 0, overflows = 0;
	for (uint32_t i = 0; i < count; i++) {
		struct text t = { buf, 0, 0 };
		gen(&t, &s, EXPR_DEPTH);
		buf[t.n] = '\0';
		overflows += (uint32_t)t.overflow;
		struct lexer lx = { buf, T_END, 0, 1, 0 };
		int err = 0;
		next(&lx);
		int32_t v = parse_expr(&lx, &err, 0);
		if (lx.kind != T_END)
			err = 1;
		errors += (uint32_t)err;
		sum = sum * 31u + (uint32_t)v;
		tokens += lx.tokens;
	}
	int ok = 1;
	ok &= svc->check("text overflows", overflows, 0);
	ok &= svc->check("parse errors", errors, 0);
	ok &= svc->check("token count", tokens, svc->light ? TOKENS_LIGHT : TOKENS_DEFAULT);
	ok &= svc->check("value hash", sum, svc->light ? SUM_LIGHT : SUM_DEFAULT);
	svc->free(buf);
	return ok ? FLUID_OK : FLUID_FAIL;
}
