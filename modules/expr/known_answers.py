# Known answers for modules/expr: the same expression generator, parsed with
# a shunting-yard parser (not recursive descent) and evaluated with C's
# 32-bit semantics. Run: python3 modules/expr/known_answers.py
M = 0xffffffff
def xs(s):
    s ^= (s << 13) & M; s ^= s >> 17; s ^= (s << 5) & M
    return s
def s32(v):
    v &= M
    return v - (1 << 32) if v >> 31 else v
def gen(st, depth, out):
    st[0] = xs(st[0]); x = st[0]
    if depth == 0 or x & 3 == 0:
        if (x >> 20) & 7 == 0: out.append('-')
        out.append(str((x >> 8) % 1000)); return
    paren = (x >> 12) & 1
    if paren: out.append('(')
    gen(st, depth - 1, out)
    if (x >> 16) & 1: out.append(' ')
    out.append("+-*/%"[((x >> 4) % 5)])
    if (x >> 17) & 1: out.append(' ')
    gen(st, depth - 1, out)
    if paren: out.append(')')
def tokenize(s):
    toks = []; i = 0; operand = True
    while i < len(s):
        c = s[i]
        if c == ' ': i += 1; continue
        if c.isdigit() or (c == '-' and operand and i + 1 < len(s) and s[i+1].isdigit()):
            j = i + 1
            while j < len(s) and s[j].isdigit(): j += 1
            toks.append(int(s[i:j])); i = j; operand = False
        else:
            toks.append(c); i += 1; operand = c != ')'
    return toks
def apply(op, x, y):
    if op == '+': return s32(x + y)
    if op == '-': return s32(x - y)
    if op == '*': return s32(x * y)
    if y == 0: return 0
    if y == -1: return s32(-x) if op == '/' else 0
    q = abs(x) // abs(y) * (1 if (x < 0) == (y < 0) else -1)  # C truncation
    return s32(q) if op == '/' else s32(x - q * y)
def evaluate(toks):
    prec = {'+': 1, '-': 1, '*': 2, '/': 2, '%': 2}
    out, ops = [], []
    def reduce():
        op = ops.pop(); y = out.pop(); x = out.pop(); out.append(apply(op, x, y))
    for t in toks:
        if isinstance(t, int): out.append(s32(t))
        elif t == '(': ops.append(t)
        elif t == ')':
            while ops[-1] != '(': reduce()
            ops.pop()
        else:
            while ops and ops[-1] != '(' and prec[ops[-1]] >= prec[t]: reduce()
            ops.append(t)
    while ops: reduce()
    assert len(out) == 1
    return out[0]
for count in (3000, 200):
    st = [0x9E3779B9]; h = 0; tokens = 0
    for _ in range(count):
        out = []; gen(st, 6, out); toks = tokenize(''.join(out))
        tokens += len(toks); h = (h * 31 + evaluate(toks)) & M
    print(count, "SUM 0x%08xu TOKENS %du" % (h, tokens))
