# Known answers for modules/sort: Python's sorted() and bisect over the same
# xorshift32 sequence. Run: python3 modules/sort/known_answers.py
import bisect
M = 0xffffffff
def xs(s):
    s ^= (s << 13) & M; s ^= s >> 17; s ^= (s << 5) & M
    return s
for n in (30000, 2000):
    s = 0x00C0FFEE; orig = []
    for _ in range(n):
        s = xs(s); orig.append(s & 0x000FFFFF)
    a = sorted(orig)
    total = sum(v * (i + 1) for i, v in enumerate(a)) & M
    hits = 0
    for q in range(n):
        s = xs(s)
        key = orig[s % n] if q & 1 else s & 0x000FFFFF
        i = bisect.bisect_left(a, key)
        hits += i < n and a[i] == key
    print(n, "SUM 0x%08xu HITS %du" % (total, hits))
