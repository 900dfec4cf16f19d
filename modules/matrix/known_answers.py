# Known answers for modules/matrix: the same Q16.16 products in Python
# integers (>> is an arithmetic shift, as clang's on int64).
# Run: python3 modules/matrix/known_answers.py
M = 0xffffffff
def xs(s):
    s ^= (s << 13) & M; s ^= s >> 17; s ^= (s << 5) & M
    return s
def s32(v):
    v &= M
    return v - (1 << 32) if v >> 31 else v
def mul(a, b, n):
    return [[s32(sum(a[i][k] * b[k][j] for k in range(n)) >> 16) for j in range(n)] for i in range(n)]
for n in (48, 16):
    s = 0x7F4A7C15
    def mat():
        global s
        m = []
        for i in range(n):
            row = []
            for j in range(n):
                s = xs(s); row.append((s >> 14) - (1 << 17))
            m.append(row)
        return m
    a = mat(); b = mat()
    c = mul(a, b, n)
    c = [[c[j][i] for j in range(n)] for i in range(n)]
    lim = 8 << 16; clamped = 0
    for i in range(n):
        for j in range(n):
            if c[i][j] > lim: c[i][j] = lim; clamped += 1
            elif c[i][j] < -lim: c[i][j] = -lim; clamped += 1
    d = mul(c, a, n)
    h = 0
    for i in range(n):
        for j in range(n): h = (h * 33 + d[i][j]) & M
    tr = sum(d[i][i] for i in range(n)) & M
    print(n, "SUM 0x%08xu TRACE 0x%08xu CLAMPED %du" % (h, tr, clamped))
