# Known answers for modules/lz: the same text generator and LZ format in
# Python; also checks that its own decompressor round-trips.
# Run: python3 modules/lz/known_answers.py
M = 0xffffffff
WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
         "fluid", "kernel", "module", "profile", "branch", "cache", "loop", "data"]
def xs(s):
    s ^= (s << 13) & M; s ^= s >> 17; s ^= (s << 5) & M
    return s
def gen(n):
    s = 0x2545F491; out = bytearray()
    while len(out) < n:
        s = xs(s); x = s
        out += WORDS[x >> 28].encode()
        if x & 0x70 == 0:
            out += bytes(ord('0') + (x >> (8 + 4 * k)) % 10 for k in range(3))
        out += b'\n' if x & 0xF == 0 else b' '
    return bytes(out[:n])
def compress(b):
    n = len(b); head = [-1] * 4096; out = bytearray(); i = lit = 0
    h4 = lambda p: ((int.from_bytes(b[p:p+4], 'little') * 2654435761) & M) >> 20
    def lits(a, z):
        while a < z:
            k = min(128, z - a); out.append(k - 1); out.extend(b[a:a+k]); a += k
    while i + 4 <= n:
        h = h4(i); cand = head[h]; head[h] = i
        if cand >= 0 and i - cand <= 65535 and b[cand:cand+4] == b[i:i+4]:
            ln = 4
            while i + ln < n and ln < 131 and b[cand+ln] == b[i+ln]: ln += 1
            lits(lit, i); off = i - cand
            out += bytes([0x80 | (ln - 4), off & 0xff, off >> 8])
            for k in range(1, ln):
                if i + k + 4 <= n: head[h4(i + k)] = i + k
            i += ln; lit = i
        else:
            i += 1
    lits(lit, n)
    return bytes(out)
def decompress(c):
    out = bytearray(); i = 0
    while i < len(c):
        t = c[i]; i += 1
        if t < 0x80: out += c[i:i+t+1]; i += t + 1
        else:
            ln = (t & 0x7f) + 4; off = c[i] | c[i+1] << 8; i += 2
            for _ in range(ln): out.append(out[-off])
    return bytes(out)
def fnv(b):
    h = 0x811C9DC5
    for c in b: h = ((h ^ c) * 0x01000193) & M
    return h
for n in (64 * 1024, 8 * 1024):
    b = gen(n); c = compress(b)
    assert decompress(c) == b
    print(n, "CSIZE %du FNV 0x%08xu" % (len(c), fnv(b)))
